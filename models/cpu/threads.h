// Thread counts of the CPU libraries LibTorch computes with.
//
// LibTorch's own intra-op threads (at::set_num_threads) belong to the thread
// that sets them. A matrix product, though, runs in the BLAS, and OpenBLAS
// (Debian's LibTorch) keeps one thread count for the whole process: left at
// its default (every core), two workers that each compute on one thread would
// both hand their products to the same pool and queue for it.
#pragma once

namespace clca {

// Sets OpenBLAS's thread count for the whole process. Returns false, changing
// nothing, when LibTorch's BLAS is not OpenBLAS (MKL follows
// at::set_num_threads) or `threads` < 1.
bool SetBlasThreads(int threads);

// OpenBLAS's thread count, or 0 when the BLAS is not OpenBLAS.
int BlasThreads();

// std::thread::hardware_concurrency(), at least 1.
int HardwareThreads();

// LibTorch's intra-op threads of the calling thread, its pool initialised
// first: LibTorch's lazy initialisation would otherwise later reset it to the
// process-wide default.
void SetIntraOpThreads(int threads);

// How many threads at::parallel_for, called from this library, spreads
// at::get_num_threads() iterations over. at::parallel_for is a header
// template: built without OpenMP, the library's loops (attention's (image,
// head) pairs, the bfloat16 LayerNorm) run on the calling thread alone, and
// this is 1.
int ParallelForWidth();

// SetIntraOpThreads(threads) for the calling thread and SetBlasThreads:
// what one process computing on `threads` cores wants. `threads` < 1 leaves
// both libraries at their defaults.
void SetComputeThreads(int threads);

}  // namespace clca
