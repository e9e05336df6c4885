// Scenarios of rtsync-bench. See scenarios.hpp and main.cpp.
#include "scenarios.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <vector>

#include "common/json_text.hpp"
#include "proc_stats.hpp"
#include "ws_client.hpp"

namespace bench {

namespace {

using Clock = std::chrono::steady_clock;

std::uint64_t now_us() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count());
}

struct Target {
  tcp::endpoint endpoint;
  std::string host;
};

Target target(const Common& c) {
  auto colon = c.server.rfind(':');
  return Target{tcp::endpoint(asio::ip::make_address(c.server.substr(0, colon)),
                              static_cast<unsigned short>(std::stoi(c.server.substr(colon + 1)))),
                c.server};
}

// The i-th connection's source address: 127.0.0.2 for the first 25,000, then 127.0.0.3, ...
asio::ip::address source_for(int i) {
  return asio::ip::make_address_v4("127.0.0." + std::to_string(2 + i / 25000));
}

double percentile(std::vector<std::uint32_t>& v, double p) {
  if (v.empty()) return 0;
  auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

void append_json(const Common& c, const std::string& line) {
  std::printf("%s\n", line.c_str());
  if (c.json.empty()) return;
  std::ofstream(c.json, std::ios::app) << line << '\n';
}

// Runs `io` until `pred` holds or `timeout` passes; false on timeout.
template <class Pred>
bool run_until(asio::io_context& io, Pred pred, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() > deadline) return false;
    io.run_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace

// ---- tally ------------------------------------------------------------------------------------------

int run_tally(const Common& c, const TallyOptions& o) {
  asio::io_context io(1);
  auto t = target(c);
  std::minstd_rand rng(1234);
  std::vector<std::uint32_t> lat;
  std::uint64_t ok = 0, errors = 0;
  bool measuring = false;

  struct Writer {
    std::shared_ptr<Connection> conn;
    std::uint64_t seq = 0;
    bool created = false;
    std::uint64_t sent_at = 0;
  };
  std::vector<Writer> writers(static_cast<std::size_t>(o.writers));
  auto send = [&](Writer& w) {
    std::string cmd = "{\"id\":";
    rtsync::common::append_int(cmd, ++w.seq);
    cmd += w.created ? ",\"op\":\"update\",\"doc\":\"me\"" : ",\"op\":\"create\"";
    cmd += ",\"coll\":";
    rtsync::common::append_json_string(cmd, o.coll);
    cmd += ",\"data\":{";
    for (int f = 0; f < o.fields; ++f) {
      if (f) cmd += ',';
      cmd += "\"f";
      rtsync::common::append_int(cmd, f);
      cmd += "\":";
      rtsync::common::append_int(cmd, static_cast<int>(rng() % 4));
    }
    cmd += "}}";
    w.sent_at = now_us();
    w.conn->send_text(cmd);
  };
  for (std::size_t i = 0; i < writers.size(); ++i) {
    auto& w = writers[i];
    w.conn = std::make_shared<Connection>(io, t.endpoint, source_for(static_cast<int>(i)), t.host, c.path);
    w.conn->on_open = [&] { send(w); };
    w.conn->on_line = [&](std::string_view line) {
      // One write is in flight per writer, so any reply is its ack; pushes (hello) carry no id.
      if (!line.starts_with("{\"id\":")) return;
      const bool good = line.find("\"ok\":") != std::string_view::npos;
      if (good) w.created = true;
      if (measuring) {
        (good ? ok : errors)++;
        lat.push_back(static_cast<std::uint32_t>(now_us() - w.sent_at));
      }
      if (!good && errors < 5) std::fprintf(stderr, "error reply: %.*s\n", int(line.size()), line.data());
      send(w);
    };
    w.conn->start();
  }
  io.run_for(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(c.warmup)));
  measuring = true;
  double cpu0 = c.server_pid ? cpu_seconds(c.server_pid) : 0;
  auto began = Clock::now();
  io.run_for(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(c.seconds)));
  measuring = false;
  double elapsed = std::chrono::duration<double>(Clock::now() - began).count();
  double cpu = c.server_pid ? cpu_seconds(c.server_pid) - cpu0 : 0;
  for (auto& w : writers) w.conn->close();

  double rate = static_cast<double>(ok) / elapsed;
  char line[512];
  std::snprintf(line, sizeof line,
                "{\"scenario\":\"tally\",\"label\":\"%s\",\"writers\":%d,\"fields\":%d,\"writes_per_s\":%.0f,"
                "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"server_cpu_s\":%.2f,\"ok\":%llu,\"errors\":%llu}",
                c.label.c_str(), o.writers, o.fields, rate, percentile(lat, 0.5) / 1000, percentile(lat, 0.99) / 1000,
                cpu, static_cast<unsigned long long>(ok), static_cast<unsigned long long>(errors));
  append_json(c, line);
  return errors > 0 ? 1 : 0;
}

