#include "store/store_queue.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <type_traits>
#include <utility>

namespace rtsync::store::detail {

namespace {

// What a call gets when the store is closed: its failed result (ok false, an empty snapshot epoch, a failed
// status), saying why where the result can.
template <class Result>
Result closed(const std::function<void(Result)>&) {
  Result r{};
  if constexpr (requires { r.error; }) r.error = "store is closed";
  return r;
}

// Answers a read with `read()`, or with its empty (failed) result when `error` is set or it throws. `note`
// gets what failed (empty: nothing) before the callback runs, so that the caller sees the store's health
// with the answer.
template <class Pending, class F, class Note>
void answer(Pending& p, const std::string& error, F&& read, Note&& note) {
  std::invoke_result_t<F> r{};
  std::string failed = error;
  if (failed.empty()) {
    try {
      r = read();
    } catch (const std::exception& e) {
      failed = e.what();  // r stays empty: the read fails
    }
  }
  note(failed);
  p.done(std::move(r));
}

std::int64_t steady_ns(std::chrono::steady_clock::time_point t) {
  // Never 0, which means "no failure".
  return std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

// A get's answer: the stored document, if any.
GetResult get_result(std::optional<StoredDoc> d) {
  GetResult r;
  if (d) {
    r.found = true;
    r.doc = std::move(d->data);
    r.owner = std::move(d->owner);
  }
  r.ok = true;
  return r;
}

}  // namespace

template <class Pending>
void QueuedStore::submit(Pending p) {
  std::unique_lock lk(mu_);
  if (stopping_) {
    lk.unlock();
    p.done(closed(p.done));
    return;
  }
  const bool was_idle = mutations_q_.empty() && reads_q_.empty();
  constexpr bool is_read = std::is_constructible_v<Read, Pending>;
  if constexpr (is_read) {
    reads_q_.emplace_back(std::move(p));
  } else {
    mutations_q_.emplace_back(std::move(p));
  }
  order_q_.push_back(is_read);
  lk.unlock();
  // A non-empty queue means the writer is awake or already woken: no need to signal again.
  if (was_idle) cv_.notify_one();
}

void QueuedStore::append(AppendRequest req, std::function<void(AppendResult)> done) {
  submit(PendingAppend{std::move(req), std::move(done)});
}

void QueuedStore::load(std::string channel, std::size_t history_size, std::size_t history_bytes,
                       std::function<void(core::ChannelSnapshot)> done) {
  submit(PendingLoad{std::move(channel), history_size, history_bytes, std::move(done)});
}

void QueuedStore::write(DocWrite w, std::function<void(DocResult)> done) {
  submit(PendingWrite{std::move(w), std::move(done)});
}

void QueuedStore::list(ListQuery q, std::function<void(ListResult)> done) {
  q.query.order = query::normalize(std::move(q.query.order));
  submit(PendingList{std::move(q), std::move(done)});
}

void QueuedStore::get(std::string collection, std::string id, std::function<void(GetResult)> done) {
  submit(PendingGet{std::move(collection), std::move(id), std::move(done)});
}

void QueuedStore::tally(TallyQuery q, std::function<void(TallyResult)> done) {
  submit(PendingTally{std::move(q), std::move(done)});
}

void QueuedStore::write_group(GroupWrite w, std::function<void(GroupWriteResult)> done) {
  submit(PendingGroupWrite{std::move(w), std::move(done)});
}

void QueuedStore::read_groups(std::vector<std::string> groups, std::function<void(GroupsResult)> done) {
  submit(PendingGroups{std::move(groups), std::move(done)});
}

void QueuedStore::channels(ChannelsQuery q, std::function<void(ChannelsResult)> done) {
  submit(PendingChannels{std::move(q), std::move(done)});
}

void QueuedStore::write_action(ActionWrite w, std::function<void(ActionWriteResult)> done) {
  submit(PendingActionWrite{std::move(w), std::move(done)});
}

void QueuedStore::read_actions(ActionQuery q, std::function<void(ActionsResult)> done) {
  submit(PendingActions{std::move(q), std::move(done)});
}

void QueuedStore::delete_messages(MessageDeletion d, std::function<void(DeletionResult)> done) {
  submit(PendingDeletion{std::move(d), std::move(done)});
}

void QueuedStore::write_object(ObjectWrite w, std::function<void(ObjectWriteResult)> done) {
  submit(PendingObjectWrite{std::move(w), std::move(done)});
}

void QueuedStore::write_memberships(MembershipWrite w, std::function<void(MembershipWriteResult)> done) {
  submit(PendingMembershipWrite{std::move(w), std::move(done)});
}

void QueuedStore::read_objects(ObjectQuery q, std::function<void(ObjectsResult)> done) {
  submit(PendingObjects{std::move(q), std::move(done)});
}

void QueuedStore::revoke_token(TokenRevocation r, std::function<void(RevocationResult)> done) {
  submit(PendingRevocation{std::move(r), std::move(done)});
}

void QueuedStore::read_revocations(std::function<void(RevocationsResult)> done) {
  submit(PendingRevocations{std::move(done)});
}

void QueuedStore::write_webhooks(WebhookWrite w, std::function<void(WebhookWriteResult)> done) {
  submit(PendingWebhookWrite{std::move(w), std::move(done)});
}

void QueuedStore::read_webhooks(WebhookQuery q, std::function<void(WebhookReadResult)> done) {
  submit(PendingWebhookRead{std::move(q), std::move(done)});
}

void QueuedStore::close() {
  {
    const std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  // From a callback (the writer itself) we cannot join; the loop drains the queue and exits on its own,
  // and the destructor joins later.
  if (std::this_thread::get_id() == writer_id_) return;
  const std::lock_guard lk(close_mu_);
  if (writer_.joinable()) writer_.join();
  release();
}

StoreStats QueuedStore::stats() const {
  return StoreStats{commits_.load(std::memory_order_relaxed), appends_.load(std::memory_order_relaxed), &commit_seconds_,
                    &commit_batch_};
}

void QueuedStore::start() {
  writer_ = std::thread([this] { writer_loop(); });
  writer_id_ = writer_.get_id();
}

bool QueuedStore::failing() const {
  const std::int64_t now = steady_ns(std::chrono::steady_clock::now());
  const std::int64_t window = std::chrono::duration_cast<std::chrono::nanoseconds>(kFailingFor).count();
  for (const auto& at : failed_at_) {
    const std::int64_t t = at.load(std::memory_order_relaxed);
    if (t != 0 && now - t < window) return true;
  }
  return false;
}

void QueuedStore::failure(Kind kind, std::string_view what) {
  const auto now = std::chrono::steady_clock::now();
  failed_at_[kind].store(steady_ns(now), std::memory_order_relaxed);
  ++failures_;
  ++unreported_;
  if (last_report_ != std::chrono::steady_clock::time_point{} && now - last_report_ < kReportEvery) return;
  if (unreported_ > 1) {
    spdlog::error("store error: {} ({} more failed operations since the last report)", what, unreported_ - 1);
  } else {
    spdlog::error("store error: {}", what);
  }
  unreported_ = 0;
  last_report_ = now;
}

void QueuedStore::success(Kind kind) {
  if (failures_ == 0) return;
  failed_at_[kind].store(0, std::memory_order_relaxed);
  for (const auto& at : failed_at_) {
    if (at.load(std::memory_order_relaxed) != 0) return;
  }
  spdlog::warn("store recovered after {} failed operations", failures_);
  failures_ = 0;
  unreported_ = 0;
  last_report_ = {};
}

std::vector<Outcome> QueuedStore::failed(const std::vector<Mutation>& mutations, const std::string& error) {
  failure(kWrite, error);
  std::vector<Outcome> results;
  for (const Mutation& m : mutations) {
    // A result's defaults say it failed (ok false, DocResult's status failed).
    results.push_back(std::visit(
        [&](const auto& p) -> Outcome {
          typename std::decay_t<decltype(p)>::Result r{};
          r.error = error;
          return r;
        },
        m));
  }
  return results;
}

void QueuedStore::answer_writes(std::vector<Mutation>& mutations, std::vector<Outcome>& results) {
  for (std::size_t i = 0; i < mutations.size(); ++i) {
    std::visit([&](auto& p) { p.done(std::get<typename std::decay_t<decltype(p)>::Result>(std::move(results[i]))); },
               mutations[i]);
  }
}

void QueuedStore::answer_reads(std::vector<Read>& reads, const std::string& error) {
  const auto note = [this](const std::string& failed) {
    if (failed.empty()) {
      success(kRead);
    } else {
      failure(kRead, failed);
    }
  };
  for (Read& r : reads) {
    std::visit(Overloaded{
                   [&](PendingLoad& l) { answer(l, error, [&] { return snapshot(l.channel, l.history_size, l.history_bytes); }, note); },
                   [&](PendingList& l) { answer(l, error, [&] { return list_docs(l.q); }, note); },
                   [&](PendingGet& g) {
                     answer(g, error, [&] { return get_result(find_doc(g.collection, g.id)); }, note);
                   },
                   [&](PendingTally& t) { answer(t, error, [&] { return read_tally(t.q); }, note); },
                   [&](PendingGroups& g) { answer(g, error, [&] { return read_group_rows(g.groups); }, note); },
                   [&](PendingActions& a) { answer(a, error, [&] { return read_action_rows(a.q); }, note); },
                   [&](PendingObjects& o) { answer(o, error, [&] { return read_object_rows(o.q); }, note); },
                   [&](PendingRevocations& v) { answer(v, error, [&] { return read_revocation_rows(); }, note); },
                   [&](PendingChannels& c) { answer(c, error, [&] { return read_channels(c.q); }, note); },
                   [&](PendingWebhookRead& w) { answer(w, error, [&] { return read_webhook_rows(w.q); }, note); },
               },
               r);
  }
}

void QueuedStore::committed(std::uint64_t appends, std::size_t writes, std::chrono::steady_clock::time_point began) {
  // Only the writer thread writes these.
  common::bump(commits_, 1);
  common::bump(appends_, appends);
  commit_seconds_.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
  commit_batch_.observe(static_cast<double>(writes));
  // A transaction that only made a read's rows may have written nothing: no sign that writes work again.
  if (writes > 0) success(kWrite);
}

void QueuedStore::writer_loop() {
  std::vector<Mutation> mutations, run_mutations;
  std::vector<Read> reads, run_reads;
  std::vector<bool> order;
  for (;;) {
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !mutations_q_.empty() || !reads_q_.empty(); });
      if (mutations_q_.empty() && reads_q_.empty()) return;  // stopping, and everything queued is done
      mutations.swap(mutations_q_);
      reads.swap(reads_q_);
      order.swap(order_q_);
    }
    // Runs of writes, each followed by the reads queued after it.
    std::size_t m = 0, r = 0, k = 0;
    while (k < order.size()) {
      for (; k < order.size() && !order[k]; ++k) run_mutations.push_back(std::move(mutations[m++]));
      for (; k < order.size() && order[k]; ++k) run_reads.push_back(std::move(reads[r++]));
      run_batch(run_mutations, run_reads);
      run_mutations.clear();
      run_reads.clear();
    }
    mutations.clear();
    reads.clear();
    order.clear();
  }
}

}  // namespace rtsync::store::detail
