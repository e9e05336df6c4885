// Scenarios of rtsync-bench. See scenarios.hpp and main.cpp.
#include "scenarios.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <vector>

#include "common/json_text.hpp"
#include "peers.hpp"
#include "proc_stats.hpp"
#include "ws_client.hpp"

namespace bench {

namespace {

using Clock = std::chrono::steady_clock;

std::uint64_t now_us() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count());
}

Clock::duration secs(double s) { return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)); }

struct Target {
  tcp::endpoint endpoint;
  std::string host;
};

Target target_of(const std::string& server) {
  auto colon = server.rfind(':');
  return Target{tcp::endpoint(asio::ip::make_address(server.substr(0, colon)),
                              static_cast<unsigned short>(std::stoi(server.substr(colon + 1)))),
                server};
}

Target target(const Common& c) { return target_of(c.server); }

// The i-th connection's source address: 127.0.0.2 for the first 20,000, then 127.0.0.3, ... Each address
// has the ~28k ports of ip_local_port_range towards one server port.
asio::ip::address source_for(std::uint64_t i) {
  return asio::ip::make_address_v4("127.0.0." + std::to_string(2 + (i / 20000) % 250));
}

double percentile(std::vector<std::uint32_t>& v, double p) {
  if (v.empty()) return 0;
  auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

// {"scenario":…,"server":…,<tag>,<body>}
void emit(const Common& c, const char* scenario, const std::string& body) {
  std::string line = "{\"scenario\":\"" + (c.scenario.empty() ? std::string(scenario) : c.scenario) + "\",\"server\":\"" +
                     (c.label.empty() ? c.proto : c.label) + "\"";
  if (!c.tag.empty()) line += "," + c.tag;
  line += "," + body + "}";
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  if (c.json.empty()) return;
  std::ofstream(c.json, std::ios::app) << line << '\n';
}

// Runs `io` until `pred` holds or `timeout` passes; false on timeout. Prints progress every second when
// `what` is given.
template <class Pred, class Progress>
bool run_until(asio::io_context& io, Pred pred, Clock::duration timeout, Progress progress) {
  auto deadline = Clock::now() + timeout;
  auto next_report = Clock::now() + std::chrono::seconds(1);
  while (!pred()) {
    if (Clock::now() > deadline) return false;
    io.run_for(std::chrono::milliseconds(10));
    if (Clock::now() > next_report) {
      progress();
      next_report += std::chrono::seconds(1);
    }
  }
  return true;
}

template <class Pred>
bool run_until(asio::io_context& io, Pred pred, Clock::duration timeout) {
  return run_until(io, pred, timeout, [] {});
}

// Open loop: `send` runs `rate` times a second for `seconds`, whatever the server does; a tick every
// millisecond sends those due since the last one. Starts at once; done() after the last.
class OpenLoop {
 public:
  OpenLoop(asio::io_context& io, double rate, double seconds, std::function<void()> send)
      : tick_(io), rate_(rate), seconds_(seconds), send_(std::move(send)) {
    on_tick();
  }
  OpenLoop(const OpenLoop&) = delete;
  OpenLoop& operator=(const OpenLoop&) = delete;
  bool done() const { return done_; }

 private:
  void on_tick() {
    const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    const auto due = static_cast<std::uint64_t>(std::min(elapsed, seconds_) * rate_);
    for (; sent_ < due; ++sent_) send_();
    if (elapsed >= seconds_) {
      done_ = true;
      return;
    }
    tick_.expires_after(std::chrono::milliseconds(1));
    tick_.async_wait([this](boost::system::error_code ec) {
      if (!ec) on_tick();  // not after the destructor cancelled the wait
    });
  }

  asio::steady_timer tick_;
  const Clock::time_point start_ = Clock::now();
  double rate_, seconds_;
  std::function<void()> send_;
  std::uint64_t sent_ = 0;
  bool done_ = false;
};

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
    w.conn = std::make_shared<Connection>(io, t.endpoint, source_for(i), t.host, c.path.empty() ? "/v1/ws" : c.path);
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
                "\"writers\":%d,\"fields\":%d,\"writes_per_s\":%.0f,"
                "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"server_cpu_s\":%.2f,\"ok\":%llu,\"errors\":%llu",
                o.writers, o.fields, rate, percentile(lat, 0.5) / 1000, percentile(lat, 0.99) / 1000,
                cpu, static_cast<unsigned long long>(ok), static_cast<unsigned long long>(errors));
  emit(c, "tally", line);
  return errors > 0 ? 1 : 0;
}


// ---- fanout -----------------------------------------------------------------------------------------