// ---- fanout -----------------------------------------------------------------------------------------

int run_fanout(const Common& c, const FanoutOptions& o) {
  asio::io_context io(1);
  auto t = target(c);
  const std::size_t nch = static_cast<std::size_t>(std::max(1, o.channels));
  auto channel = [&](std::size_t i) { return o.prefix + std::to_string(i); };

  struct Sub {
    std::shared_ptr<Connection> conn;
    std::size_t ch;
    std::uint64_t last = 0;  // last sequence number seen
  };
  std::vector<Sub> subs(static_cast<std::size_t>(o.subscribers));
  std::uint64_t subscribed = 0, delivered = 0, measured = 0, dups = 0, gaps = 0, publish_errors = 0;
  bool measuring = false;
  std::vector<std::uint32_t> lat;
  lat.reserve(1 << 22);

  for (std::size_t i = 0; i < subs.size(); ++i) {
    auto& s = subs[i];
    s.ch = i % nch;
    s.conn = std::make_shared<Connection>(io, t.endpoint, source_for(static_cast<int>(i)), t.host, c.path);
    s.conn->on_open = [&] { s.conn->send_text("{\"id\":1,\"op\":\"sub\",\"ch\":\"" + channel(s.ch) + "\"}"); };
    s.conn->on_line = [&](std::string_view line) {
      if (line.starts_with("{\"id\":1,\"ok\"")) {
        ++subscribed;
        return;
      }
      if (!line.starts_with("{\"op\":\"msg\"")) return;
      std::uint64_t seq = 0, sent = 0;
      if (!find_uint(line, "\"s\":", seq) || !find_uint(line, "\"t\":", sent)) return;
      ++delivered;
      if (seq <= s.last) ++dups;
      else if (s.last != 0 && seq != s.last + 1) gaps += seq - s.last - 1;
      s.last = std::max(s.last, seq);
      if (measuring) {
        ++measured;
        lat.push_back(static_cast<std::uint32_t>(now_us() - sent));
      }
    };
    s.conn->start();
    // Connect in waves so the listen backlog never overflows.
    if (i % 500 == 499) io.run_for(std::chrono::milliseconds(5));
  }
  if (!run_until(io, [&] { return subscribed == subs.size(); }, std::chrono::seconds(120))) {
    std::fprintf(stderr, "only %llu of %zu subscribers subscribed\n", static_cast<unsigned long long>(subscribed), subs.size());
    return 1;
  }
  long rss_subscribed = c.server_pid ? rss_kib(c.server_pid) : 0;

  std::vector<std::shared_ptr<Connection>> pubs;
  std::size_t pubs_open = 0;
  for (int i = 0; i < std::max(1, o.publishers); ++i) {
    auto p = std::make_shared<Connection>(io, t.endpoint, asio::ip::make_address_v4("127.0.0.1"), t.host, c.path);
    p->on_open = [&] { ++pubs_open; };
    p->on_line = [&](std::string_view line) {
      if (line.starts_with("{\"id\":") && line.find("\"error\"") != std::string_view::npos && publish_errors++ < 5)
        std::fprintf(stderr, "publish error: %.*s\n", int(line.size()), line.data());
    };
    p->start();
    pubs.push_back(std::move(p));
  }
  run_until(io, [&] { return pubs_open == pubs.size(); }, std::chrono::seconds(10));

  // Open-loop: publications are due at a fixed rate whatever the server does; a tick every millisecond
  // sends those due since the last one.
  std::vector<std::uint64_t> seq(nch, 0);
  std::string padding(static_cast<std::size_t>(std::max(0, o.size - 40)), 'x');
  std::uint64_t published = 0, next_id = 0;
  std::size_t next_ch = 0, next_pub = 0;
  const auto start = Clock::now();
  const double total = c.warmup + c.seconds;
  asio::steady_timer tick(io);
  std::function<void()> on_tick = [&] {
    double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    auto due = static_cast<std::uint64_t>(std::min(elapsed, total) * o.rate);
    for (; published < due; ++published) {
      std::size_t ch = next_ch++ % nch;
      std::string cmd = "{\"id\":";
      rtsync::common::append_int(cmd, ++next_id);
      cmd += ",\"op\":\"pub\",\"ch\":\"" + channel(ch) + "\",\"data\":{\"s\":";
      rtsync::common::append_int(cmd, ++seq[ch]);
      cmd += ",\"t\":";
      rtsync::common::append_int(cmd, now_us());
      cmd += ",\"p\":\"" + padding + "\"}}";
      pubs[next_pub++ % pubs.size()]->send_text(cmd);
    }
    if (elapsed < total) {
      tick.expires_after(std::chrono::milliseconds(1));
      tick.async_wait([&](boost::system::error_code) { on_tick(); });
    }
  };
  on_tick();

  io.run_for(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(c.warmup)));
  measuring = true;
  double cpu0 = c.server_pid ? cpu_seconds(c.server_pid) : 0;
  auto began = Clock::now();
  std::uint64_t last_count = 0;
  for (int sec = 0; sec < static_cast<int>(c.seconds); ++sec) {
    io.run_for(std::chrono::seconds(1));
    std::fprintf(stderr, "  %ds: %llu deliveries/s\n", sec + 1, static_cast<unsigned long long>(measured - last_count));
    last_count = measured;
  }
  double rest = c.seconds - static_cast<int>(c.seconds);
  if (rest > 0) io.run_for(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(rest)));
  measuring = false;
  double elapsed = std::chrono::duration<double>(Clock::now() - began).count();
  double cpu = c.server_pid ? cpu_seconds(c.server_pid) - cpu0 : 0;
  long rss = c.server_pid ? rss_kib(c.server_pid) : 0;

  // Drain: every subscriber should end at its channel's last sequence number.
  auto complete = [&] {
    for (auto& s : subs)
      if (s.last != seq[s.ch]) return false;
    return true;
  };
  run_until(io, complete, std::chrono::seconds(10));
  std::uint64_t lost = gaps;
  for (auto& s : subs) lost += seq[s.ch] - std::min(seq[s.ch], s.last);
  for (auto& s : subs) s.conn->close();
  for (auto& p : pubs) p->close();

  double rate = static_cast<double>(measured) / elapsed;
  char line[768];
  std::snprintf(line, sizeof line,
                "{\"scenario\":\"fanout\",\"label\":\"%s\",\"subscribers\":%d,\"channels\":%zu,\"rate\":%.0f,"
                "\"size\":%d,\"deliveries_per_s\":%.0f,\"server_cpu_s\":%.2f,\"deliveries_per_cpu_s\":%.0f,"
                "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"lost\":%llu,\"duplicates\":%llu,"
                "\"server_rss_kib\":%ld,\"rss_subscribed_kib\":%ld}",
                c.label.c_str(), o.subscribers, nch, o.rate, o.size, rate, cpu, cpu > 0 ? static_cast<double>(measured) / cpu : 0,
                percentile(lat, 0.5) / 1000, percentile(lat, 0.9) / 1000, percentile(lat, 0.99) / 1000,
                percentile(lat, 0.999) / 1000, static_cast<unsigned long long>(lost), static_cast<unsigned long long>(dups),
                rss, rss_subscribed);
  append_json(c, line);
  return (lost > 0 || dups > 0) ? 1 : 0;
}

