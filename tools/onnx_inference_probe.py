#!/usr/bin/python3
"""Looks for crashes in libonnx's shape inference (docs/reliability.md, kernel_run findings).

Runs every default-domain schema's inference (each version up to opset 17) on one node whose
inputs are declared tensors of low rank: all inputs of rank 0 or 1, then input 0 of rank 3-4
with the others of rank 0-2, then input 0 of rank 1-3 with the others of a higher rank (3-4). Each case runs in a forked process; a case that dies on a signal
is printed as (op, version, ranks, signal). Import guards each one found in
graph/onnx_inference_guard.cpp; re-run this after a libonnx upgrade. Exit status 1 when a crash
is found that the guards do not cover (Scan without a body is refused before inference).

--attributes: instead, every schema's int attribute set to -9, -1, 0, 2^31, 2^62 and INT64_MIN,
and its ints attributes to 1, 2 or 4 copies of 0, -1 or 2^62, on float inputs of rank 3 and 4
(DepthToSpace's blocksize and LayerNormalization's axis were found so, after kernel_run found
GatherND's batch_dims). Guarded: ATTRIBUTES_GUARDED; zero strides are refused before inference.
"""
import os
import sys

import onnx
import onnx.defs
import onnx.helper as h
import onnx.shape_inference

# (op, version) pairs guarded in graph/onnx_inference_guard.cpp or refused before inference.
GUARDED = {("RNN", 1), ("GRU", 1), ("GRU", 3), ("LSTM", 1), ("Gemm", 6), ("STFT", 17), ("MaxUnpool", 9), ("MaxUnpool", 11),
           ("LayerNormalization", 17), ("ConvTranspose", 1), ("ConvTranspose", 11), ("Conv", 1),
           ("Conv", 11), ("ConvInteger", 10), ("QLinearConv", 10)}


# (op, version, attribute) guarded in graph/onnx_inference_guard.cpp.
ATTRIBUTES_GUARDED = {("GatherND", 12, "batch_dims"), ("GatherND", 13, "batch_dims"), ("DepthToSpace", 1, "blocksize"),
                      ("DepthToSpace", 11, "blocksize"), ("DepthToSpace", 13, "blocksize"),
                      ("LayerNormalization", 17, "axis")}
# Refused by import before inference (onnx_import.cpp, check_window_attributes): window
# attributes below 1 on these ops.
WINDOWED = {"Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "DeformConv", "MaxPool", "AveragePool", "LpPool",
            "MaxUnpool", "Col2Im"}
WINDOW_ATTRIBUTES = {"strides", "dilations", "kernel_shape"}


def required_attributes(schema, rank0):
    """Plausible values for the required int/ints/float attributes: without them inference
    stops before reading shapes (MaxUnpool's kernel_shape hid its read of I's dims)."""
    kind = onnx.defs.OpSchema.AttrType
    out = {}
    for name, attr in schema.attributes.items():
        if not attr.required:
            continue
        if attr.type == kind.INTS:
            out[name] = [1] * max(rank0 - 2, 1)
        elif attr.type == kind.INT:
            out[name] = 1
        elif attr.type == kind.FLOAT:
            out[name] = 1.0
    return out


def crashes(schema, ranks, dtype, attrs=None):
    n_in = len(ranks)
    attrs = {**required_attributes(schema, ranks[0] if ranks else 0), **(attrs or {})}
    ins = [h.make_tensor_value_info(f"i{k}", dtype, [2] * r) for k, r in enumerate(ranks)]
    outs = [f"o{k}" for k in range(max(1, min(schema.max_output, 4)))]
    node = h.make_node(schema.name, [f"i{k}" for k in range(n_in)], outs, **attrs)
    g = h.make_graph([node], "g", ins, [h.make_tensor_value_info("o0", onnx.TensorProto.FLOAT, None)])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", schema.since_version)])
    pid = os.fork()
    if pid == 0:
        os.close(2)
        try:
            onnx.shape_inference.infer_shapes(m)
        except Exception:
            pass
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0


def probe_attributes():
    ints = [-9, -1, 0, 1 << 31, 1 << 62, -(1 << 63)]
    kind = onnx.defs.OpSchema.AttrType
    found = set()
    for s in sorted(onnx.defs.get_all_schemas_with_history(), key=lambda s: (s.name, s.since_version)):
        if s.domain not in ("", "ai.onnx") or s.since_version > 17 or s.deprecated or s.name in ("Scan", "Loop", "If"):
            continue
        n_in = max(s.min_input, min(len(s.inputs), 6))
        for name, attr in s.attributes.items():
            if attr.type == kind.INT:
                values = [{name: v} for v in ints]
            elif attr.type == kind.INTS:
                values = [{name: [v] * k} for v in (0, -1, 1 << 62) for k in (1, 2, 4)]
            else:
                continue
            for attrs in values:
                for rank in (3, 4):
                    sig = crashes(s, [rank] * n_in, onnx.TensorProto.FLOAT, attrs)
                    if sig:
                        found.add((s.name, s.since_version, name))
                        print(s.name, s.since_version, attrs, "rank", rank, "signal", sig)
    unguarded = sorted(f for f in found - ATTRIBUTES_GUARDED if not (f[0] in WINDOWED and f[2] in WINDOW_ATTRIBUTES))
    print("unguarded:", unguarded if unguarded else "none")
    return 1 if unguarded else 0


def main():
    if "--attributes" in sys.argv[1:]:
        return probe_attributes()
    found = set()
    for s in sorted(onnx.defs.get_all_schemas_with_history(), key=lambda s: (s.name, s.since_version)):
        if s.domain not in ("", "ai.onnx") or s.since_version > 17 or s.deprecated or s.name == "Scan":
            continue
        cases = []
        # With the optional inputs and without them (MaxUnpool's output_shape, when given,
        # stops its inference before the read of I's dims that crashed: kernel_run).
        for n_in in sorted({max(s.min_input, min(len(s.inputs), 6)), max(s.min_input, 1)}):
            cases += [[r] * n_in for r in (0, 1)]
            if n_in >= 2:
                cases += [[x] + [o] * (n_in - 1) for x in (3, 4) for o in (0, 1, 2)]
                # the other inputs of higher rank than input 0 (Conv's X [6, 1] with W [3, 6, 6]
                # was SIGSEGV in convPoolShapeInference: kernel_run)
                cases += [[x] + [o] * (n_in - 1) for x in (1, 2, 3) for o in (3, 4) if o > x]
        for ranks in cases:
            for dtype in (onnx.TensorProto.FLOAT, onnx.TensorProto.INT64):
                sig = crashes(s, ranks, dtype)
                if sig:
                    found.add((s.name, s.since_version))
                    print(s.name, s.since_version, ranks, onnx.TensorProto.DataType.Name(dtype), "signal", sig)
    unguarded = sorted(found - GUARDED)
    print("unguarded:", unguarded if unguarded else "none")
    return 1 if unguarded else 0


if __name__ == "__main__":
    sys.exit(main())
