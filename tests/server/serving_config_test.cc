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
    "precision": "bf16", "cuda_graphs": false})"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->batching.max_batch_size, 4);
  EXPECT_EQ(config->batching.max_queue_delay.count(), 600000000);
  EXPECT_EQ(config->batching.queue_capacity, 2147483647);
  EXPECT_EQ(config->workers, 2);
  EXPECT_EQ(config->precision, Precision::kBFloat16);
  EXPECT_FALSE(config->cuda_graphs);
}

// Without a precision, a version computes in float16 on a GPU and float32 on
// the CPU; a named one holds everywhere.
TEST(ServingConfigTest, PrecisionDefaultsToTheDevicesOwn) {
  absl::StatusOr<ServingConfig> plain = ParseServingConfig(nlohmann::json::parse("{}"));
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->precision.has_value());
  EXPECT_TRUE(plain->cuda_graphs);
  EXPECT_EQ(PrecisionFor(*plain, "cpu"), Precision::kFloat32);
  EXPECT_EQ(PrecisionFor(*plain, "cuda"), Precision::kFloat16);
  EXPECT_EQ(PrecisionFor(*plain, "cuda:1"), Precision::kFloat16);
  absl::StatusOr<ServingConfig> named =
      ParseServingConfig(nlohmann::json::parse(R"({"precision": "float32"})"));
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(PrecisionFor(*named, "cuda"), Precision::kFloat32);
  EXPECT_EQ(Parse(R"({"cuda_graphs": 1})"), absl::StatusCode::kInvalidArgument);
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
