// A WebSocket connection: reading and the coalescing write queue (its client: client.cpp, commands.cpp). See
// ws_session.hpp.
#include "server/ws_session.hpp"

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "protocol/websocket.hpp"
#include "server/worker.hpp"

namespace rtsync::server {

namespace asio = boost::asio;
namespace json = boost::json;
namespace ws = protocol::ws;
using protocol::Code;

namespace {
constexpr std::size_t max_batch = 16 * 1024;       // replies per frame before starting another frame
constexpr std::size_t max_iov = 64;                // frames per sendmsg (IOV_MAX is 1024; 64 fill a send buffer)
constexpr int reads_per_turn = 16;                 // then yield to the worker's other connections
constexpr std::size_t shrink_above = 256;          // frame slots kept by an emptied output queue
constexpr auto close_grace = std::chrono::seconds(2);
}  // namespace

WsSession::WsSession(Context& ctx, Worker& worker, asio::ip::tcp::socket socket, Principal who,
                     std::string remote, std::string already_read)
    : ctx_(ctx),
      worker_(worker),
      metrics_(ctx.metrics.worker(worker.index())),
      socket_(std::move(socket)),
      remote_(std::move(remote)),
      client_(ctx, worker, *this, std::move(who)),
      reader_(ctx.cfg.limits.max_frame) {
  in_.assign(already_read.begin(), already_read.end());
  in_len_ = in_.size();
}

WsSession::~WsSession() = default;

void WsSession::start() {
  worker_.add_connection(shared_from_this());
  metrics_.connections.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("ws open session={} user={} remote={}", client_.id(), client_.user(), remote_);
  last_rx_ = last_ping_check_ = std::chrono::steady_clock::now();
  client_.start();
  process_input();
  maybe_read();
}

void WsSession::refuse(std::uint16_t code, std::string_view reason) {
  worker_.add_connection(shared_from_this());
  metrics_.connections.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("ws refused session={} user={} remote={} code={}: {}", client_.id(), client_.user(), remote_, code, reason);
  last_rx_ = last_ping_check_ = std::chrono::steady_clock::now();
  close(code, reason);
  maybe_read();
}

// ---- Reading ---------------------------------------------------------------------------------------

void WsSession::maybe_read() {
  // While a command is held back, the socket is not read either (backpressure), except to find the
  // peer's close once we are closing.
  if (!reading_ && reading()) read_now();
}

// Reads until the socket would block, then waits for readability. By hand rather than async_read_some,
// which needs a buffer per pending read: this way an idle connection holds none, reads land in the
// worker's buffer, and only an incomplete frame's bytes are copied into the session's own. Reading until
// EAGAIN before waiting is what the edge-triggered reactor needs to report the next arrival.
void WsSession::read_now() {
  const int fd = socket_.native_handle();
  auto& shared = worker_.read_buffer();
  for (int turn = 0; reading(); ++turn) {
    if (turn == reads_per_turn) {
      // A client that keeps sending must not starve the others on this worker.
      reading_ = true;
      asio::post(socket_.get_executor(), [self = shared_from_this()] {
        self->reading_ = false;
        self->maybe_read();
      });
      return;
    }
    const bool own = in_len_ > 0;  // an incomplete frame: its bytes go on in the session's buffer
    if (own && in_len_ == in_.size()) in_.resize(std::max<std::size_t>(2 * in_.size(), 4096));
    std::uint8_t* to = own ? in_.data() + in_len_ : shared.data();
    const std::size_t room = own ? in_.size() - in_len_ : shared.size();
    const ssize_t n = ::recv(fd, to, room, MSG_DONTWAIT);
    if (n == 0) return finish("peer closed the connection");
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return finish(std::strerror(errno));
      reading_ = true;
      socket_.async_wait(asio::ip::tcp::socket::wait_read, [self = shared_from_this()](boost::system::error_code ec) {
        self->reading_ = false;
        if (self->finished_) return;
        if (ec) return self->finish(ec.message());
        self->maybe_read();
      });
      return;
    }
    bump(metrics_.bytes_in, n);
    last_rx_ = std::chrono::steady_clock::now();
    if (own) {
      in_len_ += static_cast<std::size_t>(n);
      process_input();
    } else {
      std::size_t need = 0;
      const std::size_t used = consume(shared.data(), static_cast<std::size_t>(n), need);
      if (finished_) return;
      if (used < static_cast<std::size_t>(n)) {
        in_.assign(shared.data() + used, shared.data() + n);
        in_len_ = in_.size();
        if (need > in_.size()) in_.resize(need);
      }
    }
  }
}

void WsSession::process_input() {
  std::size_t need = 0;
  const std::size_t used = consume(in_.data(), in_len_, need);
  if (finished_) return;
  in_len_ -= used;
  if (in_len_ == 0) {
    // Idle again: give the buffer back.
    std::vector<std::uint8_t>().swap(in_);
    return;
  }
  std::memmove(in_.data(), in_.data() + used, in_len_);
  if (need > in_.size()) in_.resize(need);
}

