"""Reduced precision: INT8 (static, dynamic, QAT) and FP16/BF16 weights.

    from pyflame_rt.quantization import QuantConfig
    cfg = QuantConfig(mode="static", dtype="int8", calibration_data=[{"input": x} ...])
    sess = rt.InferenceSession("model.onnx", quantization=cfg)
    print(sess.quantization_report())

The quantizer rewrites the model into standard ONNX before the session compiles it, so the
result is a model ONNX Runtime runs too (`pyflame-rt quantize` writes it to a file):
- static int8: QuantizeLinear/DequantizeLinear (QDQ) around Conv/MatMul/Gemm inputs and outputs,
  uint8 activations (asymmetric, from calibrated ranges), int8 weights (symmetric, one scale per
  output channel when per_channel), int32 biases;
- dynamic int8: MatMul/Gemm with constant weights become DynamicQuantizeLinear + MatMulInteger
  (weights int8 per column, activations quantized on every run);
- qat: the model is already QDQ (from another tool) and runs as it is;
- fp16/bfloat16: float initializers stored halved, each followed by a Cast to float; the
  session keeps Conv/MatMul/Gemm weights half in memory (constant folding leaves those Casts,
  the CPU device absorbs them: bf16 kernels where the CPU has bf16 math, else fp32 kernels on
  weights converted once; quantization_report()["weights_in_memory"] says which).

numpy and the onnx package are used here, at quantization/calibration time only; the session
runs the rewritten model on the native core.
"""

import math
import os

MODES = ("dynamic", "static", "qat")
DTYPES = ("int8", "fp16", "bfloat16")
METHODS = ("minmax", "entropy", "percentile")
QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")
# An activation right after a quantized op that a uint8 QuantizeLinear reproduces exactly by
# saturation (zero point 0 for the lower bound): it is dropped and its output quantized instead.
FOLDABLE_ACTIVATIONS = ("Relu", "Clip")
HIST_BINS = 2048


class QuantConfig:
    """What to quantize and how. calibration_data: an iterable of feeds ({input name: array}),
    required by mode="static" with dtype="int8"; exclude: node names or op types left in fp32."""

    def __init__(self, mode="static", dtype="int8", calibration_data=None, per_channel=True,
                 method="minmax", exclude=(), percentile=99.999, max_report_feeds=16):
        from .errors import InvalidArgument
        if mode not in MODES:
            raise InvalidArgument(f"QuantConfig.mode: expected one of {MODES}, got {mode!r}")
        if dtype in ("float16", "half"):
            dtype = "fp16"
        if dtype == "bf16":
            dtype = "bfloat16"
        if dtype not in DTYPES:
            raise InvalidArgument(f"QuantConfig.dtype: expected one of {DTYPES}, got {dtype!r}")
        if method not in METHODS:
            raise InvalidArgument(f"QuantConfig.method: expected one of {METHODS}, got {method!r}")
        if not 50.0 < float(percentile) <= 100.0:
            raise InvalidArgument(f"QuantConfig.percentile: expected (50, 100], got {percentile!r}")
        self.mode = mode
        self.dtype = dtype
        # Materialised once: the feeds serve calibration and then the report's error measurement.
        self.calibration_data = list(calibration_data) if calibration_data is not None else None
        if mode == "static" and dtype == "int8" and not self.calibration_data:
            raise InvalidArgument("QuantConfig: mode='static' with dtype='int8' needs calibration_data "
                                  "(an iterable of feeds {input name: array}), got none")
        self.per_channel = bool(per_channel)
        self.method = method
        self.exclude = set(exclude or ())
        self.percentile = float(percentile)
        self.max_report_feeds = int(max_report_feeds)

    def __repr__(self):
        n = len(self.calibration_data) if self.calibration_data else 0
        return (f"QuantConfig(mode={self.mode!r}, dtype={self.dtype!r}, calibration_data=<{n} feeds>, "
                f"per_channel={self.per_channel}, method={self.method!r}, exclude={sorted(self.exclude)})")

    def excludes(self, node):
        return node.name in self.exclude or node.op_type in self.exclude


