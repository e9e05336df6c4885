// Live filtered views. See live_view.hpp.
#include "service/live_view.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace rtsync::service {

namespace json = boost::json;

void Change::parse() {
  parsed_ = true;
  boost::system::error_code ec;
  auto data = json::parse(pub_.data, ec);
  if (!ec && data.is_object()) {
    auto& o = data.get_object();
    const auto* type = o.if_contains("type");
    delete_ = type && type->is_string() && type->get_string() == "delete";
    if (auto* doc = o.if_contains("doc"); doc && doc->is_object()) after_ = std::move(doc->get_object());
  }
  if (!pub_.prev.empty()) {
    auto prev = json::parse(pub_.prev, ec);
    if (!ec && prev.is_object()) before_ = std::move(prev.get_object());
  }
}

const json::object* Change::after() {
  if (!parsed_) parse();
  return after_ ? &*after_ : nullptr;
}

const json::object* Change::before() {
  if (!parsed_) parse();
  return before_ ? &*before_ : nullptr;
}

bool Change::is_delete() {
  if (!parsed_) parse();
  return delete_;
}

const core::PublicationPtr& Change::leave() {
  if (!leave_) {
    json::object l;
    l["type"] = "leave";
    const json::object* doc = after();
    if (doc) {
      if (auto* id = doc->if_contains("id")) l["id"] = *id;
      if (auto* v = doc->if_contains("_v")) l["_v"] = *v;
    }
    auto pub = std::make_shared<core::Publication>(pub_);
    pub->data = json::serialize(l);
    pub->prev.clear();
    leave_ = std::move(pub);
  }
  return leave_;
}

Verdict judge(const query::Where& where, Change& change) {
  const json::object* before = change.before();
  if (change.is_delete()) return !before || query::matches(where, *before) ? Verdict::pass : Verdict::skip;
  const json::object* after = change.after();
  if (!after) return Verdict::skip;  // not a change of a document (a coll: channel only carries those)
  if (query::matches(where, *after)) return Verdict::pass;
  return before && query::matches(where, *before) ? Verdict::leave : Verdict::skip;
}

std::vector<core::PublicationPtr> view_of(const LiveView& view, const std::vector<core::PublicationPtr>& pubs) {
  std::vector<core::PublicationPtr> out;
  for (const auto& pub : pubs) {
    Change change(*pub);
    switch (judge(view.where, change)) {
      case Verdict::skip: break;
      case Verdict::pass: out.push_back(pub); break;
      case Verdict::leave: out.push_back(change.leave()); break;
    }
  }
  return out;
}

}  // namespace rtsync::service
