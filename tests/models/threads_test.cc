// OpenBLAS's process-wide thread count, the calling thread's LibTorch one, and
// the model library's own parallel loops.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "models/cpu/threads.h"

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

TEST(ThreadsTest, ParallelLoopsOfTheModelLibraryUseTheIntraOpThreads) {
  // Built without OpenMP, at::parallel_for in the library's own code would
  // leave every other core idle during attention.
#ifndef CLCA_HAVE_OPENMP
  GTEST_SKIP() << "the model library was built without OpenMP (CLCA_WITH_OPENMP=OFF)";
#endif
  const int before = at::get_num_threads();
  SetIntraOpThreads(2);
  EXPECT_EQ(ParallelForWidth(), 2);
  SetIntraOpThreads(1);
  EXPECT_EQ(ParallelForWidth(), 1);
  SetIntraOpThreads(before);
}

}  // namespace
}  // namespace clca