int run_fanout(const Common& c, const FanoutOptions& o) {
  asio::io_context io(1);
  auto t = target(c);
  // Subscribers spread over the nodes of a cluster (--also); publishers use --server.
  std::vector<Target> sub_targets{t};
  for (const auto& s : c.also) sub_targets.push_back(target_of(s));
  Peer peer(c.proto, c.path, c.pubnub_key);
  const std::size_t nch = static_cast<std::size_t>(std::max(1, o.channels));
  std::vector<std::string> names(nch);
  for (std::size_t i = 0; i < nch; ++i) names[i] = o.prefix + std::to_string(i);
  const std::string who = c.label.empty() ? c.proto : c.label;

  struct Sub {
    std::shared_ptr<Connection> conn;
    std::size_t ch = 0;
    std::uint64_t last = 0;  // last sequence number seen
    std::uint64_t gaps = 0;  // sequence numbers skipped
    SubState st;
    bool slow = false, closed = false;
  };
  std::vector<Sub> subs(static_cast<std::size_t>(o.subscribers));
  const std::size_t slow_every = o.slow > 0 ? static_cast<std::size_t>(std::max(1L, std::lround(1 / o.slow))) : 0;
  std::uint64_t subscribed = 0, failed = 0, closed = 0, measured = 0, dups = 0, slow_count = 0;
  bool measuring = false;
  std::vector<std::uint32_t> lat;
  lat.reserve(1 << 22);
  if (o.slow > 0) Connection::quiet = true;

  auto make_sub = [&](std::size_t i) {
    auto& s = subs[i];
    s.ch = i % nch;
    s.slow = slow_every && i % slow_every == slow_every - 1;
    slow_count += s.slow;
    const Target& st = sub_targets[i % sub_targets.size()];
    s.conn = std::make_shared<Connection>(io, st.endpoint, source_for(i), st.host, peer.sub_path(names[s.ch]), peer.sub_framing());
    if (s.slow) s.conn->set_receive_buffer(16384);
    auto on_ack = [&s, &subscribed] {
      ++subscribed;
      if (s.slow) s.conn->set_reading(false);  // a consumer that stopped reading
    };
    s.conn->on_open = [&s, &peer, &names, on_ack] {
      if (peer.sub_open(*s.conn, names[s.ch], s.st)) on_ack();
    };
    s.conn->on_line = [&s, &peer, &names, &dups, &measuring, &measured, &lat, on_ack](std::string_view line) {
      auto ev = peer.sub_line(*s.conn, names[s.ch], s.st, line);
      if (ev == Event::ack) return on_ack();
      if (ev != Event::data) return;
      for_each_payload(line, [&](std::uint64_t seq, std::uint64_t sent) {
        if (seq <= s.last) ++dups;
        else if (seq != s.last + 1) s.gaps += seq - s.last - 1;
        s.last = std::max(s.last, seq);
        if (measuring && !s.slow) {
          ++measured;
          lat.push_back(static_cast<std::uint32_t>(std::min<std::uint64_t>(now_us() - sent, UINT32_MAX)));
        }
      });
    };
    s.conn->on_close = [&s, &closed, &failed] {
      s.closed = true;
      ++closed;
      if (!s.st.acked) ++failed;
    };
    s.conn->on_error = [&failed] { ++failed; };
    s.conn->start();
  };

  // Connect with at most 256 handshakes in flight, so no listen backlog overflows.
  long rss_before = c.server_pid ? rss_kib(c.server_pid) : 0;
  std::size_t started = 0;
  auto progress_sub = [&] {
    std::fprintf(stderr, "  %s: %llu of %zu subscribed\n", who.c_str(), static_cast<unsigned long long>(subscribed), subs.size());
  };
  bool all = run_until(
      io,
      [&] {
        while (started < subs.size() && started - subscribed - failed < 256) make_sub(started++);
        return subscribed + failed == subs.size() && started == subs.size();
      },
      std::chrono::seconds(180), progress_sub);
  if (!all || failed) {
    std::fprintf(stderr, "%s: only %llu of %zu subscribers subscribed (%llu failed)\n", who.c_str(),
                 static_cast<unsigned long long>(subscribed), subs.size(), static_cast<unsigned long long>(failed));
    return 1;
  }
  io.run_for(std::chrono::milliseconds(300));  // let the server settle (subscribe replies, pending writes)
  long rss_subscribed = c.server_pid ? rss_kib(c.server_pid) : 0;

  // Publishers: a pool, or one per channel where the channel is in the URL (nchan).
  const std::size_t npubs = peer.pub_per_channel() ? nch : static_cast<std::size_t>(std::max(1, o.publishers));
  std::vector<std::shared_ptr<Connection>> pubs;
  std::size_t pubs_ready = 0;
  for (std::size_t k = 0; k < npubs; ++k) {
    auto p = std::make_shared<Connection>(io, t.endpoint, asio::ip::make_address_v4("127.0.0.1"), t.host,
                                          peer.pub_path(names[peer.pub_per_channel() ? k : 0]), peer.pub_framing());
    Connection* raw = p.get();
    p->on_open = [raw, &peer, &pubs_ready] { pubs_ready += peer.pub_open(*raw); };
    p->on_line = [raw, &peer, &pubs_ready](std::string_view line) { pubs_ready += peer.pub_line(*raw, line); };
    p->start();
    pubs.push_back(std::move(p));
    if (k % 200 == 199) io.run_for(std::chrono::milliseconds(5));
  }
  if (!run_until(io, [&] { return pubs_ready == pubs.size(); }, std::chrono::seconds(30))) {
    std::fprintf(stderr, "%s: only %zu of %zu publishers ready\n", who.c_str(), pubs_ready, pubs.size());
    return 1;
  }

  std::vector<std::uint64_t> seq(nch, 0);
  const std::string padding(static_cast<std::size_t>(std::max(0, o.size - 40)), 'x');
  std::uint64_t next_id = 0;
  std::size_t next_ch = 0, next_pub = 0;
  const std::uint64_t readers = subs.size() - slow_count;
  auto cumulative_lost = [&] {
    std::uint64_t lost = 0;
    for (auto& s : subs)
      if (!s.slow) lost += s.gaps + seq[s.ch] - std::min(seq[s.ch], s.last);
    return lost;
  };
  auto complete = [&] {
    for (auto& s : subs)
      if (!s.slow && !s.closed && s.last != seq[s.ch]) return false;
    return true;
  };

  std::vector<std::string> lines;
  std::uint64_t lost_before = 0, dups_before = 0, closed_before = 0;
  std::string cmd, payload;
  for (double rate : o.rates) {
    OpenLoop publishing(io, rate, c.warmup + c.seconds, [&] {
      std::size_t ch = next_ch++ % nch;
      payload = "{\"s\":";
      rtsync::common::append_int(payload, ++seq[ch]);
      payload += ",\"t\":";
      rtsync::common::append_int(payload, now_us());
      payload += ",\"p\":\"";
      payload += padding;
      payload += "\"}";
      cmd.clear();
      peer.append_pub(cmd, names[ch], payload, ++next_id);
      pubs[peer.pub_per_channel() ? ch : next_pub++ % pubs.size()]->send_text(cmd);
    });

    io.run_for(secs(c.warmup));
    lat.clear();
    measured = 0;
    measuring = true;
    const double cpu0 = c.server_pid ? cpu_seconds(c.server_pid) : 0;
    const double gen0 = self_cpu_seconds();
    const auto began = Clock::now();
    const double offered = rate * static_cast<double>(readers) / static_cast<double>(nch);
    std::uint64_t last_count = 0;
    for (int sec = 0; sec < static_cast<int>(c.seconds); ++sec) {
      io.run_for(std::chrono::seconds(1));
      std::fprintf(stderr, "  %s %.0f pub/s: %ds: %llu deliveries/s of %.0f offered\n", who.c_str(), rate, sec + 1,
                   static_cast<unsigned long long>(measured - last_count), offered);
      last_count = measured;
    }
    const double rest = c.seconds - static_cast<int>(c.seconds);
    if (rest > 0) io.run_for(secs(rest));
    measuring = false;
    const double elapsed = std::chrono::duration<double>(Clock::now() - began).count();
    const double cpu = c.server_pid ? cpu_seconds(c.server_pid) - cpu0 : 0;
    const double gen = self_cpu_seconds() - gen0;
    const long rss = c.server_pid ? rss_kib(c.server_pid) : 0;
    run_until(io, [&] { return publishing.done(); }, std::chrono::seconds(5));
    const bool drained = run_until(io, complete, secs(o.drain));
    const std::uint64_t lost_now = cumulative_lost();
    const std::uint64_t lost = lost_now - lost_before, step_dups = dups - dups_before, step_closed = closed - closed_before;
    lost_before = lost_now;
    dups_before = dups;
    closed_before = closed;
    const double rate_out = static_cast<double>(measured) / elapsed;
    const bool saturated = rate_out < 0.95 * offered || lost > 0 || !drained;

    char line[1536];
    std::snprintf(
        line, sizeof line,
        "\"subscribers\":%d,\"channels\":%zu,\"rate\":%.0f,\"size\":%d,\"slow\":%llu,\"offered_per_s\":%.0f,"
        "\"deliveries_per_s\":%.0f,\"server_cpu_s\":%.3f,\"server_cpu_util\":%.3f,\"deliveries_per_cpu_s\":%.0f,"
        "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"lost\":%llu,\"duplicates\":%llu,"
        "\"closed\":%llu,\"drained\":%s,\"saturated\":%s,\"server_rss_kib\":%ld,\"rss_before_kib\":%ld,"
        "\"rss_subscribed_kib\":%ld,\"rss_per_sub_bytes\":%.0f,\"gen_cpu_util\":%.3f",
        o.subscribers, nch, rate, o.size, static_cast<unsigned long long>(slow_count), offered, rate_out, cpu,
        cpu / elapsed, cpu > 0 ? static_cast<double>(measured) / cpu : 0, percentile(lat, 0.5) / 1000,
        percentile(lat, 0.9) / 1000, percentile(lat, 0.99) / 1000, percentile(lat, 0.999) / 1000,
        static_cast<unsigned long long>(lost), static_cast<unsigned long long>(step_dups),
        static_cast<unsigned long long>(step_closed), drained ? "true" : "false", saturated ? "true" : "false", rss,
        rss_before, rss_subscribed,
        subs.empty() ? 0.0 : static_cast<double>(rss_subscribed - rss_before) * 1024.0 / static_cast<double>(subs.size()),
        gen / elapsed);
    lines.emplace_back(line);
    std::fprintf(stderr, "  %s %.0f pub/s: %.0f deliveries/s, %.0f per server CPU-s, p99 %.2f ms, lost %llu%s\n",
                 who.c_str(), rate, rate_out, cpu > 0 ? static_cast<double>(measured) / cpu : 0,
                 percentile(lat, 0.99) / 1000, static_cast<unsigned long long>(lost), saturated ? " (saturated)" : "");
    if (saturated && o.until_saturated) break;
  }

  // Consumers that stopped reading: read again and see which ones the server had cut off.
  std::string slow_json;
  if (slow_count) {
    const std::uint64_t closed_readers = closed;
    for (auto& s : subs)
      if (s.slow) s.conn->set_reading(true);
    auto settled = [&] {
      for (auto& s : subs)
        if (s.slow && !s.closed && s.last != seq[s.ch]) return false;
      return true;
    };
    run_until(io, settled, std::chrono::seconds(10));
    std::uint64_t slow_closed = 0, slow_lost = 0;
    for (auto& s : subs)
      if (s.slow) {
        slow_closed += s.closed;
        slow_lost += s.gaps + seq[s.ch] - std::min(seq[s.ch], s.last);
      }
    slow_json = ",\"slow_closed\":" + std::to_string(slow_closed) + ",\"slow_lost\":" + std::to_string(slow_lost) +
                ",\"readers_closed\":" + std::to_string(closed_readers);
  }
  for (std::size_t i = 0; i < lines.size(); ++i) emit(c, "fanout", lines[i] + (i + 1 == lines.size() ? slow_json : ""));
  for (auto& s : subs) s.conn->close();
  for (auto& p : pubs) p->close();
  io.run_for(std::chrono::milliseconds(50));
  return 0;
}

