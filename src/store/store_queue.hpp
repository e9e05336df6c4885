// The queue both store backends put in front of their database. Every public method of the Store seam only
// queues, so I/O threads never wait on the disk; one writer thread takes everything queued at once and cuts
// it, in queue order, into runs of writes (appends and document writes) each followed by the reads queued
// after them. The backend applies each run of writes in one transaction (group commit) and then answers
// the reads, so a read reflects exactly the writes queued before it, and its callback runs after theirs and
// before those of the writes queued after it. Internal to src/store.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "store/store.hpp"
#include "store/store_detail.hpp"

namespace rtsync::store::detail {

// The queued calls, as the writer takes them. A mutation names its Result (its outcome's type).
struct PendingAppend {
  using Result = AppendResult;
  AppendRequest req;
  std::function<void(AppendResult)> done;
};
struct PendingWrite {
  using Result = DocResult;
  DocWrite w;
  std::function<void(DocResult)> done;
};
struct PendingGroupWrite {
  using Result = GroupWriteResult;
  GroupWrite w;
  std::function<void(GroupWriteResult)> done;
};
struct PendingActionWrite {
  using Result = ActionWriteResult;
  ActionWrite w;
  std::function<void(ActionWriteResult)> done;
};
struct PendingDeletion {
  using Result = DeletionResult;
  MessageDeletion d;
  std::function<void(DeletionResult)> done;
};
struct PendingObjectWrite {
  using Result = ObjectWriteResult;
  ObjectWrite w;
  std::function<void(ObjectWriteResult)> done;
};
struct PendingMembershipWrite {
  using Result = MembershipWriteResult;
  MembershipWrite w;
  std::function<void(MembershipWriteResult)> done;
};
struct PendingRevocation {
  using Result = RevocationResult;
  TokenRevocation r;
  std::function<void(RevocationResult)> done;
};
struct PendingWebhookWrite {
  using Result = WebhookWriteResult;
  WebhookWrite w;
  std::function<void(WebhookWriteResult)> done;
};
struct PendingLoad {
  std::string channel;
  std::size_t history_size = 0;
  std::size_t history_bytes = 0;
  std::function<void(core::ChannelSnapshot)> done;
};
struct PendingList {
  ListQuery q;
  std::function<void(ListResult)> done;
};
struct PendingGet {
  std::string collection;
  std::string id;
  std::function<void(GetResult)> done;
};
struct PendingTally {
  TallyQuery q;
  std::function<void(TallyResult)> done;
};
struct PendingGroups {
  std::vector<std::string> groups;
  std::function<void(GroupsResult)> done;
};
struct PendingChannels {
  ChannelsQuery q;
  std::function<void(ChannelsResult)> done;
};
struct PendingActions {
  ActionQuery q;
  std::function<void(ActionsResult)> done;
};
struct PendingObjects {
  ObjectQuery q;
  std::function<void(ObjectsResult)> done;
};
struct PendingRevocations {
  std::function<void(RevocationsResult)> done;
};
struct PendingWebhookRead {
  WebhookQuery q;
  std::function<void(WebhookReadResult)> done;
};
// Appends, document writes and PubNub's writes share one queue: they are applied (and answered) in the
// order queued.
using Mutation = std::variant<PendingAppend, PendingWrite, PendingGroupWrite, PendingActionWrite, PendingDeletion,
                              PendingObjectWrite, PendingMembershipWrite, PendingRevocation, PendingWebhookWrite>;
using Outcome = std::variant<AppendResult, DocResult, GroupWriteResult, ActionWriteResult, DeletionResult,
                             ObjectWriteResult, MembershipWriteResult, RevocationResult, WebhookWriteResult>;
using Read = std::variant<PendingLoad, PendingList, PendingGet, PendingTally, PendingGroups, PendingActions,
                          PendingObjects, PendingRevocations, PendingChannels, PendingWebhookRead>;

// Callbacks run on the writer thread and must not throw (the writer has no one to report to). close() may
// be called from a callback; destroying the store from one may not, since the writer cannot join itself.
class QueuedStore : public Store {
 public:
  void append(AppendRequest req, std::function<void(AppendResult)> done) final;
  void load(std::string channel, std::size_t history_size, std::size_t history_bytes,
            std::function<void(core::ChannelSnapshot)> done) final;
  void write(DocWrite w, std::function<void(DocResult)> done) final;
  void list(ListQuery q, std::function<void(ListResult)> done) final;
  void get(std::string collection, std::string id, std::function<void(GetResult)> done) final;
  void tally(TallyQuery q, std::function<void(TallyResult)> done) final;
  void write_group(GroupWrite w, std::function<void(GroupWriteResult)> done) final;
  void read_groups(std::vector<std::string> groups, std::function<void(GroupsResult)> done) final;
  void channels(ChannelsQuery q, std::function<void(ChannelsResult)> done) final;
  void write_action(ActionWrite w, std::function<void(ActionWriteResult)> done) final;
  void read_actions(ActionQuery q, std::function<void(ActionsResult)> done) final;
  void delete_messages(MessageDeletion d, std::function<void(DeletionResult)> done) final;
  void write_object(ObjectWrite w, std::function<void(ObjectWriteResult)> done) final;
  void write_memberships(MembershipWrite w, std::function<void(MembershipWriteResult)> done) final;
  void read_objects(ObjectQuery q, std::function<void(ObjectsResult)> done) final;
  void revoke_token(TokenRevocation r, std::function<void(RevocationResult)> done) final;
  void read_revocations(std::function<void(RevocationsResult)> done) final;
  void write_webhooks(WebhookWrite w, std::function<void(WebhookWriteResult)> done) final;
  void read_webhooks(WebhookQuery q, std::function<void(WebhookReadResult)> done) final;
  void close() final;
  StoreStats stats() const final;
  bool failing() const final;

