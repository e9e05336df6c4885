// Captures what spdlog's default logger writes while a LogCapture lives, to check what (and how often)
// the code under test logs; the previous logger comes back afterwards.
#pragma once

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace rtsync::testing {

class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    sink->set_pattern("%l %v");
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", std::move(sink)));
  }
  ~LogCapture() {
    spdlog::set_default_logger(previous_);
    spdlog::drop("capture");  // the registry must not keep a sink that writes into out_
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  // The lines logged so far at `level` ("error", "warning", …) that contain `text`. Call it once the
  // logging thread is known to be done (e.g. after the callback that follows the log line).
  std::vector<std::string> lines(std::string_view level, std::string_view text = {}) const {
    std::vector<std::string> out;
    std::istringstream in(out_.str());
    const std::string prefix = std::string(level) + " ";
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with(prefix) && line.find(text) != std::string::npos) out.push_back(line);
    }
    return out;
  }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream out_;
};

}  // namespace rtsync::testing
