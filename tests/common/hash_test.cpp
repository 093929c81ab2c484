#include "selffeed/common/hash.h"

#include <gtest/gtest.h>

namespace selffeed {
namespace {

TEST(HashTest, Fnv1a64MatchesThePublishedTestVectors) {
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ULL);
}

TEST(HashTest, HashingInPiecesIsHashingTheWhole) {
  EXPECT_EQ(fnv1a64("bar", fnv1a64("foo")), fnv1a64("foobar"));
  // Bytes above 0x7f hash as unsigned, whatever the signedness of char.
  EXPECT_EQ(fnv1a64("\xff"), (kFnv1a64Basis ^ 0xffULL) * 0x100000001b3ULL);
}

}  // namespace
}  // namespace selffeed
