// A client's lifecycle, order of commands and rate limit (its op table: commands.cpp). See client.hpp.
#include "server/client.hpp"

#include <spdlog/spdlog.h>

#include "common/random.hpp"
#include "server/worker.hpp"

namespace rtsync::server {

using protocol::Code;

Client::Client(Context& ctx, Worker& worker, Transport& transport, Principal who)
    : ctx_(ctx),
      worker_(worker),
      transport_(transport),
      metrics_(ctx.metrics.worker(worker.index())),
      who_(std::move(who)),
      no_(ctx.next_session++),
      id_(common::random_hex(8)),
      caller_(caller_of(who_)) {
  caller_.hook_approved = approved_;
}

void Client::start() {
  bucket_ = common::TokenBucket::full(static_cast<double>(ctx_.cfg.limits.burst), std::chrono::steady_clock::now());
  reply(protocol::hello(id_, who_.user));
}

void Client::on_message(std::string_view text) {
  for (auto& line : protocol::parse_message(text)) {
    if (stopped_) return;
    if (blocked_) {
      held_.push_back(std::move(line));
    } else {
      dispatch(line);
    }
  }
}

void Client::dispatch(protocol::ParsedLine& line) {
  if (!take_token()) {
    reply(protocol::reply_error(line.cmd.id, Code::rate_limited, "too many commands; slow down"));
    if (++strikes_ >= ctx_.cfg.limits.rate_abuse)
      transport_.close(protocol::close_code::rate_abuse, "rate limit exceeded repeatedly");
    return;
  }
  strikes_ = 0;
  if (!line.ok) return reply(protocol::reply_error(line.cmd.id, Code::bad_request, line.error));
  if (line.cmd.op == "history" && pending_writes_ > 0) {
    blocked_ = blocked_on_writes_ = true;
    held_.push_front(std::move(line));
    return;
  }
  handle(line.cmd);
}

void Client::resume() {
  blocked_ = false;
  while (!held_.empty() && !blocked_ && !stopped_ && !ended_) {
    auto line = std::move(held_.front());
    held_.pop_front();
    dispatch(line);
  }
  if (blocked_ || ended_) return;
  transport_.resumed();
}

void Client::write_done() {
  if (--pending_writes_ == 0 && blocked_on_writes_) {
    blocked_on_writes_ = false;
    if (!ended_) resume();
  }
}

bool Client::take_token() {
  const auto& limits = ctx_.cfg.limits;
  if (limits.rate == 0) return true;
  return bucket_.take(static_cast<double>(limits.rate), static_cast<double>(limits.burst),
                      std::chrono::steady_clock::now());
}

service::Post Client::poster() {
  return [hold = transport_.hold(), &t = transport_](std::function<void()> fn) { t.post(std::move(fn)); };
}

void Client::check_expiry(std::chrono::system_clock::time_point wall) {
  if (who_.expires != 0 && wall >= std::chrono::system_clock::time_point(std::chrono::seconds(who_.expires)))
    transport_.close(protocol::close_code::token_expired, "token expired");
}

void Client::stop() {
  stopped_ = true;
  held_.clear();
}

void Client::end() {
  if (ended_) return;
  ended_ = stopped_ = true;
  held_.clear();
  for (auto& [name, s] : subs_) {
    if (s.pending) continue;
    metrics_.subscriptions.fetch_sub(1, std::memory_order_relaxed);
    ctx_.channels.unsubscribe(*s.channel, worker_.index(), no_, s.member, s.presence);
    worker_.remove_subscriber(s.channel.get(), this);
  }
  subs_.clear();
}

}  // namespace rtsync::server
