// Fuzz target: the WebSocket input path of a connection, without the socket. The input is the byte stream
// a client sends after the upgrade, fed to the shipped reader (protocol/ws_reader.hpp) in pieces cut where
// the input's last byte says, as reads split it: the pieces must give the same messages, pings, closes and
// violations as the whole. Each message is split into commands whose replies are checked, as the server
// does.
#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/messages.hpp"
#include "protocol/ws_reader.hpp"

namespace ws = rtsync::protocol::ws;

namespace {
constexpr std::size_t max_frame = 64 * 1024;  // the default limits.max_frame

void check_commands(std::string_view text) {
  for (auto& line : rtsync::protocol::parse_message(text)) {
    if (!line.ok) {
      auto reply = rtsync::protocol::reply_error(line.cmd.id, rtsync::protocol::Code::bad_request, line.error);
      if (reply.empty()) std::abort();
      continue;
    }
    if (line.cmd.op.empty() && !line.cmd.body.contains("op")) std::abort();
    auto reply = rtsync::protocol::reply_ok(line.cmd.id);
    // Replies are compact JSON on one line: a raw newline would split the client's framing.
    if (reply.find('\n') != std::string::npos) std::abort();
    boost::system::error_code ec;
    boost::json::parse(reply, ec);
    if (ec) std::abort();
  }
}

// Records what the reader reports, in order, as one text.
struct Recorder {
  std::string events;
  // After a frame the reader could not parse, the rest of the input is dropped and what follows is out of
  // step: where a read ends then decides what is found, so nothing after it is compared.
  bool stopped = false;
  bool reading() const { return !stopped; }
  void on_text(std::string_view t) {
    if (!ws::valid_utf8(t) || t.size() > max_frame) std::abort();
    events += "T" + std::to_string(t.size()) + ":";
    events += t;
  }
  void on_ping(std::string_view p) {
    if (p.size() > 125) std::abort();
    events += "P" + std::string(p);
  }
  void on_close(std::uint16_t code) { events += "C" + std::to_string(code); }
  void on_violation(std::uint16_t code, std::string_view reason) {
    events += "V" + std::to_string(code);
    stopped = stopped || reason == "protocol error";
  }
};

// Feeds `in` to a reader in pieces of at most `piece` bytes, keeping unconsumed bytes as the session does.
std::string run(std::vector<std::uint8_t> in, std::size_t piece) {
  ws::Reader reader(max_frame);
  Recorder rec;
  std::vector<std::uint8_t> pending;
  for (std::size_t at = 0; at < in.size(); at += piece) {
    pending.insert(pending.end(), in.begin() + at, in.begin() + std::min(in.size(), at + piece));
    std::size_t need = 0;
    const std::size_t used = reader.consume(pending.data(), pending.size(), need, rec);
    if (used > pending.size()) std::abort();
    if (need && need <= pending.size() - used) std::abort();  // `need` only when the frame is incomplete
    pending.erase(pending.begin(), pending.begin() + used);
  }
  return rec.events;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> in(data, data + size);
  const std::string whole = run(in, in.size() + 1);
  const std::size_t piece = size == 0 ? 1 : 1 + data[size - 1] % 97;
  if (run(in, piece) != whole) std::abort();
  // The messages themselves go through the command parser.
  ws::Reader reader(max_frame);
  struct Commands : Recorder {
    void on_text(std::string_view t) { check_commands(t); }
  } commands;
  std::size_t need = 0;
  reader.consume(in.data(), in.size(), need, commands);
  return 0;
}
