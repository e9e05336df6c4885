// The rtsync command line (PROTOCOL §1, §3): `rtsync serve` and `rtsync token`.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include <boost/json/parse.hpp>

#include <chrono>
#include <optional>

#include "config/config.hpp"
#include "protocol/jwt.hpp"
#include "server/identity.hpp"
#include "server/server.hpp"

namespace {

// "90", "90s", "15m", "1h", "7d" -> seconds.
std::optional<long long> parse_ttl(const std::string& s) {
  if (s.empty()) return std::nullopt;
  std::size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(s, &used);
  } catch (...) {
    return std::nullopt;
  }
  std::string unit = s.substr(used);
  long long mult = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : unit == "d" ? 86400 : 0;
  if (mult == 0 || n <= 0) return std::nullopt;
  return n * mult;
}

bool json_object(const std::string& s) {
  boost::system::error_code ec;
  auto v = boost::json::parse(s, ec);
  return !ec && v.is_object();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rtsync: a self-hosted real-time sync server", "rtsync"};
  app.set_version_flag("--version", "rtsync " RTSYNC_VERSION);
  app.require_subcommand(1);

  std::string config_file, listen, data, web, log_level = "info";
  unsigned io_threads = 0;
  auto* serve = app.add_subcommand("serve", "Serve HTTP, WebSocket and the web app on one port");
  serve->add_option("--config", config_file, "TOML config file (defaults serve the PCM app)");
  serve->add_option("--listen", listen, "HOST:PORT to listen on (port 0 picks a free one)");
  serve->add_option("--data", data, "Directory for the database and the secret (default ./data)");
  serve->add_option("--web", web, "Directory of static files served under / (default ./web/public)");
  serve->add_option("--io-threads", io_threads, "I/O threads (default: one per core)");
  serve->add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

  std::string token_user, ttl = "1h", caps, info, token_data, token_config;
  auto* token = app.add_subcommand("token", "Print a JWT for a user, signed with the data dir's secret");
  token->add_option("--user", token_user, "User id (the token's sub)")->required();
  token->add_option("--ttl", ttl, "Lifetime: 90s, 15m, 1h, 7d (default 1h)");
  token->add_option("--caps", caps, R"(Channel and collection patterns, e.g. {"sub":["chat:*"],"pub":["chat:lobby"],"read":["pcm"],"write":["pcm"]})");
  token->add_option("--info", info, "JSON object shown to others in presence");
  bool token_api = false;
  token->add_flag("--api", token_api, "Add \"api\": true: the token may call the Server API (/v1/api/...)");
  auto* data_opt = token->add_option("--data", token_data, "Data dir holding the secret (default ./data)");
  token->add_option("--config", token_config, "Config file whose server.data holds the secret")->excludes(data_opt);

  CLI11_PARSE(app, argc, argv);

  // Logs go to stderr: stdout carries only the listening line that tests and scripts read.
  auto logger = spdlog::stderr_color_mt("rtsync");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(log_level));

  if (token->parsed()) {
    try {
      auto seconds = parse_ttl(ttl);
      if (!seconds) throw std::runtime_error("--ttl must look like 90s, 15m, 1h or 7d");
      if (!caps.empty() && !json_object(caps)) throw std::runtime_error("--caps must be a JSON object");
      if (!info.empty() && !json_object(info)) throw std::runtime_error("--info must be a JSON object");
      std::string dir = !token_data.empty()     ? token_data
                        : !token_config.empty() ? rtsync::config::load_file(token_config).server.data.string()
                                                : rtsync::config::defaults().server.data.string();
      // Only reads (or, in a fresh dir, creates) the secret: no data dir lock, so it works beside a
      // running server. Like the server, it never replaces a secret lost beside a database.
      auto secret = rtsync::server::load_or_create_secret(dir, std::filesystem::path(dir) / "rtsync.db");
      auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
      std::printf("%s\n", rtsync::protocol::jwt::sign(token_user, now.count() + *seconds, secret, caps, info, token_api).c_str());
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "rtsync token: %s\n", e.what());
      return 2;
    }
  }

  if (serve->parsed()) {
    try {
      auto cfg = config_file.empty() ? rtsync::config::defaults() : rtsync::config::load_file(config_file);
      // Flags override the file.
      if (!listen.empty()) {
        rtsync::config::split_listen(listen);
        cfg.server.listen = listen;
      }
      if (!data.empty()) cfg.server.data = data;
      if (!web.empty()) cfg.server.web = web;
      if (io_threads) cfg.server.io_threads = io_threads;
      if (config_file.empty()) {
        // The defaults serve the PCM app: its collection comes from the matrix it shows.
        auto matrix = cfg.server.web / "pcm" / "matrix.json";
        if (std::filesystem::exists(matrix))
          cfg.collections["pcm"] = rtsync::config::pcm_collection(matrix);
        else
          spdlog::warn("no {}: the pcm collection is not declared", matrix.string());
      }
      return rtsync::server::Server(std::move(cfg)).run();
    } catch (const rtsync::config::ConfigError& e) {
      std::fprintf(stderr, "rtsync: config error: %s\n", e.what());
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "rtsync: %s\n", e.what());
      return 1;
    }
  }
  return 0;
}
