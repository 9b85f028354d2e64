"""CompileOptions: how InferenceSession.from_onnx compiles and caches a model (the spec's
explicit-compilation API). Plans are shape-specialised: input_shapes fix the inputs' free
dims, and the plan cache (cache_dir) keeps one plan per model file and options.

    sess = rt.InferenceSession.from_onnx("model.onnx", compile_options=rt.CompileOptions(
        cache_dir="./model_cache", input_shapes={"input": [1, 3, 224, 224]}, dynamic_batch=True))
"""

import os

from .errors import InvalidArgument


class CompileOptions:
    def __init__(self, cache_dir=None, input_shapes=None, dynamic_batch=False, precision="fp32"):
        self.cache_dir = os.path.expanduser(os.fspath(cache_dir)) if cache_dir else ""
        self.input_shapes = {}
        for name, shape in (input_shapes or {}).items():
            dims = list(shape)
            if not dims or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims):
                raise InvalidArgument(f"CompileOptions.input_shapes['{name}']: expected sizes >= 1, got {shape!r}")
            self.input_shapes[str(name)] = dims
        # Batch free: the first dim keeps the model's (symbolic) size, the others are fixed.
        self.dynamic_batch = bool(dynamic_batch)
        if precision != "fp32":
            from .errors import NotImplementedFailure
            raise NotImplementedFailure(f"CompileOptions.precision '{precision}' is not available yet: plans are "
                                        "fp32 until reduced precision (int8, fp16, bf16) lands")
        self.precision = precision

    def apply(self, options):
        """Sets what these options mean on a SessionOptions (in place)."""
        if self.cache_dir:
            options.compile_cache_dir = self.cache_dir
        shapes = dict(options.input_shapes)
        for name, dims in self.input_shapes.items():
            fixed = ([-1] + dims[1:]) if self.dynamic_batch else dims
            shapes[name] = ",".join(str(d) for d in fixed)
        options.input_shapes = shapes
        return options

    def __repr__(self):
        return (f"CompileOptions(cache_dir={self.cache_dir!r}, input_shapes={self.input_shapes!r}, "
                f"dynamic_batch={self.dynamic_batch!r}, precision={self.precision!r})")
