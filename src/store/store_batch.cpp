#include "store/store_batch.hpp"

#include <algorithm>
#include <set>
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

TallyState read_tally_state(Rows& rows, const TallyKey& key) {
  TallyState st;
  const std::string row = key.row();
  if (const auto total = rows.read_total(row)) {
    st.present = true;
    st.total = *total;
    rows.read_counts(row, st.counts);
    return st;
  }
  TallyTouch scratch;
  rows.each_doc(key.collection, [&](const std::string& doc) {
    const json::object attrs = attributes(parse_object(doc));
    if (key.holds(attrs)) count_doc(st, scratch, attrs, +1);
  });
  return st;
}

TallyState& Tallies::counted(const TallyKey& key) {
  const std::string row = key.row();
  if (const auto it = states_.find(row); it != states_.end() && it->second.present) return it->second;
  TallyState st = read_tally_state(rows_, key);
  if (!st.present) {
    // Stale rows first (an interrupted earlier attempt outside a transaction), the total last: only a
    // complete set of counts ever has a total.
    rows_.delete_counts(row);
    for (const auto& [field, values] : st.counts) {
      for (const auto& [value, n] : values) {
        if (n != 0) rows_.write_count(row, field, value, n);
      }
    }
    rows_.write_total(row, st.total);
    st.present = true;
  }
  return states_.insert_or_assign(row, std::move(st)).first->second;
}

bool Tallies::known(const std::string& row) const {
  const auto it = states_.find(row);
  return it != states_.end() && it->second.present;
}

bool Tallies::drop(const std::string& collection) {
  const auto it = states_.find(collection);
  const bool present = it != states_.end() ? it->second.present : rows_.read_total(collection).has_value();
  if (present) {
    rows_.delete_counts(collection);
    rows_.delete_total(collection);
    check_groups(collection, "");
  }
  states_.insert_or_assign(collection, TallyState{});
  return present;
}

// The key under which store_info holds the attribute a collection's group counts are grouped by.
std::string groups_info(const std::string& collection) { return "tally_group:" + collection; }

void Tallies::check_groups(const std::string& collection, const std::string& attr) {
  if (const auto it = groups_.find(collection); it != groups_.end() && it->second == attr) return;
  const std::string stored = rows_.read_info(groups_info(collection)).value_or("");
  if (stored != attr) {
    rows_.delete_groups(collection);
    rows_.write_info(groups_info(collection), attr);
    forget_groups(collection);
  }
  groups_.insert_or_assign(collection, attr);
}

void Tallies::forget_groups(const std::string& collection) {
  const std::string prefix = collection + ':';
  std::erase_if(states_, [&](const auto& kv) { return kv.first.starts_with(prefix); });
}

Batch::Batch(Rows& rows, Tallies& tallies, const std::vector<WebhookRoute>& webhooks)
    : rows_(rows), tallies_(tallies), webhooks_(webhooks), now_(common::now_ms()) {}

