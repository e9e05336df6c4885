// Blocking forms of the Store calls for the store test-suites: each queues the call and waits (at most
// 30 s, a failed expectation past that) for its callback. And WriterGate, which holds the writer thread so
// that whatever is queued meanwhile forms one batch.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "store/store.hpp"

namespace rtsync::store::calls {

// Runs `call(callback)` and returns what the store passes to the callback.
template <class R, class Call>
R wait_for(Call call) {
  std::promise<R> p;
  auto f = p.get_future();
  call([&p](R r) { p.set_value(std::move(r)); });
  EXPECT_EQ(f.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  return f.get();
}

// A publication by alice, kept (history 100).
inline AppendRequest append_request(std::string channel, std::string data, std::string key = "") {
  AppendRequest r;
  r.channel = std::move(channel);
  r.data = std::move(data);
  r.from = "alice";
  r.ts = 1700000000000;
  r.history_size = 100;
  r.key = std::move(key);
  return r;
}

inline AppendResult append_wait(Store& s, AppendRequest req) {
  return wait_for<AppendResult>([&](auto done) { s.append(std::move(req), std::move(done)); });
}

inline core::ChannelSnapshot load_wait(Store& s, const std::string& channel, std::size_t history_size,
                                       std::size_t history_bytes = SIZE_MAX) {
  return wait_for<core::ChannelSnapshot>(
      [&](auto done) { s.load(channel, history_size, history_bytes, std::move(done)); });
}

inline DocResult write_wait(Store& s, DocWrite w) {
  return wait_for<DocResult>([&](auto done) { s.write(std::move(w), std::move(done)); });
}

inline ListResult list_wait(Store& s, ListQuery q) {
  return wait_for<ListResult>([&](auto done) { s.list(std::move(q), std::move(done)); });
}

// The first page (up to 1000 documents by id).
inline ListResult list_wait(Store& s, const std::string& coll, const std::string& owner = "") {
  return list_wait(s, ListQuery{coll, owner, {}});
}

inline ChannelsResult channels_wait(Store& s, ChannelsQuery q) {
  return wait_for<ChannelsResult>([&](auto done) { s.channels(std::move(q), std::move(done)); });
}

inline GetResult get_wait(Store& s, const std::string& coll, const std::string& id) {
  return wait_for<GetResult>([&](auto done) { s.get(coll, id, std::move(done)); });
}

inline TallyResult tally_wait(Store& s, const std::string& coll,
                              const std::map<std::string, std::vector<std::int64_t>>& fields,
                              const std::string& group_by = "", const std::string& group = "") {
  return wait_for<TallyResult>([&](auto done) { s.tally(TallyQuery{coll, fields, group_by, group}, std::move(done)); });
}

inline GroupWriteResult group_write_wait(Store& s, GroupWrite w) {
  return wait_for<GroupWriteResult>([&](auto done) { s.write_group(std::move(w), std::move(done)); });
}

inline GroupsResult groups_wait(Store& s, std::vector<std::string> groups) {
  return wait_for<GroupsResult>([&](auto done) { s.read_groups(std::move(groups), std::move(done)); });
}

inline ActionWriteResult action_write_wait(Store& s, ActionWrite w) {
  return wait_for<ActionWriteResult>([&](auto done) { s.write_action(std::move(w), std::move(done)); });
}

inline ActionsResult actions_wait(Store& s, ActionQuery q) {
  return wait_for<ActionsResult>([&](auto done) { s.read_actions(std::move(q), std::move(done)); });
}

inline DeletionResult delete_wait(Store& s, MessageDeletion d) {
  return wait_for<DeletionResult>([&](auto done) { s.delete_messages(std::move(d), std::move(done)); });
}

inline ObjectWriteResult object_write_wait(Store& s, ObjectWrite w) {
  return wait_for<ObjectWriteResult>([&](auto done) { s.write_object(std::move(w), std::move(done)); });
}

inline MembershipWriteResult memberships_write_wait(Store& s, MembershipWrite w) {
  return wait_for<MembershipWriteResult>([&](auto done) { s.write_memberships(std::move(w), std::move(done)); });
}

inline ObjectsResult objects_wait(Store& s, ObjectQuery q) {
  return wait_for<ObjectsResult>([&](auto done) { s.read_objects(std::move(q), std::move(done)); });
}

inline RevocationResult revoke_wait(Store& s, TokenRevocation r) {
  return wait_for<RevocationResult>([&](auto done) { s.revoke_token(std::move(r), std::move(done)); });
}

inline WebhookWriteResult webhook_write_wait(Store& s, WebhookWrite w) {
  return wait_for<WebhookWriteResult>([&](auto done) { s.write_webhooks(std::move(w), std::move(done)); });
}

inline WebhookReadResult webhook_read_wait(Store& s, WebhookQuery q) {
  return wait_for<WebhookReadResult>([&](auto done) { s.read_webhooks(std::move(q), std::move(done)); });
}

inline RevocationsResult revocations_wait(Store& s) {
  return wait_for<RevocationsResult>([&](auto done) { s.read_revocations(std::move(done)); });
}

// Holds the writer thread inside the callback of an append to channel "gate", so that whatever is queued
// meanwhile forms one batch. The callback owns its promises (shared), since it may still run after the
// gate object is gone.
class WriterGate {
 public:
  explicit WriterGate(Store& s) {
    AppendRequest gate;
    gate.channel = "gate";
    gate.data = "0";
    gate.from = "alice";
    gate.ts = 1700000000000;
    gate.history_size = 100;
    auto entered = std::make_shared<std::promise<void>>();
    auto held = entered->get_future();
    s.append(std::move(gate), [entered, released = release_.get_future().share()](AppendResult) {
      entered->set_value();
      released.wait();
    });
    EXPECT_EQ(held.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  }
  ~WriterGate() { release_.set_value(); }
  WriterGate(const WriterGate&) = delete;
  WriterGate& operator=(const WriterGate&) = delete;

 private:
  std::promise<void> release_;
};

}  // namespace rtsync::store::calls
