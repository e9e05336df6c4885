// Unit tests of the JSON of PubNub message actions (service/pubnub_actions.cpp): an action as the actions
// API answers it, its event, and a message's actions in history, grouped by type and value.
#include "service/pubnub_actions.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace rtsync::service {
namespace {

store::MessageAction action(std::uint64_t message_tt, std::uint64_t action_tt, std::string type, std::string value,
                            std::string uuid) {
  return store::MessageAction{message_tt, action_tt, std::move(type), std::move(value), std::move(uuid)};
}

TEST(PubnubActions, AnActionAndItsEvent) {
  const auto a = action(17000000000000001, 17000000000000002, "reaction", "sm\"ile", "ann");
  std::string out;
  append_action(out, a);
  EXPECT_EQ(out, R"({"type":"reaction","value":"sm\"ile","uuid":"ann","actionTimetoken":"17000000000000002",)"
                 R"("messageTimetoken":"17000000000000001"})");
  EXPECT_EQ(action_event("removed", a),
            R"({"source":"actions","version":"1.0","event":"removed","data":{"type":"reaction","value":"sm\"ile",)"
            R"("messageTimetoken":"17000000000000001","actionTimetoken":"17000000000000002"}})");
}

TEST(PubnubActions, AMessagesActionsByTypeAndValueEachListAscending) {
  const std::vector<store::MessageAction> all{
      action(1, 30, "reaction", "smile", "cy"), action(2, 31, "reaction", "smile", "other message"),
      action(1, 10, "reaction", "smile", "ann"), action(1, 20, "receipt", "read", "bob"),
      action(1, 15, "reaction", "frown", "bob")};
  std::string out;
  append_message_actions(out, all, 1);
  EXPECT_EQ(out, R"({"reaction":{"frown":[{"uuid":"bob","actionTimetoken":"15"}],)"
                 R"("smile":[{"uuid":"ann","actionTimetoken":"10"},{"uuid":"cy","actionTimetoken":"30"}]},)"
                 R"("receipt":{"read":[{"uuid":"bob","actionTimetoken":"20"}]}})");
  std::string none;
  append_message_actions(none, all, 3);
  EXPECT_EQ(none, "{}");
}

}  // namespace
}  // namespace rtsync::service