// ---- idle -------------------------------------------------------------------------------------------

int run_idle(const Common& c, const IdleOptions& o) {
  asio::io_context io(1);
  auto t = target(c);
  Peer peer(c.proto, c.path, c.pubnub_key);
  const std::string who = c.label.empty() ? c.proto : c.label;
  if (!peer.supports_idle()) return 0;
  const long before = c.server_pid ? rss_kib(c.server_pid) : 0;
  std::vector<std::shared_ptr<Connection>> conns;
  std::vector<char> ready_flag;
  std::size_t ready = 0, failed = 0, lost = 0;
  auto make = [&](std::size_t i) {
    auto conn = std::make_shared<Connection>(io, t.endpoint, source_for(i), t.host, peer.sub_path("idle"), peer.sub_framing());
    Connection* raw = conn.get();
    auto mark = [&, i] {
      if (!ready_flag[i]) {
        ready_flag[i] = 1;
        ++ready;
      }
    };
    conn->on_open = [raw, &peer, mark] {
      if (peer.idle_open(*raw)) mark();
    };
    conn->on_line = [raw, &peer, mark](std::string_view line) {
      if (peer.idle_line(*raw, line)) mark();
    };
    conn->on_error = [&failed] { ++failed; };
    conn->on_close = [&lost] { ++lost; };
    conn->start();
    conns.push_back(std::move(conn));
  };
  int rc = 0;
  for (int target_count : o.connections) {
    const auto n = static_cast<std::size_t>(target_count);
    ready_flag.resize(std::max(ready_flag.size(), n), 0);
    bool all = run_until(
        io,
        [&] {
          while (conns.size() < n && conns.size() - ready - failed < 256) make(conns.size());
          return ready + failed >= n && conns.size() >= n;
        },
        std::chrono::seconds(180),
        [&] { std::fprintf(stderr, "  %s: %zu of %zu connections open\n", who.c_str(), ready, n); });
    io.run_for(secs(c.warmup));  // let the server settle (buffers shrink after the handshakes)
    const long after = c.server_pid ? rss_kib(c.server_pid) : 0;
    const std::size_t open_now = ready - std::min(ready, lost);
    char line[512];
    std::snprintf(line, sizeof line,
                  "\"connections\":%zu,\"open\":%zu,\"failed\":%zu,\"rss_before_kib\":%ld,\"rss_after_kib\":%ld,"
                  "\"bytes_per_connection\":%.0f",
                  n, open_now, failed, before, after,
                  open_now ? static_cast<double>(after - before) * 1024.0 / static_cast<double>(open_now) : 0);
    emit(c, "idle", line);
    if (!all || failed) {
      std::fprintf(stderr, "%s: %zu of %zu connections open, %zu failed\n", who.c_str(), ready, n, failed);
      rc = 1;
      break;
    }
  }
  for (auto& conn : conns) conn->close();
  io.run_for(std::chrono::milliseconds(50));
  return rc;
}

