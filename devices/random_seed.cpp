#include "devices/random_seed.h"

#include <mutex>

namespace pyflame_rt {

namespace {
std::mutex g_mu;
std::optional<uint64_t> g_seed;
uint64_t g_draws = 0;
}  // namespace

void set_random_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_seed = seed;
  g_draws = 0;
}

std::optional<uint64_t> next_random_seed() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_seed) return std::nullopt;
  // splitmix64 of (seed, draw): consecutive draws get unrelated generator states.
  uint64_t z = *g_seed + 0x9e3779b97f4a7c15ull * ++g_draws;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace pyflame_rt
