// The process-wide seed of random ops without a `seed` attribute (ONNX Runtime's set_seed):
// after set_random_seed(s), the n-th unseeded random node run draws from a generator seeded
// by (s, n), so a program that runs the same nodes in the same order gets the same numbers.
// Without it each such node draws from std::random_device.
#pragma once

#include <cstdint>
#include <optional>

namespace pyflame_rt {

void set_random_seed(uint64_t seed);
// The seed for the next unseeded random node, or nullopt when no seed was set.
std::optional<uint64_t> next_random_seed();

}  // namespace pyflame_rt
