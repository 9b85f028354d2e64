#include "devices/thread_limit.h"

namespace pyflame_rt {
namespace {
thread_local int limit = 0;
}  // namespace

IntraOpThreadLimit::IntraOpThreadLimit(int max_threads) : previous_(limit) { limit = max_threads > 0 ? max_threads : 0; }
IntraOpThreadLimit::~IntraOpThreadLimit() { limit = previous_; }
int IntraOpThreadLimit::current() { return limit; }

}  // namespace pyflame_rt
