"""Hostile trial (issue 14): mutated and crafted models, bad feeds and faults, through Python, the
CLI and every server, each case isolated so that a crash is counted instead of ending the trial.

    PYTHONPATH=build/python /usr/bin/python3 bench/hostile_trial.py            # ~10 minutes
    PYTHONPATH=build/python /usr/bin/python3 bench/hostile_trial.py --quick    # ~1 minute

Seeded (--seed): the same seed and budget give the same cases in the same order.

How each outcome is judged:
- Python cases run in a long-lived worker process (this script with --worker) under
  `strace -e trace=open,openat` when strace exists. The parent sends one case at a time and
  waits with a timeout: the worker dying is a *crash*, no answer in time is a *hang* (the worker
  is killed and restarted). After every case the worker runs a known-good request on a session
  it keeps and compares the answer: a difference or an error is *not usable afterwards*.
- A failure must be a pyflame_rt.PyFlameRTError with a message that names something (not empty,
  not a bare library word such as "stoll"); anything else is *non-pyflame*.
- Cases that must succeed (a 0-row batch, NaN, a big-endian or non-contiguous array) are checked
  against the plain array's answer: a wrong answer is counted.
- Reads outside the model's folder: hostile models point their external data at a canary file
  outside their folder (by `..`, an absolute path, a symlinked file, a symlinked folder). The
  canary holds float32 31337.0 and the text CANARY: an output or message carrying either, or a
  successful open(2) of a path whose real path is the canary's folder (strace), is an *outside read*.
- The CLI runs one process per case (a negative exit code or an uncaught C++ exception is a crash).
- Servers: one `pyflame-rt serve` process (HTTP + gRPC + ZeroMQ) and one stage server; after each
  bad request the server must still be alive and answer a good request correctly.

Prints a table of cases by interface and class with crashes, hangs, outside reads, non-pyflame
errors, wrong answers and usable-afterwards failures; exits 1 if any of those is not zero.
"""
import argparse
import collections
import copy
import http.client
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import numpy as np
from host import cpu_model  # noqa: E402  (bench/ is sys.path[0])

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = os.path.join(REPO, "build", "bin", "pyflame-rt")
CNN = os.path.join(REPO, "examples", "models", "tiny_cnn.onnx")
GRU = os.path.join(REPO, "examples", "models", "tiny_gru.onnx")
CANARY_VALUE = np.float32(31337.0)
CANARY_TEXT = b"CANARY"
CASE_TIMEOUT = 30.0       # seconds a case may take before it is a hang (runs carry a 5 s deadline)
RUN_DEADLINE_MS = 5000    # the trial's own RunOptions.timeout_ms for hostile models
MEMORY_LIMIT_MB = 1024    # the trial's SessionOptions.memory_limit_mb for hostile models




# ================================================================================================
# Base models: the bundled examples and small generated ones covering many ops.
# ================================================================================================

