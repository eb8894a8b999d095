// OpenBLAS's process-wide thread count and the calling thread's LibTorch one.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "models/threads.h"

namespace clca {
namespace {

TEST(ThreadsTest, SetsOpenBlasAndLibTorchThreads) {
  const int before = BlasThreads();
  if (before == 0) GTEST_SKIP() << "LibTorch's BLAS is not OpenBLAS";
  EXPECT_TRUE(SetBlasThreads(1));
  EXPECT_EQ(BlasThreads(), 1);
  EXPECT_FALSE(SetBlasThreads(0));
  EXPECT_EQ(BlasThreads(), 1);

  SetComputeThreads(2);
  EXPECT_EQ(BlasThreads(), 2);
  EXPECT_EQ(at::get_num_threads(), 2);
  // Below 1: both left as they are.
  SetComputeThreads(0);
  EXPECT_EQ(BlasThreads(), 2);
  EXPECT_EQ(at::get_num_threads(), 2);
  SetBlasThreads(before);
}

}  // namespace
}  // namespace clca
