#include "selffeed/common/records.h"
#include "selffeed/common/status.h"

#include <gtest/gtest.h>

namespace selffeed {
namespace {

Result<int> half(int x) {
  if (x % 2 != 0) return invalid_argument_error(std::to_string(x) + " is odd");
  return x / 2;
}

Result<int> quarter(int x) {
  SELFFEED_ASSIGN_OR_RETURN(int h, half(x));
  SELFFEED_ASSIGN_OR_RETURN(int q, half(h));
  return q;
}

TEST(StatusTest, OkAndErrorsRenderTheirCode) {
  EXPECT_TRUE(ok_status().ok());
  EXPECT_EQ(ok_status().to_string(), "ok");
  Status s = data_loss_error("bad block");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(s.to_string(), "data_loss: bad block");
  EXPECT_EQ(s.with_context("open 'x'").message(), "open 'x': bad block");
}

TEST(StatusTest, AssignOrReturnPropagatesTheFirstError) {
  ASSERT_TRUE(quarter(8).ok());
  EXPECT_EQ(*quarter(8), 2);
  Result<int> r = quarter(6);  // 6 -> 3, then 3 is odd
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "3 is odd");
}

TEST(StatusDeathTest, ValueOfAnErrorAborts) {
  Result<int> r = not_found_error("nothing");
  EXPECT_DEATH((void)r.value(), "SELFFEED_CHECK failed");
}

TEST(RecordsTest, EnumNamesRoundTrip) {
  for (ExampleKind k : kAllExampleKinds) EXPECT_EQ(parse_example_kind(example_kind_name(k)), k);
  for (Phase p : {Phase::kNormal, Phase::kFeedbackRequested, Phase::kNewTopicRequested, Phase::kRatingRequested}) {
    EXPECT_EQ(parse_phase(phase_name(p)), p);
  }
  EXPECT_EQ(parse_example_kind("hb"), std::nullopt);
  EXPECT_EQ(parse_speaker("bot"), Speaker::kBot);
  EXPECT_EQ(parse_model_status("live"), ModelStatus::kLive);
  for (DislikeReason r : kAllDislikeReasons) EXPECT_EQ(parse_dislike_reason(dislike_reason_name(r)), r);
  EXPECT_EQ(parse_dislike_reason("off_topic"), DislikeReason::kOffTopic);
  EXPECT_EQ(parse_dislike_reason("boring"), std::nullopt);
  EXPECT_EQ(dislike_reason_names("|"), "off_topic|nonsensical|repetitive|inappropriate|other");
}

}  // namespace
}  // namespace selffeed