def base_models():
    """{name: ModelProto}"""
    import onnx
    from onnx import TensorProto as T, helper as h, numpy_helper as nh
    rng = np.random.default_rng(0)

    def init(name, shape, dtype=np.float32):
        return nh.from_array((rng.standard_normal(shape) * 0.5).astype(dtype), name)

    def const(name, values, dtype=np.int64):
        return nh.from_array(np.array(values, dtype), name)

    def model(nodes, inputs, outputs, inits=(), opset=17):
        g = h.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
        m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)])
        m.ir_version = 8
        return m

    vi = h.make_tensor_value_info
    F, I = T.FLOAT, T.INT64
    models = {"tiny_cnn": onnx.load(CNN), "tiny_gru": onnx.load(GRU)}
    models["conv"] = model(
        [h.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), h.make_node("Relu", ["c"], ["r"]),
         h.make_node("MaxPool", ["r"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
        [vi("x", F, ["n", 3, 8, 8])], [vi("y", F, None)], [init("w", (4, 3, 3, 3)), init("b", (4,))])
    models["convtranspose_bn"] = model(
        [h.make_node("ConvTranspose", ["x", "w"], ["c"], strides=[2, 2]),
         h.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["y"])],
        [vi("x", F, [1, 2, 4, 4])], [vi("y", F, None)],
        [init("w", (2, 3, 2, 2)), init("s", (3,)), init("bb", (3,)), init("m", (3,)),
         nh.from_array(np.ones(3, np.float32), "v")])
    models["matmul_gemm"] = model(
        [h.make_node("MatMul", ["x", "w"], ["m"]), h.make_node("Add", ["m", "b"], ["a"]),
         h.make_node("Gemm", ["a", "w2"], ["y"], transB=1), h.make_node("Softmax", ["y"], ["p"], axis=-1)],
        [vi("x", F, ["n", 6])], [vi("p", F, None)], [init("w", (6, 5)), init("b", (5,)), init("w2", (4, 5))])
    models["gru"] = model(
        [h.make_node("GRU", ["x", "W", "R", "B", "", "h0"], ["y", "hn"], hidden_size=4)],
        [vi("x", F, [5, 1, 3]), vi("h0", F, [1, 1, 4])], [vi("y", F, None), vi("hn", F, None)],
        [init("W", (1, 12, 3)), init("R", (1, 12, 4)), init("B", (1, 24))])
    models["lstm"] = model(
        [h.make_node("LSTM", ["x", "W", "R", "B"], ["y", "hn", "cn"], hidden_size=3)],
        [vi("x", F, [4, 2, 3])], [vi("y", F, None), vi("hn", F, None), vi("cn", F, None)],
        [init("W", (1, 12, 3)), init("R", (1, 12, 3)), init("B", (1, 24))])
    body = h.make_graph(
        [h.make_node("Identity", ["cond_in"], ["cond_out"]), h.make_node("Add", ["acc_in", "one"], ["acc_out"])],
        "body", [vi("i", I, []), vi("cond_in", T.BOOL, []), vi("acc_in", F, [2])],
        [vi("cond_out", T.BOOL, []), vi("acc_out", F, [2])], initializer=[nh.from_array(np.ones(2, np.float32), "one")])
    models["loop"] = model(
        [h.make_node("Loop", ["trip", "cond", "acc0"], ["acc"], body=body)],
        [vi("trip", I, []), vi("cond", T.BOOL, []), vi("acc0", F, [2])], [vi("acc", F, None)])
    models["resize"] = model(
        [h.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear")],
        [vi("x", F, [1, 2, 4, 4])], [vi("y", F, None)],
        [nh.from_array(np.array([1, 1, 2, 2], np.float32), "scales")])
    models["slice_gather"] = model(
        [h.make_node("Slice", ["x", "st", "en", "ax"], ["s"]), h.make_node("Gather", ["s", "idx"], ["g"], axis=1),
         h.make_node("Transpose", ["g"], ["t"], perm=[1, 0]), h.make_node("Reshape", ["t", "shp"], ["y"])],
        [vi("x", F, [4, 6]), vi("idx", I, [3])], [vi("y", F, None)],
        [const("st", [1]), const("en", [4]), const("ax", [0]), const("shp", [-1])])
    models["concat_split"] = model(
        [h.make_node("Concat", ["a", "b"], ["c"], axis=1), h.make_node("Split", ["c", "sp"], ["y1", "y2"], axis=1),
         h.make_node("ReduceMean", ["y1"], ["r"], axes=[1]), h.make_node("TopK", ["y2", "k"], ["v", "i"])],
        [vi("a", F, [2, 3]), vi("b", F, [2, 5])], [vi("r", F, None), vi("v", F, None), vi("i", I, None)],
        [const("sp", [4, 4]), const("k", [2])], opset=13)
    models["shape_ops"] = model(
        [h.make_node("Shape", ["x"], ["s"]), h.make_node("ConstantOfShape", ["s"], ["z"],
                                                       value=nh.from_array(np.array([2.0], np.float32))),
         h.make_node("Add", ["x", "z"], ["a"]), h.make_node("Expand", ["a", "e"], ["ex"]),
         h.make_node("Tile", ["ex", "rep"], ["ti"]), h.make_node("Pad", ["ti", "pads"], ["y"])],
        [vi("x", F, [1, 3])], [vi("y", F, None)],
        [const("e", [2, 3]), const("rep", [1, 2]), const("pads", [0, 1, 0, 1])])
    models["where_cast_range"] = model(
        [h.make_node("Greater", ["x", "zero"], ["g"]), h.make_node("Where", ["g", "x", "zero"], ["w"]),
         h.make_node("Cast", ["w"], ["c"], to=T.INT64), h.make_node("Range", ["st", "lim", "dl"], ["r"]),
         h.make_node("CumSum", ["x", "ax"], ["cs"]), h.make_node("ArgMax", ["x"], ["am"], axis=1)],
        [vi("x", F, [2, 5])], [vi("c", I, None), vi("r", I, None), vi("cs", F, None), vi("am", I, None)],
        [nh.from_array(np.zeros(1, np.float32), "zero"), nh.from_array(np.array(0, np.int64), "st"),
         nh.from_array(np.array(7, np.int64), "lim"), nh.from_array(np.array(2, np.int64), "dl"), const("ax", 1)])
    models["scatter_einsum"] = model(
        [h.make_node("ScatterND", ["x", "ind", "upd"], ["s"]), h.make_node("Einsum", ["s", "m"], ["y"], equation="ij,jk->ik"),
         h.make_node("NonZero", ["s"], ["nz"])],
        [vi("x", F, [3, 4])], [vi("y", F, None), vi("nz", I, None)],
        [const("ind", [[0], [2]]), init("upd", (2, 4)), init("m", (4, 2))])
    models["norm_pool"] = model(
        [h.make_node("LayerNormalization", ["x", "g", "b"], ["ln"], axis=-1),
         h.make_node("InstanceNormalization", ["ln", "sc", "bi"], ["inn"]),
         h.make_node("AveragePool", ["inn"], ["ap"], kernel_shape=[2, 2]),
         h.make_node("DepthToSpace", ["ap"], ["y"], blocksize=2)],
        [vi("x", F, [1, 4, 4, 4])], [vi("y", F, None)],
        [init("g", (4,)), init("b", (4,)), init("sc", (4,)), init("bi", (4,))])
    models["ident_init"] = model(  # an initializer straight to an output: external data shows in the answer
        [h.make_node("Identity", ["w"], ["wy"]), h.make_node("Add", ["x", "w"], ["y"])],
        [vi("x", F, [16])], [vi("y", F, None), vi("wy", F, None)], [init("w", (16,))])
    return models


# ================================================================================================
# Model mutations (byte level and protobuf aware). Each returns (class, files) where files maps
# a name in the case folder to bytes, or to ("symlink", target); "model.onnx" is the model.
# ================================================================================================

HUGE_DIMS = [0, -1, -7, 2**31, 2**40, 2**62, 2**63 - 1]


def _model_bytes(m):
    return m.SerializeToString()


def mutate_bytes(rng, data, pick_other):
    """One byte-level mutation of `data`; pick_other() gives another model's bytes to splice in."""
    data = bytearray(data)
    kind = rng.choice(["bitflip", "truncate", "splice", "insert", "duplicate", "zero_run"])
    if kind == "bitflip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        data = data[:rng.randrange(len(data))]
    elif kind == "splice":
        other = pick_other()
        i, j = rng.randrange(len(data)), rng.randrange(len(other))
        n = rng.randint(1, 64)
        data[i:i + n] = other[j:j + n]
    elif kind == "insert":
        i = rng.randrange(len(data))
        data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif kind == "duplicate":
        i = rng.randrange(len(data))
        n = rng.randint(1, 128)
        data[i:i] = data[i:i + n]
    else:
        i = rng.randrange(len(data))
        data[i:i + rng.randint(1, 32)] = b"\xff" * rng.randint(1, 32)
    return kind, bytes(data)


def mut_bytes(rng, m, others):
    kind, data = mutate_bytes(rng, _model_bytes(m), lambda: _model_bytes(rng.choice(others)))
    return "bytes_" + kind, {"model.onnx": data}


def mut_pfm(rng, pfm, others):
    """A .pfm file (our own format, as untrusted as ONNX) mutated byte-wise; the loader reads it by
    its content, whatever the file's name."""
    kind, data = mutate_bytes(rng, pfm, lambda: rng.choice(others))
    return "pfm_" + kind, {"model.onnx": data}


def pfm_bases(models, model_dir):
    """Each base model converted to .pfm by the CLI (`pyflame-rt convert`): name -> bytes."""
    out = {}
    for n, m in sorted(models.items()):
        d = os.path.join(model_dir, "pfm_base", n)
        onnx_path = write_case(d, {"model.onnx": m.SerializeToString()})
        pfm_path = os.path.join(d, "model.pfm")
        done = subprocess.run([CLI, "convert", onnx_path, "-o", pfm_path], capture_output=True, timeout=120)
        if done.returncode == 0:
            with open(pfm_path, "rb") as f:
                out[n] = f.read()
    return out


def _all_dims(m):
    for v in list(m.graph.input) + list(m.graph.output) + list(m.graph.value_info):
        if v.type.HasField("tensor_type") and v.type.tensor_type.HasField("shape"):
            for d in v.type.tensor_type.shape.dim:
                yield d


def _nodes(m):
    out = list(m.graph.node)
    for n in m.graph.node:
        for a in n.attribute:
            if a.g is not None and a.HasField("g"):
                out.extend(a.g.node)
    return out


def mut_proto(rng, m, others, outside):
    """One protobuf-aware mutation; returns (class, files)."""
    from onnx import TensorProto, helper, numpy_helper
    m = copy.deepcopy(m)
    files = {}
    kinds = ["dims", "input_dtype", "init_dims", "init_dtype", "dangling", "cycle", "dup_names", "opset_none",
             "opset_bad", "opset_extra", "huge_attr", "attr_type", "no_outputs", "external", "external",
             "external", "raw_data_short", "init_as_input", "empty_initial_h", "op_type", "huge_loop",
             "huge_constant", "remove_node", "domain", "output_name"]
    kind = rng.choice(kinds)
    nodes = _nodes(m)
    if kind == "dims":
        dims = list(_all_dims(m))
        for d in rng.sample(dims, min(len(dims), rng.randint(1, 3))) if dims else []:
            choice = rng.random()
            if choice < 0.7:
                d.dim_value = rng.choice(HUGE_DIMS)
            else:
                d.dim_param = rng.choice(["", "n", "x" * 300])
    elif kind == "input_dtype" and len(m.graph.input):
        v = rng.choice(list(m.graph.input))
        v.type.tensor_type.elem_type = rng.choice([0, 2, 3, 7, 8, 9, 10, 11, 16, 17, 99, -3])
    elif kind == "init_dims" and len(m.graph.initializer):
        t = rng.choice(list(m.graph.initializer))
        if len(t.dims):
            t.dims[rng.randrange(len(t.dims))] = rng.choice(HUGE_DIMS + [1, 2, 3])
        else:
            t.dims.append(rng.choice(HUGE_DIMS))
    elif kind == "init_dtype" and len(m.graph.initializer):
        t = rng.choice(list(m.graph.initializer))
        t.data_type = rng.choice([0, 2, 6, 7, 8, 9, 10, 16, 99])
    elif kind == "dangling" and nodes:
        n = rng.choice(nodes)
        if len(n.input):
            n.input[rng.randrange(len(n.input))] = rng.choice(["nowhere", "", "x" * 5000])
        else:
            n.input.append("nowhere")
    elif kind == "cycle" and len(m.graph.node) >= 2:
        a, b = rng.sample(range(len(m.graph.node)), 2)
        lo, hi = min(a, b), max(a, b)
        if len(m.graph.node[lo].input):
            m.graph.node[lo].input[0] = m.graph.node[hi].output[0]
        else:
            m.graph.node[lo].input.append(m.graph.node[hi].output[0])
    elif kind == "dup_names" and len(m.graph.node) >= 2:
        a, b = rng.sample(range(len(m.graph.node)), 2)
        m.graph.node[a].output[0] = m.graph.node[b].output[0]
    elif kind == "opset_none":
        del m.opset_import[:]
    elif kind == "opset_bad":
        for o in m.opset_import:
            if o.domain in ("", "ai.onnx"):
                o.version = rng.choice([0, -1, 1, 6, 99, 2**62])
    elif kind == "opset_extra":
        m.opset_import.append(helper.make_opsetid(rng.choice(["", "com.microsoft", "evil", "ai.onnx.ml"]),
                                                  rng.choice([1, 13, 99])))
    elif kind == "huge_attr" and nodes:
        n = rng.choice(nodes)
        name = rng.choice([a.name for a in n.attribute] or ["axis", "pads", "kernel_shape", "perm"])
        for a in list(n.attribute):
            if a.name == name:
                n.attribute.remove(a)
        v = rng.choice([[2**62] * 4, list(range(200000)), [-2**63, 2**63 - 1], 2**62, -2**40, "s" * 100000, 1e300])
        n.attribute.append(helper.make_attribute(name, v))
    elif kind == "attr_type" and nodes:
        n = rng.choice(nodes)
        if len(n.attribute):
            a = rng.choice(list(n.attribute))
            name = a.name
            n.attribute.remove(a)
            n.attribute.append(helper.make_attribute(name, rng.choice(["text", 1.5, [1.0, 2.0], 7, ["a"]])))
    elif kind == "no_outputs":
        del m.graph.output[:]
    elif kind == "external" and len(m.graph.initializer):
        t = rng.choice(list(m.graph.initializer))
        arr = numpy_helper.to_array(t)
        nbytes = arr.nbytes
        t.ClearField("raw_data")
        for f in ("float_data", "int64_data", "int32_data", "double_data"):
            t.ClearField(f)
        t.data_location = TensorProto.EXTERNAL
        how = rng.choice(["dotdot", "absolute", "symlink_file", "symlink_dir", "offset", "length", "missing",
                          "fifo", "dir", "inside_ok", "nul", "empty"])
        location, offset, length = "w.bin", None, None
        if how == "dotdot":
            location = rng.choice(["../outside/canary.bin", "../../outside/canary.bin", "sub/../../outside/canary.bin",
                                   "./../outside/canary.bin"])
        elif how == "absolute":
            location = os.path.join(outside, "canary.bin")
        elif how == "symlink_file":
            files["w.bin"] = ("symlink", os.path.join(outside, "canary.bin"))
        elif how == "symlink_dir":
            files["sub"] = ("symlink", outside)
            location = "sub/canary.bin"
        elif how == "fifo":
            files["w.bin"] = ("fifo", None)
        elif how == "dir":
            files["w.bin"] = ("dir", None)
        elif how == "nul":
            location = "w.bin\0../outside/canary.bin"
        elif how == "empty":
            location = ""
        if how not in ("symlink_file", "fifo", "dir", "missing"):
            files.setdefault("w.bin", arr.tobytes() + b"\0" * 64)
        if how == "offset":
            offset = rng.choice(["-1", "abc", str(2**64), str(2**63 - 1), "18446744073709551615", "1e3", " 4", "0x10",
                                 str(nbytes + 128)])
        if how == "length":
            length = rng.choice(["-1", "abc", str(2**64), str(2**63 - 1), "0", str(nbytes + 1000), str(nbytes - 1)])
        if how == "inside_ok" and rng.random() < 0.5:
            offset, length = "64", str(nbytes)
            files["w.bin"] = b"\0" * 64 + arr.tobytes()
        del t.external_data[:]
        for k, v in (("location", location), ("offset", offset), ("length", length)):
            if v is not None:
                e = t.external_data.add()
                e.key, e.value = k, v
        if rng.random() < 0.2:
            e = t.external_data.add()
            e.key, e.value = "checksum", "zz"
        kind = "external_" + how
    elif kind == "raw_data_short" and len(m.graph.initializer):
        t = rng.choice(list(m.graph.initializer))
        t.raw_data = t.raw_data[:rng.randrange(max(1, len(t.raw_data)))] if t.raw_data else b"\1\2\3"
    elif kind == "init_as_input" and len(m.graph.initializer):
        t = rng.choice(list(m.graph.initializer))
        m.graph.input.append(helper.make_tensor_value_info(t.name, rng.choice([1, 7]), [rng.choice([0, 1, 5])]))
    elif kind == "empty_initial_h":
        # GRU/LSTM/RNN state inputs of the wrong shape, as initializers (valid models, bad shapes)
        for n in nodes:
            if n.op_type in ("GRU", "LSTM", "RNN"):
                while len(n.input) < 6:
                    n.input.append("")
                name = f"bad_state_{rng.randrange(100)}"
                shape = rng.choice([(0,), (1, 1, 0), (1, 1, 1), (2, 7, 9), (0, 0, 0)])
                m.graph.initializer.append(numpy_helper.from_array(np.ones(shape, np.float32), name))
                n.input[rng.choice([3, 4, 5])] = name
    elif kind == "op_type" and nodes:
        n = rng.choice(nodes)
        n.op_type = rng.choice(["Conv", "MatMul", "GRU", "Loop", "Resize", "Slice", "Gather", "Reshape", "NoSuchOp",
                                "If", "Scan", "Einsum", "TopK", "Split", "Pad", "Tile", "", "Expand", "LSTM"])
    elif kind == "huge_loop":
        for n in nodes:
            if n.op_type == "Loop":
                m.graph.initializer.append(numpy_helper.from_array(np.array(2**62, np.int64), "trip_const"))
                n.input[0] = "trip_const"
        if not any(n.op_type == "Loop" for n in nodes) and len(m.graph.output):
            out = m.graph.output[0].name
            m.graph.node.append(helper.make_node("ConstantOfShape", ["hs"], ["huge"],
                                                 value=numpy_helper.from_array(np.array([1.0], np.float32))))
            m.graph.initializer.append(numpy_helper.from_array(np.array([2**20, 2**20], np.int64), "hs"))
            m.graph.output.append(helper.make_tensor_value_info("huge", 1, None))
            del out
    elif kind == "huge_constant":
        shape = rng.choice([[2**40], [2**31, 2**31], [-1], [0, 2**62], [2**62, 2**62]])
        m.graph.node.append(helper.make_node("ConstantOfShape", ["hc_shape"], ["hc"]))
        m.graph.initializer.append(numpy_helper.from_array(np.array(shape, np.int64), "hc_shape"))
        m.graph.output.append(helper.make_tensor_value_info("hc", 1, None))
    elif kind == "remove_node" and len(m.graph.node) >= 2:
        del m.graph.node[rng.randrange(len(m.graph.node))]
    elif kind == "output_name" and len(m.graph.output):
        # output names become file names (the CLI's --output-dir)
        o = m.graph.output[0]
        new = rng.choice(["../escape", "../../outside/written", os.path.join(outside, "written"), "a/b", "..", ".",
                          "", "x\\y"])
        for n in m.graph.node:
            for k, name in enumerate(n.output):
                if name == o.name:
                    n.output[k] = new
        o.name = new
    elif kind == "domain" and nodes:
        rng.choice(nodes).domain = rng.choice(["evil", "com.microsoft", "ai.onnx.ml", "x" * 1000])
    files["model.onnx"] = m.SerializeToString()
    return "proto_" + kind, files


# ================================================================================================
# The worker: runs Python cases one at a time, answering one JSON line per case.
# ================================================================================================

def _pick(rng, options):
    """One element of a list of mixed things (numpy's choice wants one array)."""
    return options[int(rng.integers(len(options)))]


def _feed_for(session, rng):
    """A plausible feed for any session: free dims 1, values by dtype."""
    feeds = {}
    for i in session.get_inputs():
        shape = [d if isinstance(d, int) and d >= 0 else 1 for d in (i.shape or [])]
        if any(d > 4096 for d in shape) or int(np.prod(shape, dtype=np.float64)) > 1 << 24:
            shape = [min(d, 2) for d in shape]
        t = i.type
        if "float16" in t:
            a = rng.standard_normal(shape).astype(np.float16)
        elif "double" in t:
            a = rng.standard_normal(shape)
        elif "float" in t:
            a = rng.standard_normal(shape).astype(np.float32)
        elif "int64" in t:
            a = rng.integers(0, 3, shape).astype(np.int64)
        elif "int32" in t:
            a = rng.integers(0, 3, shape).astype(np.int32)
        elif "bool" in t:
            a = np.ones(shape, bool)
        elif "string" in t:
            a = np.array(["x"] * int(np.prod(shape)), object).reshape(shape)
        else:
            a = np.zeros(shape, np.uint8)
        feeds[i.name] = np.asarray(a)
    return feeds


def _canary_in(values):
    for v in values:
        if isinstance(v, list):
            if _canary_in(v):
                return True
        elif isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.size and np.any(v == CANARY_VALUE):
            return True
        elif isinstance(v, np.ndarray) and v.dtype.kind in "iu" and v.size and \
                struct.pack("<f", CANARY_VALUE) in v.tobytes():
            return True
    return False


FOREIGN_WORDS = {"stoll", "stoi", "stod", "std::exception", "unknown exception", "bad_alloc", "std::bad_alloc",
                 "vector", "basic_string", "map::at", "unordered_map::at", "Unable to cast"}


def _judge_error(e):
    """(pyflame, named): a pyflame_rt error, and a message that names the problem."""
    import pyflame_rt as rt
    msg = str(e)
    pyflame = isinstance(e, rt.PyFlameRTError)
    named = len(msg) >= 12 and msg.strip() not in FOREIGN_WORDS and not any(
        msg.startswith(w) for w in ("Unable to cast", "std::", "basic_string")) and "what():" not in msg
    return pyflame, named


class Worker:
    def __init__(self):
        import pyflame_rt as rt
        self.rt = rt
        self.good = rt.InferenceSession(CNN)
        self.good_x = np.random.default_rng(7).standard_normal((2, 3, 32, 32)).astype(np.float32)
        (self.good_y,) = self.good.run(None, {"image": self.good_x})
        # The same answer from a one-thread team: on contended cores the CPU device runs a
        # program's steps on fewer threads (docs/architecture.md, the CPU device), and oneDNN's
        # Winograd convolution sums in another order at 1 thread than at 2 (tiny_cnn: 1.5e-8
        # apart on an Intel Xeon, stop 25). Either answer, bit for bit, is a usable process.
        one = rt.SessionOptions()
        one.intra_op_num_threads = 1
        (self.good_y1,) = rt.InferenceSession(CNN, one).run(None, {"image": self.good_x})
        self.sessions = {}

    def usable(self):
        try:
            (y,) = self.good.run(None, {"image": self.good_x})
            return bool(np.array_equal(y, self.good_y) or np.array_equal(y, self.good_y1))
        except Exception:  # noqa: BLE001 - anything here is "not usable"
            return False

    def untrusted_options(self, **extra):
        """The settings docs/reliability.md gives for untrusted models and feeds."""
        o = self.rt.SessionOptions()
        o.memory_limit_mb = MEMORY_LIMIT_MB
        o.run_timeout_ms = RUN_DEADLINE_MS
        for k, v in extra.items():
            setattr(o, k, v)
        return o

    def run_options(self, timeout_ms=RUN_DEADLINE_MS):
        ro = self.rt.RunOptions()
        ro.timeout_ms = timeout_ms
        return ro

    def base_session(self, name, path):
        if name not in self.sessions:
            self.sessions[name] = self.rt.InferenceSession(path, self.untrusted_options())
        return self.sessions[name]

    # ---- cases --------------------------------------------------------------------------------
    def case_model(self, spec):
        rng = np.random.default_rng(spec["seed"])
        path = spec["path"]
        opts = self.untrusted_options()
        if spec.get("from_bytes"):
            with open(path, "rb") as f:
                data = f.read()
            cwd = os.getcwd()
            os.chdir(os.path.dirname(path))  # external data of a model from bytes: the working directory
            try:
                s = self.rt.InferenceSession(data, opts)
            finally:
                os.chdir(cwd)
        else:
            s = self.rt.InferenceSession(path, opts)
        feeds = _feed_for(s, rng)
        if "trip" in feeds:
            feeds["trip"] = np.array(_pick(rng, [3, 2**62]), np.int64)
        outs = s.run(None, feeds, self.run_options())
        return {"canary": _canary_in(outs)}

    def _bad_feed(self, kind, session, rng):
        """(feeds, must_succeed, reference feeds or None)"""
        inputs = session.get_inputs()
        good = _feed_for(session, rng)
        name = inputs[0].name
        x = good[name]
        feeds = dict(good)
        ok, ref = False, None
        if kind == "wrong_dtype":
            feeds[name] = x.astype(_pick(rng, [np.float64, np.int32, np.uint8, np.float16, np.bool_, np.complex64])) \
                if x.dtype != np.float64 else x.astype(np.float32)
        elif kind == "wrong_rank":
            feeds[name] = x.reshape(-1) if x.ndim != 1 else x.reshape(1, 1, -1)
        elif kind == "wrong_shape":
            shape = list(x.shape) or [1]
            shape[-1] += 1
            feeds[name] = np.zeros(shape, x.dtype)
        elif kind == "zero_dim":
            shape = list(x.shape) or [0]
            shape[0] = 0
            feeds[name] = np.zeros(shape, x.dtype)
        elif kind == "zero_inner":
            shape = list(x.shape) or [0]
            shape[-1] = 0
            feeds[name] = np.zeros(shape, x.dtype)
        elif kind == "huge_dims":
            base = np.zeros(1, x.dtype)
            shape = [2**40] + list(x.shape[1:]) if x.ndim else [2**40]
            feeds[name] = np.lib.stride_tricks.as_strided(base, shape, [0] * len(shape))
        elif kind == "nan_inf" and x.dtype.kind == "f":
            y = x.copy()
            y.flat[0] = np.nan
            y.flat[-1] = np.inf
            feeds[name], ok = y, True
        elif kind == "big_endian" and x.dtype.kind in "fi" and x.dtype.itemsize > 1:
            feeds[name], ok, ref = x.astype(x.dtype.newbyteorder(">")), True, good
        elif kind == "non_contiguous" and x.ndim >= 1:
            big = np.repeat(x, 2, axis=-1)
            feeds[name], ok, ref = big[..., ::2], True, dict(good, **{name: np.ascontiguousarray(big[..., ::2])})
        elif kind == "fortran" and x.ndim >= 2:
            feeds[name], ok, ref = np.asfortranarray(x), True, good
        elif kind == "wrong_name":
            feeds["no_such_input"] = feeds.pop(name)
        elif kind == "extra_name":
            feeds["extra"] = x
        elif kind == "non_string_name":
            feeds[_pick(rng, [1, None, b"bytes", 2.5, (1,)])] = feeds.pop(name)
        elif kind == "object":
            feeds[name] = _pick(rng, [object(), "text", None, [1, "a"], {"a": 1}, np.array([object()]), 3.5,
                                      np.array(["a", "b"]), [[1.0] * 3] * 2, 2**70])
        elif kind == "missing":
            feeds.pop(name)
        elif kind == "readonly" and x.ndim >= 1:
            y = x.copy()
            y.setflags(write=False)
            feeds[name], ok, ref = y, True, good
        else:
            feeds[name] = np.array(2**63 - 1)
        return feeds, ok, ref

    def case_feed(self, spec):
        rt = self.rt
        rng = np.random.default_rng(spec["seed"])
        s = self.base_session(spec["model"], spec["path"])
        feeds, must_succeed, ref = self._bad_feed(spec["feed"], s, rng)
        names = _pick(rng, [None, None, None, ["nope"], [3], [None], "x" * 3, [b"bytes"]]) \
            if spec["feed"] == "bad_output_names" else None
        iface = spec["via"]
        outs = None
        if iface == "run":
            outs = s.run(names, feeds)
        elif iface == "run_with_ort_values":
            vals = {k: rt.OrtValue.ortvalue_from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in feeds.items()}
            outs = [o.numpy() for o in s.run_with_ort_values(names, vals)]
        elif iface == "iobinding":
            b = s.io_binding()
            for k, v in feeds.items():
                b.bind_cpu_input(k, v)
            for o in s.get_outputs():
                b.bind_output(o.name)
            s.run_with_iobinding(b)
            outs = b.copy_outputs_to_cpu()
        elif iface == "run_batch":
            outs = s.run_batch(names, [feeds, _feed_for(s, rng)], max_batch_size=_pick(rng, [1, 4, 8]))[0]
        elif iface == "batcher":
            with s.create_batcher(max_batch_size=4, batch_timeout_ms=1, request_timeout_ms=10000) as b:
                outs = b.run(names, feeds)
        elif iface == "run_async":
            done = threading.Event()
            box = {}

            def cb(o, _u, err):
                box["o"], box["e"] = o, err
                done.set()
            s.run_async(names, feeds, cb, None)
            if not done.wait(20):
                raise TimeoutError("run_async: no callback in 20 s")
            if box["e"]:
                return {"async_error": box["e"]}
            outs = box["o"]
        elif iface == "stream":
            st = s.create_stream(chunk_size=0, idle_timeout_ms=30000)
            try:
                v = feeds.get(st.input_name, next(iter(feeds.values())) if feeds else None)
                outs = st.process(v)
                st.flush()
            finally:
                st.close()
        elif iface == "pipeline":
            p = rt.Pipeline()
            p.add_stage("pre", fn=lambda f: f)
            p.add_stage("m", session=s)
            p.start()
            try:
                p.push(feeds, max_block_ms=10000)
                r = p.pull(timeout_ms=20000)
                if r is None:
                    raise TimeoutError("pipeline: no result in 20 s")
                r.raise_for_error()
                outs = list(r.outputs.values()) if isinstance(r.outputs, dict) else r.outputs
            finally:
                p.stop()
        result = {}
        if outs is not None and must_succeed and ref is not None and iface in ("run", "iobinding", "run_with_ort_values"):
            want = s.run(names, ref)
            same = all(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True) for a, b in zip(outs, want))
            result["wrong_answer"] = not same
        result["must_succeed"] = must_succeed
        return result

    def case_fault(self, spec):
        rt = self.rt
        kind = spec["fault"]
        rng = np.random.default_rng(spec["seed"])
        if kind in ("terminate", "timeout", "terminate_loop", "memory"):
            if kind == "memory":
                s = rt.InferenceSession(spec["path"], self.untrusted_options(memory_limit_mb=1))
                feeds = {"image": np.zeros((64, 3, 32, 32), np.float32)} if "cnn" in spec["path"] else _feed_for(s, rng)
                s.run(None, feeds)
                return {}
            s = self.base_session(spec["model"], spec["path"])
            feeds = _feed_for(s, rng)
            if "trip" in feeds:
                feeds["trip"] = np.array(2**62, np.int64)
            ro = rt.RunOptions()
            if kind == "timeout":
                ro.timeout_ms = _pick(rng, [1, 5, 50])
            else:
                threading.Timer(_pick(rng, [0.0, 0.01, 0.1]), lambda: setattr(ro, "terminate", True)).start()
                ro.timeout_ms = 20000
            s.run(None, feeds, ro)
            return {}
        if kind in ("cache_readonly", "cache_corrupt", "cache_file"):
            d = spec["dir"]
            if kind == "cache_readonly":
                opts = self.untrusted_options(compile_cache_dir="/proc/self/cache_here")
            elif kind == "cache_file":
                opts = self.untrusted_options(compile_cache_dir=os.path.join(d, "a_file"))
            else:
                opts = self.untrusted_options(compile_cache_dir=os.path.join(d, "cache"))
                opts.memory_limit_mb = 0  # the cache is skipped with a memory limit
                s1 = rt.InferenceSession(spec["path"], opts)
                del s1
                for root, _, names in os.walk(os.path.join(d, "cache")):
                    for n in names:
                        p = os.path.join(root, n)
                        data = bytearray(open(p, "rb").read())
                        if data:
                            how = rng.integers(3)
                            if how == 0:
                                data[rng.integers(len(data))] ^= 0x10
                            elif how == 1:
                                data = data[:rng.integers(len(data))]
                            else:
                                data = bytearray(b"garbage")
                            open(p, "wb").write(bytes(data))
            s = rt.InferenceSession(spec["path"], opts)
            feeds = _feed_for(s, rng)
            outs = s.run(None, feeds)
            ref = rt.InferenceSession(spec["path"]).run(None, feeds)
            return {"wrong_answer": not all(np.array_equal(a, b, equal_nan=True) for a, b in zip(outs, ref)),
                    "must_succeed": True}
        if kind == "stream_misuse":
            s = self.base_session("tiny_gru", GRU)
            st = s.create_stream(idle_timeout_ms=int(_pick(rng, [1, 50])))
            st.process(np.zeros((1, 4, 40), np.float32))
            time.sleep(0.3)
            st.process(np.zeros((1, 4, 40), np.float32))
            return {}
        if kind == "pipeline_stuck":
            p = rt.Pipeline()
            p.add_stage("stuck", fn=lambda f: (time.sleep(8), f)[1])
            p.start()
            p.push({"x": np.zeros(2, np.float32)})
            t0 = time.monotonic()
            p.stop()
            if time.monotonic() - t0 > 20:
                raise TimeoutError("Pipeline.stop waited more than 20 s")
            return {"must_succeed": True}
        if kind == "bad_options":
            s = self.base_session("tiny_cnn", CNN)
            choice = int(rng.integers(16))
            if choice == 0:
                s.run_batch(None, [{"image": self.good_x}], max_batch_size="eight")
            elif choice == 1:
                s.run_batch(None, [{"image": self.good_x}], max_batch_size=-3)
            elif choice == 2:
                s.run_batch(None, [{"image": self.good_x}], priority=2**80)
            elif choice == 3:
                s.create_stream(chunk_size=-5)
            elif choice == 4:
                ro = rt.RunOptions()
                ro.timeout_ms = -1
                s.run(None, {"image": self.good_x}, ro)
            elif choice == 5:
                rt.InferenceSession(CNN, rt.SessionOptions(num_threads=-4))
            elif choice == 6:
                s.create_batcher(max_batch_size=0)
            elif choice == 7:
                s.run(None, [self.good_x])
            elif choice == 8:
                rt.InferenceSession(CNN, providers=["NoSuchProvider"])
            elif choice == 9:
                p = rt.Pipeline()
                p.add_stage("m", session=s, capacity=_pick(rng, ["x", -1, 2**70, None]))
                p.start()
                p.stop()
            elif choice == 10:
                p = rt.Pipeline()
                p.add_stage("m", session=s, policy=_pick(rng, ["weird", 5, None]))
            elif choice == 11:
                rt.RemoteStage("127.0.0.1", _pick(rng, [70000, -1, "x"]), timeout_ms=1000)
            elif choice == 12:
                s.create_stream(idle_timeout_ms=_pick(rng, ["x", None, 2**70, -1]))
            elif choice == 13:
                b = s.io_binding()
                b.bind_output("probs", element_type=_pick(rng, [np.float64, "x", object]), shape=(2, 10))
                b.bind_cpu_input("image", self.good_x)
                s.run_with_iobinding(b)
            elif choice == 14:
                s.create_batcher(max_batch_size=4, preferred_batch_sizes=_pick(rng, ["4,8", [0], [2**40], None]))
            else:
                s.run(None, {"image": self.good_x}, run_options=_pick(rng, ["fast", {"timeout_ms": 1}]))
            return {}
        raise ValueError(f"unknown fault {kind}")

    def serve(self):
        for line in sys.stdin:
            spec = json.loads(line)
            result = {"id": spec["id"]}
            try:
                result.update(getattr(self, "case_" + spec["kind"])(spec))
                result["outcome"] = "ok"
            except BaseException as e:  # noqa: BLE001 - judged, not handled
                pyflame, named = _judge_error(e)
                msg = str(e)
                result.update(outcome="error", etype=type(e).__name__, msg=msg[:300], pyflame=pyflame, named=named,
                              canary="CANARY" in msg or str(CANARY_VALUE) in msg)
                if not pyflame:
                    result["trace"] = traceback.format_exc()[-800:]
            result["usable"] = self.usable()
            sys.stdout.write(json.dumps(result) + "\n")
            sys.stdout.flush()


# ================================================================================================
# The parent: case generation, isolation, judging, the table.
# ================================================================================================

class Tally:
    COLUMNS = ["cases", "ok", "errors", "crash", "hang", "outside", "non_pyflame", "unnamed", "wrong", "unusable"]

    def __init__(self):
        self.rows = collections.defaultdict(collections.Counter)
        self.findings = []

    def add(self, iface, cls, **counts):
        r = self.rows[(iface, cls)]
        r["cases"] += 1
        for k, v in counts.items():
            r[k] += int(v)
        bad = {k: v for k, v in counts.items() if v and k not in ("ok", "errors")}
        return bad

    def finding(self, iface, cls, what, detail):
        if len(self.findings) < 400:
            self.findings.append(f"[{iface}/{cls}] {what}: {detail}")

    def totals(self):
        t = collections.Counter()
        for r in self.rows.values():
            t.update(r)
        return t

    def print(self):
        width = max([len(f"{i}/{c}") for i, c in self.rows] + [10])
        print(f"{'interface/class':<{width}} " + " ".join(f"{c:>11}" for c in self.COLUMNS))
        for (i, c) in sorted(self.rows):
            r = self.rows[(i, c)]
            print(f"{i + '/' + c:<{width}} " + " ".join(f"{r[k]:>11}" for k in self.COLUMNS))
        t = self.totals()
        by_iface = collections.defaultdict(collections.Counter)
        for (i, _), r in self.rows.items():
            by_iface[i].update(r)
        print("-" * (width + 12 * len(self.COLUMNS)))
        for i in sorted(by_iface):
            print(f"{'= ' + i:<{width}} " + " ".join(f"{by_iface[i][k]:>11}" for k in self.COLUMNS))
        print(f"{'TOTAL':<{width}} " + " ".join(f"{t[k]:>11}" for k in self.COLUMNS))


class WorkerProc:
    """The Python worker, restarted after a crash or a hang."""

    def __init__(self, trial_dir, use_strace):
        self.trial_dir, self.use_strace = trial_dir, use_strace
        self.proc = None
        self.n = 0

    def start(self):
        self.n += 1
        cmd = [sys.executable, os.path.abspath(__file__), "--worker"]
        if self.use_strace:
            # -I1: a terminated strace detaches and leaves the worker running (stacks() below).
            cmd = ["strace", "-I1", "-f", "-qq", "-e", "trace=open,openat,openat2", "-e", "signal=none",
                   "-o", os.path.join(self.trial_dir, f"strace.worker.{self.n}")] + cmd
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(REPO, "build", "python")] + sys.path))
        self.stderr = open(os.path.join(self.trial_dir, f"worker.{self.n}.stderr"), "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                     cwd=self.trial_dir, env=env)
        self.buf = b""

    def call(self, spec, timeout):
        """(result dict) or ("crash", detail) or ("hang", detail)"""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        try:
            self.proc.stdin.write((json.dumps(spec) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            return self._crashed()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                stacks = self.stacks()
                self.kill()
                return "hang", f"no answer in {timeout:.0f} s; stacks in {stacks}"
            r, _, _ = select.select([self.proc.stdout], [], [], min(left, 1.0))
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    return self._crashed()
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def stacks(self):
        """Every thread's stack of the hung worker (gdb, when present), to a file named in the
        finding: a hang that depends on the worker's history does not reproduce alone."""
        path = os.path.join(self.trial_dir, f"hang.{self.n}.stacks.txt")
        if shutil.which("gdb") is None:
            return "(no gdb)"
        pid = self.proc.pid
        if self.use_strace:
            # The worker is strace's child, and a process has one tracer: strace detaches from
            # its tracees when terminated, then gdb can attach (the worker is killed after).
            children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
            if not children:
                return "(no worker process)"
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            pid = int(children[0])
        with open(path, "wb") as f:
            subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt 25"],
                           stdout=f, stderr=subprocess.DEVNULL, timeout=120, check=False)
        if self.use_strace:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return path

    def _crashed(self):
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = "?"
        self.stderr.flush()
        tail = open(self.stderr.name, "rb").read()[-600:].decode(errors="replace")
        self.proc = None
        return "crash", f"exit {rc}: {tail}"

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self):
        if self.proc is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
            self.proc = None


def write_case(case_dir, files):
    os.makedirs(case_dir, exist_ok=True)
    for name, content in files.items():
        p = os.path.join(case_dir, name)
        if isinstance(content, tuple):
            what, target = content
            if what == "symlink":
                os.symlink(target, p)
            elif what == "fifo":
                os.mkfifo(p)
            elif what == "dir":
                os.makedirs(p, exist_ok=True)
        else:
            with open(p, "wb") as f:
                f.write(content)
    return os.path.join(case_dir, "model.onnx")


def judge_worker_result(tally, iface, cls, res, spec):
    if isinstance(res, tuple):
        kind, detail = res
        tally.add(iface, cls, **{kind: 1})
        tally.finding(iface, cls, kind, f"{json.dumps(spec)[:300]} -> {detail[-400:]}")
        return
    counts = {"ok": res["outcome"] == "ok", "errors": res["outcome"] == "error"}
    if res["outcome"] == "error":
        counts["non_pyflame"] = not res["pyflame"]
        counts["unnamed"] = res["pyflame"] and not res["named"]
    counts["wrong"] = (res["outcome"] == "error" and bool(spec.get("must_succeed"))) or bool(res.get("wrong_answer"))
    counts["outside"] = bool(res.get("canary"))
    counts["unusable"] = not res.get("usable", True)
    bad = tally.add(iface, cls, **counts)
    if bad:
        tally.finding(iface, cls, ",".join(bad), f"{json.dumps(spec)[:300]} -> "
                      f"{res.get('etype', '')}: {res.get('msg', '')[:250]} {res.get('trace', '')[-300:]}")


def strace_outside(trial_dir, outside):
    """Successful opens whose real path is in the canary's folder, from every strace log."""
    hits = []
    pat = re.compile(r'open(?:at2?)?\((?:[^,]*, )?"((?:[^"\\]|\\.)*)".*= (-?\d+)')
    real_outside = os.path.realpath(outside)
    for name in os.listdir(trial_dir):
        if not name.startswith("strace."):
            continue
        with open(os.path.join(trial_dir, name), errors="replace") as f:
            for line in f:
                m = pat.search(line)
                if not m or int(m.group(2)) < 0:
                    continue
                path = m.group(1)
                if "canary" not in path and "outside" not in path and "/sub/" not in path and "w.bin" not in path:
                    continue
                candidates = [path] if os.path.isabs(path) else [os.path.join(trial_dir, path)]
                for c in candidates:
                    rp = os.path.realpath(c)
                    if rp == real_outside or rp.startswith(real_outside + os.sep):
                        hits.append(f"{name}: {line.strip()[:200]}")
    return hits


# ---- Python cases -------------------------------------------------------------------------------

FEED_KINDS = ["wrong_dtype", "wrong_rank", "wrong_shape", "zero_dim", "zero_inner", "huge_dims", "nan_inf",
              "big_endian", "non_contiguous", "fortran", "wrong_name", "extra_name", "non_string_name", "object",
              "missing", "readonly", "bad_output_names", "scalar"]
VIAS = ["run", "run", "run_with_ort_values", "iobinding", "run_batch", "batcher", "run_async", "stream", "pipeline"]
FAULTS = ["terminate", "terminate_loop", "timeout", "memory", "cache_readonly", "cache_corrupt", "cache_file",
          "stream_misuse", "pipeline_stuck", "bad_options"]


def python_trial(args, rng, models, model_dir, trial_dir, outside, tally, budget):
    worker = WorkerProc(trial_dir, args.strace)
    end = time.monotonic() + budget
    names = sorted(models)
    base_paths = {}
    for n in names:
        base_paths[n] = CNN if n == "tiny_cnn" else GRU if n == "tiny_gru" else \
            write_case(os.path.join(model_dir, "base", n), {"model.onnx": models[n].SerializeToString()})
    pfms = pfm_bases(models, model_dir)
    i = 0
    while time.monotonic() < end:
        i += 1
        r = rng.random()
        seed = rng.randrange(2**31)
        if r < 0.55:
            name = rng.choice(names)
            base = models[name]
            pick = rng.random()
            if pick < 0.15 and name in pfms:
                cls, files = mut_pfm(rng, pfms[name], list(pfms.values()))
            elif pick < 0.4:
                cls, files = mut_bytes(rng, base, [models[n] for n in names])
            else:
                cls, files = mut_proto(rng, base, [models[n] for n in names], outside)
            path = write_case(os.path.join(model_dir, f"py{i}"), files)
            spec = {"id": i, "kind": "model", "path": path, "seed": seed, "from_bytes": rng.random() < 0.2}
            res = worker.call(spec, CASE_TIMEOUT)
            judge_worker_result(tally, "python", "model_" + cls.split("_", 1)[0] + ("_external" if "external" in cls else ""),
                                res, spec)
        elif r < 0.85:
            n = rng.choice(names)
            spec = {"id": i, "kind": "feed", "model": n, "path": base_paths[n], "seed": seed,
                    "feed": rng.choice(FEED_KINDS), "via": rng.choice(VIAS)}
            res = worker.call(spec, CASE_TIMEOUT)
            judge_worker_result(tally, "python", "feed_" + spec["via"], res, spec)
        else:
            fault = rng.choice(FAULTS)
            n = "loop" if fault == "terminate_loop" else rng.choice(["tiny_cnn", "conv", "tiny_gru", "loop"])
            d = os.path.join(model_dir, f"fault{i}")
            os.makedirs(d, exist_ok=True)
            open(os.path.join(d, "a_file"), "wb").close()
            spec = {"id": i, "kind": "fault", "fault": fault, "model": n, "path": base_paths[n], "seed": seed, "dir": d}
            res = worker.call(spec, CASE_TIMEOUT * 2)
            judge_worker_result(tally, "python", "fault_" + fault, res, spec)
    worker.stop()


# ---- CLI cases ----------------------------------------------------------------------------------

def crafted_npy(rng, like):
    """Bytes of a .npy file: valid, or with a crafted header."""
    x = like
    kind = rng.choice(["valid", "zero_rows", "big_endian", "fortran", "wrong_dtype", "huge_shape", "neg_shape",
                       "truncated", "bad_header", "object", "header_len", "bad_magic", "v2", "wrong_rank"])
    def header(descr, fortran, shape, version=1):
        d = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)
        d = d + " " * (63 - (len(d) + 10) % 64) + "\n"
        if version == 1:
            return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d)) + d.encode()
        return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(d)) + d.encode()
    shape = tuple(x.shape)
    if kind == "valid":
        return kind, header("<f4", "False", shape) + x.astype("<f4").tobytes()
    if kind == "zero_rows":
        return kind, header("<f4", "False", (0,) + shape[1:])
    if kind == "big_endian":
        return kind, header(">f4", "False", shape) + x.astype(">f4").tobytes()
    if kind == "fortran":
        return kind, header("<f4", "True", shape) + np.asfortranarray(x).tobytes(order="F")
    if kind == "wrong_dtype":
        return kind, header(rng.choice(["<f8", "<i8", "|u1", "<c8", "|b1", "<U3", "<f2"]), "False", shape) + \
            x.astype("<f8").tobytes()
    if kind == "huge_shape":
        return kind, header("<f4", "False", rng.choice([(2**40, 3), (2**62, 2**62), (99999999999999999999,),
                                                        (2**31,) + shape[1:]])) + x.tobytes()
    if kind == "neg_shape":
        return kind, header("<f4", "False", rng.choice([(-1,) + shape[1:], (-2**63,), (3, -3)])) + x.tobytes()
    if kind == "truncated":
        data = header("<f4", "False", shape) + x.tobytes()
        return kind, data[:rng.randrange(len(data))]
    if kind == "bad_header":
        return kind, b"\x93NUMPY\x01\x00" + struct.pack("<H", 40) + rng.choice(
            [b"{'descr': '<f4', 'shape': (1,2,3 }".ljust(40), b"\xff" * 40, b"{" * 40,
             b"{'descr': 5, 'fortran_order': 0, 'shape': 'x'}"[:40]])
    if kind == "object":
        return kind, header("|O", "False", shape) + b"\x80\x04" + b"\0" * 64
    if kind == "header_len":
        return kind, b"\x93NUMPY\x01\x00" + struct.pack("<H", 65535) + b"{}"
    if kind == "bad_magic":
        return kind, b"\x93NUMPX\x01\x00" + x.tobytes()
    if kind == "v2":
        return kind, header("<f4", "False", shape, version=2) + x.astype("<f4").tobytes()
    return kind, header("<f4", "False", shape[1:] or (1,)) + x.tobytes()


