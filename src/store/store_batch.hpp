// The group-commit algorithm of both store backends, written once: how one run of queued writes becomes
// rows in one transaction. Appends get their offsets, timetokens and idempotency keys; document writes
// their checks, tally counts, change-feed publications and keys; and once per commit each channel written
// gets its position and trim, each tally collection its counts and one publication, and expired keys are
// swept. A backend provides the transaction around a Batch and the row operations (Rows), as Redis'
// pubsubtype gives one pub/sub implementation a table of operations per variant. The algorithm is compiled
// once (store_batch.cpp) and reaches the rows through virtual calls rather than as a template over the
// backend: a call costs nanoseconds next to the statement behind it, and each backend stays one plain
// class. Internal to src/store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/publication.hpp"
#include "store/store.hpp"
#include "store/store_detail.hpp"
#include "store/store_queue.hpp"

namespace rtsync::store::detail {

// A live idempotency key's first result, replayed instead of applying its write again.
struct PubReplay {
  std::shared_ptr<core::Publication> pub;  // its offset, data, ts and tt
  std::string epoch;                       // of its channel
};
struct DocReplay {
  std::string doc;  // the document written ('' for a remove)
  std::uint64_t v = 0;
};

// The row operations of a backend, in the current transaction (a batch's, or for the tally and document
// reads a read's). Each throws on a database error, which fails the whole batch.
class Rows {
 public:
  // The row of a channel the batch publishes on, made (with its unwritten_epoch) if it has none. The
  // reference stays valid until the batch ends.
  virtual ChannelState& channel(const std::string& name) = 0;
  virtual void insert_pub(const ChannelState& ch, const core::Publication& pub) = 0;
  // Stores the channel's last offset and timetoken.
  virtual void update_channel(const ChannelState& ch) = 0;
  // Deletes the channel's publications up to offset `upto`.
  virtual void trim_pubs(const ChannelState& ch, std::uint64_t upto) = 0;

  // Idempotency keys (KeyRef), per user. A claim returns the first result of a live key (in this batch or
  // committed by anyone); else the key is this transaction's, and the write it guards fills it.
  virtual std::optional<PubReplay> claim_pub_key(const KeyRef& key, std::int64_t now) = 0;
  virtual void fill_pub_key(const KeyRef& key, const ChannelState& ch, const core::Publication& pub,
                            std::int64_t now) = 0;
  virtual std::optional<DocReplay> claim_doc_key(const KeyRef& key, std::int64_t now) = 0;
  virtual void fill_doc_key(const KeyRef& key, const std::string& doc, std::uint64_t v, std::int64_t now) = 0;
  // Gives a claimed key back: a write that changed nothing leaves it as if it had never been sent.
  virtual void release_doc_key(const KeyRef& key) = 0;
  // Deletes the client keys (not the outbox ones) recorded before `before`.
  virtual void sweep_keys(std::int64_t before) = 0;

  // Outbox clients (Outbox). True when the client may write, its last write now being `now`; false once
  // it expired.
  virtual bool touch_client(const std::string& user, const std::string& client, std::int64_t now) = 0;
  // Deletes the client's outbox records up to `upto` (an outbox_key of that client).
  virtual void settle_client(const std::string& user, const std::string& client, const std::string& upto) = 0;
  // Clients whose last write was before `before` expire: their records go, their writes are refused.
  virtual void sweep_clients(std::int64_t before) = 0;

  // Documents. find_doc also answers get().
  virtual std::optional<StoredDoc> find_doc(const std::string& collection, const std::string& id) = 0;
  virtual void insert_doc(const std::string& collection, const std::string& id, const std::string& owner,
                          std::uint64_t v, const std::string& data) = 0;
  virtual void update_doc(const std::string& collection, const std::string& id, std::uint64_t v,
                          const std::string& data) = 0;
  virtual void delete_doc(const std::string& collection, const std::string& id) = 0;
  // Calls `each` with the JSON text of every document of the collection.
  virtual void each_doc(const std::string& collection, const std::function<void(const std::string&)>& each) = 0;

  // Tally rows, by TallyKey::row(): a tally's counts are valid only while it has its total.
  virtual std::optional<std::int64_t> read_total(const std::string& collection) = 0;
  virtual void read_counts(const std::string& collection, TallyCounts& counts) = 0;
  virtual void write_total(const std::string& collection, std::int64_t total) = 0;
  // Stores one count; 0 deletes its row.
  virtual void write_count(const std::string& collection, const std::string& field, std::int64_t value,
                           std::int64_t n) = 0;
  virtual void delete_counts(const std::string& collection) = 0;
  virtual void delete_total(const std::string& collection) = 0;
  // Deletes the counts and totals of every group tally of a collection.
  virtual void delete_groups(const std::string& collection) = 0;
  // The store_info table: small named values (a collection's tally_group, kept with its group counts).
  virtual std::optional<std::string> read_info(const std::string& key) = 0;
  virtual void write_info(const std::string& key, const std::string& value) = 0;

