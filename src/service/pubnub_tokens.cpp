// PubNub Access Manager tokens and their revocations. See pubnub_tokens.hpp.
#include "service/pubnub_tokens.hpp"

#include <future>
#include <utility>
#include <variant>

#include "common/random.hpp"

namespace rtsync::service {

namespace {
constexpr std::size_t kMaxVerified = 4096;
}  // namespace

PubnubTokens::PubnubTokens(store::Store& store, std::string secret_key) : store_(store), key_(std::move(secret_key)) {}

std::string PubnubTokens::issue(protocol::pam::Grant g) const {
  g.nonce = common::random_hex(8);
  return protocol::pam::issue(g, key_);
}

PubnubTokens::Checked PubnubTokens::check(std::string_view token, std::int64_t now_ms) const {
  Checked c;
  if (!enabled()) return c;
  protocol::pam::Verified v;
  {
    const std::lock_guard lk(mu_);
    if (auto it = verified_.find(std::string(token)); it != verified_.end()) v = it->second;
  }
  if (!v.grant) {
    auto result = protocol::pam::verify(token, key_);
    if (auto* why = std::get_if<std::string>(&result)) {
      // Not even a token (something else given as `auth`) is not ours to refuse.
      c.token = *why != "malformed";
      c.why = *why;
      return c;
    }
    v = std::get<protocol::pam::Verified>(std::move(result));
    const std::lock_guard lk(mu_);
    if (verified_.size() >= kMaxVerified) verified_.clear();
    verified_.emplace(std::string(token), v);
  }
  c.token = true;
  c.id = v.id;
  if (v.grant->expires_ms() <= now_ms) {
    c.why = "expired";
    return c;
  }
  {
    const std::lock_guard lk(mu_);
    if (revoked_.contains(v.id)) {
      c.why = "revoked";
      return c;
    }
  }
  c.grant = std::move(v.grant);
  return c;
}

void PubnubTokens::revoke(const Checked& t, const Post& post, std::function<void(bool)> done) {
  store::TokenRevocation r{t.id, t.grant->expires_ms()};
  store_.revoke_token(std::move(r), [this, id = t.id, post, done = std::move(done)](store::RevocationResult res) {
    // On the store's thread, in queue order with refresh()'s reads: one queued after this commit has it.
    if (res.ok) {
      const std::lock_guard lk(mu_);
      revoked_.insert(id);
    }
    post([done, ok = res.ok] { done(ok); });
  });
}

void PubnubTokens::replace(std::vector<std::string> tokens) {
  const std::lock_guard lk(mu_);
  revoked_ = std::unordered_set<std::string>(std::make_move_iterator(tokens.begin()), std::make_move_iterator(tokens.end()));
  refreshing_ = false;
}

bool PubnubTokens::load() {
  std::promise<store::RevocationsResult> read;
  store_.read_revocations([&read](store::RevocationsResult r) { read.set_value(std::move(r)); });
  auto r = read.get_future().get();
  if (r.ok) replace(std::move(r.tokens));
  return r.ok;
}

void PubnubTokens::refresh() {
  {
    const std::lock_guard lk(mu_);
    if (refreshing_) return;
    refreshing_ = true;
  }
  store_.read_revocations([this](store::RevocationsResult r) {
    if (r.ok) return replace(std::move(r.tokens));
    const std::lock_guard lk(mu_);
    refreshing_ = false;  // the store reports its failure itself; the next refresh tries again
  });
}

}  // namespace rtsync::service
