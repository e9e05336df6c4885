// PubNub Access Manager (docs/pubnub.md, section 7.7): the tokens rtsync grants with [pubnub] secret_key
// (protocol/pubnub_token.hpp) and their revocations. A token is checked on every request that carries it,
// in memory: its signature, its expiry, and the revocations this node knows. Those it made itself count at
// once; those of other nodes of a cluster (which share them through the store) once refresh() read them,
// which the server does every kRefreshEvery; all of them from the start, since load() reads them before
// the server serves.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "protocol/pubnub_token.hpp"
#include "service/channels.hpp"
#include "store/store.hpp"

namespace rtsync::service {

class PubnubTokens {
 public:
  static constexpr auto kRefreshEvery = std::chrono::seconds(2);

  // `secret_key` empty: Access Manager is off (enabled() false; check() knows no token).
  PubnubTokens(store::Store& store, std::string secret_key);

  bool enabled() const { return !key_.empty(); }
  const std::string& key() const { return key_; }

  // A new token for the grant (with a nonce of its own).
  std::string issue(protocol::pam::Grant g) const;

  struct Checked {
    bool token = false;  // a token of rtsync's format (false: something else, e.g. a PAM v2 auth key)
    std::shared_ptr<const protocol::pam::Grant> grant;  // in force: its grant
    std::string id;      // the token's id (a revocation names it)
    std::string why;     // (token, no grant) why it is refused: bad signature, expired, revoked
  };
  // Any thread.
  Checked check(std::string_view token, std::int64_t now_ms) const;

  // Revokes a token in force (check() gave it a grant); `done(ok)` runs through `post` after the commit,
  // from when on no request of this node is let through with it.
  void revoke(const Checked& t, const Post& post, std::function<void(bool ok)> done);

  // Reads the store's revocations, waiting for them (before serving: false when the store failed), or in
  // the background (at most one read at a time).
  bool load();
  void refresh();

 private:
  void replace(std::vector<std::string> tokens);

  store::Store& store_;
  const std::string key_;
  mutable std::mutex mu_;
  std::unordered_set<std::string> revoked_;
  // Tokens already verified, by their text: a request then costs a lookup, not a signature and its
  // patterns' compilation. Bounded: cleared when full.
  mutable std::unordered_map<std::string, protocol::pam::Verified> verified_;
  bool refreshing_ = false;
};

}  // namespace rtsync::service
