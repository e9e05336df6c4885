// One WebSocket connection after the upgrade: its socket, the commands of PROTOCOL §4, and the outbound
// queue. The RFC 6455 reader is protocol/ws_reader.hpp; this file feeds it bytes and acts on what it finds.
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
//
// Order: commands take effect in the order they were sent. A `sub` or `history` that must wait for the
// store to load its channel holds back the commands after it (and stops reading) until it completes, so
// "sub, then pub" always delivers the pub to the new subscription. Publications are ordered by the store
// queue and do not hold anything back, but a `history` waits for this connection's unacknowledged
// publications and writes, so a client reads its own writes. Collection reads go through the same store
// queue as writes, so they see this connection's earlier writes anyway.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/value.hpp>

#include <chrono>

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/token_bucket.hpp"
#include "core/frame.hpp"
#include "protocol/messages.hpp"
#include "protocol/requests.hpp"
#include "protocol/ws_reader.hpp"
#include "server/context.hpp"
#include "server/identity.hpp"
#include "server/subscriber.hpp"

namespace rtsync::server {

class Worker;

class WsSession : public std::enable_shared_from_this<WsSession>, public Subscriber {
 public:
  WsSession(Context& ctx, Worker& worker, boost::asio::ip::tcp::socket socket, Principal who,
            std::string remote, std::string already_read);
  ~WsSession();

  void start();
  // Called by the worker's sweep (at least twice per ping interval): liveness and token expiry.
  void tick(std::chrono::steady_clock::time_point now, std::chrono::system_clock::time_point wall);
  // Called by the worker for a session on its flush list: writes everything queued.
  void flush();
  // Queues a shared frame (a publication or presence push).
  void send_frame(core::FramePtr frame);
  // Subscriber: the worker filtered it (signals never come here); push its frame.
  void on_delivery(const core::Delivery& d) override { send_frame(d.frame); }
  // Sends bye + close with `code`, then closes the connection once the peer answered or after a grace
  // period. Idempotent.
  void close(std::uint16_t code, std::string_view reason);

 private:
  struct Subscription {
    core::ChannelRef channel;  // keeps it in memory while subscribed
    bool member;    // counted in presence
    bool presence;  // receives join/leave
    bool pending;   // waiting for the store to load the channel
  };

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

  // Commands: handle() dispatches through the op table; each op_* decodes, calls the service, replies.
  void dispatch(protocol::ParsedLine& line);
  void resume();  // a held-back command completed
  void handle(protocol::Command& cmd);
  void op_ping(protocol::Command& cmd);
  void op_sub(protocol::Command& cmd);
  void op_unsub(protocol::Command& cmd);
  void op_pub(protocol::Command& cmd);
  void op_history(protocol::Command& cmd);
  void op_presence(protocol::Command& cmd);
  void op_create(protocol::Command& cmd);
  void op_update(protocol::Command& cmd);
  void op_patch(protocol::Command& cmd);
  void op_delete(protocol::Command& cmd);
  void op_write(protocol::Command& cmd, protocol::WriteOp op);
  void op_list(protocol::Command& cmd);
  void op_get(protocol::Command& cmd);
  void op_tally(protocol::Command& cmd);
  void op_auth(protocol::Command& cmd);
  bool take_token();     // rate limit: false when the bucket is empty
  // True when `d` holds the request; otherwise answers its error.
  template <class Request>
  bool decoded(const protocol::Command& cmd, protocol::Decoded<Request>& d);
  // The channel named `name` (answering the error when there is none).
  core::ChannelRef resolve(const protocol::Command& cmd, const std::string& name);
  void write_done();
  void reply_error(const boost::json::value& id, const protocol::Error& e);
  // The longest reply body to `id` that the outbound queue can still take without going over
  // limits.max_outbound (a reply must never cut off its own connection).
  std::size_t reply_room(const boost::json::value& id) const;
  service::Post poster();

  // Writing.
  void queue_text(std::string_view json);
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
  Principal who_;  // replaced by the `auth` op
  const std::string remote_;
  const std::uint64_t no_;  // process-unique; presence and logs
  const std::string id_;    // session id clients see
  service::Caller caller_;

  // Input: the bytes of an incomplete frame (none when idle), and the reader's state between reads.
  std::vector<std::uint8_t> in_;
  std::size_t in_len_ = 0;
  protocol::ws::Reader reader_;
  bool reading_ = false;  // waiting for readability
  bool blocked_ = false;  // a command waits for the store; later ones are held back
  bool blocked_on_writes_ = false;  // ... namely a history waiting for pending_writes_ to reach 0
  std::size_t pending_writes_ = 0;  // durable pubs and collection writes not yet acknowledged
  std::list<protocol::ParsedLine> held_;  // a list, unlike a deque, costs nothing while empty

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

  std::unordered_map<std::string, Subscription> subs_;

  // Limits: a token bucket of commands, and liveness.
  common::TokenBucket bucket_;
  std::size_t strikes_ = 0;  // rate_limited replies in a row
  std::chrono::steady_clock::time_point last_rx_;
  std::chrono::steady_clock::time_point last_ping_check_;
};

}  // namespace rtsync::server