  // PubNub channel groups: a group's channels, sorted; every group's name, sorted. Adding a channel that
  // is there, or removing one that is not, does nothing.
  virtual std::vector<std::string> group_channels(const std::string& group) = 0;
  virtual std::vector<std::string> group_names() = 0;
  virtual void add_to_group(const std::string& group, const std::string& channel) = 0;
  virtual void remove_from_group(const std::string& group, const std::string& channel) = 0;

  // PubNub message actions of a channel. find_actions: those of the query (ActionQuery), ascending by
  // action_tt, at most limit + 1 (to tell `more`).
  virtual std::optional<MessageAction> find_action(const std::string& channel, std::uint64_t message_tt,
                                                   std::uint64_t action_tt) = 0;
  // The same uuid's action of that type and value on that message, if any.
  virtual std::optional<MessageAction> find_same_action(const std::string& channel, const MessageAction& a) = 0;
  virtual std::uint64_t last_action_tt(const std::string& channel) = 0;  // 0: none
  virtual void insert_action(const std::string& channel, const MessageAction& a) = 0;
  virtual void delete_action(const std::string& channel, std::uint64_t action_tt) = 0;
  virtual std::vector<MessageAction> find_actions(const ActionQuery& q) = 0;

  // Deletes the channel's publications with after < tt <= until, and the actions of those messages;
  // returns how many publications.
  virtual std::uint64_t delete_pubs(const ChannelState& ch, std::uint64_t after, std::uint64_t until) = 0;
  virtual void delete_message_actions(const std::string& channel, std::uint64_t after, std::uint64_t until) = 0;

  // PubNub App Context. put_* inserts or replaces. each_membership: every membership of a uuid (of_uuid)
  // or of a channel, each with the object of its other side when there is one.
  virtual std::optional<AppObject> find_object(ObjectKind kind, const std::string& id) = 0;
  virtual void put_object(ObjectKind kind, const AppObject& o) = 0;
  virtual void delete_object(ObjectKind kind, const std::string& id) = 0;
  virtual void each_object(ObjectKind kind, const std::function<void(AppObject)>& each) = 0;
  virtual std::optional<Membership> find_membership(const std::string& uuid, const std::string& channel) = 0;
  virtual void put_membership(const Membership& m) = 0;
  virtual void delete_membership(const std::string& uuid, const std::string& channel) = 0;
  virtual void each_membership(bool of_uuid, const std::string& id,
                               const std::function<void(Membership, std::optional<AppObject>)>& each) = 0;

  // PubNub token revocations: a second one of a token does nothing; sweep deletes those expired before
  // `now`, revocations lists those that are not.
  virtual void insert_revocation(const TokenRevocation& r) = 0;
  virtual void sweep_revocations(std::int64_t now) = 0;
  virtual std::vector<std::string> revocations(std::int64_t now) = 0;

  // Webhook queues (WebhookEntry; store_webhooks.cpp). insert_webhook queues a live entry (attempts 0,
  // next 0). lease_webhook gives `hook` to `node` until `until` unless another node holds it past `now`
  // (SQLite, the only node: always), and returns who holds it then. revive_webhooks makes every dead
  // entry of `hook` live again (attempts 0, created `now`); discard deletes them; both count them.
  virtual void insert_webhook(const std::string& hook, const std::string& channel, std::uint64_t offset,
                              const std::string& body, std::int64_t now) = 0;
  virtual std::string lease_webhook(const std::string& hook, const std::string& node, std::int64_t now,
                                    std::int64_t until) = 0;
  virtual void delete_webhook(std::uint64_t seq) = 0;
  virtual void retry_webhook(const WebhookEntry& e) = 0;  // its attempts and next
  virtual void bury_webhook(std::uint64_t seq) = 0;
  virtual std::uint64_t revive_webhooks(const std::string& hook, std::int64_t now) = 0;
  virtual std::uint64_t discard_webhooks(const std::string& hook) = 0;
  // Entries of `hook`, live or dead, with seq > after, by seq, at most `limit`.
  virtual std::vector<WebhookEntry> webhook_entries(const std::string& hook, bool dead, std::uint64_t after,
                                                    std::size_t limit) = 0;
  virtual std::map<std::string, WebhookCounts> webhook_counts() = 0;

