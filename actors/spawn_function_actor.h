// Spawns a function-based actor that takes no arguments of its own.
//
//   spawn_function_actor<caf::detached>(system, [](caf::event_based_actor* self) { ... });
//
// Why not system.spawn(fun): CAF 0.17's init_fun_factory (caf/detail/init_fun_factory.hpp)
// calls the function with `*args_`, a shared_ptr to the tuple of spawn arguments that is null
// when there are none. The empty tuple is never read, but the dereference is undefined, and
// libstdc++'s _GLIBCXX_ASSERTIONS (on in the sanitizer builds) aborts there: every pipeline
// and every compile failed under `make sanitize-asan-cpp` (docs/reliability.md, stop 25).
// One ignored argument gives CAF a tuple to point to.
#pragma once

#include <caf/all.hpp>

namespace pyflame_rt {

template <caf::spawn_options Options = caf::no_spawn_options, class F>
caf::actor spawn_function_actor(caf::actor_system& system, F fun) {
  return system.spawn<Options>(
      [fun = std::move(fun)](caf::event_based_actor* self, int /*ignored*/) { return fun(self); }, 0);
}

}  // namespace pyflame_rt
