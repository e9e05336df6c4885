// A live filtered view of a collection (docs/protocol.md §6, "Live filtered views"): a subscriber of
// coll:NAME with a `where` receives only the changes of documents that matched it before or after the
// change, each as the view sees it: an upsert of a document that matches after it; a `leave`
// ({"type":"leave","id":…,"_v":N}) of one that matched before and no longer does; a delete of one that
// matched. Live pushes (server::Worker) and recovery (the `sub` reply) judge the same way, so a view
// recovered with `since` got exactly what it would have got live.
//
// A change publication holds the document after it (its data) and before it (Publication::prev). The
// worker parses both once per delivery (Change), however many views of the channel it serves.
#pragma once

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <vector>

#include "core/frame.hpp"
#include "core/publication.hpp"
#include "query/query.hpp"

namespace rtsync::service {

namespace json = boost::json;

struct LiveView {
  std::string channel;  // coll:NAME
  query::Where where;
};

// One change-feed publication, parsed on first use.
class Change {
 public:
  explicit Change(const core::Publication& pub) : pub_(pub) {}
  const core::Publication& pub() const { return pub_; }
  // The document after the change (none for a delete), and before it (none for a create).
  const json::object* after();
  const json::object* before();
  bool is_delete();
  // The publication a view that the document left receives instead (made once).
  const core::PublicationPtr& leave();

 private:
  void parse();
  const core::Publication& pub_;
  bool parsed_ = false;
  bool delete_ = false;
  std::optional<json::object> after_, before_;
  core::PublicationPtr leave_;
};

enum class Verdict : std::uint8_t { skip, pass, leave };
// What a view with `where` receives of `change`. A delete without a previous document (history written
// before the store kept prev) passes: telling a view of a delete it did not need is harmless.
Verdict judge(const query::Where& where, Change& change);

// The recovered publications of a `sub` as `view` sees them (in order; leaves in place of the change).
std::vector<core::PublicationPtr> view_of(const LiveView& view, const std::vector<core::PublicationPtr>& pubs);

}  // namespace rtsync::service
