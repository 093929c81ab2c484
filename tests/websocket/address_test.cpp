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

TEST(ClientAddressKeyTest, AnUntrustedPeerIsTheClientWhateverItsHeaderSays) {
  EXPECT_EQ(client_address_key("192.0.2.7", "198.51.100.1", {}), "192.0.2.7");
  EXPECT_EQ(client_address_key("192.0.2.7", "198.51.100.1", {"192.0.2.8"}), "192.0.2.7");
}

TEST(ClientAddressKeyTest, BehindTrustedProxiesTheClientIsTheAddressTheOutermostOneSaw) {
  const std::vector<std::string> proxies = {"10.0.0.1", "10.0.0.2"};
  EXPECT_EQ(client_address_key("10.0.0.1", "198.51.100.1", proxies), "198.51.100.1");
  // What the client wrote itself stands left of what the proxies appended, and is not read.
  EXPECT_EQ(client_address_key("10.0.0.1", "203.0.113.9, 198.51.100.1", proxies), "198.51.100.1");
  EXPECT_EQ(client_address_key("10.0.0.1", "203.0.113.9, 198.51.100.1,10.0.0.2", proxies), "198.51.100.1")
      << "a chain of trusted proxies";
  EXPECT_EQ(client_address_key("::ffff:10.0.0.1", "198.51.100.1", proxies), "198.51.100.1") << "dual-stack socket";
  EXPECT_EQ(client_address_key("10.0.0.1", "198.51.100.1:4711", proxies), "198.51.100.1") << "with a port";
  EXPECT_EQ(client_address_key("10.0.0.1", "[2001:db8:1:2::5]:4711", proxies), "2001:db8:1:2::/64");
  EXPECT_EQ(client_address_key("10.0.0.1", "2001:db8:1:2::5", proxies), "2001:db8:1:2::/64");
}

TEST(ClientAddressKeyTest, WithoutAUsableHeaderTheLastKnownHopIsTheClient) {
  const std::vector<std::string> proxies = {"10.0.0.1"};
  EXPECT_EQ(client_address_key("10.0.0.1", "", proxies), "10.0.0.1");
  EXPECT_EQ(client_address_key("10.0.0.1", " , ", proxies), "10.0.0.1");
  EXPECT_EQ(client_address_key("10.0.0.1", "unknown", proxies), "unknown") << "what a proxy writes when it cannot tell";
  EXPECT_EQ(client_address_key("10.0.0.1", "1.2.3.4,  unknown\t", proxies), "unknown") << "one key, however spaced";
  EXPECT_EQ(client_address_key("10.0.0.1", std::string(500, 'x'), proxies).size(), 64u)
      << "a key the connection table keeps is bounded";
}

}  // namespace
}  // namespace selffeed::websocket