def run_cli(cmd, timeout, trial_dir, use_strace, tag):
    if use_strace:
        cmd = ["strace", "-f", "-qq", "-e", "trace=open,openat,openat2", "-e", "signal=none",
               "-o", os.path.join(trial_dir, f"strace.cli.{tag}")] + cmd
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=timeout, cwd=trial_dir)
    except subprocess.TimeoutExpired:
        return "hang", None, b""
    return "done", r.returncode, r.stderr + r.stdout[-2000:]


CRASH_TEXT = (b"terminate called", b"Segmentation fault", b"core dumped", b"AddressSanitizer", b"runtime error:",
              b"Aborted", b"what():")


def judge_cli(tally, cls, state, rc, err, cmd, expect_error=None):
    text = err.decode(errors="replace")
    if state == "hang":
        tally.add("cli", cls, hang=1)
        tally.finding("cli", cls, "hang", " ".join(cmd)[:300])
        return
    crash = rc < 0 or rc in (134, 136, 139) or any(t in err for t in CRASH_TEXT)
    outside = CANARY_TEXT in err or b"31337" in err
    non_pyflame = rc not in (0,) and not crash and not re.search(r"^(error|Error): ", text, re.M) and rc != 2
    unnamed = rc == 1 and not non_pyflame and len(text.strip()) < 16
    counts = dict(ok=rc == 0, errors=rc != 0, crash=crash, outside=outside, non_pyflame=non_pyflame, unnamed=unnamed)
    if expect_error is False and rc != 0:
        counts["wrong"] = True
    bad = tally.add("cli", cls, **counts)
    if bad:
        tally.finding("cli", cls, ",".join(bad), f"{' '.join(cmd)[:300]} -> rc {rc}: {text[-400:]}")


