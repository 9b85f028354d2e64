// Outputs the caller pre-allocated (ONNX Runtime's IOBinding.bind_output with a buffer): the
// checks before a run and the copy after it for an output the devices did not write in place.
//
//   RETURN_IF_ERROR(check_bound_output(info, bound));                 // before the run
//   ASSIGN_OR_RETURN(bool in_place, finish_bound_output(name, produced, bound));
#pragma once

#include <string>

#include "graph/graph.h"
#include "graph/value.h"

namespace pyflame_rt {

// InvalidArgument naming the output, the expected and the received dtype/shape when `bound`
// cannot hold output `name` of `dtype` and `shape` (what the model declares; kUndefined and
// unknown dims are checked after the run).
Status check_bound_output(const std::string& name, DType dtype, const Shape& shape, const Tensor& bound);

// After the run: true when `produced` already is on the bound buffer (written in place),
// else copies it there (false); InvalidArgument when the run produced another dtype or shape
// or a non-tensor.
Expected<bool> finish_bound_output(const std::string& name, const Value& produced, const Tensor& bound);

}  // namespace pyflame_rt
