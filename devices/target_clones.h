// PFRT_TARGET_CLONES: compile a loop for AVX-512, AVX2 and the baseline (GCC's target_clones);
// the dynamic loader picks the variant by the CPU's features through an ifunc resolver.
//
// ThreadSanitizer builds compile the baseline only. GCC instruments the resolver it generates
// like any function (__tsan_func_entry), and the loader runs resolvers while it relocates the
// program, before the TSan runtime is initialised: every binary that linked one crashed at
// start (SIGSEGV in `tanh_inplace(float*, long) [clone .resolver]`). The loops' source is the
// same for every variant, so the baseline is what TSan needs to see.
#pragma once

#if defined(__SANITIZE_THREAD__)
#define PFRT_TARGET_CLONES
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PFRT_TARGET_CLONES
#endif
#endif

#ifndef PFRT_TARGET_CLONES
#define PFRT_TARGET_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
