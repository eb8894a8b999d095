// The online compute-time model and the keep-rate choice made from it.
#include "server/batching/compute_time_model.h"

#include <chrono>
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace clca::server {
namespace {

using std::chrono::milliseconds;

TEST(ComputeTimeModelTest, NothingToPredictBeforeTheFirstBatch) {
  ComputeTimeModel model;
  EXPECT_FALSE(model.Current().has_value());
}

TEST(ComputeTimeModelTest, RecoversAFixedAndAPerGmacCost) {
  ComputeTimeModel model;
  // 4 ms per batch and 10 ms per GMAC, at several batch sizes.
  for (int i = 0; i < 40; ++i) {
    const double gmacs = 0.5 * (1 + i % 8);
    model.Observe(gmacs, 0.004 + 0.010 * gmacs);
  }
  const auto fit = model.Current();
  ASSERT_TRUE(fit.has_value());
  EXPECT_NEAR(fit->fixed, 0.004, 1e-9);
  EXPECT_NEAR(fit->per_gmac, 0.010, 1e-9);
  EXPECT_NEAR(fit->Seconds(2.0), 0.024, 1e-9);
}

TEST(ComputeTimeModelTest, OneBatchSizePutsAllTheTimeOnTheWork) {
  ComputeTimeModel model;
  for (int i = 0; i < 5; ++i) model.Observe(2.0, 0.030);
  const auto fit = model.Current();
  ASSERT_TRUE(fit.has_value());
  EXPECT_EQ(fit->fixed, 0);
  EXPECT_NEAR(fit->per_gmac, 0.015, 1e-12);
}

TEST(ComputeTimeModelTest, RecentBatchesWeighMore) {
  ComputeTimeModel model(/*decay=*/0.5);
  for (int i = 0; i < 50; ++i) model.Observe(1.0, 0.100);
  // The machine got twice as fast.
  for (int i = 0; i < 20; ++i) model.Observe(1.0, 0.050);
  EXPECT_NEAR(model.Current()->Seconds(1.0), 0.050, 1e-4);
}

TEST(ComputeTimeModelTest, IgnoresMeaninglessSamples) {
  ComputeTimeModel model;
  model.Observe(-1, 0.1);
  model.Observe(1, std::nan(""));
  EXPECT_FALSE(model.Current().has_value());
}

class ChooseKeepRateTest : public ::testing::Test {
 protected:
  // 10 ms per GMAC, nothing fixed: keep rate r costs 10·r ms here.
  const std::vector<RateCost> rates_ = {{1.0, 1.0}, {0.7, 0.7}, {0.5, 0.5}, {0.3, 0.3}};
  const ComputeTimeModel::Fit fit_{0, 0.010};
  const TimePoint now_ = TimePoint() + std::chrono::hours(1);
};

TEST_F(ChooseKeepRateTest, WithoutADeadlineTheHighest) {
  EXPECT_EQ(ChooseKeepRate(rates_, fit_, now_, milliseconds(500), TimePoint::max()), 0u);
}

TEST_F(ChooseKeepRateTest, TheHighestThatFinishesByTheDeadline) {
  EXPECT_EQ(ChooseKeepRate(rates_, fit_, now_, milliseconds(0), now_ + milliseconds(11)), 0u);
  EXPECT_EQ(ChooseKeepRate(rates_, fit_, now_, milliseconds(0), now_ + milliseconds(6)), 2u);
  // The work queued ahead counts.
  EXPECT_EQ(ChooseKeepRate(rates_, fit_, now_, milliseconds(4), now_ + milliseconds(10)), 2u);
  EXPECT_EQ(ChooseKeepRate(rates_, fit_, now_, std::chrono::microseconds(6500),
                           now_ + milliseconds(10)),
            3u);
}

TEST_F(ChooseKeepRateTest, TheWholeBatchItJoinsCounts) {
  // In a batch of 3: keep rate r costs 30·r ms.
  EXPECT_EQ(ChooseKeepRate(rates_, fit_, now_, milliseconds(0), now_ + milliseconds(31), 3), 0u);
  EXPECT_EQ(ChooseKeepRate(rates_, fit_, now_, milliseconds(0), now_ + milliseconds(20), 3), 2u);
  EXPECT_FALSE(ChooseKeepRate(rates_, fit_, now_, milliseconds(2), now_ + milliseconds(10), 3));
}

TEST_F(ChooseKeepRateTest, NoneWhenEvenTheLowestIsLate) {
  EXPECT_FALSE(ChooseKeepRate(rates_, fit_, now_, milliseconds(8), now_ + milliseconds(10)));
  EXPECT_FALSE(ChooseKeepRate(rates_, fit_, now_, milliseconds(0), now_ - milliseconds(1)));
  EXPECT_FALSE(ChooseKeepRate({}, fit_, now_, milliseconds(0), TimePoint::max()));
}

}  // namespace
}  // namespace clca::server
