// Collection rules, document validation and the store round trip. See collections.hpp.
#include "service/collections.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/format.h>

#include <algorithm>

#include "core/channel_name.hpp"

namespace rtsync::service {

using protocol::Code;
using protocol::Error;
using Op = store::DocWrite::Op;
namespace json = boost::json;

namespace {

constexpr std::size_t max_attribute_name = 128;

// Document ids share the channel-name alphabet, so an id can always be named in URLs and channels.
bool valid_doc_id(std::string_view id) { return core::valid_channel_name(id); }

std::string allowed_list(const std::vector<std::int64_t>& values) {
  std::string out;
  for (std::size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + std::to_string(values[i]);
  return out;
}

std::optional<std::uint64_t> as_version(const json::value& v) {
  if (auto* i = v.if_int64(); i && *i >= 0) return static_cast<std::uint64_t>(*i);
  if (auto* u = v.if_uint64()) return *u;
  return std::nullopt;
}

std::string_view op_name(Op op) {
  switch (op) {
    case Op::create: return "create";
    case Op::update: return "update";
    case Op::patch: return "patch";
    case Op::remove: return "delete";
  }
  return "create";
}

std::string server_me() { return "the Server API names documents by their id (\"me\" is a user's own)"; }

}  // namespace

std::variant<store::DocWrite, Error> prepare_write(const config::CollectionConfig& rules, std::size_t history_size,
                                                   const Caller& caller, WriteRequest req) {
  if (rules.write == config::CollectionConfig::Write::none && !caller.server)
    return Error{Code::permission_denied, fmt::format("clients may not write to collection \"{}\"", req.collection)};

  std::string id = std::move(req.id);
  if (caller.server && id == "me") return Error{Code::bad_request, server_me()};
  if (id == "me") {
    if (!rules.per_user)
      return Error{Code::bad_request, "\"me\" names a document only in per_user collections"};
    id = caller.user;
  }
  if (auto* given = req.data.if_contains("id")) {
    if (!given->is_string()) return Error{Code::invalid, "\"id\" must be a string"};
    std::string named(given->get_string());
    if (named == "me" && caller.server) return Error{Code::bad_request, server_me()};
    if (named == "me" && rules.per_user) named = caller.user;
    if (!valid_doc_id(named)) return Error{Code::bad_request, "document ids are 1-128 characters of A-Za-z0-9_.:@-"};
    if (req.op == Op::create && id.empty()) {
      id = std::move(named);
    } else if (named != id) {
      return Error{Code::invalid, "\"id\" in the data differs from the document's id"};
    }
    req.data.erase("id");
  }
  if (rules.per_user && caller.server && id.empty())
    return Error{Code::bad_request, "the Server API names a per_user document by its user's id"};
  if (rules.per_user && !caller.server) {
    if (req.op == Op::create && id.empty()) id = caller.user;
    if (id != caller.user)
      return Error{Code::permission_denied, "in a per_user collection only your own document can be written"};
  }
  if (req.op != Op::create && id.empty()) return Error{Code::bad_request, "\"doc\" (the document id) is required"};
  if (!id.empty() && !valid_doc_id(id))
    return Error{Code::bad_request, "document ids are 1-128 characters of A-Za-z0-9_.:@-"};

  // Reserved attributes: _v is the expected version; _owner and id may be echoed back unchanged (a
  // Backbone model sends what it fetched); any other _name is the server's.
  std::optional<std::string> echo_owner;
  for (auto it = req.data.begin(); it != req.data.end();) {
    std::string_view name = it->key();
    if (name.empty() || name.size() > max_attribute_name)
      return Error{Code::invalid, "attribute names are 1-128 characters"};
    if (name.front() != '_') {
      ++it;
      continue;
    }
    if (name == "_v") {
      auto v = as_version(it->value());
      if (!v) return Error{Code::invalid, "\"_v\" must be a non-negative integer"};
      if (!req.expected_v) req.expected_v = v;
    } else if (name == "_owner") {
      // Checked against the stored owner in the write's transaction.
      if (!it->value().is_string()) return Error{Code::invalid, "\"_owner\" is set by the server"};
      echo_owner = std::string(it->value().get_string());
    } else {
      return Error{Code::invalid, fmt::format("attribute names starting with '_' are reserved: \"{}\"", name)};
    }
    it = req.data.erase(it);
  }

  if (!rules.tally.empty() && req.op != Op::remove) {
    for (const auto& kv : req.data) {
      if (!rules.tally_group.empty() && kv.key() == rules.tally_group) {
        if (kv.value().is_null() && req.op == Op::patch) continue;  // leaves its group
        if (!kv.value().is_string() || !store::valid_tally_group(kv.value().get_string()))
          return Error{Code::invalid, fmt::format("\"{}\" (the tally group) must be a string of 1-{} characters of "
                                                  "A-Za-z0-9_.@-", rules.tally_group, store::kMaxTallyGroup)};
        continue;
      }
      auto field = rules.tally.find(std::string(kv.key()));
      if (field == rules.tally.end())
        return Error{Code::invalid, fmt::format("\"{}\" is not a field of collection \"{}\"", std::string_view(kv.key()),
                                                req.collection)};
      if (kv.value().is_null() && req.op == Op::patch) continue;  // removes the answer
      const auto& allowed = field->second;
      auto* n = kv.value().if_int64();
      if (!n || std::find(allowed.begin(), allowed.end(), *n) == allowed.end())
        return Error{Code::invalid, fmt::format("\"{}\" must be one of {}", std::string_view(kv.key()), allowed_list(allowed))};
    }
  }
  if (req.op == Op::remove) req.data.clear();
  if (json::serialize(req.data).size() > store::kMaxDocument)
    return Error{Code::too_large, "documents are at most 64 KiB of JSON"};

  store::DocWrite w;
  w.op = req.op;
  w.collection = std::move(req.collection);
  w.id = std::move(id);
  // A per_user document belongs to the user it is named after, whoever writes it.
  w.user = caller.server && rules.per_user ? w.id : caller.user;
  w.expected_v = req.expected_v;
  // An update of a missing document creates it (the checks above are those of a create too).
  w.upsert = req.op == Op::update;
  w.echo_owner = std::move(echo_owner);
  w.data = std::move(req.data);
  w.owner_only = rules.write == config::CollectionConfig::Write::owner && !caller.server;
  w.owner_audience = rules.read == config::CollectionConfig::Read::owner;
  w.tally = rules.tally;
  w.tally_group = rules.tally_group;
  w.history_size = history_size;
  w.key = std::move(req.key);
  w.outbox = std::move(req.outbox);
  return w;
}

WriteRequest write_request(protocol::WriteRequest r) {
  WriteRequest w;
  switch (r.op) {
    case protocol::WriteOp::create: w.op = Op::create; break;
    case protocol::WriteOp::update: w.op = Op::update; break;
    case protocol::WriteOp::patch: w.op = Op::patch; break;
    case protocol::WriteOp::remove: w.op = Op::remove; break;
  }
  w.collection = std::move(r.coll);
  w.id = std::move(r.doc);
  w.data = std::move(r.data);
  w.expected_v = r.v;
  w.key = std::move(r.key);
  return w;
}

Collections::Collections(const config::Config& cfg, store::Store& store, broker::Broker& broker,
                         const BackendHooks* hooks)
    : cfg_(cfg), store_(store), broker_(broker), hooks_(hooks) {}

namespace {
Error no_collection(const std::string& name) { return Error{Code::not_found, fmt::format("no collection \"{}\"", name)}; }
Error store_down() { return Error{Code::unavailable, "the store is unavailable"}; }

// A stored document's `_owner` (the store writes it into every document's text).
std::string owner_of(std::string_view doc) {
  boost::system::error_code ec;
  auto v = json::parse(doc, ec);
  const json::value* owner = !ec && v.is_object() ? v.get_object().if_contains("_owner") : nullptr;
  return owner && owner->is_string() ? std::string(owner->get_string()) : std::string();
}

// What a write's reply says of a document the caller may not read: that the write took, and its version.
std::string version_only(const std::string& id, std::uint64_t v) {
  json::object o;
  o["id"] = id;
  o["_v"] = v;
  return json::serialize(o);
}

enum class Access : std::uint8_t { read, write };

// A token's caps name the collections it may read (list, get, tally) and write; caps that name none
// reach none. Without caps, the collection's own rules decide.
std::optional<Error> check_caps(const Caller& caller, const std::string& collection, Access access) {
  if (!caller.caps) return std::nullopt;
  const auto& patterns = access == Access::read ? caller.caps->read : caller.caps->write;
  if (protocol::jwt::match_any(patterns, collection)) return std::nullopt;
  return Error{Code::permission_denied,
               fmt::format("the token's caps do not allow {} collection \"{}\"",
                           access == Access::read ? "reading" : "writing to", collection)};
}
}  // namespace

void Collections::write(const Caller& caller, WriteRequest req, const Post& post,
                        std::function<void(WriteOutcome)> done) {
  auto rules = cfg_.collections.find(req.collection);
  if (rules == cfg_.collections.end()) return done(WriteOutcome{no_collection(req.collection)});
  if (auto e = check_caps(caller, req.collection, Access::write)) return done(WriteOutcome{std::move(*e)});
  const bool decided = decided_by_backend(req.collection, caller);
  auto prepared = prepare_write(rules->second, cfg_.channels.history_size, caller, decided ? req : std::move(req));
  if (auto* e = std::get_if<Error>(&prepared)) return done(WriteOutcome{std::move(*e)});
  auto w = std::move(std::get<store::DocWrite>(prepared));
  if (!decided) return commit(caller, std::move(w), post, std::move(done));
  // The backend sees the write once the rules passed, as it would be stored (`me` resolved); what it puts
  // in place of the data passes the rules again. Its answer comes on the hook client's thread.
  const json::value data = w.op == Op::remove ? json::value(nullptr) : json::value(w.data);
  const std::string collection = w.collection, id = w.id;  // the lambda below takes `w`
  const auto op = op_name(w.op);
  const auto expected_v = w.expected_v;
  hooks_->write(caller, collection, id, op, data, expected_v,
                [this, &rules = rules->second, caller, req = std::move(req), w = std::move(w), post,
                 done = std::move(done)](HookVerdict v) mutable {
                  auto posted = [post, done](WriteOutcome out) { post([done, out = std::move(out)] { done(out); }); };
                  if (v.error) return posted(WriteOutcome{std::move(*v.error)});
                  if (v.data) {
                    req.id = w.id;
                    req.data = std::move(v.data->as_object());
                    req.expected_v = w.expected_v;
                    auto again = prepare_write(rules, cfg_.channels.history_size, caller, std::move(req));
                    if (auto* e = std::get_if<Error>(&again)) return posted(WriteOutcome{std::move(*e)});
                    auto echo_owner = std::move(w.echo_owner);
                    w = std::move(std::get<store::DocWrite>(again));
                    if (!w.echo_owner) w.echo_owner = std::move(echo_owner);
                  }
                  commit(caller, std::move(w), post, std::move(done));
                });
}

void Collections::commit(const Caller& caller, store::DocWrite w, const Post& post,
                         std::function<void(WriteOutcome)> done) {
  const bool owner_reads = cfg_.collections.at(w.collection).read == config::CollectionConfig::Read::owner;
  const std::string name = w.collection;
  const std::string id = w.id;
  const bool create = w.op == Op::create || (w.op == Op::update && w.expected_v == 0u);
  store_.write(std::move(w), [this, name, id, create, owner_reads, user = caller.user, server = caller.server, post,
                              done = std::move(done)](store::DocResult r) {
    WriteOutcome out;
    using S = store::DocResult::Status;
    // A reply carries a document only to a caller who may read it: with read = "owner", another user's
    // document (one they may write, or whose id they guessed) must not leak through the reply.
    const bool visible = server || !owner_reads || r.doc.empty() || r.doc == "null" || owner_of(r.doc) == user;
    switch (r.status) {
      case S::ok:
        // Change first, then the tally that includes it: a client applying both stays consistent.
        if (r.change) broker_.publish("coll:" + name, r.change);
        if (r.tally) broker_.publish("tally:" + name, r.tally);
        for (auto& g : r.group_tallies) broker_.publish(g.channel, std::move(g.pub));
        out.doc = visible ? std::move(r.doc) : version_only(id, r.v);
        out.v = r.v;
        break;
      case S::conflict: {
        std::string message = create                ? fmt::format("document \"{}\" already exists", id)
                              : r.doc == "null"     ? std::string("the document no longer exists")
                                                    : std::string("the document changed since the version given");
        if (visible) {
          out.current = r.doc.empty() ? "null" : r.doc;
          out.error = Error{Code::conflict, std::move(message), "\"doc\":" + out.current};
        } else {
          out.error = Error{Code::conflict, std::move(message)};
        }
        break;
      }
      case S::not_found:
        out.error = Error{Code::not_found, fmt::format("no document \"{}\" in \"{}\"", id, name)};
        break;
      case S::permission_denied:
        out.error = Error{Code::permission_denied, "only the document's owner may change it"};
        break;
      case S::invalid:
        out.error = Error{Code::invalid, std::move(r.error)};
        break;
      case S::too_large:
        out.error = Error{Code::too_large, "documents are at most 64 KiB of JSON"};
        break;
      case S::expired:
        out.error = outbox_expired();
        break;
      case S::failed:  // logged by the store, which rate-limits its error lines
        out.error = store_down();
        break;
    }
    post([done, out = std::move(out)] { done(out); });
  });
}

void Collections::list(const Caller& caller, const std::string& collection, query::Query q, const Post& post,
                       std::function<void(ListOutcome)> done) {
  auto rules = cfg_.collections.find(collection);
  if (rules == cfg_.collections.end()) return done(ListOutcome{no_collection(collection)});
  if (auto e = check_caps(caller, collection, Access::read)) return done(ListOutcome{std::move(*e)});
  std::string owner = rules->second.read == config::CollectionConfig::Read::owner && !caller.server ? caller.user : "";
  store_.list(store::ListQuery{collection, std::move(owner), std::move(q)}, [post, done = std::move(done)](store::ListResult r) {
    ListOutcome out;
    if (!r.ok) {
      out.error = store_down();
    } else if (r.expired) {
      out.error = Error{Code::expired, fmt::format("after: the cursor has expired (more than {} changes since its "
                                                   "first page, or more than the change feed keeps); list again "
                                                   "from the first page", store::kMaxPagingChanges)};
    } else {
      out.docs = std::move(r.docs);
      out.keys = std::move(r.keys);
      out.next = std::move(r.next);
      out.offset = r.offset;
      out.epoch = std::move(r.epoch);
      out.paging = r.paging;
    }
    post([done, out = std::move(out)] { done(out); });
  });
}

bool fit_page(ListOutcome& page, const query::Query& q, std::size_t max_bytes) {
  std::size_t bytes = 2;  // [ and ]
  std::size_t keep = 0;
  while (keep < page.docs.size() && bytes + page.docs[keep].size() + 1 <= max_bytes) bytes += page.docs[keep++].size() + 1;
  if (keep == page.docs.size()) return true;
  if (keep == 0) return false;
  page.docs.resize(keep);
  page.keys.resize(keep);
  page.next = query::next_cursor(q.where, q.order, query::Cursor{page.keys.back(), page.paging, page.epoch});
  return true;
}

void Collections::get(const Caller& caller, const std::string& collection, const std::string& id, const Post& post,
                      std::function<void(DocOutcome)> done) {
  auto rules = cfg_.collections.find(collection);
  if (rules == cfg_.collections.end()) return done(DocOutcome{no_collection(collection)});
  if (auto e = check_caps(caller, collection, Access::read)) return done(DocOutcome{std::move(*e)});
  std::string doc_id = (id == "me" && rules->second.per_user) ? caller.user : id;
  if (!valid_doc_id(doc_id))
    return done(DocOutcome{Error{Code::bad_request, "document ids are 1-128 characters of A-Za-z0-9_.:@-"}});
  const bool owner_only = rules->second.read == config::CollectionConfig::Read::owner && !caller.server;
  store_.get(collection, doc_id, [post, done = std::move(done), owner_only, user = caller.user, doc_id,
                                  collection](store::GetResult r) {
    DocOutcome out;
    if (!r.ok) {
      out.error = store_down();
    } else if (!r.found) {
      out.error = Error{Code::not_found, fmt::format("no document \"{}\" in \"{}\"", doc_id, collection)};
    } else if (owner_only && r.owner != user) {
      out.error = Error{Code::permission_denied, "this document belongs to another user"};
    } else {
      out.doc = std::move(r.doc);
    }
    post([done, out = std::move(out)] { done(out); });
  });
}

void Collections::tally(const Caller& caller, const std::string& collection, const std::string& group,
                        const Post& post, std::function<void(TallyOutcome)> done) {
  auto rules = cfg_.collections.find(collection);
  if (rules == cfg_.collections.end()) return done(TallyOutcome{no_collection(collection)});
  if (auto e = check_caps(caller, collection, Access::read)) return done(TallyOutcome{std::move(*e)});
  if (rules->second.tally.empty())
    return done(TallyOutcome{Error{Code::not_found, fmt::format("collection \"{}\" has no tally", collection)}});
  store::TallyQuery q{collection, rules->second.tally, "", ""};
  if (!group.empty()) {
    if (rules->second.tally_group.empty())
      return done(TallyOutcome{Error{Code::bad_request, fmt::format("collection \"{}\" has no tally_group", collection)}});
    if (!store::valid_tally_group(group))
      return done(TallyOutcome{Error{Code::bad_request, fmt::format("\"group\" must be 1-{} characters of A-Za-z0-9_.@-",
                                                                    store::kMaxTallyGroup)}});
    q.group_by = rules->second.tally_group;
    q.group = group;
  }
  store_.tally(std::move(q), [post, done = std::move(done)](store::TallyResult r) {
    TallyOutcome out;
    if (!r.ok) {
      out.error = store_down();
    } else {
      out.tally = std::move(r.tally);
      out.offset = r.offset;
      out.epoch = std::move(r.epoch);
    }
    post([done, out = std::move(out)] { done(out); });
  });
}

}  // namespace rtsync::service
