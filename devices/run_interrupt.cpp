#include "devices/run_interrupt.h"

namespace pyflame_rt {

namespace {
thread_local const std::atomic<bool>* t_flag = nullptr;
}  // namespace

const std::atomic<bool>* current_run_interrupt() { return t_flag; }

RunInterruptScope::RunInterruptScope(const std::atomic<bool>* flag) : previous_(t_flag) { t_flag = flag; }
RunInterruptScope::~RunInterruptScope() { t_flag = previous_; }

}  // namespace pyflame_rt
