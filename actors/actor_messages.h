// Atoms and local message types shared by the actors (internal: includes CAF).
// Everything that crosses a process boundary must be inspectable and registered instead;
// these pointer types are only ever sent between actors of this process.
#pragma once

#include <caf/all.hpp>

#include "actors/batch_request.h"

namespace pyflame_rt {

using enqueue_atom = caf::atom_constant<caf::atom("enqueue")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using run_atom = caf::atom_constant<caf::atom("run")>;
using done_atom = caf::atom_constant<caf::atom("done")>;

}  // namespace pyflame_rt

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pyflame_rt::BatchRequestPtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pyflame_rt::BatchOfRequests)
