#include "store/store_paging.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <unordered_set>
#include <utility>

namespace rtsync::store::detail {

namespace json = boost::json;

namespace {

// The object a text holds, or null.
json::value parse_doc(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  return ec || !v.is_object() ? json::value() : std::move(v);
}

std::string string_of(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

// The id a change is about: its previous document's, else (a create) the new one's.
std::string changed_id(const FeedChange& c, json::value& prev) {
  if (const auto* p = prev.if_object()) return string_of(*p, "id");
  const json::value data = parse_doc(c.data);
  const json::object* o = data.if_object();
  const json::value* doc = o ? o->if_contains("doc") : nullptr;
  if (doc && doc->is_object()) return string_of(doc->get_object(), "id");
  return o ? string_of(*o, "id") : std::string();
}

bool visible(const ListQuery& q, const json::object& doc) {
  return (q.owner.empty() || string_of(doc, "_owner") == q.owner) && query::matches(q.query.where, doc);
}

}  // namespace

bool Changed::needs_feed(const query::Cursor& c, const ListResult& r) {
  return c.epoch == r.epoch && c.offset < r.offset && r.offset - c.offset <= kMaxPagingChanges;
}

Changed::Changed(const ListQuery& q, const ListResult& r, const std::vector<FeedChange>& feed) {
  const query::Cursor& c = *q.query.after;
  // Complete: every offset after the cursor's, up to the page's own, is in the feed.
  expired_ = c.epoch != r.epoch || c.offset > r.offset || r.offset - c.offset > kMaxPagingChanges ||
             feed.size() != r.offset - c.offset || (!feed.empty() && feed.front().offset != c.offset + 1);
  if (expired_ || feed.empty()) return;
  std::unordered_set<std::string> seen;
  json::array changed;
  json::array placed;
  for (const FeedChange& change : feed) {
    json::value prev = change.prev.empty() ? json::value() : parse_doc(change.prev);
    std::string id = changed_id(change, prev);
    if (id.empty() || !seen.insert(id).second) continue;  // only the first change tells the state then
    changed.emplace_back(id);
    const json::object* then = prev.if_object();
    if (!then || !visible(q, *then)) continue;
    query::Keys keys = query::sort_keys(q.query.order, *then);
    if (query::compare(q.query.order, keys, c.keys) <= 0) continue;  // behind the cursor: paged already
    placed.emplace_back(id);
    at_.emplace(std::move(id), std::move(keys));
  }
  if (!changed.empty()) excluded_ = json::serialize(changed);
  if (!placed.empty()) placed_ids_ = json::serialize(placed);
}

std::vector<Placed> Changed::place(const ListQuery& q, const std::vector<std::string>& current) const {
  std::vector<Placed> out;
  for (const std::string& text : current) {
    const json::value doc = parse_doc(text);
    const json::object* o = doc.if_object();
    if (!o || !visible(q, *o)) continue;
    const auto it = at_.find(string_of(*o, "id"));
    if (it != at_.end()) out.push_back(Placed{it->second, text});
  }
  std::sort(out.begin(), out.end(),
            [&](const Placed& a, const Placed& b) { return query::compare(q.query.order, a.keys, b.keys) < 0; });
  return out;
}

PageFill::PageFill(const ListQuery& q, ListResult& r, std::vector<Placed> placed)
    : q_(q), r_(r), placed_(std::move(placed)) {}

bool PageFill::offer(std::string doc, query::Keys keys) {
  for (; next_placed_ < placed_.size(); ++next_placed_) {
    Placed& p = placed_[next_placed_];
    if (query::compare(q_.query.order, p.keys, keys) > 0) break;
    if (!put(std::move(p.doc), std::move(p.keys))) return false;
  }
  return put(std::move(doc), std::move(keys));
}

void PageFill::finish() {
  for (; next_placed_ < placed_.size(); ++next_placed_) {
    Placed& p = placed_[next_placed_];
    if (!put(std::move(p.doc), std::move(p.keys))) return;
  }
}

bool PageFill::put(std::string doc, query::Keys keys) {
  if (r_.next) return false;
  const std::size_t count = r_.docs.size();
  // The page ends at the limit, or before the document that would take it past the byte cut (it holds
  // at least one); this one is then the evidence that a next page exists.
  if (count >= q_.query.limit || (count > 0 && bytes_ + doc.size() > query::kMaxPageBytes)) {
    r_.next = query::next_cursor(q_.query.where, q_.query.order, query::Cursor{r_.keys.back(), r_.paging, r_.epoch});
    return false;
  }
  bytes_ += doc.size();
  r_.docs.push_back(std::move(doc));
  r_.keys.push_back(std::move(keys));
  return true;
}

}  // namespace rtsync::store::detail