// ---- churn ------------------------------------------------------------------------------------------

int run_churn(const Common& c, const ChurnOptions& o) {
  asio::io_context io(1);
  auto t = target(c);
  Peer peer(c.proto, c.path, c.pubnub_key);
  const std::string who = c.label.empty() ? c.proto : c.label;
  Connection::quiet = true;
  std::uint64_t cycles = 0, errors = 0, started = 0;
  bool measuring = false;
  std::uint64_t measured = 0;
  const std::string ch = o.prefix + "0";

  struct Slot {
    std::shared_ptr<Connection> conn;
    SubState st;
  };
  std::vector<Slot> slots(static_cast<std::size_t>(std::max(1, o.concurrency)));
  bool running = true;
  std::function<void(Slot&)> launch = [&](Slot& slot) {
    if (!running) return;
    // Each cycle from the next of 250 source addresses (127.0.1.x): the closed connections' TIME_WAIT
    // ports stay spread.
    auto source = asio::ip::make_address_v4("127.0.1." + std::to_string(1 + started++ % 250));
    slot.st = SubState{};
    slot.conn = std::make_shared<Connection>(io, t.endpoint, source, t.host, peer.sub_path(ch), peer.sub_framing());
    Slot* s = &slot;
    auto done = [s, &cycles, &measuring, &measured, &launch, &io] {
      ++cycles;
      measured += measuring;
      s->conn->close();
      asio::post(io, [s, &launch] { launch(*s); });
    };
    auto again = [s, &errors, &launch, &io] {
      ++errors;
      asio::post(io, [s, &launch] { launch(*s); });
    };
    slot.conn->on_open = [s, &peer, &ch, done] {
      if (peer.sub_open(*s->conn, ch, s->st)) done();
    };
    slot.conn->on_line = [s, &peer, &ch, done](std::string_view line) {
      if (peer.sub_line(*s->conn, ch, s->st, line) == Event::ack) done();
    };
    slot.conn->on_close = again;
    slot.conn->on_error = again;
    slot.conn->start();
  };
  const long rss_before = c.server_pid ? rss_kib(c.server_pid) : 0;
  for (auto& s : slots) launch(s);
  io.run_for(secs(c.warmup));
  measuring = true;
  const double cpu0 = c.server_pid ? cpu_seconds(c.server_pid) : 0;
  const auto began = Clock::now();
  std::uint64_t last = 0;
  for (int sec = 0; sec < static_cast<int>(c.seconds); ++sec) {
    io.run_for(std::chrono::seconds(1));
    std::fprintf(stderr, "  %s churn: %ds: %llu connect-subscribe-close cycles/s, %llu errors\n", who.c_str(), sec + 1,
                 static_cast<unsigned long long>(measured - last), static_cast<unsigned long long>(errors));
    last = measured;
  }
  measuring = false;
  const double elapsed = std::chrono::duration<double>(Clock::now() - began).count();
  const double cpu = c.server_pid ? cpu_seconds(c.server_pid) - cpu0 : 0;
  running = false;
  for (auto& s : slots)
    if (s.conn) s.conn->close();
  io.run_for(std::chrono::seconds(1));
  const long rss_after = c.server_pid ? rss_kib(c.server_pid) : 0;
  char line[512];
  std::snprintf(line, sizeof line,
                "\"concurrency\":%d,\"cycles_per_s\":%.0f,\"server_cpu_s\":%.3f,\"cpu_us_per_cycle\":%.1f,\"errors\":%llu,"
                "\"cycles\":%llu,\"rss_before_kib\":%ld,\"rss_after_kib\":%ld",
                o.concurrency, static_cast<double>(measured) / elapsed, cpu,
                measured ? cpu * 1e6 / static_cast<double>(measured) : 0, static_cast<unsigned long long>(errors),
                static_cast<unsigned long long>(cycles), rss_before, rss_after);
  emit(c, "churn", line);
  return 0;
}

// ---- queries ----------------------------------------------------------------------------------------

