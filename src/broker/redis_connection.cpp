// hiredis on an Asio loop, reconnected with backoff. See redis_connection.hpp.
#include "broker/redis_connection.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

namespace rtsync::broker {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {
constexpr auto kMinBackoff = 100ms;
constexpr auto kMaxBackoff = 5s;
}  // namespace

// One redisAsyncContext. Owned by shared_ptrs: the connection's, and each pending wait's; hiredis holds a
// raw pointer (ev.data) for as long as its context lives, and the context's cleanup hook ends that.
class RedisConnection::Context : public std::enable_shared_from_this<Context> {
 public:
  explicit Context(asio::io_context& io) : sd_(io) {}
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Starts connecting. `up` runs once connected; `down(why)` runs once when the connection failed or is
  // lost (not after close()). false: it failed at once (then neither runs).
  bool open(const std::string& host, int port, std::function<void()> up, std::function<void(std::string)> down) {
    up_ = std::move(up);
    down_ = std::move(down);
    ac_ = redisAsyncConnect(host.c_str(), port);
    if (!ac_ || ac_->err) {
      error_ = ac_ ? ac_->errstr : "out of memory";
      if (ac_) redisAsyncFree(ac_);
      ac_ = nullptr;
      return false;
    }
    boost::system::error_code ec;
    sd_.assign(ac_->c.fd, ec);
    if (ec) {
      error_ = ec.message();
      redisAsyncFree(ac_);
      ac_ = nullptr;
      return false;
    }
    self_ = shared_from_this();
    ac_->data = this;
    ac_->ev.data = this;
    ac_->ev.addRead = [](void* p) { static_cast<Context*>(p)->want(true, true); };
    ac_->ev.delRead = [](void* p) { static_cast<Context*>(p)->want(true, false); };
    ac_->ev.addWrite = [](void* p) { static_cast<Context*>(p)->want(false, true); };
    ac_->ev.delWrite = [](void* p) { static_cast<Context*>(p)->want(false, false); };
    ac_->ev.cleanup = [](void* p) { static_cast<Context*>(p)->cleanup(); };
    // Hooks first: setting the connect callback asks for the first write event, which completes the connect.
    redisAsyncSetConnectCallback(ac_, [](const redisAsyncContext* c, int status) {
      auto* self = static_cast<Context*>(c->data);
      if (status == REDIS_OK) {
        self->connected_ = true;
        if (self->up_) self->up_();
      } else {
        self->lost(c->errstr);
      }
    });
    redisAsyncSetDisconnectCallback(ac_, [](const redisAsyncContext* c, int status) {
      static_cast<Context*>(c->data)->lost(status == REDIS_OK ? "closed" : c->errstr);
    });
    return true;
  }

  const std::string& error() const { return error_; }
  bool up() const { return ac_ && connected_ && !closing_; }
  bool open() const { return ac_ != nullptr; }

  bool command(const std::vector<std::string>& args, Reply done) {
    if (!ac_ || closing_) return false;
    auto* cb = new Reply(std::move(done));
    if (!send(args, &Context::once, cb)) {
      delete cb;
      return false;
    }
    return true;
  }

  // SUBSCRIBE: `on_reply` gets the confirmation and every message, then null when the connection ends.
  bool subscribe(const std::string& channel, Reply on_reply) {
    if (!ac_ || closing_) return false;
    sub_ = std::move(on_reply);
    return send({"SUBSCRIBE", channel}, &Context::persistent, this);
  }

  void close() {
    if (!ac_ || closing_) return;
    closing_ = true;
    down_ = nullptr;
    redisAsyncDisconnect(ac_);
  }

  void kill() {
    down_ = nullptr;
    if (ac_) redisAsyncFree(ac_);
  }

 private:
  bool send(const std::vector<std::string>& args, redisCallbackFn* fn, void* priv) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    return redisAsyncCommandArgv(ac_, fn, priv, static_cast<int>(args.size()), argv.data(), lens.data()) == REDIS_OK;
  }

  static void once(redisAsyncContext*, void* reply, void* priv) {
    std::unique_ptr<Reply> cb(static_cast<Reply*>(priv));
    if (*cb) (*cb)(static_cast<redisReply*>(reply));
  }
  static void persistent(redisAsyncContext*, void* reply, void* priv) {
    auto* self = static_cast<Context*>(priv);
    if (self->sub_) self->sub_(static_cast<redisReply*>(reply));
  }

  void lost(const char* why) {
    connected_ = false;
    error_ = why ? why : "connection lost";
    if (auto down = std::move(down_)) {
      down_ = nullptr;
      down(error_);
    }
  }

  // hiredis wants (or no longer wants) to know when the socket is readable / writable.
  void want(bool read, bool on) {
    (read ? want_read_ : want_write_) = on;
    if (on) arm(read);
  }

