#include "store/store_batch.hpp"

#include <algorithm>
#include <utility>
#include <variant>

#include "common/clock.hpp"

namespace rtsync::store::detail {

namespace {

// Adds (sign +1) or removes (-1) one document's attributes to/from a tally.
void count_doc(TallyState& st, TallyTouch& touch, const json::object& attrs, int sign) {
  for (const auto& kv : attrs) {
    const auto value = tally_value(kv.value());
    if (!value) continue;
    const std::string field(kv.key());
    st.counts[field][*value] += sign;
    touch.deltas[{field, *value}] += sign;
  }
  st.total += sign;
  touch.total_delta += sign;
}

bool declared(const TallyFields& fields, const std::string& field, std::int64_t value) {
  const auto it = fields.find(field);
  return it != fields.end() && std::find(it->second.begin(), it->second.end(), value) != it->second.end();
}

}  // namespace

TallyState read_tally_state(Rows& rows, const std::string& collection) {
  TallyState st;
  if (const auto total = rows.read_total(collection)) {
    st.present = true;
    st.total = *total;
    rows.read_counts(collection, st.counts);
    return st;
  }
  TallyTouch scratch;
  rows.each_doc(collection,
                [&](const std::string& doc) { count_doc(st, scratch, attributes(parse_object(doc)), +1); });
  return st;
}

TallyState& Tallies::counted(const std::string& collection) {
  if (const auto it = states_.find(collection); it != states_.end() && it->second.present) return it->second;
  TallyState st = read_tally_state(rows_, collection);
  if (!st.present) {
    // Stale rows first (an interrupted earlier attempt outside a transaction), the total last: only a
    // complete set of counts ever has a total.
    rows_.delete_counts(collection);
    for (const auto& [field, values] : st.counts) {
      for (const auto& [value, n] : values) {
        if (n != 0) rows_.write_count(collection, field, value, n);
      }
    }
    rows_.write_total(collection, st.total);
    st.present = true;
  }
  return states_.insert_or_assign(collection, std::move(st)).first->second;
}

bool Tallies::known(const std::string& collection) const {
  const auto it = states_.find(collection);
  return it != states_.end() && it->second.present;
}

bool Tallies::drop(const std::string& collection) {
  const auto it = states_.find(collection);
  const bool present = it != states_.end() ? it->second.present : rows_.read_total(collection).has_value();
  if (present) {
    rows_.delete_counts(collection);
    rows_.delete_total(collection);
  }
  states_.insert_or_assign(collection, TallyState{});
  return present;
}

Batch::Batch(Rows& rows, Tallies& tallies) : rows_(rows), tallies_(tallies), now_(common::now_ms()) {}

std::vector<Outcome> Batch::apply(const std::vector<Mutation>& mutations, bool sweep) {
  std::vector<Outcome> results;
  results.reserve(mutations.size());
  for (std::size_t i = 0; i < mutations.size(); ++i) {
    if (const auto* a = std::get_if<PendingAppend>(&mutations[i])) {
      results.emplace_back(append(a->req));
    } else {
      results.emplace_back(write(std::get<PendingWrite>(mutations[i]).w, i));
    }
  }
  finish_tallies(results);
  for (ChannelState* ch : dirty_) finish_channel(*ch);
  if (sweep) {
    rows_.sweep_keys(now_ - kIdempotencyWindowMs);
    rows_.sweep_clients(now_ - kOutboxRetentionMs);
  }
  return results;
}

bool Batch::admit(const std::string& user, const std::optional<Outbox>& outbox) {
  if (!outbox) return true;
  if (!rows_.touch_client(user, outbox->client, now_)) return false;
  if (outbox->settled > 0) rows_.settle_client(user, outbox->client, outbox_key(outbox->client, outbox->settled));
  return true;
}

AppendResult Batch::append(const AppendRequest& req) {
  AppendResult r;
  if (!admit(req.from, req.outbox)) {
    r.expired = true;
    r.error = "the outbox client expired";
    return r;
  }
  r.ok = true;
  const std::optional<KeyRef> key = key_ref(req.from, req.key, req.outbox);
  if (key) {
    // Earlier appends of this batch are in the transaction already: a duplicate within it replays too.
    if (auto replay = rows_.claim_pub_key(*key, now_)) {
      replay->pub->from = req.from;
      r.pub = std::move(replay->pub);
      r.epoch = std::move(replay->epoch);
      r.replayed = true;
      return r;
    }
  }
  ChannelState& ch = rows_.channel(req.channel);
  r.pub = add_pub(ch, append_pub(req), req.history_size);
  if (key) rows_.fill_pub_key(*key, ch, *r.pub, now_);
  ++appended_;
  r.epoch = ch.epoch;
  return r;
}

DocResult Batch::write(const DocWrite& w, std::size_t index) {
  using Op = DocWrite::Op;
  DocResult r;
  if (!admit(w.user, w.outbox)) {
    r.status = DocResult::Status::expired;
    return r;
  }
  const std::optional<KeyRef> key = key_ref(w.user, w.key, w.outbox);
  if (key) {
    if (auto replay = rows_.claim_doc_key(*key, now_)) {
      r.status = DocResult::Status::ok;
      r.doc = std::move(replay->doc);
      r.v = replay->v;
      r.replayed = true;
      return r;
    }
  }
  const auto p = plan_write(w, r, [&](const std::string& id) { return rows_.find_doc(w.collection, id); });
  if (!p) {
    if (key) rows_.release_doc_key(*key);
    return r;
  }

  // Before the document changes: a first tally write recounts the documents as they were.
  TallyState* st = nullptr;
  if (!w.tally.empty()) {
    st = &tallies_.counted(w.collection);
  } else if (tallies_.drop(w.collection)) {
    touched_.erase(w.collection);
  }

  if (w.op == Op::remove) {
    rows_.delete_doc(w.collection, p->id);
  } else {
    r.doc = doc_text(p->new_attrs, p->id, p->v, p->owner);
    if (p->inserts) {
      rows_.insert_doc(w.collection, p->id, p->owner, p->v, r.doc);
    } else {
      rows_.update_doc(w.collection, p->id, p->v, r.doc);
    }
  }
  if (st) {
    // Moves the tally from the stored document's values to the written ones.
    TallyTouch& touch = touched_[w.collection];
    if (!p->inserts) count_doc(*st, touch, p->old_attrs, -1);
    if (w.op != Op::remove) count_doc(*st, touch, p->new_attrs, +1);
    touch.last = index;
    touch.last_write = &w;
  }

  ChannelState& ch = rows_.channel(coll_channel(w.collection));
  r.change = add_pub(ch, change_pub(w, *p, r.doc, now_), w.history_size);
  if (key) rows_.fill_doc_key(*key, r.doc, p->v, now_);
  r.status = DocResult::Status::ok;
  r.v = p->v;
  return r;
}

// Once per tally collection per batch: the changed counts, and one publication on the batch's last write
// of the collection.
void Batch::finish_tallies(std::vector<Outcome>& results) {
  for (const auto& [collection, touch] : touched_) {
    const TallyState& st = tallies_.counted(collection);
    const TallyFields& fields = touch.last_write->tally;
    bool visible = touch.total_delta != 0;
    for (const auto& [fv, delta] : touch.deltas) {
      if (delta == 0) continue;
      const auto& [field, value] = fv;
      rows_.write_count(collection, field, value, count_of(st.counts, field, value));
      visible = visible || declared(fields, field, value);
    }
    if (touch.total_delta != 0) rows_.write_total(collection, st.total);
    // Writes that left the published tally as it was (an update to the same values) publish nothing.
    if (!visible) continue;
    ChannelState& ch = rows_.channel(tally_channel(collection));
    std::get<DocResult>(results[touch.last]).tally =
        add_pub(ch, tally_pub(st, fields, now_), touch.last_write->history_size);
  }
}

// Once per channel per batch, instead of once per publication.
void Batch::finish_channel(ChannelState& ch) {
  ch.dirty = false;
  rows_.update_channel(ch);
  if (ch.last_offset > ch.history_size) rows_.trim_pubs(ch, ch.last_offset - ch.history_size);
}

// The next publication of a channel, in queue order: the batch owns the channel's offsets (SQLite: the
// only writer; PostgreSQL: the row is locked).
core::PublicationPtr Batch::add_pub(ChannelState& ch, std::shared_ptr<core::Publication> pub,
                                    std::size_t history_size) {
  pub->offset = ch.last_offset + 1;
  pub->tt = core::next_timetoken(ch.last_tt);
  // Without history, the row would be trimmed in this same transaction.
  if (history_size > 0) rows_.insert_pub(ch, *pub);
  ch.last_offset = pub->offset;
  ch.last_tt = pub->tt;
  ch.history_size = history_size;  // the latest publication's: what finish_channel trims to
  if (!ch.dirty) {
    ch.dirty = true;
    dirty_.push_back(&ch);  // Rows::channel() references stay valid for the batch
  }
  return pub;
}

}  // namespace rtsync::store::detail
