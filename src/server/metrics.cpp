// Rendering of the metrics in Prometheus text format. See metrics.hpp.
#include "server/metrics.hpp"

#include <fmt/format.h>

#include <array>

namespace rtsync::server {

Metrics::Metrics(std::size_t workers, std::function<ProcessGauges()> gauges) : gauges_(std::move(gauges)) {
  for (std::size_t i = 0; i < workers; ++i) workers_.push_back(std::make_unique<WorkerMetrics>());
}

namespace {

void counter(std::string& out, std::string_view name, std::string_view help, std::uint64_t v, bool gauge = false) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, gauge ? "gauge" : "counter", name, v);
}

// Renders the sum of several histograms with the same bounds (one per worker, or the store's alone).
template <std::size_t N>
void histogram(std::string& out, std::string_view name, std::string_view help, const std::vector<const Histogram<N>*>& hs) {
  out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  std::array<std::uint64_t, N + 1> counts{};
  std::uint64_t count = 0;
  double sum = 0;
  for (const Histogram<N>* h : hs) {
    for (std::size_t i = 0; i <= N; ++i) counts[i] += h->counts[i].load(std::memory_order_relaxed);
    count += h->count.load(std::memory_order_relaxed);
    sum += h->sum.load(std::memory_order_relaxed);
  }
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < N; ++i) {
    cumulative += counts[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, hs.empty() ? 0.0 : hs.front()->bounds[i], cumulative);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, cumulative + counts[N], name, sum,
                     name, count);
}

// One histogram of every worker.
template <std::size_t N, class Get>
std::vector<const Histogram<N>*> of_workers(const std::vector<std::unique_ptr<WorkerMetrics>>& workers, Get get) {
  std::vector<const Histogram<N>*> hs;
  for (const auto& w : workers) hs.push_back(&get(*w));
  return hs;
}

}  // namespace

std::string Metrics::render() const {
  const ProcessGauges g = gauges_();
  auto sum = [&](auto member) {
    std::int64_t total = 0;
    for (const auto& w : workers_) total += static_cast<std::int64_t>((*w.*member).load(std::memory_order_relaxed));
    return static_cast<std::uint64_t>(std::max<std::int64_t>(total, 0));
  };
  std::string out;
  counter(out, "rtsync_connections", "Open WebSocket connections.", sum(&WorkerMetrics::connections), true);
  counter(out, "rtsync_subscriptions", "Channel subscriptions of WebSocket connections.", sum(&WorkerMetrics::subscriptions), true);
  counter(out, "rtsync_channels", "Channels in memory.", g.channels, true);
  counter(out, "rtsync_publications_total", "Publications appended to channels (every front end, change feeds).",
          g.publications);
  counter(out, "rtsync_deliveries_total", "Frames of publications and presence pushed to WebSocket connections.",
          sum(&WorkerMetrics::deliveries));
  counter(out, "rtsync_bytes_in_total", "WebSocket bytes received.", sum(&WorkerMetrics::bytes_in));
  counter(out, "rtsync_bytes_out_total", "WebSocket bytes sent.", sum(&WorkerMetrics::bytes_out));
  counter(out, "rtsync_socket_writes_total", "WebSocket socket writes (each carries everything queued).", sum(&WorkerMetrics::writes));
  counter(out, "rtsync_slow_consumer_disconnects_total", "Connections closed with 4001 for falling behind.",
          sum(&WorkerMetrics::slow_consumers));
  counter(out, "rtsync_http_requests_total", "HTTP requests served.", sum(&WorkerMetrics::http_requests));
  counter(out, "rtsync_http_rate_limited_total", "HTTP requests refused with 429 by the per-address or per-user rate limit.",
          g.http_rate_limited);
  counter(out, "rtsync_http_rate_limit_clients", "Client addresses and users the HTTP rate limit holds a bucket for.",
          g.http_rate_clients, true);
  counter(out, "rtsync_accept_exhausted_total",
          "Accepts that failed for lack of file descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM); each pauses accepting for 100 ms.",
          sum(&WorkerMetrics::accept_exhausted));
  counter(out, "rtsync_connections_shed_total", "Connections accepted and closed at once, unserved, while out of file descriptors.",
          sum(&WorkerMetrics::connections_shed));
  counter(out, "rtsync_store_commits_total", "Store transactions committed.", g.store_commits);
  counter(out, "rtsync_store_appends_total", "Publications committed by the store.", g.store_appends);
  histogram<8>(out, "rtsync_flush_frames", "Frames per socket write.",
               of_workers<8>(workers_, [](const WorkerMetrics& w) -> const Histogram<8>& { return w.flush_frames; }));
  histogram<10>(out, "rtsync_publish_to_flush_seconds", "From building a publication's frame to its socket write completing.",
                of_workers<10>(workers_, [](const WorkerMetrics& w) -> const Histogram<10>& { return w.publish_to_flush; }));
  if (g.store_commit_seconds)
    histogram<10>(out, "rtsync_store_commit_seconds", "Store transactions, from BEGIN to the end of COMMIT (its fsync).",
                  {g.store_commit_seconds});
  if (g.store_commit_batch)
    histogram<8>(out, "rtsync_store_commit_batch", "Writes (publications and document writes) per store commit.",
                 {g.store_commit_batch});
  out += g.more;
  return out;
}

}  // namespace rtsync::server
