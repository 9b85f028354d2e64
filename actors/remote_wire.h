// The messages a remote stage and its clients exchange through CAF's middleman (internal:
// includes CAF). Everything that crosses a process boundary is one of these inspectable,
// registered types (actor_runtime.cpp registers them), built from plain strings and integers
// so both ends agree on the bytes without sharing memory.
#pragma once

#include <caf/all.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "streams/envelope.h"

namespace pyflame_rt {

using remote_info_atom = caf::atom_constant<caf::atom("rinfo")>;
using remote_run_atom = caf::atom_constant<caf::atom("rrun")>;

struct WireTensor {
  std::string name;
  int32_t dtype = 0;  // graph/dtype.h codes
  std::vector<int64_t> dims;
  std::string bytes;                 // numeric dtypes: the elements, row-major
  std::vector<std::string> strings;  // kString: the elements
};

struct WireFrame {
  std::vector<WireTensor> tensors;
};

// What a served stage says about itself when a client connects.
struct WireStageInfo {
  std::string name;
  std::vector<std::string> inputs;   // a model stage: the frame entries it reads (others need not travel)
  std::vector<std::string> outputs;  // a model stage: its outputs in order
  bool dynamic_batch = false;        // a model stage: dim 0 of every input may vary
};

// A stage's answer: the entries it added or changed, and the names it removed, so a frame
// does not travel back whole; or the error it failed with.
struct WireReply {
  int32_t code = 0;  // StatusCode
  std::string message;
  WireFrame changed;
  std::vector<std::string> removed;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, WireTensor& x) {
  return f(caf::meta::type_name("pyflame_rt::WireTensor"), x.name, x.dtype, x.dims, x.bytes, x.strings);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, WireFrame& x) {
  return f(caf::meta::type_name("pyflame_rt::WireFrame"), x.tensors);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, WireStageInfo& x) {
  return f(caf::meta::type_name("pyflame_rt::WireStageInfo"), x.name, x.inputs, x.outputs, x.dynamic_batch);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, WireReply& x) {
  return f(caf::meta::type_name("pyflame_rt::WireReply"), x.code, x.message, x.changed, x.removed);
}

// Adds the wire types to a config before its actor system starts.
void register_wire_types(caf::actor_system_config& config);

WireTensor to_wire(const std::string& name, const Tensor& t);
// Checks what arrived: a known dtype, non-negative dims, and as many bytes as the dims need.
Expected<Tensor> from_wire(const WireTensor& w);

WireFrame to_wire(const Frame& frame);
Expected<Frame> from_wire(const WireFrame& w);

}  // namespace pyflame_rt
