#include "selffeed/common/digest.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>

namespace selffeed {
namespace {

TEST(DigestTest, Sha256MatchesThePublishedTestVectors) {  // FIPS 180-2
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(DigestTest, HmacSha256MatchesThePublishedTestVectors) {  // RFC 4231, test case 2
  EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_NE(hmac_sha256_hex("Jefe2", "what do ya want for nothing?"), hmac_sha256_hex("Jefe", "what do ya want for nothing?"));
}

TEST(DigestTest, TheStreamPassesEveryByteOnAndHashesWhatItPassed) {
  std::ostringstream sink;
  Sha256Stream out(&sink);
  std::string written;
  // Over several of the stream's 64 KiB blocks, in pieces of every size.
  for (int i = 0; i < 20000; ++i) {
    const std::string piece = std::to_string(i) + (i % 7 == 0 ? "\n" : " ") + std::string(static_cast<std::size_t>(i % 13), 'x');
    out << piece;
    written += piece;
  }
  const std::string midway = out.hex_digest();
  EXPECT_EQ(sink.str(), written);
  EXPECT_EQ(midway, sha256_hex(written));
  out << "more";  // a look at the digest does not end the stream
  EXPECT_EQ(out.hex_digest(), sha256_hex(written + "more"));
  EXPECT_EQ(sink.str(), written + "more");

  Sha256Stream hash_only;
  hash_only << "abc";
  EXPECT_EQ(hash_only.hex_digest(), sha256_hex("abc"));
}

}  // namespace
}  // namespace selffeed
