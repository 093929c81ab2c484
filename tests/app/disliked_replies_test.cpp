// The answers users reported as inappropriate, as the alerts count them: by distinct users,
// each answer's latest rating standing, and read again from a real store.
#include "disliked_replies.h"

#include <gtest/gtest.h>

#include "testing.h"

namespace selffeed::app {
namespace {

using Reported = std::vector<std::pair<std::string, std::size_t>>;

Turn answer(const std::string& conversation, std::uint32_t index, const std::string& text) {
  return {.conversation_id = conversation, .index = index, .speaker = Speaker::kBot, .text = text,
          .time_ms = unix_millis(), .model_version = "v1", .candidate_id = 7};
}

TEST(ReportedRepliesTest, DistinctUsersCountAndALaterRatingTakesAReportBack) {
  ReportedReplies reported;
  const Conversation ann1{.id = "a1", .user_id = "ann"}, ann2{.id = "a2", .user_id = "ann"};
  const Conversation bob{.id = "b1", .user_id = "bob"}, anonymous{.id = "x1"};
  reported.rated(ann1, answer("a1", 1, "rude ."), true);
  reported.rated(ann2, answer("a2", 1, "rude ."), true);
  EXPECT_EQ(reported.reported_by(2), Reported{}) << "one user, twice";
  reported.rated(bob, answer("b1", 3, "rude ."), true);
  reported.rated(anonymous, answer("x1", 1, "meh ."), true);
  EXPECT_EQ(reported.reported_by(2), (Reported{{"rude .", 2}}));
  EXPECT_EQ(reported.reported_by(1), (Reported{{"rude .", 2}, {"meh .", 1}}));
  // Bob rates his answer again, without the reason; Ann takes back one of her two reports.
  reported.rated(bob, answer("b1", 3, "rude ."), false);
  reported.rated(ann1, answer("a1", 1, "rude ."), false);
  EXPECT_EQ(reported.reported_by(1), (Reported{{"meh .", 1}, {"rude .", 1}}));
  reported.rated(anonymous, answer("x1", 1, "meh ."), false);
  EXPECT_EQ(reported.reported_by(1), (Reported{{"rude .", 1}}));
}

TEST(ReportedRepliesTest, LoadReadsTheReportsThatStandFromTheStore) {
  testing::TempDir dir;
  auto store = store::Store::open({.path = dir.str("store")});
  ASSERT_OK(store);
  store::WriteSet w;
  for (const std::string user : {"ann", "bob", "cy"}) {
    w.conversations.push_back({.id = user, .user_id = user, .created_ms = unix_millis(), .updated_ms = unix_millis()});
    Turn t = answer(user, 1, "rude .");
    t.thumbs_up = user == "cy";  // cy's rating that stands is up
    if (user != "cy") t.dislike_reason = DislikeReason::kInappropriate;
    w.turns.push_back(t);
  }
  Turn old = answer("ann", 3, "long ago .");
  old.time_ms = unix_millis() - ReportedReplies::kLoadWindowMs - 1000;
  old.thumbs_up = false;
  old.dislike_reason = DislikeReason::kInappropriate;
  w.turns.push_back(old);
  ASSERT_OK((*store)->commit(w));
  ReportedReplies reported;
  ASSERT_OK(reported.load(**store));
  EXPECT_EQ(reported.reported_by(1), (Reported{{"rude .", 2}})) << "ann's and bob's; not cy's, nor the week-old one";
}

}  // namespace
}  // namespace selffeed::app
