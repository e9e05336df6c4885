// Collection operations shared by WebSocket and REST (PROTOCOL §5): the rules of each declared
// collection (read, write, per_user, tally), validation of documents, and the store round trip. After a
// write commits, its change (coll:NAME) and the new tally (tally:NAME) go to the broker, so subscribers
// see them in commit order.
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "broker/broker.hpp"
#include "config/config.hpp"
#include "protocol/errors.hpp"
#include "protocol/requests.hpp"
#include "service/backend_hooks.hpp"
#include "service/channels.hpp"
#include "store/store.hpp"

namespace rtsync::service {

struct WriteRequest {
  store::DocWrite::Op op = store::DocWrite::Op::create;
  std::string collection;
  std::string id;                           // as the client gave it ("me" allowed); empty on create
  boost::json::object data;                 // the client's attributes (may hold id, _v, _owner)
  std::optional<std::uint64_t> expected_v;  // from `v` / If-Match; `_v` in data is the fallback
  std::string key;
  std::optional<store::Outbox> outbox;      // an outbox write (then without key)
};

// A decoded WebSocket write (protocol/requests.hpp) as the service takes it.
WriteRequest write_request(protocol::WriteRequest r);

// ok: the document JSON text (create/update/patch) or, for delete, the version. A document the caller
// may not read (read = "owner", another user's) is never in an outcome: `doc` is then only {"id","_v"},
// and a conflict carries no document.
struct WriteOutcome {
  std::optional<protocol::Error> error;  // conflict: extra holds "doc":{…} when `current` is set
  std::string doc{};
  std::uint64_t v = 0;
  std::string current{};                 // conflict: the current document or "null"; empty: not readable
};

struct ListOutcome {
  std::optional<protocol::Error> error;
  std::vector<std::string> docs{};
  std::vector<query::Keys> keys{};    // each document's place in the paging (store::ListResult::keys)
  std::optional<std::string> next{};  // the cursor of the next page; none on the last
  std::uint64_t offset = 0;
  std::string epoch{};
  std::uint64_t paging = 0;           // store::ListResult::paging
};

// Cuts a page so that its documents' JSON takes at most `max_bytes` (a reply must fit the connection's
// outbound queue), setting `next` to continue after the last one kept. False when not even one fits.
bool fit_page(ListOutcome& page, const query::Query& q, std::size_t max_bytes);

struct DocOutcome {
  std::optional<protocol::Error> error;
  std::string doc{};
};

struct TallyOutcome {
  std::optional<protocol::Error> error;
  std::string tally{};
  std::uint64_t offset = 0;
  std::string epoch{};
};

class Collections {
 public:
  // `hooks`: the app's backend's proxy hooks (its write hook decides writes to what it names); null: none.
  Collections(const config::Config& cfg, store::Store& store, broker::Broker& broker, const BackendHooks* hooks);

  // Every `done` runs on the caller's thread, through `post`.
  // A write to a collection the write hook decides (decided_by_backend) is asked of the app's backend
  // once it passed the rules: it may refuse it (refused) or replace its data, which passes them again.
  void write(const Caller& caller, WriteRequest req, const Post& post, std::function<void(WriteOutcome)> done);
  bool decided_by_backend(std::string_view collection, const Caller& caller) const {
    return hooks_ && !caller.server && hooks_->decides_write(collection);
  }
  void list(const Caller& caller, const std::string& collection, query::Query q, const Post& post,
            std::function<void(ListOutcome)> done);
  void get(const Caller& caller, const std::string& collection, const std::string& id, const Post& post,
           std::function<void(DocOutcome)> done);
  // The collection's tally, or with a `group` (its tally_group's value) that group's; empty: the whole.
  void tally(const Caller& caller, const std::string& collection, const std::string& group, const Post& post,
             std::function<void(TallyOutcome)> done);

 private:
  // Queues a prepared write on the store; `done` is posted back after the commit.
  void commit(const Caller& caller, store::DocWrite w, const Post& post, std::function<void(WriteOutcome)> done);

  const config::Config& cfg_;
  store::Store& store_;
  broker::Broker& broker_;
  const BackendHooks* hooks_;
};

// Checks a write against the collection's rules and normalizes it into a store::DocWrite: resolves
// `me`, takes `id`, `_v` and `_owner` out of the data, validates ids, reserved names, tally fields and
// values, and the document size. Exposed for unit tests.
std::variant<store::DocWrite, protocol::Error> prepare_write(const config::CollectionConfig& rules,
                                                              std::size_t history_size, const Caller& caller,
                                                              WriteRequest req);

}  // namespace rtsync::service
