// The options of `clca-client perf`: the parsing of keep-rate mixes,
// concurrency levels and rates, and the checks RunPerf makes before sending.
// client_perf_stats_test.cc and client_perf_report_test.cc test the figures
// and their renderings.
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "client/perf.h"

namespace clca::perf {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(KeepRateMixTest, RateWeightPairs) {
  absl::StatusOr<std::vector<KeepRateShare>> mix = ParseKeepRateMix("0.1:0.5, 1.0:0.5");
  ASSERT_TRUE(mix.ok()) << mix.status();
  ASSERT_EQ(mix->size(), 2u);
  EXPECT_FLOAT_EQ(*(*mix)[0].keep_rate, 0.1f);
  EXPECT_DOUBLE_EQ((*mix)[0].weight, 0.5);
  EXPECT_FLOAT_EQ(*(*mix)[1].keep_rate, 1.0f);
  EXPECT_DOUBLE_EQ((*mix)[1].weight, 0.5);
}

TEST(KeepRateMixTest, BareListHasEqualWeightsAndDefaultIsTheModels) {
  absl::StatusOr<std::vector<KeepRateShare>> mix = ParseKeepRateMix("0.25,default,1");
  ASSERT_TRUE(mix.ok()) << mix.status();
  ASSERT_EQ(mix->size(), 3u);
  EXPECT_FLOAT_EQ(*(*mix)[0].keep_rate, 0.25f);
  EXPECT_FALSE((*mix)[1].keep_rate.has_value());
  EXPECT_FLOAT_EQ(*(*mix)[2].keep_rate, 1.0f);
  for (const KeepRateShare& share : *mix) EXPECT_EQ(share.weight, 1);
}

TEST(KeepRateMixTest, BadSpecsSayWhatIsWrong) {
  struct Case {
    const char* spec;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {"2.0:1", "keep rate \"2.0\" is not a number in (0, 1]"},
           {"0:1", "is not a number in (0, 1]"},
           {"-0.5", "is not a number in (0, 1]"},
           {"abc", "keep rate \"abc\""},
           {"nan", "is not a number in (0, 1]"},
           {"0.1:0", "the weight of keep rate 0.1 must be a positive number"},
           {"0.1:-1", "must be a positive number"},
           {"0.1:x", "must be a positive number"},
           {"0.1:inf", "must be a positive number"},
           {"0.1:1:2", "expected rate or rate:weight"},
           {"", "empty entry"},
           {"0.1,,0.5", "empty entry"},
           {"0.1:1,0.5", "give every keep rate a weight or none"},
           {"0.5,0.50", "keep rate 0.5 is given twice"},
           {"default,default", "keep rate default is given twice"},
       }) {
    absl::StatusOr<std::vector<KeepRateShare>> mix = ParseKeepRateMix(c.spec);
    ASSERT_FALSE(mix.ok()) << c.spec;
    EXPECT_EQ(mix.status().code(), absl::StatusCode::kInvalidArgument) << c.spec;
    EXPECT_THAT(std::string(mix.status().message()), HasSubstr(c.message)) << c.spec;
  }
}

TEST(LoadSpecTest, ConcurrencyListsAndRanges) {
  EXPECT_THAT(*ParseConcurrencyList("1,2,4,8"), ElementsAre(1, 2, 4, 8));
  EXPECT_THAT(*ParseConcurrencyRange("1:8:2"), ElementsAre(1, 3, 5, 7));
  EXPECT_THAT(*ParseConcurrencyRange("2:4"), ElementsAre(2, 3, 4));
  EXPECT_THAT(*ParseConcurrencyRange("3:3"), ElementsAre(3));
  for (const char* bad : {"0", "1,,2", "x", "-1", "1.5", "100000"}) {
    EXPECT_FALSE(ParseConcurrencyList(bad).ok()) << bad;
  }
  for (const char* bad : {"8:1", "1", "1:2:0", "1:2:3:4", "a:b", "0:4"}) {
    EXPECT_FALSE(ParseConcurrencyRange(bad).ok()) << bad;
  }
  EXPECT_THAT(std::string(ParseConcurrencyRange("8:1").status().message()),
              HasSubstr("below the start"));
}