// What the frame reader hears back from the session (protocol/ws_reader.hpp).
struct WsSession::Frames {
  WsSession& s;
  bool reading() const { return s.reading(); }
  void on_text(std::string_view text) { s.on_message(text); }
  void on_ping(std::string_view payload) {
    s.push(std::make_shared<const core::Frame>(ws::make_frame(ws::Opcode::pong, payload)));
    s.schedule_flush();
  }
  void on_close(std::uint16_t code) { s.on_close_frame(code); }
  void on_violation(std::uint16_t code, std::string_view reason) {
    if (s.closing_) return s.finish("protocol error while closing");
    s.close(code, reason);
  }
};

std::size_t WsSession::consume(std::uint8_t* data, std::size_t size, std::size_t& need) {
  Frames frames{*this};
  return reader_.consume(data, size, need, frames);
}

void WsSession::on_close_frame(std::uint16_t code) {
  if (closing_) {
    // The peer answered our close: the handshake is complete once our close frame is out.
    peer_closed_ = true;
    if (close_written_) finish(close_reason_);
    return;
  }
  peer_closed_ = true;
  closing_ = true;
  close_code_ = code;
  close_reason_ = "closed by peer";
  // Echo the close; the connection ends once it is written.
  drop_unstarted();
  push(std::make_shared<const core::Frame>(
      ws::make_frame(ws::Opcode::close, ws::close_payload(close_code_, ""))));
  close_queued_ = true;
  schedule_flush();
}

void WsSession::on_message(std::string_view text) {
  if (closing_) return;
  client_.on_message(text);
  close_batch();
}

void WsSession::resumed() {
  process_input();
  maybe_read();
}

std::size_t WsSession::reply_room(const json::value& id) const {
  // Replies go into the batch, which becomes one frame: its header, the separator, the reply's own
  // {"id":…,"ok":} and the body.
  const std::size_t used = out_bytes_ + batch_.size() + ws::max_header + 1 + protocol::reply_ok(id, "").size();
  const std::size_t limit = ctx_.cfg.limits.max_outbound;
  return used < limit ? limit - used : 0;
}

void WsSession::post(std::function<void()> fn) { asio::post(socket_.get_executor(), std::move(fn)); }

void WsSession::tick(std::chrono::steady_clock::time_point now, std::chrono::system_clock::time_point wall) {
  if (finished_ || closing_) return;
  client_.check_expiry(wall);
  if (closing_) return;
  const auto& l = ctx_.cfg.limits;
  const auto quiet = now - last_rx_;
  if (quiet >= std::chrono::seconds(l.idle_timeout))
    return close(protocol::close_code::idle_timeout, "no traffic from the client");
  if (now - last_ping_check_ < std::chrono::seconds(l.ping_interval)) return;
  last_ping_check_ = now;
  // Ping whenever the peer was quiet for half an interval: checks drift, so waiting for a full interval of
  // silence could skip a ping and let a live peer that only answers pings reach the idle timeout.
  if (quiet * 2 >= std::chrono::seconds(l.ping_interval)) {
    // Any frame, the pong included, counts as a sign of life.
    push(std::make_shared<const core::Frame>(ws::make_frame(ws::Opcode::ping, "")));
    schedule_flush();
  }
}

// ---- Writing ---------------------------------------------------------------------------------------

void WsSession::send_text(std::string_view json) {
  if (closing_ || finished_) return;
  if (batch_.empty()) {
    batch_.assign(ws::max_header, '\0');
  } else {
    batch_.push_back('\n');
  }
  batch_.append(json);
  if (batch_.size() >= max_batch) close_batch();
  schedule_flush();
}

void WsSession::close_batch() {
  if (batch_.empty()) return;
  push(std::make_shared<const core::Frame>(ws::finish_frame(std::move(batch_), ws::Opcode::text)));
  batch_.clear();
}

void WsSession::send_frame(core::FramePtr frame) {
  if (closing_ || finished_) return;
  close_batch();  // replies queued before this push go out before it
  bump(metrics_.deliveries, 1);
  push(std::move(frame));
  schedule_flush();
}

void WsSession::push(core::FramePtr frame) {
  out_bytes_ += frame->size();
  out_.push_back(std::move(frame));
  if (!closing_ && out_bytes_ > ctx_.cfg.limits.max_outbound) {
    metrics_.slow_consumers.fetch_add(1, std::memory_order_relaxed);
    close(protocol::close_code::slow_consumer, "slow consumer: outbound queue over its limit");
  }
}

void WsSession::schedule_flush() {
  // While waiting for writability the session is not flushed: the wait's completion writes.
  if (dirty_ || writing_ || finished_) return;
  dirty_ = true;
  worker_.want_flush(this);
}

void WsSession::flush() {
  dirty_ = false;
  close_batch();
  if (!writing_ && !finished_) write_now();
}