// ---- idle -------------------------------------------------------------------------------------------

int run_idle(const Common& c, const IdleOptions& o) {
  asio::io_context io(1);
  auto t = target(c);
  long before = c.server_pid ? rss_kib(c.server_pid) : 0;
  std::vector<std::shared_ptr<Connection>> conns;
  std::size_t hello = 0;
  for (int i = 0; i < o.connections; ++i) {
    auto conn = std::make_shared<Connection>(io, t.endpoint, source_for(i), t.host, c.path);
    conn->on_line = [&](std::string_view line) {
      if (line.starts_with("{\"op\":\"hello\"")) ++hello;
    };
    conn->start();
    conns.push_back(std::move(conn));
    if (i % 500 == 499) io.run_for(std::chrono::milliseconds(5));
  }
  bool all = run_until(io, [&] { return hello == conns.size(); }, std::chrono::seconds(120));
  io.run_for(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(c.warmup)));
  long after = c.server_pid ? rss_kib(c.server_pid) : 0;
  for (auto& conn : conns) conn->close();
  char line[256];
  std::snprintf(line, sizeof line,
                "{\"scenario\":\"idle\",\"label\":\"%s\",\"connections\":%zu,\"open\":%zu,\"rss_before_kib\":%ld,"
                "\"rss_after_kib\":%ld,\"bytes_per_connection\":%.0f}",
                c.label.c_str(), conns.size(), hello, before, after,
                hello ? static_cast<double>(after - before) * 1024.0 / static_cast<double>(hello) : 0);
  append_json(c, line);
  return all ? 0 : 1;
}

}  // namespace bench