# ---------------------------------------------------------------------------------------------
# Calibration statistics (numpy, calibration time only)

class _Histogram:
    """|x| histogram over [0, absmax] that grows by re-binning when a larger value arrives,
    plus the signed min/max (what minmax uses)."""

    def __init__(self):
        self.hist = None
        self.absmax = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, x):
        import numpy as np
        x = np.asarray(x, dtype=np.float32).ravel()
        if x.size == 0:
            return
        self.min = min(self.min, float(x.min()))
        self.max = max(self.max, float(x.max()))
        a = np.abs(x)
        amax = float(a.max())
        if self.hist is None:
            self.absmax = max(amax, 1e-12)
            self.hist = np.zeros(HIST_BINS, dtype=np.float64)
        elif amax > self.absmax:
            # Re-bin the old counts into the wider range (each old bin to the new bin of its centre).
            centres = (np.arange(HIST_BINS) + 0.5) * (self.absmax / HIST_BINS)
            idx = np.minimum((centres / amax * HIST_BINS).astype(np.int64), HIST_BINS - 1)
            grown = np.zeros(HIST_BINS, dtype=np.float64)
            np.add.at(grown, idx, self.hist)
            self.hist = grown
            self.absmax = amax
        h, _ = np.histogram(a, bins=HIST_BINS, range=(0.0, self.absmax))
        self.hist += h

    def threshold(self, method, percentile):
        """The |x| beyond which values saturate."""
        import numpy as np
        if self.hist is None:
            return 0.0
        width = self.absmax / HIST_BINS
        if method == "percentile":
            cdf = np.cumsum(self.hist) / max(self.hist.sum(), 1.0)
            i = int(np.searchsorted(cdf, percentile / 100.0))
            return min((i + 1) * width, self.absmax)
        if method == "entropy":
            # A one-signed tensor (after ReLU) spends all 256 uint8 levels on [0, T].
            return _kl_threshold(self.hist, width, 256 if self.min >= 0 or self.max <= 0 else 128)
        return self.absmax

    def range(self, method, percentile):
        lo, hi = min(self.min, 0.0), max(self.max, 0.0)
        if method != "minmax":
            t = self.threshold(method, percentile)
            lo, hi = max(lo, -t), min(hi, t)
        return lo, hi


