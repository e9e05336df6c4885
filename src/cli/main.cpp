// The rtsync command line (PROTOCOL §1): `rtsync serve`.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "config/config.hpp"
#include "server/server.hpp"

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

  CLI11_PARSE(app, argc, argv);

  // Logs go to stderr: stdout carries only the listening line that tests and scripts read.
  auto logger = spdlog::stderr_color_mt("rtsync");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(log_level));

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
