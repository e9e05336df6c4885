// One WebSocket connection after the upgrade: its socket and its outbound queue, the Transport of one
// Client (server/client.hpp, which runs the commands of PROTOCOL §4). The RFC 6455 reader is
// protocol/ws_reader.hpp; this file feeds it bytes and hands the text messages to the client.
//
// Writes: every byte the session sends (replies, shared publication frames, pongs, bye, close) goes
// through one queue. A session with something queued is put on its worker's flush list once; the worker
// flushes the list after each drain of publications (or at the end of the current handler), and a flush
// writes everything queued in one non-blocking gather write (sendmsg). Only when the kernel's send buffer
// is full does the session wait for writability; while it waits, it is not flushed. Replies produced while
// handling one incoming message are batched into one frame. Nothing else ever writes to the socket, so
// frames never interleave; a frame partly written is always finished first, even when closing. The queue
// is bounded (limits.max_outbound): a consumer that falls behind by more is closed with 4001 instead of
// growing the server's memory.
//
// Reads: the session waits for readability and reads until the socket would block, into its worker's
// shared buffer; only the tail of an incomplete frame is kept in a buffer of the session's own. An idle
// connection thus holds no read or write buffer, and no timer: its worker's sweep (tick()) pings quiet
// peers, drops dead ones and ends connections whose token expired.
//
// Threading: a session lives on its worker's single-threaded io_context; completions from the store
// come back through post().
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/value.hpp>

#include <chrono>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/frame.hpp"
#include "protocol/ws_reader.hpp"
#include "server/client.hpp"
#include "server/connection.hpp"
#include "server/context.hpp"
#include "server/identity.hpp"
#include "server/transport.hpp"

namespace rtsync::server {

class Worker;

class WsSession final : public std::enable_shared_from_this<WsSession>, public Transport, public Connection {
 public:
  WsSession(Context& ctx, Worker& worker, boost::asio::ip::tcp::socket socket, Principal who,
            std::string remote, std::string already_read);
  ~WsSession();

  void start();
  // Instead of start(): the app's backend refused the connection (its connect hook), which is closed
  // with `code` and `reason` before any command.
  void refuse(std::uint16_t code, std::string_view reason);
  // Connection
  void tick(std::chrono::steady_clock::time_point now, std::chrono::system_clock::time_point wall) override;
  void flush() override;
  // Transport. close(): bye + close with `code`, then the connection ends once the peer answered or after
  // a grace period.
  void send_text(std::string_view json) override;
  void send_frame(core::FramePtr frame) override;
  void close(std::uint16_t code, std::string_view reason) override;
  bool belongs_to(std::string_view user, std::string_view session) const override {
    return (!user.empty() && client_.user() == user) || (!session.empty() && client_.id() == session);
  }
  std::size_t reply_room(const boost::json::value& id) const override;
  void post(std::function<void()> fn) override;
  std::shared_ptr<void> hold() override { return shared_from_this(); }
  void resumed() override;

 private:
  // Reading and framing.
  void maybe_read();
  void read_now();
  void process_input();  // the bytes kept in in_
  // Handles the complete frames at the start of data[0, size) through reader_; returns how many bytes it
  // used. `need`: the size of the incomplete frame left, when its header is complete.
  std::size_t consume(std::uint8_t* data, std::size_t size, std::size_t& need);
  struct Frames;  // the reader's handler
  void on_message(std::string_view text);
  void on_close_frame(std::uint16_t code);  // the code to echo; see ws::Reader
  bool reading() const { return !finished_ && (!client_.blocked() || closing_); }

  // Writing.
  void close_batch();
  void push(core::FramePtr frame);
  void schedule_flush();
  void write_now();
  void written(std::size_t n);  // pops what a write took
  void drop_unstarted();        // drops queued frames no byte of which was written
  void finish(std::string_view why);  // tears the connection down; idempotent

  Context& ctx_;
  Worker& worker_;
  WorkerMetrics& metrics_;  // this worker's counters
  boost::asio::ip::tcp::socket socket_;
  const std::string remote_;
  Client client_;

  // Input: the bytes of an incomplete frame (none when idle), and the reader's state between reads.
  std::vector<std::uint8_t> in_;
  std::size_t in_len_ = 0;
  protocol::ws::Reader reader_;
  bool reading_ = false;  // waiting for readability

  // Output: out_[out_head_..] is queued, of which the first head_written_ bytes are already written.
  std::vector<core::FramePtr> out_;
  std::size_t out_head_ = 0;
  std::size_t head_written_ = 0;
  std::size_t out_bytes_ = 0;       // not yet written
  bool close_queued_ = false;       // the close frame is the last one queued
  std::string batch_;  // replies not yet made into a frame
  bool writing_ = false;  // the send buffer was full: waiting for writability
  bool dirty_ = false;    // on the worker's flush list

  // Closing: after our close frame is written we wait for the peer's close (or EOF) with a deadline.
  bool closing_ = false;      // bye + close queued; input is only scanned for the peer's close
  bool close_written_ = false;
  bool peer_closed_ = false;
  bool finished_ = false;
  std::uint16_t close_code_ = 0;
  std::string close_reason_;
  std::unique_ptr<boost::asio::steady_timer> close_timer_;

  // Liveness.
  std::chrono::steady_clock::time_point last_rx_;
  std::chrono::steady_clock::time_point last_ping_check_;
};

}  // namespace rtsync::server