def _kl_threshold(hist, width, levels=128):
    """TensorRT's entropy calibration: the clipping threshold whose 128-level quantized
    distribution is closest (KL divergence) to the measured one."""
    import numpy as np
    total = hist.sum()
    if total <= 0:
        return width * len(hist)
    best_i, best_kl = len(hist), math.inf
    step = max(1, (len(hist) - levels) // 256)  # ~256 candidates keep calibration quick
    for i in range(levels, len(hist) + 1, step):
        p = hist[:i].copy()
        p[i - 1] += hist[i:].sum()
        nz = p > 0
        chunks = np.array_split(hist[:i], levels)
        q = np.concatenate([np.where(c > 0, c.sum() / max((c > 0).sum(), 1), 0.0) for c in chunks])
        p_n = p / p.sum()
        q_sum = q.sum()
        if q_sum <= 0:
            continue
        q_n = q / q_sum
        mask = nz & (q_n > 0)
        kl = float(np.sum(p_n[mask] * np.log(p_n[mask] / q_n[mask]))) + (1e3 if (nz & (q_n <= 0)).any() else 0.0)
        if kl < best_kl:
            best_kl, best_i = kl, i
    return best_i * width


def _uint8_params(lo, hi):
    scale = (hi - lo) / 255.0
    if scale <= 0:
        return 1.0, 0
    zp = int(round(-lo / scale))
    return float(scale), max(0, min(255, zp))


# ---------------------------------------------------------------------------------------------
# Graph helpers (onnx package)

def _load(model):
    import onnx
    from .errors import InvalidArgument
    if isinstance(model, onnx.ModelProto):
        return model
    try:
        if isinstance(model, bytes):
            return onnx.load_from_string(model)
        return onnx.load(os.fspath(model))
    except Exception as e:  # a .pfm plan or a damaged file: the quantizer rewrites ONNX only
        what = "model bytes" if isinstance(model, bytes) else repr(os.fspath(model))
        raise InvalidArgument(f"quantization: expected an ONNX model, got {what} that onnx cannot parse ({e})") from e


def _initializers(graph):
    return {t.name: t for t in graph.initializer}


def _consumers(graph):
    out = {}
    for node in graph.node:
        for name in node.input:
            if name:
                out.setdefault(name, []).append(node)
    return out


def _attr(node, name, default):
    import onnx
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _const_value(inits, name):
    """The value of an initializer or of a Constant node's output (see _constants)."""
    from onnx import numpy_helper
    return numpy_helper.to_array(inits[name]) if name in inits else None


def _constants(graph):
    """Initializers plus Constant nodes' tensors by output name (torch exports Clip bounds as
    Constant nodes)."""
    out = dict(_initializers(graph))
    for n in graph.node:
        if n.op_type == "Constant" and n.output:
            for a in n.attribute:
                if a.name == "value":
                    out[n.output[0]] = a.t
    return out


def _identity_sources(graph, inits):
    """{Identity output: the initializer it passes on}: torch shares equal constants (the
    weights of cloned layers) through Identity nodes."""
    return {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity" and n.input[0] in inits}


class _Plan:
    """The static int8 plan: quantized nodes, the tensors they read (activations), the tensors
    they write (after a folded activation), and activations to drop."""

    def __init__(self, model, cfg):
        g = model.graph
        inits = _initializers(g)
        consumers = _consumers(g)
        graph_outputs = {o.name for o in g.output}
        consts = _constants(g)
        identity_of = _identity_sources(g, inits)
        self.nodes = []          # quantized nodes
        self.act_inputs = []     # tensors quantized as inputs
        self.out_tensors = []    # tensors quantized as outputs (Conv/MatMul/Gemm or a folded activation)
        self.folded = {}         # folded activation node name -> (node, clip max or None)
        seen = set()

        def want(name):
            if name and name not in inits and name not in seen:
                seen.add(name)
                return True
            return False

        for node in g.node:
            if node.op_type not in QUANTIZED_OPS or cfg.excludes(node):
                continue
            if node.op_type == "Gemm" and (_attr(node, "transA", 0) or len(node.input) < 2):
                continue
            if node.op_type in ("MatMul", "Gemm") and identity_of.get(node.input[1], node.input[1]) not in inits:
                continue  # activation x activation matmuls stay fp32 (attention scores)
            self.nodes.append(node)
            if want(node.input[0]):
                self.act_inputs.append(node.input[0])
            out = node.output[0]
            users = consumers.get(out, [])
            if out not in graph_outputs and len(users) == 1 and users[0].op_type in FOLDABLE_ACTIVATIONS \
                    and not cfg.excludes(users[0]) and users[0].output[0] not in graph_outputs:
                act = users[0]
                clip_max = None
                if act.op_type == "Clip":
                    lo = _const_value(consts, act.input[1]) if len(act.input) > 1 and act.input[1] else _attr(act, "min", None)
                    hi = _const_value(consts, act.input[2]) if len(act.input) > 2 and act.input[2] else _attr(act, "max", None)
                    if lo is None or float(lo) != 0.0:
                        act = None
                    else:
                        clip_max = float(hi) if hi is not None else None
                if act is not None:
                    self.folded[act.name or act.output[0]] = (act, clip_max)
                    if want(act.output[0]):
                        self.out_tensors.append(act.output[0])
                    continue
            if out not in graph_outputs and want(out):
                self.out_tensors.append(out)

    def tensors(self):
        return self.act_inputs + self.out_tensors


def _with_outputs(model, names):
    """A copy of the model that also returns the named intermediate tensors."""
    import onnx
    m = onnx.ModelProto()
    m.CopyFrom(model)
    existing = {o.name for o in m.graph.output}
    for name in names:
        if name not in existing:
            m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return m


def calibrate(model, cfg, names, session_factory):
    """{tensor: (lo, hi)} from running the fp32 model over cfg.calibration_data."""
    probe = _with_outputs(model, names)
    sess = session_factory(probe.SerializeToString())
    stats = {n: _Histogram() for n in names}
    for feed in cfg.calibration_data:
        values = sess.run(names, feed)
        for n, v in zip(names, values):
            stats[n].add(v)
    ranges = {}
    for n, h in stats.items():
        ranges[n] = h.range(cfg.method, cfg.percentile)
    return ranges


# ---------------------------------------------------------------------------------------------
# Rewrites

def _weight_axis(node):
    if node.op_type == "Conv":
        return 0
    if node.op_type == "Gemm":
        return 0 if _attr(node, "transB", 0) else 1
    return 1  # MatMul: [K, N], one scale per output column


def _quantize_weight(w, axis, per_channel):
    """Symmetric int8: (q, scales). scales has one entry per channel along axis, or one."""
    import numpy as np
    w = w.astype(np.float32)
    if per_channel and w.ndim >= 2:
        other = tuple(i for i in range(w.ndim) if i != axis)
        amax = np.abs(w).max(axis=other)
    else:
        amax = np.array(np.abs(w).max(), dtype=np.float32)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    if scale.ndim == 1:
        shape[axis] = -1
    q = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def rewrite_static(model, cfg, plan, ranges, report):
    """The QDQ model: Q/DQ pairs on plan's tensors, int8 weights and int32 biases behind DQ."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper
    g = model.graph
    inits = _initializers(g)
    new_inits = []
    new_nodes = []
    dq_of = {}  # fp32 tensor -> its dequantized copy
    act_params = {}
    for name in plan.tensors():
        lo, hi = ranges[name]
        for act, clip_max in plan.folded.values():
            if act.output[0] == name:
                lo = 0.0
                if clip_max is not None:
                    hi = min(hi, clip_max)
        scale, zp = _uint8_params(lo, hi)
        act_params[name] = (scale, zp)
        s_name, z_name = f"{name}_scale", f"{name}_zero_point"
        new_inits.append(numpy_helper.from_array(np.array(scale, dtype=np.float32), s_name))
        new_inits.append(numpy_helper.from_array(np.array(zp, dtype=np.uint8), z_name))
        dq_of[name] = (f"{name}_DequantizeLinear_Output", s_name, z_name)
        report["activations"][name] = {"scale": scale, "zero_point": zp, "range": [float(lo), float(hi)]}

    # Folded activations disappear: their output is now produced by the Q/DQ of their input's op.
    rename = {}
    for act, _ in plan.folded.values():
        rename[act.input[0]] = act.output[0]
    folded_ids = {id(a) for a, _ in plan.folded.values()}
    quantized_ids = {id(n) for n in plan.nodes}

    def emit_qdq(name, producer_out):
        dq_name, s_name, z_name = dq_of[name]
        q_out = f"{name}_QuantizeLinear_Output"
        new_nodes.append(helper.make_node("QuantizeLinear", [producer_out, s_name, z_name], [q_out],
                                          name=f"{name}_QuantizeLinear"))
        new_nodes.append(helper.make_node("DequantizeLinear", [q_out, s_name, z_name], [dq_name],
                                          name=f"{name}_DequantizeLinear"))

    identity_of = _identity_sources(g, inits)
    weight_dq = {}  # (weight, axis) -> its DequantizeLinear output: shared weights quantized once
    graph_inputs = {i.name for i in g.input}
    for name in plan.act_inputs:  # graph inputs: their Q/DQ comes first
        if name in graph_inputs:
            emit_qdq(name, name)
    quantized_outputs = set(plan.out_tensors) | set(plan.act_inputs)
    for node in g.node:
        if id(node) in folded_ids:
            continue
        n = helper.make_node(node.op_type, list(node.input), list(node.output), name=node.name, domain=node.domain)
        n.attribute.extend(node.attribute)
        # Read dequantized copies of quantized tensors.
        for i, inp in enumerate(n.input):
            if inp in dq_of:  # every reader (quantized or not) takes the dequantized copy
                n.input[i] = dq_of[inp][0]
        if id(node) in quantized_ids:
            w_name = identity_of.get(node.input[1], node.input[1])
            w = _const_value(inits, w_name)
            axis = _weight_axis(node)
            q, ws = _quantize_weight(w, axis, cfg.per_channel)
            if (w_name, axis) not in weight_dq:
                tag = w_name if not any(k[0] == w_name for k in weight_dq) else f"{w_name}_axis{axis}"
                qn, sn, zn = f"{tag}_quantized", f"{tag}_scale", f"{tag}_zero_point"
                new_inits.append(numpy_helper.from_array(q, qn))
                new_inits.append(numpy_helper.from_array(ws, sn))
                new_inits.append(numpy_helper.from_array(np.zeros(ws.shape, dtype=np.int8), zn))
                dq_attrs = {"axis": axis} if ws.ndim == 1 else {}
                new_nodes.append(helper.make_node("DequantizeLinear", [qn, sn, zn], [f"{tag}_DequantizeLinear_Output"],
                                                  name=f"{tag}_DequantizeLinear", **dq_attrs))
                weight_dq[(w_name, axis)] = f"{tag}_DequantizeLinear_Output"
            n.input[1] = weight_dq[(w_name, axis)]
            entry = {"op_type": node.op_type, "weight": w_name, "weight_scales": len(np.atleast_1d(ws)),
                     "weight_scale_min": float(np.min(ws)), "weight_scale_max": float(np.max(ws)),
                     "input_scale": act_params.get(node.input[0], (None,))[0]}
            bias_idx = 2
            if len(node.input) > bias_idx and node.input[bias_idx] in identity_of:
                # torch shares equal constants through Identity nodes: quantize the constant itself.
                node.input[bias_idx] = identity_of[node.input[bias_idx]]
            if len(node.input) > bias_idx and node.input[bias_idx] in inits and node.input[0] in act_params:
                b = _const_value(inits, node.input[bias_idx]).astype(np.float64)
                xs = act_params[node.input[0]][0]
                gemm_ok = node.op_type != "Gemm" or (b.ndim == 1 and b.shape[0] == q.shape[axis] and float(_attr(node, "beta", 1.0)) == 1.0)
                if gemm_ok and b.ndim == 1:
                    bs = (xs * np.broadcast_to(ws, (b.shape[0],))).astype(np.float32)
                    bq = np.round(b / bs).astype(np.int64)
                    if np.abs(bq).max(initial=0) < 2 ** 31 - 1:
                        # One per node: the bias scale depends on the node's input and weight scales.
                        bname = f"{node.name or node.output[0]}_{node.input[bias_idx]}"
                        new_inits.append(numpy_helper.from_array(bq.astype(np.int32), f"{bname}_quantized"))
                        new_inits.append(numpy_helper.from_array(bs, f"{bname}_scale"))
                        new_inits.append(numpy_helper.from_array(np.zeros(bs.shape, dtype=np.int32), f"{bname}_zero_point"))
                        new_nodes.append(helper.make_node(
                            "DequantizeLinear", [f"{bname}_quantized", f"{bname}_scale", f"{bname}_zero_point"],
                            [f"{bname}_DequantizeLinear_Output"], name=f"{bname}_DequantizeLinear", axis=0))
                        n.input[bias_idx] = f"{bname}_DequantizeLinear_Output"
            # The output (or the folded activation's output) goes through its Q/DQ.
            out = node.output[0]
            final = rename.get(out, out)
            n.output[0] = final
            report["nodes"].append(dict(entry, name=node.name, output=final))
        new_nodes.append(n)
        for out in n.output:
            if out in quantized_outputs and out not in graph_inputs:
                emit_qdq(out, out)
    used = set()
    for n in new_nodes:
        used.update(n.input)
    kept = [t for t in g.initializer if t.name in used]
    del g.node[:]
    g.node.extend(new_nodes)
    del g.initializer[:]
    g.initializer.extend(kept + new_inits)
    del g.value_info[:]
    _ensure_opset(model, 13)
    return model


def rewrite_dynamic(model, cfg, report):
    """MatMul/Gemm with constant weights -> DynamicQuantizeLinear + MatMulInteger + scale."""
    import numpy as np
    from onnx import helper, numpy_helper
    g = model.graph
    inits = _initializers(g)
    identity_of = _identity_sources(g, inits)
    new_nodes, new_inits = [], []
    for node in g.node:
        ok = (node.op_type in ("MatMul", "Gemm") and not cfg.excludes(node) and len(node.input) >= 2
              and identity_of.get(node.input[1], node.input[1]) in inits)
        if ok and node.op_type == "Gemm":
            ok = not _attr(node, "transA", 0)
        if not ok:
            new_nodes.append(node)
            continue
        w = _const_value(inits, identity_of.get(node.input[1], node.input[1])).astype(np.float32)
        if node.op_type == "Gemm" and _attr(node, "transB", 0):
            w = w.T
        if w.ndim != 2:
            new_nodes.append(node)
            continue
        alpha = float(_attr(node, "alpha", 1.0)) if node.op_type == "Gemm" else 1.0
        q, ws = _quantize_weight(w, 1, cfg.per_channel)
        base = node.name or node.output[0]
        x = node.input[0]
        xq, xs, xz = f"{base}_x_quantized", f"{base}_x_scale", f"{base}_x_zero_point"
        new_nodes.append(helper.make_node("DynamicQuantizeLinear", [x], [xq, xs, xz], name=f"{base}_DynamicQuantizeLinear"))
        new_inits.append(numpy_helper.from_array(q, f"{base}_W_quantized"))
        zp_shape = ws.shape if ws.ndim == 1 else ()
        new_inits.append(numpy_helper.from_array(np.zeros(zp_shape, dtype=np.int8), f"{base}_W_zero_point"))
        new_inits.append(numpy_helper.from_array((ws * alpha).astype(np.float32), f"{base}_W_scale"))
        acc = f"{base}_MatMulInteger_Output"
        new_nodes.append(helper.make_node("MatMulInteger", [xq, f"{base}_W_quantized", xz, f"{base}_W_zero_point"],
                                          [acc], name=f"{base}_MatMulInteger"))
        new_nodes.append(helper.make_node("Cast", [acc], [f"{acc}_float"], to=1, name=f"{base}_Cast"))
        new_nodes.append(helper.make_node("Mul", [xs, f"{base}_W_scale"], [f"{base}_scale"], name=f"{base}_ScaleMul"))
        has_bias = node.op_type == "Gemm" and len(node.input) > 2 and node.input[2]
        mul_out = f"{base}_Scaled" if has_bias else node.output[0]
        new_nodes.append(helper.make_node("Mul", [f"{acc}_float", f"{base}_scale"], [mul_out], name=f"{base}_Mul"))
        if has_bias:
            beta = float(_attr(node, "beta", 1.0))
            bias = node.input[2]
            if beta != 1.0:
                b = _const_value(inits, bias)
                if b is None:
                    new_nodes[-5:] = []
                    new_inits[-3:] = []
                    new_nodes.append(node)
                    continue
                new_inits.append(numpy_helper.from_array((b * beta).astype(np.float32), f"{base}_bias"))
                bias = f"{base}_bias"
            new_nodes.append(helper.make_node("Add", [mul_out, bias], [node.output[0]], name=f"{base}_BiasAdd"))
        report["nodes"].append({"name": node.name, "op_type": node.op_type, "weight": node.input[1],
                                "weight_scales": int(np.atleast_1d(ws).size),
                                "weight_scale_min": float(np.min(ws)), "weight_scale_max": float(np.max(ws)),
                                "input_scale": "per run"})
    used = set()
    for n in new_nodes:
        used.update(n.input)
    kept = [t for t in g.initializer if t.name in used]
    del g.node[:]
    g.node.extend(new_nodes)
    del g.initializer[:]
    g.initializer.extend(kept + new_inits)
    del g.value_info[:]
    _ensure_opset(model, 13)
    return model


def rewrite_half(model, cfg, report):
    """Float initializers of non-excluded consumers stored as fp16/bf16, each behind a Cast to
    float: weights take half the bytes and outputs stay fp32 (the arithmetic is bf16 only where
    the CPU device runs bf16 weights on bf16 kernels; docs/quantization.md)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper
    g = model.graph
    consumers = _consumers(g)
    target = onnx.TensorProto.FLOAT16 if cfg.dtype == "fp16" else onnx.TensorProto.BFLOAT16
    new_inits, casts = [], []
    for t in g.initializer:
        users = consumers.get(t.name, [])
        if t.data_type != onnx.TensorProto.FLOAT or not users or any(cfg.excludes(u) for u in users):
            new_inits.append(t)
            continue
        # Only weights worth halving (shapes and scalars stay exact).
        a = numpy_helper.to_array(t)
        if a.size < 16 or any(u.op_type in ("Reshape", "Resize", "Slice", "Expand", "Pad", "ConstantOfShape") for u in users):
            new_inits.append(t)
            continue
        half_name = f"{t.name}_{cfg.dtype}"
        if target == onnx.TensorProto.FLOAT16:
            h = numpy_helper.from_array(a.astype(np.float16), half_name)
        else:
            bits = (a.astype(np.float32).view(np.uint32) + 0x7FFF + ((a.astype(np.float32).view(np.uint32) >> 16) & 1)) >> 16
            h = helper.make_tensor(half_name, onnx.TensorProto.BFLOAT16, a.shape, bits.astype(np.uint16).tobytes(), raw=True)
        new_inits.append(h)
        casts.append(helper.make_node("Cast", [half_name], [t.name], to=onnx.TensorProto.FLOAT, name=f"{t.name}_Cast"))
        report["nodes"].append({"name": t.name, "op_type": "initializer", "dtype": cfg.dtype,
                                "bytes_fp32": int(a.size * 4), "bytes_stored": int(a.size * 2)})
    del g.initializer[:]
    g.initializer.extend(new_inits)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)
    _ensure_opset(model, 13)
    return model


def _ensure_opset(model, version):
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx") and o.version < version:
            o.version = version


# ---------------------------------------------------------------------------------------------
# Entry points

def quantize(model, cfg, session_factory=None):
    """(quantized ModelProto, report dict). session_factory(bytes) -> a session for the fp32
    model (calibration); defaults to pyflame_rt.InferenceSession."""
    if session_factory is None:
        from .session import InferenceSession
        session_factory = InferenceSession
    m = _load(model)
    report = {"mode": cfg.mode, "dtype": cfg.dtype, "method": cfg.method, "per_channel": cfg.per_channel,
              "nodes": [], "activations": {}, "excluded": sorted(cfg.exclude)}
    if cfg.dtype in ("fp16", "bfloat16"):
        return rewrite_half(m, cfg, report), report
    if cfg.mode == "qat":
        for node in m.graph.node:
            if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
                report["nodes"].append({"name": node.name, "op_type": node.op_type})
        return m, report
    if cfg.mode == "dynamic":
        return rewrite_dynamic(m, cfg, report), report
    plan = _Plan(m, cfg)
    ranges = calibrate(m, cfg, plan.tensors(), session_factory)
    return rewrite_static(m, cfg, plan, ranges, report), report


def measure_error(fp32_session, quant_session, feeds):
    """Per output: max abs error, max error relative to the fp32 output's max, cosine similarity."""
    import numpy as np
    names = [o.name for o in fp32_session.get_outputs()]
    acc = {n: {"max_abs_error": 0.0, "relative_error": 0.0, "dot": 0.0, "n_ref": 0.0, "n_q": 0.0} for n in names}
    for feed in feeds:
        ref = fp32_session.run(names, feed)
        got = quant_session.run(names, feed)
        for n, r, q in zip(names, ref, got):
            r = np.asarray(r, dtype=np.float64).ravel()
            q = np.asarray(q, dtype=np.float64).ravel()
            a = acc[n]
            err = float(np.abs(r - q).max()) if r.size else 0.0
            a["max_abs_error"] = max(a["max_abs_error"], err)
            a["relative_error"] = max(a["relative_error"], err / max(float(np.abs(r).max()), 1e-12))
            a["dot"] += float(r @ q)
            a["n_ref"] += float(r @ r)
            a["n_q"] += float(q @ q)
    out = {}
    for n, a in acc.items():
        denom = math.sqrt(a["n_ref"] * a["n_q"])
        out[n] = {"max_abs_error": a["max_abs_error"], "relative_error": a["relative_error"],
                  "cosine": a["dot"] / denom if denom > 0 else 1.0}
    return out


def main(argv=None):
    """pyflame-rt quantize MODEL --calib DIR -o OUT [--mode] [--dtype] [--method] [--per-tensor]"""
    import argparse
    import glob
    import numpy as np
    p = argparse.ArgumentParser(prog="pyflame-rt quantize")
    p.add_argument("model")
    p.add_argument("--calib", help="directory of .npy feeds: NAME.npy, or SAMPLE/NAME.npy, or INDEX_NAME.npy")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--mode", default="static", choices=MODES)
    p.add_argument("--dtype", default="int8", choices=DTYPES + ("bf16", "float16"))
    p.add_argument("--method", default="minmax", choices=METHODS)
    p.add_argument("--per-tensor", action="store_true")
    p.add_argument("--exclude", action="append", default=[])
    args = p.parse_args(argv)
    feeds = _feeds_from_dir(args.model, args.calib) if args.calib else None
    cfg = QuantConfig(mode=args.mode, dtype=args.dtype, calibration_data=feeds, method=args.method,
                      per_channel=not args.per_tensor, exclude=args.exclude)
    import onnx
    model, report = quantize(args.model, cfg)
    onnx.save(model, args.output)
    print(f"{args.output}: {len(report['nodes'])} nodes quantized ({cfg.mode} {cfg.dtype}, {cfg.method})")
    return 0


def _feeds_from_dir(model_path, directory):
    """Feeds from .npy files: one subdirectory per sample holding INPUT_NAME.npy, or flat files
    NAME.npy / NAME_<k>.npy, or (single-input models) any *.npy, one file per sample (a file
    with a leading batch of B samples may hold several: it is used as it is)."""
    import glob
    import numpy as np
    from .errors import InvalidArgument
    m = _load(model_path)
    inits = {t.name for t in m.graph.initializer}
    inputs = [i.name for i in m.graph.input if i.name not in inits]
    subdirs = sorted(d for d in glob.glob(os.path.join(directory, "*")) if os.path.isdir(d))
    feeds = []
    if subdirs:
        for d in subdirs:
            feeds.append({n: np.load(os.path.join(d, f"{n}.npy")) for n in inputs})
    elif len(inputs) == 1:
        for f in sorted(glob.glob(os.path.join(directory, "*.npy"))):
            feeds.append({inputs[0]: np.load(f)})
    else:
        for f in sorted(glob.glob(os.path.join(directory, f"{inputs[0]}*.npy"))):
            suffix = os.path.basename(f)[len(inputs[0]):]
            feeds.append({n: np.load(os.path.join(directory, n + suffix)) for n in inputs})
    if not feeds:
        raise InvalidArgument(f"--calib {directory}: expected .npy feeds for inputs {inputs}, found none")
    return feeds


if __name__ == "__main__":
    import sys
    sys.exit(main())