std::vector<Outcome> Batch::apply(const std::vector<Mutation>& mutations, bool sweep) {
  std::vector<Outcome> results;
  results.reserve(mutations.size());
  for (std::size_t i = 0; i < mutations.size(); ++i) {
    results.push_back(std::visit(Overloaded{[&](const PendingAppend& a) -> Outcome { return append(a.req); },
                                            [&](const PendingWrite& w) -> Outcome { return write(w.w, i); },
                                            [&](const PendingGroupWrite& g) -> Outcome { return write_group(g.w); },
                                            [&](const PendingActionWrite& a) -> Outcome { return write_action(a.w); },
                                            [&](const PendingDeletion& d) -> Outcome { return delete_messages(d.d); },
                                            [&](const PendingObjectWrite& o) -> Outcome { return write_object(o.w); },
                                            [&](const PendingMembershipWrite& m) -> Outcome {
                                              return write_memberships(m.w);
                                            },
                                            [&](const PendingRevocation& r) -> Outcome { return revoke(r.r); },
                                            [&](const PendingWebhookWrite& w) -> Outcome { return write_webhooks(w.w); }},
                                 mutations[i]));
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
  r.pub = add_pub(ch, req.channel, append_pub(req), req.history_size);
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

  // Before the document changes: a first tally write recounts the documents as they were. The tallies
  // it moves: the collection's, and with a tally_group the groups the document leaves and joins.
  struct Moved {
    TallyState* st;
    TallyTouch* touch;
    bool before, after;  // whether the document counted there before the write, and after it
  };
  std::vector<Moved> moved;
  if (!w.tally.empty()) {
    tallies_.check_groups(w.collection, w.tally_group);
    const auto move = [&](TallyKey tk, bool before, bool after) {
      if (!before && !after) return;
      TallyState& st = tallies_.counted(tk);
      TallyTouch& touch = touched_[tk.row()];
      touch.key = std::move(tk);
      moved.push_back(Moved{&st, &touch, before, after});
    };
    move(TallyKey{w.collection, "", ""}, !p->inserts, w.op != Op::remove);
    if (!w.tally_group.empty()) {
      const auto old_group = p->inserts ? std::nullopt : group_of(p->old_attrs, w.tally_group);
      const auto new_group = w.op == Op::remove ? std::nullopt : group_of(p->new_attrs, w.tally_group);
      if (old_group) move(TallyKey{w.collection, w.tally_group, *old_group}, true, new_group == old_group);
      if (new_group && new_group != old_group) move(TallyKey{w.collection, w.tally_group, *new_group}, false, true);
    }
  } else if (tallies_.drop(w.collection)) {
    const std::string prefix = w.collection + ':';
    std::erase_if(touched_, [&](const auto& kv) { return kv.first == w.collection || kv.first.starts_with(prefix); });
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
  // Moves each tally from the stored document's values to the written ones.
  for (const Moved& m : moved) {
    if (m.before) count_doc(*m.st, *m.touch, p->old_attrs, -1);
    if (m.after) count_doc(*m.st, *m.touch, p->new_attrs, +1);
    m.touch->last = index;
    m.touch->last_write = &w;
  }

  const std::string feed = coll_channel(w.collection);
  ChannelState& ch = rows_.channel(feed);
  r.change = add_pub(ch, feed, change_pub(w, *p, r.doc, now_), w.history_size);
  if (key) rows_.fill_doc_key(*key, r.doc, p->v, now_);
  r.status = DocResult::Status::ok;
  r.v = p->v;
  return r;
}

// The group's channels after the write are computed first, so that a write past max_channels changes
// nothing.
GroupWriteResult Batch::write_group(const GroupWrite& w) {
  GroupWriteResult r;
  const std::vector<std::string> before = rows_.group_channels(w.group);
  std::set<std::string> after;
  if (!w.drop) {
    after.insert(before.begin(), before.end());
    for (const auto& ch : w.remove) after.erase(ch);
    after.insert(w.add.begin(), w.add.end());
  }
  if (w.max_channels > 0 && after.size() > w.max_channels) {
    r.too_many = true;
    return r;
  }
  for (const auto& ch : before)
    if (!after.contains(ch)) rows_.remove_from_group(w.group, ch);
  for (const auto& ch : after)
    if (!std::binary_search(before.begin(), before.end(), ch)) rows_.add_to_group(w.group, ch);
  r.ok = true;
  return r;
}

ActionWriteResult Batch::write_action(const ActionWrite& w) {
  ActionWriteResult r;
  const MessageAction& a = w.action;
  if (w.remove) {
    auto found = rows_.find_action(w.channel, a.message_tt, a.action_tt);
    r.ok = true;
    if (!found) {
      r.not_found = true;
      return r;
    }
    rows_.delete_action(w.channel, a.action_tt);
    r.action = std::move(*found);
    return r;
  }
  if (rows_.find_same_action(w.channel, a)) {
    r.exists = true;
    return r;
  }
  r.action = a;
  r.action.action_tt = core::next_timetoken(rows_.last_action_tt(w.channel));
  rows_.insert_action(w.channel, r.action);
  r.ok = true;
  return r;
}

DeletionResult Batch::delete_messages(const MessageDeletion& d) {
  DeletionResult r;
  if (d.after < d.until) {
    r.deleted = rows_.delete_pubs(rows_.channel(d.channel), d.after, d.until);
    rows_.delete_message_actions(d.channel, d.after, d.until);
  }
  r.ok = true;
  return r;
}

ActionsResult read_actions(Rows& rows, const ActionQuery& q) {
  ActionsResult r;
  r.actions = rows.find_actions(q);
  if (r.actions.size() > q.limit) {
    r.more = true;
    // By action range the newest `limit` count (the oldest goes); by messages the first `limit`.
    if (q.messages_until == 0) r.actions.erase(r.actions.begin());
    else r.actions.pop_back();
  }
  r.ok = true;
  return r;
}

GroupsResult read_groups(Rows& rows, const std::vector<std::string>& groups) {
  GroupsResult r;
  if (groups.empty()) {
    for (auto& name : rows.group_names()) r.groups.emplace(std::move(name), std::vector<std::string>{});
  } else {
    for (const auto& g : groups) r.groups.insert_or_assign(g, rows.group_channels(g));
  }
  r.ok = true;
  return r;
}

// Once per tally collection per batch: the changed counts, and one publication on the batch's last write
// of the collection.
void Batch::finish_tallies(std::vector<Outcome>& results) {
  for (const auto& [row, touch] : touched_) {
    const TallyState& st = tallies_.counted(touch.key);
    const TallyFields& fields = touch.last_write->tally;
    bool visible = touch.total_delta != 0;
    for (const auto& [fv, delta] : touch.deltas) {
      if (delta == 0) continue;
      const auto& [field, value] = fv;
      rows_.write_count(row, field, value, count_of(st.counts, field, value));
      visible = visible || declared(fields, field, value);
    }
    if (touch.total_delta != 0) rows_.write_total(row, st.total);
    // Writes that left the published tally as it was (an update to the same values) publish nothing.
    if (!visible) continue;
    const std::string channel = touch.key.channel();
    ChannelState& ch = rows_.channel(channel);
    auto pub = add_pub(ch, channel, tally_pub(st, fields, now_), touch.last_write->history_size);
    DocResult& r = std::get<DocResult>(results[touch.last]);
    if (touch.key.attr.empty()) {
      r.tally = std::move(pub);
    } else {
      r.group_tallies.push_back(DocResult::GroupTally{touch.key.channel(), std::move(pub)});
    }
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
core::PublicationPtr Batch::add_pub(ChannelState& ch, const std::string& name, std::shared_ptr<core::Publication> pub,
                                    std::size_t history_size) {
  pub->offset = ch.last_offset + 1;
  pub->tt = core::next_timetoken(ch.last_tt);
  // Without history, the row would be trimmed in this same transaction.
  if (history_size > 0) rows_.insert_pub(ch, *pub);
  ch.last_offset = pub->offset;
  ch.last_tt = pub->tt;
  ch.history_size = history_size;  // the latest publication's: what finish_channel trims to
  if (!webhooks_.empty()) queue_for_webhooks(ch, name, *pub);
  if (!ch.dirty) {
    ch.dirty = true;
    dirty_.push_back(&ch);  // Rows::channel() references stay valid for the batch
  }
  return pub;
}

}  // namespace rtsync::store::detail