 protected:
  ~Rows() = default;
};

// A tally as stored, or, when it has no counts, a recount of its documents (present false). Reads only.
TallyState read_tally_state(Rows& rows, const TallyKey& key);

// Store::read_groups and read_actions over a backend's rows. Reads only.
GroupsResult read_groups(Rows& rows, const std::vector<std::string>& groups);
ActionsResult read_actions(Rows& rows, const ActionQuery& q);
// Store::read_objects (store_objects.cpp) and read_revocations.
ObjectsResult read_objects(Rows& rows, const ObjectQuery& q);
RevocationsResult read_revocations(Rows& rows);
// Store::read_webhooks (store_webhooks.cpp).
WebhookReadResult read_webhooks(Rows& rows, const WebhookQuery& q);

// The tallies of collections as the writer knows them. SQLite keeps one across batches (it is the only
// writer; cleared when a transaction fails); PostgreSQL one per batch (other nodes write too, under the
// coll:NAME row lock the batch holds).
class Tallies {
 public:
  explicit Tallies(Rows& rows) : rows_(rows) {}

  // A tally, its counts recounted from its documents and stored now if it has none (its first tally
  // write, or a tally collection written before it was declared one, or grouped).
  TallyState& counted(const TallyKey& key);
  // Whether counted() would find the counts at hand, without reading or writing a row.
  bool known(const std::string& row) const;
  // A write without tally fields to a collection with counts: it is no longer a tally collection (the
  // configuration changed), and counts not kept up to date must not survive; they are recounted if it
  // becomes one again. True when it had counts. Its group tallies go too.
  bool drop(const std::string& collection);
  // Before a tally write: group counts kept while the collection was grouped by another attribute (or
  // not at all) are stale, and go; the attribute it is grouped by is stored with them.
  void check_groups(const std::string& collection, const std::string& attr);
  void forget(const std::string& row) { states_.erase(row); }
  void clear() {
    states_.clear();
    groups_.clear();
  }

 private:
  void forget_groups(const std::string& collection);

  Rows& rows_;
  std::unordered_map<std::string, TallyState> states_;  // by row; present false: known to have no counts
  std::unordered_map<std::string, std::string> groups_;  // by collection: the tally_group its rows hold
};

// What a batch changed in one tally.
struct TallyTouch {
  TallyKey key;
  std::map<std::pair<std::string, std::int64_t>, std::int64_t> deltas;  // net change per (field, value)
  std::int64_t total_delta = 0;
  std::size_t last = 0;  // index (in the batch) of the collection's last applied tally write
  const DocWrite* last_write = nullptr;
};

// One run of writes in one transaction, which the backend began (and, for PostgreSQL, whose channel rows
// it locked) and commits once apply() returned.
class Batch {
 public:
  // `webhooks`: what each webhook follows; every publication added on such a channel is queued for it.
  Batch(Rows& rows, Tallies& tallies, const std::vector<WebhookRoute>& webhooks);

  // Applies the mutations in queue order, then what a commit does once: tally counts and publications,
  // channel positions and trims, and with `sweep` the removal of expired keys. One outcome per mutation.
  // Logical failures (not_found, conflict, permission_denied, too_large) change nothing and leave the
  // batch alone; an exception (the database, a corrupt stored document) fails all of it.
  std::vector<Outcome> apply(const std::vector<Mutation>& mutations, bool sweep);

  std::uint64_t appended() const { return appended_; }  // publications of appends

 private:
  // Whether an outbox write's client may still write (then settling what it settled); true without one.
  bool admit(const std::string& user, const std::optional<Outbox>& outbox);
  AppendResult append(const AppendRequest& req);
  DocResult write(const DocWrite& w, std::size_t index);
  GroupWriteResult write_group(const GroupWrite& w);
  ActionWriteResult write_action(const ActionWrite& w);
  DeletionResult delete_messages(const MessageDeletion& d);
  // App Context and token revocations (store_objects.cpp).
  ObjectWriteResult write_object(const ObjectWrite& w);
  MembershipWriteResult write_memberships(const MembershipWrite& w);
  RevocationResult revoke(const TokenRevocation& r);
  // Webhooks (store_webhooks.cpp): a queue's deliveries, and a new publication queued where followed.
  WebhookWriteResult write_webhooks(const WebhookWrite& w);
  void queue_for_webhooks(const ChannelState& ch, const std::string& name, const core::Publication& pub);
  void finish_tallies(std::vector<Outcome>& results);
  void finish_channel(ChannelState& ch);
  core::PublicationPtr add_pub(ChannelState& ch, const std::string& name, std::shared_ptr<core::Publication> pub,
                               std::size_t history_size);

  Rows& rows_;
  Tallies& tallies_;
  const std::vector<WebhookRoute>& webhooks_;
  const std::int64_t now_;            // the store's clock at the start: publications' ts, keys' age
  std::vector<ChannelState*> dirty_;  // channels published on, in first-publication order
  std::map<std::string, TallyTouch> touched_;  // by TallyKey::row()
  std::uint64_t appended_ = 0;
};

}  // namespace rtsync::store::detail