// Writes everything queued with non-blocking gather writes until done or the send buffer is full. By hand
// rather than async_write: a connection that keeps up (nearly all of them) then costs one sendmsg per
// flush and no allocation, and waits for writability only when the kernel pushes back.
void WsSession::write_now() {
  const int fd = socket_.native_handle();
  while (out_head_ < out_.size()) {
    iovec iov[max_iov];
    std::size_t n = 0;
    std::size_t total = 0;
    for (std::size_t i = out_head_; i < out_.size() && n < max_iov; ++i, ++n) {
      auto v = out_[i]->view();
      if (i == out_head_) v.remove_prefix(head_written_);
      iov[n].iov_base = const_cast<char*>(v.data());
      iov[n].iov_len = v.size();
      total += v.size();
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    const ssize_t w = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return finish(std::string("write failed: ") + std::strerror(errno));
    } else {
      bump(metrics_.writes, 1);
      metrics_.flush_frames.observe(static_cast<double>(n));
      written(static_cast<std::size_t>(w));
      if (static_cast<std::size_t>(w) == total) continue;
    }
    // The send buffer is full: wait until the peer reads.
    writing_ = true;
    socket_.async_wait(asio::ip::tcp::socket::wait_write, [self = shared_from_this()](boost::system::error_code ec) {
      self->writing_ = false;
      if (self->finished_) return;
      if (ec) return self->finish("write failed: " + ec.message());
      self->flush();
    });
    return;
  }
  out_.clear();
  out_head_ = 0;
  if (out_.capacity() > shrink_above) std::vector<core::FramePtr>().swap(out_);
  if (close_queued_ && !close_written_) {
    close_written_ = true;
    if (peer_closed_) return finish(close_reason_);
    boost::system::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  }
}

void WsSession::written(std::size_t n) {
  bump(metrics_.bytes_out, n);
  out_bytes_ -= n;
  std::int64_t now = 0;
  while (n > 0) {
    auto& f = out_[out_head_];
    const std::size_t rest = f->size() - head_written_;
    if (n < rest) {
      head_written_ += n;
      return;
    }
    n -= rest;
    head_written_ = 0;
    if (f->built_ns) {
      if (!now)
        now = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
      metrics_.publish_to_flush.observe(static_cast<double>(now - f->built_ns) * 1e-9);
    }
    f.reset();
    ++out_head_;
  }
  // A consumer that never empties its queue must not keep the written slots: compact now and then.
  if (out_head_ >= shrink_above && out_head_ * 2 >= out_.size()) {
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_head_));
    out_head_ = 0;
  }
}

void WsSession::drop_unstarted() {
  // A frame partly written must be finished, or the peer could not parse what follows.
  const std::size_t keep = out_head_ + (head_written_ > 0 ? 1 : 0);
  out_.erase(out_.begin() + static_cast<std::ptrdiff_t>(std::min(keep, out_.size())), out_.end());
  out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_head_));
  out_head_ = 0;
  out_bytes_ = out_.empty() ? 0 : out_.front()->size() - head_written_;
  batch_.clear();
}

void WsSession::close(std::uint16_t code, std::string_view reason) {
  if (closing_ || finished_) return;
  closing_ = true;
  reader_.start_closing();
  close_code_ = code;
  close_reason_ = std::string(reason);
  // What has not started is dropped: bye must not wait behind a full queue, and the peer is leaving.
  drop_unstarted();
  batch_.assign(ws::max_header, '\0');
  batch_.append(protocol::bye(code, reason));
  close_batch();
  push(std::make_shared<const core::Frame>(ws::make_frame(ws::Opcode::close, ws::close_payload(code, reason))));
  close_queued_ = true;
  close_timer_ = std::make_unique<asio::steady_timer>(socket_.get_executor(), close_grace);
  close_timer_->async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->finish(self->close_reason_.empty() ? "close timed out" : self->close_reason_);
  });
  schedule_flush();
  client_.stop();
  // Keep reading for the peer's close even if a command was holding reads back. Posted: close() may run
  // inside consume(), whose buffer (perhaps the worker's shared one) a read must not overwrite yet.
  asio::post(socket_.get_executor(), [self = shared_from_this()] { self->maybe_read(); });
}

void WsSession::finish(std::string_view why) {
  if (finished_) return;
  finished_ = true;
  if (close_timer_) close_timer_->cancel();
  if (dirty_) {
    worker_.forget_flush(this);
    dirty_ = false;
  }
  boost::system::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  metrics_.connections.fetch_sub(1, std::memory_order_relaxed);
  client_.end();
  out_.clear();
  out_head_ = head_written_ = out_bytes_ = 0;
  batch_.clear();
  if (close_code_)
    spdlog::info("ws close session={} user={} code={} reason=\"{}\"", client_.id(), client_.user(), close_code_, why);
  else
    spdlog::info("ws close session={} user={} reason=\"{}\"", client_.id(), client_.user(), why);
  worker_.remove_connection(this);
}

}  // namespace rtsync::server
