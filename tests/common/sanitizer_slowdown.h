// How much longer the tests' wall-clock bounds are under a sanitizer. ASan's and TSan's builds
// run our loops at -O1 with every access checked, and a fresh allocation costs shadow pages: the
// deadline tests' LSTM of 50,000 steps allocates its 820 MB input projection before its first
// check, which took 10.2 s under ASan at a load of 6-10 against a 5 s bound (docs/reliability.md,
// "Sanitizers, stop 20"). A bound stays far below what the case runs without its check.
#pragma once

namespace pyflame_rt {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int kSanitizerSlowdown = 4;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr int kSanitizerSlowdown = 4;
#else
constexpr int kSanitizerSlowdown = 1;
#endif
#else
constexpr int kSanitizerSlowdown = 1;
#endif

}  // namespace pyflame_rt
