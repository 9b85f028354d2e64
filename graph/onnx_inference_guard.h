// Checks that libonnx 1.12's shape inference lacks, added to its op schemas once per process.
// Import runs that inference on untrusted models, and some of its functions index a declared
// or inferred input shape without looking at its rank: a crash, not an error. Each guard
// fails that node's inference (an InferenceError, which import's error mode 0 ignores: the
// node keeps the types the model declared, and the kernel checks the shape when it runs).
#pragma once

namespace pyflame_rt {

// Idempotent and thread-safe; import_model and refine_shapes_with_onnx call it before
// InferShapes.
void guard_onnx_shape_inference();

}  // namespace pyflame_rt
