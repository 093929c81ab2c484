#include <gtest/gtest.h>

#include "selffeed/websocket/server.h"

namespace selffeed::websocket {
namespace {

TEST(AddressKeyTest, CountsIpv4AsItIsAndIpv6ByItsNetwork) {
  EXPECT_EQ(address_key("192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(address_key("::ffff:192.0.2.7"), "192.0.2.7") << "an IPv4 client of a dual-stack socket";
  EXPECT_EQ(address_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
  EXPECT_EQ(address_key("2001:db8:1:2::1"), address_key("2001:db8:1:2:ffff::9")) << "one host, two addresses";
  EXPECT_NE(address_key("2001:db8:1:2::1"), address_key("2001:db8:1:3::1"));
  EXPECT_EQ(address_key("::1"), "::/64");
  EXPECT_EQ(address_key("not an address"), "not an address");
}

}  // namespace
}  // namespace selffeed::websocket
