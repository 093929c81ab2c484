#include "selffeed/common/metrics.h"

#include <gtest/gtest.h>

#include "selffeed/common/utf8.h"

namespace selffeed {
namespace {

TEST(MetricsTest, RendersPrometheusTextWithLabelsAndCumulativeBuckets) {
  metrics::Registry registry;
  registry.counter("t_total", "Turns.").inc(3);
  registry.counter("h_total", "Harvested.", {{"kind", "HB"}}).inc();
  registry.counter("h_total", "Harvested.", {{"kind", "FB"}}).inc(2);
  registry.gauge("g", "A gauge.", {{"version", "v\"1"}}).set(1);
  auto& h = registry.histogram("lat_seconds", "Latency.", {0.01, 0.1});
  h.observe(0.005);
  h.observe(0.05);
  h.observe(5);
  const std::string text = registry.render();
  EXPECT_NE(text.find("# HELP t_total Turns.\n# TYPE t_total counter\nt_total 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_total{kind=\"HB\"} 1\nh_total{kind=\"FB\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("g{version=\"v\\\"1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"0.01\"} 1\nlat_seconds_bucket{le=\"0.1\"} 2\n"
                      "lat_seconds_bucket{le=\"+Inf\"} 3\nlat_seconds_sum 5.055\nlat_seconds_count 3\n"),
            std::string::npos)
      << text;
}

TEST(MetricsTest, SameNameAndLabelsIsTheSameMetric) {
  metrics::Registry registry;
  metrics::Counter& a = metrics::error_counter(registry, "rate_limited");
  metrics::Counter& b = metrics::error_counter(registry, "rate_limited");
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &metrics::error_counter(registry, "invalid_json"));
}

TEST(Utf8Test, AcceptsValidAndRejectsMalformedSequences) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));  // é € 😀
  EXPECT_FALSE(is_valid_utf8("\xff"));
  EXPECT_FALSE(is_valid_utf8("\xc3\x28"));          // bad continuation
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xe0\x80\xaf"));      // overlong, 3 bytes
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate U+D800
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("ok\xe2\x82"));        // truncated at the end
  EXPECT_EQ(first_invalid_utf8("ab\xffz"), 2u);
}

}  // namespace
}  // namespace selffeed