def cli_trial(args, rng, models, model_dir, trial_dir, outside, tally, budget):
    end = time.monotonic() + budget
    names = sorted(models)
    x = np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)
    i = 0
    while time.monotonic() < end:
        i += 1
        d = os.path.join(model_dir, f"cli{i}")
        r = rng.random()
        if r < 0.35:  # a bad .npy into a good model
            kind, data = crafted_npy(rng, x)
            os.makedirs(d, exist_ok=True)
            npy = os.path.join(d, "x.npy")
            open(npy, "wb").write(data)
            cmd = [CLI, "run", CNN, "--input", f"image={npy}", "--output-dir", os.path.join(d, "out")]
            state, rc, err = run_cli(cmd, 60, trial_dir, args.strace, i)
            judge_cli(tally, "run_npy_" + kind, state, rc, err, cmd,
                      # Fortran order is refused with a clear error (documented), not read
                      expect_error=False if kind in ("valid", "zero_rows", "big_endian", "v2") else None)
        elif r < 0.8:  # a mutated model through run / compile / inspect / plan
            base = models[rng.choice(names)]
            cls, files = (mut_bytes if rng.random() < 0.35 else
                          lambda r_, m_, o_: mut_proto(r_, m_, o_, outside))(rng, base, [models[n] for n in names])
            path = write_case(d, files)
            sub = rng.choice(["run", "compile", "inspect", "plan", "run"])
            if sub == "run":
                cmd = [CLI, "run", path, "--output-dir", os.path.join(d, "out"), "--run-timeout-ms",
                       str(RUN_DEADLINE_MS), "--memory-limit-mb", str(MEMORY_LIMIT_MB)]
            elif sub == "compile":
                cmd = [CLI, "compile", path, "-o", os.path.join(d, "m.pfm")]
            else:
                cmd = [CLI, sub, path]
            state, rc, err = run_cli(cmd, 60, trial_dir, args.strace, i)
            if state == "done" and rc == 0 and sub == "run" and os.path.isdir(os.path.join(d, "out")):
                for f in os.listdir(os.path.join(d, "out")):
                    try:
                        if _canary_in([np.load(os.path.join(d, "out", f))]):
                            err += b" CANARY in output " + f.encode()
                    except Exception:  # noqa: BLE001
                        pass
            judge_cli(tally, f"{sub}_{cls.split('_', 1)[0]}" + ("_external" if "external" in cls else ""),
                      state, rc, err, cmd)
        else:  # bad options
            os.makedirs(d, exist_ok=True)
            np.save(os.path.join(d, "x.npy"), x)
            good_npy = os.path.join(d, "x.npy")
            cmd = rng.choice([
                [CLI, "run", CNN, "--input", "image"],
                [CLI, "run", CNN, "--input", f"nope={good_npy}"],
                [CLI, "run", CNN, "--input", "image=/nonexistent.npy"],
                [CLI, "run", CNN, "--input", f"image={d}"],
                [CLI, "run", "/nonexistent.onnx"],
                [CLI, "run", d],
                [CLI, "run", "/dev/null"],
                [CLI, "compile", CNN, "-o", "/proc/self/nope.pfm"],
                [CLI, "compile", CNN, "-o", os.path.join(d, "m.pfm"), "--input-shape", "image=1,3,-5,x"],
                [CLI, "compile", CNN, "-o", os.path.join(d, "m.pfm"), "--input-shape", "image=99999999999999999999"],
                [CLI, "compile", CNN, "-o", os.path.join(d, "m.pfm"), "--input-shape", "nope=1,2"],
                [CLI, "run", GRU, "--input", f"features={good_npy}"],
                [CLI, "serve", "--model", "m", "--http-port", "0"],
                [CLI, "serve", "--model", f"m={d}/missing.onnx", "--http-port", "0", "--host", "127.0.0.1"],
                [CLI, "serve", "--model", f"m={CNN}", "--http-port", "99999"],
                [CLI, "serve", "--model", f"m={CNN}", "--max-batch-size", "-1"],
                [CLI, "serve", "--repository", "/nonexistent", "--http-port", "0"],
                [CLI, "perf", CNN, "--iterations", "-1"],
                [CLI, "perf", CNN, "--shape", "image=0,3,32,32"],
                [CLI, "inspect", "/etc/passwd"],
                [CLI, "--no-such-flag"],
            ])
            state, rc, err = run_cli(cmd, 60, trial_dir, args.strace, i)
            judge_cli(tally, "options_" + cmd[1].lstrip("-").replace("-", "_"), state, rc, err, cmd)


