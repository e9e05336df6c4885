// What goes into a page of `list` (docs/protocol.md, section 6, *Queries*), the same on both backends.
// Internal to src/store.
//
// Keyset paging as of the first page. A cursor holds the first page's coll:NAME offset S and the last
// row's sort keys as of S, and every later page places each document where it was at S: placed where it
// is now, a document whose ordered attributes changed meanwhile would be missed (it moved behind the
// cursor) or returned twice (it moved ahead). The change feed tells which documents changed after S, and
// the first change of each (its `prev`) what it was at S. So a later page merges, in the order, two
// sorted streams past the cursor:
//   - the documents unchanged since S: the SQL with the changed ids excluded (their keys now are their
//     keys at S);
//   - the changed ones that existed and matched at S, by their keys at S, each with its current text if
//     it still exists and matches (if not, the feed tells of it: a subscriber misses nothing).
// A document created, or first matching, after S is in no later page: `sub` since S brings it. This
// needs the whole feed since S: a cursor whose changes the feed no longer keeps (history_size), or more
// than kMaxPagingChanges of them, has expired, and the client lists again from the first page.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "query/query.hpp"
#include "store/store.hpp"

namespace rtsync::store::detail {

// A publication of coll:NAME: its offset, data and prev (core::Publication).
struct FeedChange {
  std::uint64_t offset = 0;
  std::string data;
  std::string prev;
};

// A document changed since the paging's start, at its place then, with its text now.
struct Placed {
  query::Keys keys;
  std::string doc;
};

// The documents changed since a cursor's offset, as a page after that cursor needs them.
class Changed {
 public:
  // Whether a page after `c`, at the position of `r` (its offset and epoch), needs the feed since c.offset
  // (else nothing changed since, or the cursor has expired).
  static bool needs_feed(const query::Cursor& c, const ListResult& r);
  // `feed`: coll:NAME's kept publications after the cursor's offset, ascending (empty unless needs_feed).
  Changed(const ListQuery& q, const ListResult& r, const std::vector<FeedChange>& feed);

  bool expired() const { return expired_; }
  // The ids changed since, as a JSON array for detail::list_sql's `excluded`; empty when none.
  const std::string& excluded() const { return excluded_; }
  // The ids of the changed documents that matched at the cursor's offset and sorted past the cursor
  // then, as a JSON array (detail::id_in); empty when none.
  const std::string& placed_ids() const { return placed_ids_; }
  // Those documents that still exist and match, from their current texts (any order; a missing one was
  // deleted), in the order of their keys at the cursor's offset.
  std::vector<Placed> place(const ListQuery& q, const std::vector<std::string>& current) const;

 private:
  bool expired_ = false;
  std::string excluded_;
  std::string placed_ids_;
  std::unordered_map<std::string, query::Keys> at_;  // by id: the keys of the placed ones at the offset
};

// Fills a ListResult (whose offset, epoch and paging are set) with the rows of the SQL and the placed
// documents, decides where the page ends (the query's limit, query::kMaxPageBytes) and sets its `next`.
class PageFill {
 public:
  PageFill(const ListQuery& q, ListResult& r, std::vector<Placed> placed = {});
  // The next row past the cursor (unchanged since the paging's start) and its sort keys; false once the
  // page is complete (read no more rows).
  bool offer(std::string doc, query::Keys keys);
  // After the last row: the placed documents left.
  void finish();

 private:
  bool put(std::string doc, query::Keys keys);

  const ListQuery& q_;
  ListResult& r_;
  std::vector<Placed> placed_;
  std::size_t next_placed_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace rtsync::store::detail
