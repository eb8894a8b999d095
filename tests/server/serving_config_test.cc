// serving.json parsing: integers are refused, never wrapped, beyond an int.
#include <gtest/gtest.h>

#include "server/repository/serving_config.h"

namespace clca::server {
namespace {

absl::StatusCode Parse(const char* text) {
  return ParseServingConfig(nlohmann::json::parse(text)).status().code();
}

TEST(ServingConfigTest, AcceptsEveryKey) {
  absl::StatusOr<ServingConfig> config = ParseServingConfig(nlohmann::json::parse(R"({
    "max_batch_size": 4, "max_queue_delay_us": 600000000, "queue_capacity": 2147483647,
    "workers": 2, "intra_op_threads": 0, "keep_rate": {"default": 0.5, "min": 0.25},
    "precision": "bf16"})"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->batching.max_batch_size, 4);
  EXPECT_EQ(config->batching.max_queue_delay.count(), 600000000);
  EXPECT_EQ(config->batching.queue_capacity, 2147483647);
  EXPECT_EQ(config->workers, 2);
  EXPECT_EQ(config->precision, Precision::kBFloat16);
}

// Found by fuzz_serving_config: 21474836471 threads were stored as -9.
TEST(ServingConfigTest, IntegersBeyondAnIntAreErrors) {
  EXPECT_EQ(Parse(R"({"intra_op_threads": 21474836471})"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse(R"({"max_batch_size": 4294967297})"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse(R"({"workers": 2147483648})"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse(R"({"queue_capacity": 18446744073709551615})"),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse(R"({"max_queue_delay_us": 9223372036854775807})"),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse(R"({"workers": -1})"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse(R"({"workers": 1.5})"), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace clca::server