# ---- Servers ------------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProc:
    def __init__(self, trial_dir):
        self.pull, self.pub = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
        self.trial_dir = trial_dir
        self.restarts = 0
        self.start()

    def start(self):
        self.err = open(os.path.join(self.trial_dir, f"serve.{self.restarts}.stderr"), "wb")
        self.proc = subprocess.Popen([CLI, "serve", "--model", f"cnn={CNN}", "--model", f"gru={GRU}", "--host",
                                      "127.0.0.1", "--http-port", "0", "--grpc-port", "0", "--zmq-pull", self.pull,
                                      "--zmq-pub", self.pub, "--max-body-bytes", str(8 << 20),
                                      "--request-timeout-ms", "20000", "--run-timeout-ms", "10000",
                                      "--memory-limit-mb", str(MEMORY_LIMIT_MB)],
                                     stdout=subprocess.PIPE, stderr=self.err, text=True)
        self.addr = {}
        for _ in range(20):
            line = self.proc.stdout.readline().strip()
            m = re.match(r"serving (\w+) (.*)$", line)
            if m:
                self.addr[m.group(1)] = m.group(2)
            if line == "ready" or not line:
                break
        host, port = self.addr["http"].rsplit(":", 1)
        self.http = (host.replace("http://", ""), int(port))
        self.grpc = self.addr["grpc"]

    def restart(self):
        self.stop()
        self.restarts += 1
        self.start()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def http_call(addr, method, path, body=b"", headers=None, timeout=20):
    c = http.client.HTTPConnection(*addr, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def raw_send(addr, data, timeout=5, read=True, pause=0.0):
    """Sends raw bytes; returns what came back before the peer closed or the timeout."""
    s = socket.create_connection(addr, timeout=timeout)
    try:
        for part in data if isinstance(data, list) else [data]:
            s.sendall(part)
            if pause:
                time.sleep(pause)
        if not read:
            return b""
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
            if len(out) > 1 << 20:
                break
        return out
    except OSError:
        return b""
    finally:
        s.close()


def bad_http(rng, addr):
    """Sends one bad HTTP request; returns (class, status or None, body)."""
    x = np.zeros((1, 3, 32, 32), np.float32)
    good = {"inputs": [{"name": "image", "shape": [1, 3, 32, 32], "datatype": "FP32", "data": x.ravel().tolist()}]}
    kind = rng.choice(["json_garbage", "json_shape", "json_dtype", "json_nested", "json_types", "binary_len",
                       "binary_short", "huge_content_length", "big_header", "slow", "disconnect", "traversal",
                       "method", "chunked", "http09", "random_bytes", "zero_rows", "huge_shape", "many_headers",
                       "unknown_model", "gru_bad", "params"])
    path = "/v2/models/cnn/infer"
    body, headers = b"", {"Content-Type": "application/json"}
    if kind == "json_garbage":
        body = rng.choice([b"{", b"", b"null", b"[]", b"\xff\xfe", b'{"inputs": 5}', b'{"inputs": [null]}',
                           json.dumps(good).encode()[:rng.randrange(100, 2000)]])
    elif kind == "json_shape":
        b = copy.deepcopy(good)
        b["inputs"][0]["shape"] = rng.choice([[1, 3, 32], [1, 3, 32, 31], [-1, 3, 32, 32], [0], [],
                                              [2**62, 2**62], ["a"], [1.5, 3, 32, 32], None, [[1]]])
        body = json.dumps(b).encode()
    elif kind == "json_dtype":
        b = copy.deepcopy(good)
        b["inputs"][0]["datatype"] = rng.choice(["FP64", "INT8", "BYTES", "BOOL", "FP16", "nope", 5, None, ""])
        body = json.dumps(b).encode()
    elif kind == "json_nested":
        body = ('{"inputs":[{"name":"image","shape":[1],"datatype":"FP32","data":' + "[" * 100000 + "]" * 100000
                + "}]}").encode()
    elif kind == "json_types":
        b = copy.deepcopy(good)
        b["inputs"][0]["data"] = rng.choice([["a"] * 3072, [None] * 3072, [1e400] * 3072, "text",
                                             [[1.0] * 3] * 1024, [2**70] * 3072, {"a": 1}])
        b["inputs"][0]["name"] = rng.choice(["image", 5, None, "", "x" * 10000])
        body = json.dumps(b).encode()
    elif kind in ("binary_len", "binary_short"):
        head = json.dumps({"inputs": [{"name": "image", "shape": [1, 3, 32, 32], "datatype": "FP32",
                                       "parameters": {"binary_data_size": rng.choice([12288, -1, 2**63, 0, 5])}}]}).encode()
        raw = x.tobytes()[:rng.choice([12288, 100, 0])] if kind == "binary_short" else x.tobytes()
        body = head + raw
        headers = {"Inference-Header-Content-Length": rng.choice([str(len(head)), "-5", "abc", str(2**64), "0",
                                                                  str(len(body) + 10), "1e3"]),
                   "Content-Type": "application/octet-stream"}
    elif kind == "huge_content_length":
        return kind, None, raw_send(addr, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {rng.choice([2**40, 2**64, -1, 10**30])}\r\n\r\n{{".encode(), timeout=3)
    elif kind == "big_header":
        return kind, None, raw_send(addr, f"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * rng.choice([9000, 100000, 1 << 20])}\r\n\r\n".encode(), timeout=3)
    elif kind == "many_headers":
        return kind, None, raw_send(addr, ("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n" +
                                           "".join(f"X-{k}: v\r\n" for k in range(5000)) + "\r\n").encode(), timeout=3)
    elif kind == "slow":
        req = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n".encode()
        return kind, None, raw_send(addr, [req[:10], req[10:30], b'{"inp'], timeout=2, pause=0.3)
    elif kind == "disconnect":
        req = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n".encode() + json.dumps(good).encode()[:5000]
        return kind, None, raw_send(addr, req, read=False)
    elif kind == "traversal":
        path = rng.choice(["/v2/models/../../../etc/passwd/infer", "/v2/models/%2e%2e%2f%2e%2e/infer",
                           "/v2/models/cnn/versions/-1/infer", "/v2/models/cnn/versions/99999999999999999999/infer",
                           "/v2/models/" + "a" * 10000 + "/infer", "/v2/repository/models/cnn/load",
                           "/v2/models/cnn/versions/abc", "//", "/v2/models/\x00/ready"])
        body = json.dumps(good).encode()
    elif kind == "method":
        return kind, None, raw_send(addr, rng.choice([b"DELETE /v2/models/cnn/infer HTTP/1.1\r\nHost: x\r\n\r\n",
                                                      b"BREW /v2 HTTP/1.1\r\n\r\n", b"GET /v2 HTTP/9.9\r\n\r\n"]), timeout=3)
    elif kind == "chunked":
        return kind, None, raw_send(addr, f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    f"{rng.choice(['ffffffffffffffff', 'zz', '-1', '7fffffff'])}\r\n{{}}\r\n0\r\n\r\n".encode(),
                                    timeout=3)
    elif kind == "http09":
        return kind, None, raw_send(addr, b"GET /\r\n", timeout=3)
    elif kind == "random_bytes":
        return kind, None, raw_send(addr, bytes(rng.randrange(256) for _ in range(rng.randint(1, 4000))), timeout=2)
    elif kind == "zero_rows":
        b = copy.deepcopy(good)
        b["inputs"][0]["shape"], b["inputs"][0]["data"] = [0, 3, 32, 32], []
        body = json.dumps(b).encode()
    elif kind == "huge_shape":
        b = copy.deepcopy(good)
        b["inputs"][0]["shape"] = [2**40, 3, 32, 32]
        body = json.dumps(b).encode()
    elif kind == "unknown_model":
        path = "/v2/models/" + rng.choice(["nope", "", "cnn%00", "CNN"]) + "/infer"
        body = json.dumps(good).encode()
    elif kind == "gru_bad":
        path = "/v2/models/gru/infer"
        body = json.dumps({"inputs": [{"name": "features", "shape": [1, 0, 40], "datatype": "FP32", "data": []},
                                      {"name": "h", "shape": [1, 1, rng.choice([0, 63, 64])], "datatype": "FP32",
                                       "data": [0.0] * 64}]}).encode()
    elif kind == "params":
        b = copy.deepcopy(good)
        b["parameters"] = rng.choice([{"timeout": -1}, {"timeout": 2**70}, {"timeout": "x"}, {"sequence_id": [1]},
                                      {"binary_data_output": "yes"}, {"sequence_id": 2**64, "sequence_start": True},
                                      {"priority": 2**80}])
        b["outputs"] = rng.choice([[{"name": "nope"}], [{"name": 5}], [], "x", [{"name": "probs",
                                                                                  "parameters": {"binary_data": 7}}]])
        body = json.dumps(b).encode()
    try:
        status, resp = http_call(addr, "POST", path, body, headers)
    except (OSError, http.client.HTTPException) as e:
        return kind, None, str(e).encode()
    return kind, status, resp


def good_http(addr, expected):
    x = np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)
    body = json.dumps({"inputs": [{"name": "image", "shape": [1, 3, 32, 32], "datatype": "FP32",
                                   "data": x.ravel().tolist()}]}).encode()
    try:
        status, resp = http_call(addr, "POST", "/v2/models/cnn/infer", body, {"Content-Type": "application/json"})
        if status != 200:
            return False
        out = np.array(json.loads(resp)["outputs"][0]["data"], np.float32)
        return bool(np.allclose(out, expected.ravel(), rtol=1e-5, atol=1e-6))
    except Exception:  # noqa: BLE001
        return False


def bad_grpc(rng, stub, pb):
    import grpc
    kind = rng.choice(["shape", "dtype", "raw_short", "raw_long", "both", "model", "huge", "params", "zero",
                       "no_inputs", "stream", "typed_mismatch", "outputs"])
    x = np.zeros((1, 3, 32, 32), np.float32)
    req = pb.ModelInferRequest(model_name="cnn", id="bad")
    t = req.inputs.add(name="image", datatype="FP32")
    t.shape.extend([1, 3, 32, 32])
    raw = x.tobytes()
    if kind == "shape":
        del t.shape[:]
        t.shape.extend(rng.choice([[1, 3, 32], [-1, 3, 32, 32], [2**62, 2**62], [1, 3, 32, 33], []]))
    elif kind == "dtype":
        t.datatype = rng.choice(["FP64", "BYTES", "nope", "", "INT64"])
    elif kind == "raw_short":
        raw = raw[:rng.randrange(len(raw))]
    elif kind == "raw_long":
        raw = raw + b"\0" * rng.randint(1, 100)
    elif kind == "both":
        t.contents.fp32_contents.extend([1.0] * 10)
    elif kind == "model":
        req.model_name = rng.choice(["", "nope", "../cnn", "\x00"])
        req.model_version = rng.choice(["", "-1", "abc", "99999999999999999999"])
    elif kind == "huge":
        del t.shape[:]
        t.shape.extend([2**40, 3, 32, 32])
    elif kind == "params":
        req.parameters["timeout"].int64_param = rng.choice([-1, 0, 2**62])
        req.parameters["sequence_id"].string_param = "x" * 100000
        req.parameters["sequence_start"].string_param = "maybe"
    elif kind == "zero":
        del t.shape[:]
        t.shape.extend([0, 3, 32, 32])
        raw = b""
    elif kind == "no_inputs":
        del req.inputs[:]
    elif kind == "typed_mismatch":
        t.contents.int64_contents.extend([1] * 3072)
        raw = None
    elif kind == "outputs":
        o = req.outputs.add(name=rng.choice(["nope", "", "probs"]))
        o.parameters["binary_data"].string_param = "x"
    if raw is not None and kind != "no_inputs":
        req.raw_input_contents.append(raw)
    try:
        if kind == "stream":
            list(stub.ModelStreamInfer(iter([req, pb.ModelInferRequest(model_name="gru")]), timeout=20))
        else:
            stub.ModelInfer(req, timeout=20)
        return kind, "OK", ""
    except grpc.RpcError as e:
        return kind, e.code().name, e.details() or ""


def server_trial(args, rng, trial_dir, tally, budget):
    import zmq
    import grpc
    sys.path.insert(0, os.path.join(REPO, "build", "python"))
    from pyflame_rt import grpc_service_pb2 as pb
    from pyflame_rt import grpc_service_pb2_grpc as pb_grpc
    import pyflame_rt as rt
    end = time.monotonic() + budget
    x = np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)
    (expected,) = rt.InferenceSession(CNN).run(None, {"image": x})
    srv = ServeProc(trial_dir)
    # The stage server: a CAF remote stage behind the BASP guard.
    stage = subprocess.Popen([CLI, "serve", CNN, "--stage-port", "0", "--name", "cnn"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    stage_port = None
    for _ in range(20):
        line = stage.stdout.readline()
        m = re.search(r"^serving stage .* on [\d.]+:(\d+)", line.strip())
        if m:
            stage_port = int(m.group(1))
            break
        if not line:
            break

    def stage_ok():
        try:
            rs = rt.RemoteStage("127.0.0.1", stage_port, timeout_ms=10000)
            (y,) = rs.run(None, {"image": x})
            return bool(np.allclose(y, expected, rtol=1e-5, atol=1e-6))
        except Exception as e:  # noqa: BLE001
            tally.finding("stage", "check", "stage good call failed", repr(e)[:300])
            return False

    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.connect(srv.pull)
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(srv.pub)
    sub.RCVTIMEO = 50
    for _ in range(200):
        push.send(b"probe")
        try:
            sub.recv_multipart()
            break
        except zmq.Again:
            pass
    channel = grpc.insecure_channel(srv.grpc)
    stub = pb_grpc.GRPCInferenceServiceStub(channel)

    def server_alive_and_good(iface, cls, detail):
        if srv.proc.poll() is not None:
            tally.add(iface, cls, crash=1)
            tally.finding(iface, cls, "crash", f"server exit {srv.proc.returncode} after {detail[:300]}: "
                          + open(srv.err.name, "rb").read()[-400:].decode(errors="replace"))
            srv.restart()
            return None
        if not good_http(srv.http, expected):
            tally.add(iface, cls, unusable=1)
            tally.finding(iface, cls, "unusable", f"good request failed after {detail[:300]}")
            return None
        return True

    i = 0
    while time.monotonic() < end:
        i += 1
        r = rng.random()
        if r < 0.5:
            t0 = time.monotonic()
            kind, status, resp = bad_http(rng, srv.http)
            if time.monotonic() - t0 > CASE_TIMEOUT:
                tally.add("http", kind, hang=1)
                continue
            if server_alive_and_good("http", kind, f"{kind} -> {status}") is None:
                continue
            non_pyflame = False
            unnamed = False
            if status is not None and status >= 400:
                try:
                    msg = json.loads(resp).get("error", "")
                except Exception:  # noqa: BLE001
                    msg = ""
                unnamed = len(msg) < 12
                non_pyflame = status == 500 or any(w in msg for w in FOREIGN_WORDS)
            outside = b"root:" in resp
            bad = tally.add("http", kind, ok=status is not None and status < 400, errors=status is None or status >= 400,
                            non_pyflame=non_pyflame, unnamed=unnamed, outside=outside)
            if bad:
                tally.finding("http", kind, ",".join(bad), f"status {status}: {resp[:300]!r}")
        elif r < 0.75:
            kind, code, details = bad_grpc(rng, stub, pb)
            if server_alive_and_good("grpc", kind, f"{kind} -> {code}") is None:
                continue
            non_pyflame = code in ("UNKNOWN", "INTERNAL") or any(w in details for w in FOREIGN_WORDS)
            unnamed = code != "OK" and len(details) < 12
            bad = tally.add("grpc", kind, ok=code == "OK", errors=code != "OK", non_pyflame=non_pyflame, unnamed=unnamed)
            if bad:
                tally.finding("grpc", kind, ",".join(bad), f"{code}: {details[:300]}")
        elif r < 0.9:
            kind = rng.choice(["garbage", "json_only", "frames_short", "frames_long", "huge_shape", "many_frames",
                               "bad_model", "empty", "unicode"])
            if kind == "garbage":
                frames = [bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))]
            elif kind == "json_only":
                frames = [json.dumps({"model": "cnn", "inputs": [{"name": "image", "shape": [1, 3, 32, 32],
                                                                   "datatype": "FP32"}]}).encode()]
            elif kind in ("frames_short", "frames_long", "huge_shape"):
                shape = [2**40, 3, 32, 32] if kind == "huge_shape" else [1, 3, 32, 32]
                raw = x.tobytes()
                raw = raw[:100] if kind == "frames_short" else raw + b"\0" * 4 if kind == "frames_long" else raw
                frames = [json.dumps({"model": "cnn", "id": "z", "inputs": [{"name": "image", "shape": shape,
                                                                              "datatype": "FP32"}]}).encode(), raw]
            elif kind == "many_frames":
                frames = [b"{}"] + [b"x"] * 1000
            elif kind == "bad_model":
                frames = [json.dumps({"model": rng.choice(["nope", 5, None, ""]), "inputs": []}).encode()]
            elif kind == "empty":
                frames = [b""]
            else:
                frames = ['{"model": "\udcff"}'.encode("utf-8", "surrogatepass")]
            push.send_multipart(frames)
            alive = server_alive_and_good("zmq", kind, kind)
            if alive is None:
                continue
            tally.add("zmq", kind, errors=1)
        else:
            kind = rng.choice(["garbage", "huge_basp", "slow", "half_header"])
            if stage_port is None:
                break
            if kind == "garbage":
                raw_send(("127.0.0.1", stage_port), bytes(rng.randrange(256) for _ in range(rng.randint(1, 2000))),
                         timeout=2)
            elif kind == "huge_basp":
                # a BASP header (operation, padding, payload length, ...) announcing ~4 GiB
                raw_send(("127.0.0.1", stage_port), bytes([rng.choice([0, 1, 2, 3])]) + b"\0" * 3
                         + struct.pack(">I", 0xFFFFFFF0) + b"\0" * 24, timeout=2)
            elif kind == "slow":
                raw_send(("127.0.0.1", stage_port), [b"\x00", b"\x00\x00"], timeout=1, pause=0.5)
            else:
                raw_send(("127.0.0.1", stage_port), b"\x00" * 7, read=False)
            if stage.poll() is not None:
                tally.add("stage", kind, crash=1)
                tally.finding("stage", kind, "crash", f"stage server exit {stage.returncode}")
                break
            ok = stage_ok()
            tally.add("stage", kind, errors=1, unusable=not ok)
    # gRPC and ZeroMQ still answer at the end
    try:
        resp = stub.ModelInfer(pb.ModelInferRequest(model_name="cnn", inputs=[pb.ModelInferRequest.InferInputTensor(
            name="image", datatype="FP32", shape=[1, 3, 32, 32])], raw_input_contents=[x.tobytes()]), timeout=20)
        y = np.frombuffer(resp.raw_output_contents[0], np.float32)
        if not np.allclose(y, expected.ravel(), rtol=1e-5, atol=1e-6):
            raise AssertionError("wrong answer")
    except Exception as e:  # noqa: BLE001
        tally.add("grpc", "final_check", unusable=1)
        tally.finding("grpc", "final_check", "unusable", repr(e)[:300])
    channel.close()
    ctx.destroy(linger=0)
    srv.stop()
    if srv.proc.returncode not in (0, None):
        tally.add("serve", "shutdown", crash=1)
        tally.finding("serve", "shutdown", "crash", f"serve exit {srv.proc.returncode} at SIGTERM")
    stage.send_signal(signal.SIGTERM)
    try:
        stage.wait(timeout=30)
    except subprocess.TimeoutExpired:
        stage.kill()
        tally.add("stage", "shutdown", hang=1)
    else:
        if stage.returncode != 0:  # 3: its --shutdown-grace-ms passed (it said what still ran on stderr)
            tally.add("stage", "shutdown", hang=1)
            tally.finding("stage", "shutdown", "hang", f"stage server exit {stage.returncode} at SIGTERM")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=600.0, help="time budget (default 10 minutes)")
    ap.add_argument("--quick", action="store_true", help="about one minute")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--only", default="python,cli,server", help="comma-separated parts to run")
    ap.add_argument("--keep", action="store_true", help="keep the trial folder (printed)")
    ap.add_argument("--no-strace", dest="strace", action="store_false", help="do not trace open(2)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        Worker().serve()
        return 0
    if args.quick:
        args.seconds = 60.0
    args.strace = args.strace and shutil.which("strace") is not None
    parts = args.only.split(",")
    share = {"python": 0.55, "cli": 0.2, "server": 0.25}
    total_share = sum(share[p] for p in parts)
    rng = random.Random(args.seed)
    trial_dir = tempfile.mkdtemp(prefix="pfrt_hostile_")
    outside = os.path.join(trial_dir, "outside")
    os.makedirs(outside)
    canary = np.full(4096, CANARY_VALUE, np.float32).tobytes()
    with open(os.path.join(outside, "canary.bin"), "wb") as f:
        f.write(canary + CANARY_TEXT * 16)
    model_dir = os.path.join(trial_dir, "models")
    print(f"hostile trial: seed {args.seed}, {args.seconds:.0f} s, parts {args.only}, strace {args.strace}, "
          f"cpu {cpu_model()}, folder {trial_dir}", flush=True)
    models = base_models()
    tally = Tally()
    t0 = time.monotonic()
    for p in parts:
        budget = args.seconds * share[p] / total_share
        print(f"-- {p}: {budget:.0f} s", flush=True)
        {"python": lambda: python_trial(args, rng, models, model_dir, trial_dir, outside, tally, budget),
         "cli": lambda: cli_trial(args, rng, models, model_dir, trial_dir, outside, tally, budget),
         "server": lambda: server_trial(args, rng, trial_dir, tally, budget)}[p]()
    hits = strace_outside(trial_dir, outside) if args.strace else []
    # Files a model's output names would have written outside the output folder.
    for root, _, names in os.walk(trial_dir):
        hits += [f"written outside --output-dir: {os.path.join(root, n)}" for n in names
                 if n.startswith(("escape", "written"))]
    if hits:
        tally.add("strace", "open_outside", outside=len(hits))
        for h_ in hits[:20]:
            tally.finding("strace", "open_outside", "outside", h_)
    print(f"\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {time.monotonic() - t0:.0f} s, "
          f"cpu {cpu_model()}, {os.cpu_count()} cores")
    tally.print()
    if tally.findings:
        print("\nfindings:")
        for f in tally.findings:
            print("  " + f)
    if not args.keep:
        shutil.rmtree(trial_dir, ignore_errors=True)
    t = tally.totals()
    return 1 if any(t[k] for k in ("crash", "hang", "outside", "non_pyflame", "unnamed", "wrong", "unusable")) else 0


if __name__ == "__main__":
    sys.exit(main())