  QueuedStore(const QueuedStore&) = delete;
  QueuedStore& operator=(const QueuedStore&) = delete;

 protected:
  QueuedStore() = default;
  ~QueuedStore() override = default;

  // Starts the writer. It calls into the backend, so the backend calls this last in its constructor, and
  // close() first in its destructor.
  void start();

  // The outcomes of a batch whose transaction failed: every mutation fails with `error`. Counts as a
  // failed write (failing(), logged).
  std::vector<Outcome> failed(const std::vector<Mutation>& mutations, const std::string& error);

  // Runs the mutations' callbacks in queue order, each with its outcome.
  static void answer_writes(std::vector<Mutation>& mutations, std::vector<Outcome>& results);

  // Runs the reads in queue order and their callbacks; with an `error`, each fails without reading. Each
  // read counts as a read that succeeded or failed (failing(), logged).
  void answer_reads(std::vector<Read>& reads, const std::string& error = {});

  // A batch of `writes` mutations, `appends` of them publications, committed; its transaction began at
  // `began` (stats()). Counts as a write that succeeded when `writes` > 0.
  void committed(std::uint64_t appends, std::size_t writes, std::chrono::steady_clock::time_point began);

 private:
  // One run of writes (perhaps none) and the reads queued after them, on the writer thread: the backend
  // commits the writes, answers them with answer_writes(), then the reads with answer_reads().
  virtual void run_batch(std::vector<Mutation>& mutations, std::vector<Read>& reads) = 0;
  // Once the writer has stopped: frees the connection.
  virtual void release() = 0;

  // The reads, after the writes queued before them. A read that throws fails with its empty result.
  virtual core::ChannelSnapshot snapshot(const std::string& channel, std::size_t history_size,
                                         std::size_t history_bytes) = 0;
  virtual ListResult list_docs(const ListQuery& q) = 0;
  virtual std::optional<StoredDoc> find_doc(const std::string& collection, const std::string& id) = 0;
  virtual TallyResult read_tally(const TallyQuery& q) = 0;
  // Store::read_groups, through the Rows of the read (find_groups).
  virtual GroupsResult read_group_rows(const std::vector<std::string>& groups) = 0;
  // Store::read_actions (find_actions of the Rows).
  virtual ActionsResult read_action_rows(const ActionQuery& q) = 0;
  // Store::read_objects and read_revocations, through the Rows of the read.
  virtual ObjectsResult read_object_rows(const ObjectQuery& q) = 0;
  virtual RevocationsResult read_revocation_rows() = 0;
  // Store::channels.
  virtual ChannelsResult read_channels(const ChannelsQuery& q) = 0;
  // Store::read_webhooks, through the Rows of the read.
  virtual WebhookReadResult read_webhook_rows(const WebhookQuery& q) = 0;

  // Queues a call unless the store is closing; once it is, fails the call at once, on the caller's thread.
  template <class Pending>
  void submit(Pending p);

  void writer_loop();

  // Health, on the writer thread. Failures are logged at error level, the first at once and then at most
  // one line per kReportEvery saying how many more there were; a success after failures logs the recovery.
  enum Kind : std::uint8_t { kWrite, kRead };
  void failure(Kind kind, std::string_view what);
  void success(Kind kind);
  static constexpr std::chrono::seconds kReportEvery{10};
  // Per kind: steady-clock nanoseconds of the last failure with no success of that kind since; 0: none.
  std::array<std::atomic<std::int64_t>, 2> failed_at_{};
  std::chrono::steady_clock::time_point last_report_{};
  std::uint64_t unreported_ = 0;  // failures since the last line logged
  std::uint64_t failures_ = 0;    // failures since the store last worked

  std::mutex mu_;  // guards the queues and stopping_
  std::condition_variable cv_;
  std::vector<Mutation> mutations_q_;
  std::vector<Read> reads_q_;
  std::vector<bool> order_q_;  // queue order across both queues: true = the next item is a read
  bool stopping_ = false;

  std::mutex close_mu_;  // serializes concurrent close() calls around the join
  std::thread writer_;
  std::thread::id writer_id_;  // set once; reading writer_ while another close() joins would race

  std::atomic<std::uint64_t> commits_{0};
  std::atomic<std::uint64_t> appends_{0};
  common::Histogram<10> commit_seconds_{{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}};
  common::Histogram<8> commit_batch_{{1, 2, 4, 8, 16, 64, 256, 1024}};
};

}  // namespace rtsync::store::detail