namespace {

constexpr int kStatuses = 8;
constexpr std::int64_t kRange = 1000000;  // n of a document: 0 .. kRange-1

// Document i's id, "d0000042".
void append_doc_id(std::string& out, std::uint64_t i) {
  char b[24];
  std::snprintf(b, sizeof b, "d%07llu", static_cast<unsigned long long>(i));
  out += b;
}

std::size_t count_of(std::string_view s, std::string_view what) {
  std::size_t n = 0;
  for (auto p = s.find(what); p != std::string_view::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

// The `next` cursor of a list reply (base64url, so no escapes); empty when it is null or absent.
std::string next_of(std::string_view reply) {
  auto p = reply.rfind("\"next\":\"");
  if (p == std::string_view::npos) return {};
  p += 8;
  return std::string(reply.substr(p, reply.find('"', p) - p));
}

// One connection with one command in flight: call() sends it and hands the reply (the next line carrying
// an id) and its latency in microseconds to `done`, which may call again.
struct Caller {
  using Done = std::function<void(std::string_view, std::uint64_t)>;
  std::shared_ptr<Connection> conn;
  Done done;
  std::uint64_t sent_at = 0, id = 0;
  bool ready = false;

  Caller(asio::io_context& io, const Target& t) {
    conn = std::make_shared<Connection>(io, t.endpoint, asio::ip::make_address_v4("127.0.0.1"), t.host, "/v1/ws");
    conn->on_open = [this] { ready = true; };
    conn->on_line = [this](std::string_view line) {
      if (!line.starts_with("{\"id\":") || !done) return;
      auto d = std::move(done);
      done = nullptr;
      d(line, now_us() - sent_at);
    };
    conn->start();
  }
  // `body` is the command after its id: ",\"op\":…}".
  void call(std::string_view body, Done d) {
    std::string cmd = "{\"id\":";
    rtsync::common::append_int(cmd, ++id);
    cmd += body;
    done = std::move(d);
    sent_at = now_us();
    conn->send_text(cmd);
  }
};

double mib(long kib) { return static_cast<double>(kib) / 1024.0; }

}  // namespace

int run_queries(const Common& c, const QueriesOptions& o) {
  asio::io_context io(1);
  // Between phases no connection may be open: without work io would stop, and every run_for() after return at once.
  auto keep = asio::make_work_guard(io);
  auto t = target(c);
  const std::uint64_t docs = static_cast<std::uint64_t>(std::max(1L, o.docs));
  std::minstd_rand rng(1313);
  std::string coll_json;
  rtsync::common::append_json_string(coll_json, o.coll);
  const int pid = c.server_pid;
  if (!pid) std::fprintf(stderr, "queries: no --server-pid: server CPU and RSS are not measured\n");
  auto rss = [pid] { return pid ? rss_kib(pid) : -1L; };
  auto cpu = [pid] { return pid ? cpu_seconds(pid) : 0.0; };
  std::uint64_t errors = 0;
  auto error_reply = [&errors](const char* what, std::string_view line) {
    if (++errors <= 5) std::fprintf(stderr, "queries: %s: error reply: %.*s\n", what, int(std::min<std::size_t>(line.size(), 300)), line.data());
  };

  // What the generator wrote, so it knows which views each patch concerns.
  std::vector<std::uint8_t> status(docs);
  std::vector<std::int32_t> nval(docs);
  std::vector<std::uint64_t> sent_t(docs, 0);  // send time of the last patch of each document

  const long rss_before = rss();

  // 1. Loading: pipelined creates from a few connections.
  struct Loader {
    std::shared_ptr<Connection> conn;
    int in_flight = 0;
  };
  std::vector<Loader> loaders(static_cast<std::size_t>(std::max(1, o.loaders)));
  std::uint64_t next_doc = 0, loaded = 0;
  std::string cmd;
  auto fill = [&](Loader& l) {
    while (l.in_flight < o.pipeline && next_doc < docs) {
      const std::uint64_t i = next_doc++;
      status[i] = static_cast<std::uint8_t>(rng() % kStatuses);
      nval[i] = static_cast<std::int32_t>(rng() % kRange);
      cmd = "{\"id\":";
      rtsync::common::append_int(cmd, i);
      cmd += ",\"op\":\"create\",\"coll\":" + coll_json + ",\"data\":{\"id\":\"";
      append_doc_id(cmd, i);
      cmd += "\",\"status\":\"s";
      rtsync::common::append_int(cmd, status[i]);
      cmd += "\",\"n\":";
      rtsync::common::append_int(cmd, nval[i]);
      cmd += ",\"title\":\"document ";
      rtsync::common::append_int(cmd, i);
      cmd += "\"}}";
      l.conn->send_text(cmd);
      ++l.in_flight;
    }
  };
  const double load_cpu0 = cpu();
  const auto load_began = Clock::now();
  for (auto& l : loaders) {
    l.conn = std::make_shared<Connection>(io, t.endpoint, asio::ip::make_address_v4("127.0.0.1"), t.host, "/v1/ws");
    l.conn->on_open = [&] { fill(l); };
    l.conn->on_line = [&](std::string_view line) {
      if (!line.starts_with("{\"id\":")) return;
      --l.in_flight;
      if (line.find("\"ok\":") != std::string_view::npos) ++loaded;
      else error_reply("create", line);
      fill(l);
    };
    l.conn->start();
  }
  std::uint64_t last_loaded = 0;
  const bool load_done = run_until(
      io, [&] { return loaded + errors >= docs; }, std::chrono::hours(1), [&] {
        std::fprintf(stderr, "  load: %llu of %llu (%llu/s)\n", static_cast<unsigned long long>(loaded),
                     static_cast<unsigned long long>(docs), static_cast<unsigned long long>(loaded - last_loaded));
        last_loaded = loaded;
      });
  const double load_s = std::chrono::duration<double>(Clock::now() - load_began).count();
  const double load_cpu = cpu() - load_cpu0;
  for (auto& l : loaders) l.conn->close();
  if (!load_done || errors) {
    std::fprintf(stderr, "queries: load failed: %llu of %llu created, %llu errors\n", static_cast<unsigned long long>(loaded),
                 static_cast<unsigned long long>(docs), static_cast<unsigned long long>(errors));
    return 1;
  }
  const double settle_cpu0 = cpu();
  io.run_for(std::chrono::seconds(1));  // let the server settle (the last commit's publications)
  const double settle_cpu = cpu() - settle_cpu0;  // what the server still does once every create is acknowledged
  const long rss_loaded = rss();
  std::fprintf(stderr, "queries: load: %llu documents in %.1f s: %.0f documents/s (%zu connections x %d creates in flight), server CPU %.1f s (%.2f s in the second after)\n",
               static_cast<unsigned long long>(docs), load_s, static_cast<double>(docs) / load_s, loaders.size(),
               o.pipeline, load_cpu, settle_cpu);

  // 2. First pages of an indexed query, one at a time, after a few unmeasured ones.
  Caller caller(io, t);
  if (!run_until(io, [&] { return caller.ready; }, std::chrono::seconds(10))) return 1;
  const int warm = std::min(100, o.queries / 10);
  std::vector<std::uint32_t> qlat;
  int queried = 0, until = warm;
  std::uint64_t short_pages = 0;
  std::function<void()> query = [&] {
    if (queried == until) return;
    const int x = static_cast<int>(rng() % kStatuses);
    std::string body = ",\"op\":\"list\",\"coll\":" + coll_json + ",\"where\":{\"status\":\"s";
    rtsync::common::append_int(body, x);
    body += "\"},\"order\":[\"-n\"],\"limit\":50}";
    caller.call(body, [&, x](std::string_view line, std::uint64_t us) {
      if (queried++ >= warm) qlat.push_back(static_cast<std::uint32_t>(us));
      if (line.find("\"ok\":") == std::string_view::npos) error_reply("list", line);
      else if (count_of(line, "\"status\":\"s" + std::to_string(x) + "\"") != 50) ++short_pages;
      query();
    });
  };
  query();
  if (!run_until(io, [&] { return queried == until; }, std::chrono::minutes(10))) return 1;
  until = warm + o.queries;
  const double query_cpu0 = cpu();
  const auto query_began = Clock::now();
  query();
  if (!run_until(io, [&] { return queried == until; }, std::chrono::minutes(10))) return 1;
  const double query_s = std::chrono::duration<double>(Clock::now() - query_began).count();
  const double query_cpu_us = (cpu() - query_cpu0) * 1e6 / std::max(1, o.queries);
  const double q50 = percentile(qlat, 0.5) / 1000, q99 = percentile(qlat, 0.99) / 1000,
               qmax = qlat.empty() ? 0 : *std::max_element(qlat.begin(), qlat.end()) / 1000.0;
  std::fprintf(stderr, "queries: first page of {status: X} order -n limit 50 (index [status, -n]): p50 %.3f ms, p99 %.3f ms, max %.3f ms over %d queries (%d before unmeasured), %.0f queries/s, server CPU %.0f us per query%s\n",
               q50, q99, qmax, o.queries, warm, o.queries / query_s, query_cpu_us, short_pages ? " SOME PAGES NOT 50 MATCHING DOCUMENTS" : "");

  // 3. Paging through the collection in id order (the default), following next.
  std::uint64_t paged = 0, pages = 0;
  bool paging_done = false;
  std::string cursor;
  std::function<void()> page = [&] {
    std::string body = ",\"op\":\"list\",\"coll\":" + coll_json + ",\"limit\":";
    rtsync::common::append_int(body, o.page_limit);
    if (!cursor.empty()) body += ",\"after\":\"" + cursor + "\"";
    body += "}";
    caller.call(body, [&](std::string_view line, std::uint64_t) {
      ++pages;
      if (line.find("\"ok\":") == std::string_view::npos) {
        error_reply("list page", line);
        paging_done = true;
        return;
      }
      paged += count_of(line, "\"_v\":");
      cursor = next_of(line);
      if (cursor.empty() || paged >= static_cast<std::uint64_t>(o.page_docs)) paging_done = true;
      else page();
    });
  };
  const auto page_began = Clock::now();
  const double page_cpu0 = cpu();
  page();
  if (!run_until(io, [&] { return paging_done; }, std::chrono::minutes(10))) return 1;
  const double page_s = std::chrono::duration<double>(Clock::now() - page_began).count();
  const double page_cpu = cpu() - page_cpu0;
  io.run_for(std::chrono::milliseconds(500));
  const long rss_paged = rss();
  std::fprintf(stderr, "queries: paging: %llu documents in %llu pages of up to %d in %.2f s: %.0f documents/s, server CPU %.2f s\n",
               static_cast<unsigned long long>(paged), static_cast<unsigned long long>(pages), o.page_limit, page_s,
               static_cast<double>(paged) / page_s, page_cpu);

  // 4. Live filtered views under patches: first the patches alone (the baseline), then with the views.
  const int nsubs = std::max(0, o.subscribers);
  const int per_status = (nsubs + kStatuses - 1) / kStatuses;
  std::vector<std::vector<std::int64_t>> bounds(kStatuses);  // per status, the views' K ascending
  for (int i = 0; i < nsubs; ++i) bounds[static_cast<std::size_t>(i % kStatuses)].push_back((i / kStatuses) * kRange / std::max(1, per_status));
  auto views_matching = [&](int s, std::int64_t n) {  // views {status: s, n: {gte: K}} that hold for (s, n)
    const auto& b = bounds[static_cast<std::size_t>(s)];
    return static_cast<std::uint64_t>(std::upper_bound(b.begin(), b.end(), n) - b.begin());
  };

  struct Writer {
    std::shared_ptr<Connection> conn;
    std::vector<std::uint64_t> sent;  // send times of the unacknowledged patches, oldest first
    std::size_t head = 0;
  };
  std::vector<Writer> writers(static_cast<std::size_t>(std::max(1, o.writers)));
  std::size_t writers_ready = 0;
  std::uint64_t acked = 0, expected = 0, delivered = 0;
  bool measuring = false;
  std::vector<std::uint32_t> ack_lat, dlat;
  std::uint64_t measured_acks = 0, measured_deliveries = 0, leaves = 0, upserts = 0;
  for (auto& w : writers) {
    w.conn = std::make_shared<Connection>(io, t.endpoint, asio::ip::make_address_v4("127.0.0.1"), t.host, "/v1/ws");
    w.conn->on_open = [&] { ++writers_ready; };
    w.conn->on_line = [&](std::string_view line) {
      if (!line.starts_with("{\"id\":") || w.head == w.sent.size()) return;
      const std::uint64_t at = w.sent[w.head++];
      if (w.head == w.sent.size()) w.sent.clear(), w.head = 0;
      ++acked;
      if (line.find("\"ok\":") == std::string_view::npos) error_reply("patch", line);
      if (measuring) {
        ++measured_acks;
        ack_lat.push_back(static_cast<std::uint32_t>(now_us() - at));
      }
    };
    w.conn->start();
  }
  if (!run_until(io, [&] { return writers_ready == writers.size(); }, std::chrono::seconds(10))) return 1;

  std::uint64_t patches = 0;
  // One patch of a random document. A document's patches all go through one writer, so they commit in the
  // order sent and `status`/`nval` stay what the server holds.
  auto patch = [&] {
    const std::uint64_t d = rng() % docs;
    const int s0 = status[d], s1 = static_cast<int>(rng() % kStatuses);
    const std::int64_t n0 = nval[d], n1 = static_cast<std::int64_t>(rng() % kRange);
    const std::uint64_t a = views_matching(s0, n0), b = views_matching(s1, n1);
    expected += s0 == s1 ? std::max(a, b) : a + b;
    status[d] = static_cast<std::uint8_t>(s1);
    nval[d] = static_cast<std::int32_t>(n1);
    auto& w = writers[d % writers.size()];
    cmd = "{\"id\":";
    rtsync::common::append_int(cmd, ++patches);
    cmd += ",\"op\":\"patch\",\"coll\":" + coll_json + ",\"doc\":\"";
    append_doc_id(cmd, d);
    cmd += "\",\"data\":{\"status\":\"s";
    rtsync::common::append_int(cmd, s1);
    cmd += "\",\"n\":";
    rtsync::common::append_int(cmd, n1);
    cmd += ",\"t\":";
    const std::uint64_t now = now_us();
    rtsync::common::append_int(cmd, now);
    cmd += "}}";
    sent_t[d] = now;
    w.sent.push_back(now);
    w.conn->send_text(cmd);
  };
  struct Window {
    double seconds = 0, cpu = 0;
    std::uint64_t acks = 0, deliveries = 0;
    double ack_p50 = 0, ack_p99 = 0, d_p50 = 0, d_p99 = 0, d_max = 0;
  };
  auto patch_for = [&](const char* what) {
    OpenLoop sending(io, o.rate, c.warmup + c.seconds, patch);
    io.run_for(secs(c.warmup));
    ack_lat.clear();
    dlat.clear();
    measured_acks = measured_deliveries = 0;
    measuring = true;
    const double cpu0 = cpu();
    const auto began = Clock::now();
    std::uint64_t last_acks = 0, last_deliveries = 0;
    for (int sec = 0; sec < static_cast<int>(c.seconds); ++sec) {
      io.run_for(std::chrono::seconds(1));
      std::fprintf(stderr, "  %s: %ds: %llu patches acknowledged/s, %llu deliveries/s\n", what, sec + 1,
                   static_cast<unsigned long long>(measured_acks - last_acks),
                   static_cast<unsigned long long>(measured_deliveries - last_deliveries));
      last_acks = measured_acks;
      last_deliveries = measured_deliveries;
    }
    if (const double rest = c.seconds - static_cast<int>(c.seconds); rest > 0) io.run_for(secs(rest));
    measuring = false;
    Window w;
    w.seconds = std::chrono::duration<double>(Clock::now() - began).count();
    w.cpu = cpu() - cpu0;
    w.acks = measured_acks;
    w.deliveries = measured_deliveries;
    w.ack_p50 = percentile(ack_lat, 0.5) / 1000;
    w.ack_p99 = percentile(ack_lat, 0.99) / 1000;
    w.d_p50 = percentile(dlat, 0.5) / 1000;
    w.d_p99 = percentile(dlat, 0.99) / 1000;
    w.d_max = dlat.empty() ? 0 : *std::max_element(dlat.begin(), dlat.end()) / 1000.0;
    run_until(io, [&] { return sending.done(); }, std::chrono::seconds(5));
    return w;
  };

  const Window base = patch_for("patches alone");
  run_until(io, [&] { return acked == patches; }, std::chrono::seconds(10));
  std::fprintf(stderr, "queries: patches alone: %.0f/s acknowledged, ack p50 %.3f ms, p99 %.3f ms, server CPU %.1f us per patch\n",
               static_cast<double>(base.acks) / base.seconds, base.ack_p50, base.ack_p99,
               base.acks ? base.cpu * 1e6 / static_cast<double>(base.acks) : 0);

  // The views: one subscription per connection (a connection subscribes to a channel once).
  struct Sub {
    std::shared_ptr<Connection> conn;
    bool acked = false;
  };
  std::vector<Sub> subs(static_cast<std::size_t>(nsubs));
  std::uint64_t subscribed = 0, sub_failed = 0, views_closed = 0;
  const std::string ch = "coll:" + o.coll;
  auto make_sub = [&](std::size_t i) {
    auto& s = subs[i];
    s.conn = std::make_shared<Connection>(io, t.endpoint, source_for(i), t.host, "/v1/ws");
    const int st = static_cast<int>(i % kStatuses);
    const std::int64_t k = bounds[static_cast<std::size_t>(st)][i / kStatuses];
    std::string sub = "{\"id\":1,\"op\":\"sub\",\"ch\":";
    rtsync::common::append_json_string(sub, ch);
    sub += ",\"where\":{\"status\":\"s";
    rtsync::common::append_int(sub, st);
    sub += "\",\"n\":{\"gte\":";
    rtsync::common::append_int(sub, k);
    sub += "}}}";
    s.conn->on_open = [&s, sub] { s.conn->send_text(sub); };
    s.conn->on_line = [&, d = docs](std::string_view line) {
      if (line.starts_with("{\"id\":")) {
        if (line.find("\"ok\":") != std::string_view::npos) {
          s.acked = true;
          ++subscribed;
        } else {
          ++sub_failed;
          error_reply("sub", line);
        }
        return;
      }
      if (!line.starts_with("{\"op\":\"msg\"")) return;
      ++delivered;
      const bool leave = line.find("\"type\":\"leave\"") != std::string_view::npos;
      (leave ? leaves : upserts)++;
      if (!measuring) return;
      ++measured_deliveries;
      std::uint64_t sent = 0, idx = 0;
      if (leave) {
        if (find_uint(line, "\"id\":\"d", idx) && idx < d) sent = sent_t[idx];
      } else {
        find_uint(line, "\"t\":", sent);
      }
      const std::uint64_t now = now_us();
      if (sent) dlat.push_back(static_cast<std::uint32_t>(std::min<std::uint64_t>(now > sent ? now - sent : 0, UINT32_MAX)));
    };
    s.conn->on_error = [&] { ++sub_failed; };
    s.conn->on_close = [&] { ++views_closed; };
    s.conn->start();
  };
  std::size_t started = 0;
  const bool all_subscribed = run_until(
      io,
      [&] {
        while (started < subs.size() && started - subscribed - sub_failed < 256) make_sub(started++);
        return subscribed + sub_failed == subs.size() && started == subs.size();
      },
      std::chrono::seconds(120));
  if (!all_subscribed || sub_failed) {
    std::fprintf(stderr, "queries: %llu of %d views subscribed (%llu failed)\n", static_cast<unsigned long long>(subscribed),
                 nsubs, static_cast<unsigned long long>(sub_failed));
    return 1;
  }
  io.run_for(std::chrono::milliseconds(300));
  const long rss_subscribed = rss();
  const std::uint64_t expected0 = expected;  // every view's deliveries count from here
  delivered = 0;
  const Window live = patch_for("with views");
  const bool drained = run_until(io, [&] { return acked == patches && delivered >= expected - expected0; }, std::chrono::seconds(10));
  const std::uint64_t want = expected - expected0;
  const long rss_live = rss();
  const double cpu_per_write = live.acks ? live.cpu * 1e6 / static_cast<double>(live.acks) : 0;
  std::fprintf(stderr, "queries: %d views under %.0f patches/s: %.0f patches/s acknowledged (ack p99 %.3f ms), %.0f deliveries/s, delivery p50 %.3f ms, p99 %.3f ms, max %.3f ms, server CPU %.1f us per patch (%.1f alone); %llu of %llu expected deliveries received%s\n",
               nsubs, o.rate, static_cast<double>(live.acks) / live.seconds, live.ack_p99,
               static_cast<double>(live.deliveries) / live.seconds, live.d_p50, live.d_p99, live.d_max, cpu_per_write,
               base.acks ? base.cpu * 1e6 / static_cast<double>(base.acks) : 0, static_cast<unsigned long long>(delivered),
               static_cast<unsigned long long>(want), drained ? "" : " (NOT DRAINED)");
  if (views_closed) std::fprintf(stderr, "queries: %llu views closed by the server\n", static_cast<unsigned long long>(views_closed));
  std::fprintf(stderr, "queries: server RSS: %.1f MiB before loading, %.1f MiB loaded, %.1f MiB after paging, %.1f MiB with the views, %.1f MiB after their patches\n",
               mib(rss_before), mib(rss_loaded), mib(rss_paged), mib(rss_subscribed), mib(rss_live));

  for (auto& s : subs) s.conn->close();
  for (auto& w : writers) w.conn->close();
  caller.conn->close();
  io.run_for(std::chrono::milliseconds(50));

  char line[2048];
  std::snprintf(
      line, sizeof line,
      "\"docs\":%llu,\"load_s\":%.2f,\"load_docs_per_s\":%.0f,\"load_server_cpu_s\":%.2f,\"settle_server_cpu_s\":%.2f,\"loaders\":%zu,\"pipeline\":%d,"
      "\"queries\":%d,\"query_p50_ms\":%.3f,\"query_p99_ms\":%.3f,\"query_max_ms\":%.3f,\"queries_per_s\":%.0f,\"query_cpu_us\":%.0f,\"short_pages\":%llu,"
      "\"paged_docs\":%llu,\"pages\":%llu,\"page_limit\":%d,\"paging_docs_per_s\":%.0f,\"paging_server_cpu_s\":%.2f,"
      "\"rss_before_kib\":%ld,\"rss_loaded_kib\":%ld,\"rss_paged_kib\":%ld,\"rss_subscribed_kib\":%ld,\"rss_live_kib\":%ld,"
      "\"rate\":%.0f,\"base_writes_per_s\":%.0f,\"base_cpu_us_per_write\":%.1f,\"base_ack_p99_ms\":%.3f,"
      "\"subscribers\":%d,\"writes_per_s\":%.0f,\"cpu_us_per_write\":%.1f,\"ack_p99_ms\":%.3f,\"deliveries_per_s\":%.0f,"
      "\"delivery_p50_ms\":%.3f,\"delivery_p99_ms\":%.3f,\"delivery_max_ms\":%.3f,\"upserts\":%llu,\"leaves\":%llu,"
      "\"expected_deliveries\":%llu,\"received_deliveries\":%llu,\"views_closed\":%llu,\"errors\":%llu",
      static_cast<unsigned long long>(docs), load_s, static_cast<double>(docs) / load_s, load_cpu, settle_cpu, loaders.size(), o.pipeline,
      o.queries, q50, q99, qmax, o.queries / query_s, query_cpu_us, static_cast<unsigned long long>(short_pages), static_cast<unsigned long long>(paged),
      static_cast<unsigned long long>(pages), o.page_limit, static_cast<double>(paged) / page_s, page_cpu, rss_before, rss_loaded,
      rss_paged, rss_subscribed, rss_live, o.rate, static_cast<double>(base.acks) / base.seconds,
      base.acks ? base.cpu * 1e6 / static_cast<double>(base.acks) : 0, base.ack_p99, nsubs,
      static_cast<double>(live.acks) / live.seconds, cpu_per_write, live.ack_p99,
      static_cast<double>(live.deliveries) / live.seconds, live.d_p50, live.d_p99, live.d_max,
      static_cast<unsigned long long>(upserts), static_cast<unsigned long long>(leaves), static_cast<unsigned long long>(want),
      static_cast<unsigned long long>(delivered), static_cast<unsigned long long>(views_closed),
      static_cast<unsigned long long>(errors));
  emit(c, "queries", line);
  return errors || short_pages || views_closed || delivered != want ? 1 : 0;
}

}  // namespace bench