  void arm(bool read) {
    bool& waiting = read ? reading_ : writing_;
    if (waiting || !ac_) return;
    waiting = true;
    sd_.async_wait(read ? asio::posix::descriptor_base::wait_read : asio::posix::descriptor_base::wait_write,
                   [self = shared_from_this(), read](boost::system::error_code ec) {
                     (read ? self->reading_ : self->writing_) = false;
                     if (ec || !self->ac_) return;
                     if (read ? self->want_read_ : self->want_write_) {
                       // May free the context (an error, or a close), which runs cleanup() and clears ac_.
                       read ? redisAsyncHandleRead(self->ac_) : redisAsyncHandleWrite(self->ac_);
                     }
                     if (self->ac_ && (read ? self->want_read_ : self->want_write_)) self->arm(read);
                   });
  }

  // hiredis frees the context: stop watching its socket (which hiredis closes, not us).
  void cleanup() {
    ac_ = nullptr;
    want_read_ = want_write_ = false;
    boost::system::error_code ec;
    sd_.cancel(ec);
    sd_.release();
    // The pending waits (cancelled) and the caller keep this object alive until they return.
    auto keep = std::move(self_);
    asio::post(sd_.get_executor(), [keep] {});
  }

  asio::posix::stream_descriptor sd_;
  redisAsyncContext* ac_ = nullptr;
  std::shared_ptr<Context> self_;  // while hiredis holds a pointer to this
  std::function<void()> up_;
  std::function<void(std::string)> down_;
  Reply sub_;
  std::string error_;
  bool connected_ = false;
  bool closing_ = false;
  bool want_read_ = false, want_write_ = false;
  bool reading_ = false, writing_ = false;
};

RedisConnection::RedisConnection(asio::io_context& io, const RedisAddress& addr, std::string what)
    : io_(io), addr_(addr), what_(std::move(what)), retry_(io), backoff_(kMinBackoff) {}

RedisConnection::~RedisConnection() { kill(); }

void RedisConnection::open(std::function<void()> on_up) {
  on_up_ = std::move(on_up);
  connect();
}

void RedisConnection::subscribe(std::string channel, std::function<void()> on_subscribed,
                                std::function<void(std::string_view)> on_message) {
  channel_ = std::move(channel);
  on_subscribed_ = std::move(on_subscribed);
  on_message_ = std::move(on_message);
  connect();
}

bool RedisConnection::up() const { return ctx_ && ctx_->up(); }

bool RedisConnection::command(const std::vector<std::string>& args, Reply done) {
  return up() && ctx_->command(args, std::move(done));
}

void RedisConnection::close() {
  closing_ = true;
  retry_.cancel();
  if (ctx_) ctx_->close();
}

bool RedisConnection::closed() const { return !ctx_ || !ctx_->open(); }

void RedisConnection::kill() {
  closing_ = true;
  retry_.cancel();
  if (ctx_) ctx_->kill();
  ctx_.reset();
}

void RedisConnection::connect() {
  if (closing_) return;
  ctx_ = std::make_shared<Context>(io_);
  // The callbacks live in the context: they name it by address, never by a shared_ptr (a cycle).
  Context* c = ctx_.get();
  const bool ok = c->open(
      addr_.host, addr_.port, [this, c] { connected(*c); },
      [this, c](std::string why) {
        if (ctx_.get() != c) return;
        spdlog::warn("redis broker: {} lost: {}", what_, why);
        retry();
      });
  if (!ok) {
    spdlog::warn("redis broker: cannot connect to {}:{}: {}", addr_.host, addr_.port, c->error());
    retry();
  }
}

void RedisConnection::retry() {
  if (closing_) return;
  const auto delay = backoff_ + std::chrono::milliseconds(std::rand() % (backoff_.count() / 2 + 1));
  backoff_ = std::min<std::chrono::milliseconds>(backoff_ * 2, kMaxBackoff);
  retry_.expires_after(delay);
  retry_.async_wait([this](boost::system::error_code ec) {
    if (!ec) connect();
  });
}

void RedisConnection::connected(Context& c) {
  backoff_ = kMinBackoff;
  if (!addr_.password.empty()) {
    if (addr_.user.empty()) {
      c.command({"AUTH", addr_.password}, log_error("AUTH"));
    } else {
      c.command({"AUTH", addr_.user, addr_.password}, log_error("AUTH"));
    }
  }
  if (on_message_) {
    c.subscribe(channel_, [this, &c](const redisReply* r) {
      if (ctx_.get() != &c || !r || r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
      const std::string_view kind(r->element[0]->str, r->element[0]->len);
      const redisReply* payload = r->element[2];
      if (kind == "subscribe") {
        on_subscribed_();
      } else if (kind == "message" && payload->type == REDIS_REPLY_STRING) {
        on_message_(std::string_view(payload->str, payload->len));
      }
    });
    return;
  }
  if (addr_.db != 0) c.command({"SELECT", std::to_string(addr_.db)}, log_error("SELECT"));
  if (on_up_) on_up_();
}

RedisConnection::Reply log_error(std::string what) {
  return [what = std::move(what)](const redisReply* r) {
    if (r && r->type == REDIS_REPLY_ERROR) spdlog::error("redis broker: {}: {}", what, std::string(r->str, r->len));
  };
}

}  // namespace rtsync::broker