TEST(LoadSpecTest, RateListsAndRanges) {
  EXPECT_THAT(*ParseRateList("50, 100,2.5"), ElementsAre(50, 100, 2.5));
  EXPECT_THAT(*ParseRateRange("10:30:10"), ElementsAre(10, 20, 30));
  EXPECT_THAT(*ParseRateRange("0.1:0.3:0.1"), ElementsAre(0.1, 0.2, 0.30000000000000004));
  for (const char* bad : {"0", "-5", "x", "inf", ""}) {
    EXPECT_FALSE(ParseRateList(bad).ok()) << bad;
  }
  for (const char* bad : {"30:10:10", "1:2:0", "1:100000:1", "1"}) {
    EXPECT_FALSE(ParseRateRange(bad).ok()) << bad;
  }
}

TEST(KeepRateLabelTest, NamesARateOrTheDefault) {
  EXPECT_EQ(KeepRateLabel(0.25f), "0.25");
  EXPECT_EQ(KeepRateLabel(1.0f), "1");
  EXPECT_EQ(KeepRateLabel(std::nullopt), "default");
}

PerfOptions ValidOptions() {
  PerfOptions options;
  options.model = "leafnet";
  options.images = {"not decoded by the client"};
  return options;
}

TEST(ValidatePerfOptionsTest, AcceptsTheDefaultsWithAnImage) {
  EXPECT_TRUE(ValidatePerfOptions(ValidOptions()).ok());
  PerfOptions raw = ValidOptions();
  raw.images.clear();
  raw.raw_images = RandomRawImages(8, 2, 1);
  EXPECT_TRUE(ValidatePerfOptions(raw).ok());
  PerfOptions adaptive = ValidOptions();
  adaptive.min_keep_rate = 1.0f;
  EXPECT_TRUE(ValidatePerfOptions(adaptive).ok());
}

TEST(ValidatePerfOptionsTest, RefusesInconsistentOptions) {
  struct Case {
    const char* message;
    std::function<void(PerfOptions*)> change;
  };
  for (const Case& c : std::vector<Case>{
           {"no image to send", [](PerfOptions* o) { o->images.clear(); }},
           {"not both", [](PerfOptions* o) { o->raw_images = RandomRawImages(4, 1, 0); }},
           {"concurrency levels or request rates, not both",
            [](PerfOptions* o) {
              o->concurrency = {1};
              o->request_rates = {10};
            }},
           {"streaming measures concurrency levels",
            [](PerfOptions* o) {
              o->streaming = true;
              o->request_rates = {10};
            }},
           {"concurrency must be in [1, 4096]", [](PerfOptions* o) { o->concurrency = {0}; }},
           {"request rate must be positive", [](PerfOptions* o) { o->request_rates = {-1}; }},
           {"keep-rate weights must be positive",
            [](PerfOptions* o) { o->keep_rates = {{0.5f, 0}}; }},
           {"the window must be positive",
            [](PerfOptions* o) { o->window = std::chrono::milliseconds(0); }},
           {"top_k must not be negative", [](PerfOptions* o) { o->top_k = -1; }},
           {"the minimum keep rate must be in (0, 1]",
            [](PerfOptions* o) { o->min_keep_rate = 0.0f; }},
           {"the minimum keep rate must be in (0, 1]",
            [](PerfOptions* o) { o->min_keep_rate = 1.5f; }},
           {"give it or a keep-rate mix, not both",
            [](PerfOptions* o) {
              o->min_keep_rate = 0.3f;
              o->keep_rates = {{0.5f, 1}};
            }},
           {"the deadline must not be negative",
            [](PerfOptions* o) { o->deadline = std::chrono::milliseconds(-1); }},
       }) {
    PerfOptions options = ValidOptions();
    c.change(&options);
    const absl::Status status = ValidatePerfOptions(options);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.message));
  }
}

TEST(RandomRawImagesTest, SeededPixelsOfTheGivenSide) {
  const std::vector<RawPixels> a = RandomRawImages(4, 3, 7);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].width, 4);
  EXPECT_EQ(a[0].height, 4);
  EXPECT_EQ(a[0].rgb.size(), 48u);
  EXPECT_NE(a[0].rgb, a[1].rgb);
  EXPECT_EQ(RandomRawImages(4, 3, 7)[2].rgb, a[2].rgb);
  EXPECT_NE(RandomRawImages(4, 3, 8)[0].rgb, a[0].rgb);
}

}  // namespace
}  // namespace clca::perf
