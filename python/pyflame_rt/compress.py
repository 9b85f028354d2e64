"""Model compression: weight pruning and knowledge distillation.

    from pyflame_rt import compress
    result = compress.prune("model.onnx", sparsity=0.5, structured=True)
    result.save("model.pruned.onnx")          # standard ONNX: every runtime runs it
    sess = rt.InferenceSession(result.bytes())
    print(result.report())                    # what was pruned, layer by layer

Pruning rewrites weights and keeps every shape, so the result is a plain ONNX model:
- structured=True prunes whole output channels of convolutions (the lowest L1 norm of the
  weights scaled by the following BatchNorm's gain): their weights, bias and BatchNorm gain and
  shift become zero, so the channel is exactly zero after the activation. Only channels whose
  removal is exact are pruned (the convolution's output reaches, through its BatchNorm and a
  zero-preserving activation, only other convolutions or depthwise convolutions that pass the
  zero on; not a residual Add, a Concat or an output). The compiler's zero_channel_pruning pass
  then removes those channels: the convolutions run smaller, which is where the speed comes from.
- structured=False (magnitude pruning) zeroes the smallest weights of each Conv, MatMul and Gemm.
  It compresses the weights (they zip well) but dense kernels take the same time: it is not a
  speed-up on the CPU device.

distill() trains a torch student on a teacher's softened outputs (the teacher is any session).

numpy, onnx and torch are used here, offline; the runtime never calls this module.
"""

import math
import os

# Activations with f(0) == 0 that the compiler fuses into the convolution before it.
ZERO_PRESERVING = ("Relu", "LeakyRelu", "HardSwish", "Tanh", "Elu", "PRelu")
PRUNABLE_OPS = ("Conv", "MatMul", "Gemm")


class PruneResult:
    """The pruned model (onnx.ModelProto) and what was pruned (`layers`: one dict per layer)."""

    def __init__(self, model, layers, sparsity, structured):
        self.model = model
        self.layers = layers
        self.sparsity = sparsity
        self.structured = structured

    def bytes(self):
        return self.model.SerializeToString()

    def save(self, path):
        import onnx
        onnx.save(self.model, os.fspath(path))
        return os.fspath(path)

    def report(self):
        kind = "channels" if self.structured else "weights"
        lines = [f"pruning ({'structured' if self.structured else 'magnitude'}, sparsity {self.sparsity}): "
                 f"{len(self.layers)} layers"]
        for layer in self.layers:
            lines.append(f"  {layer['node']} ({layer['op_type']}): {layer['pruned']} of {layer['total']} {kind}")
        return "\n".join(lines)

    def __repr__(self):
        return f"PruneResult({len(self.layers)} layers, sparsity={self.sparsity}, structured={self.structured})"


def prune(model, sparsity, structured=False, exclude=(), output_path=None):
    """Prunes `model` (path, bytes or onnx.ModelProto) to `sparsity` (0 <= s < 1) per layer.
    exclude: node names or op types left alone. Returns a PruneResult (and saves it to
    output_path when given)."""
    from .errors import InvalidArgument
    from .quantization import _load
    try:
        sparsity = float(sparsity)
    except (TypeError, ValueError):
        raise InvalidArgument(f"prune: sparsity must be a number in [0, 1), got {sparsity!r}") from None
    if not 0.0 <= sparsity < 1.0 or math.isnan(sparsity):
        raise InvalidArgument(f"prune: sparsity must be in [0, 1), got {sparsity}")
    import onnx
    m = onnx.ModelProto()
    m.CopyFrom(_load(model))
    exclude = set(exclude or ())
    graph = _Graph(m.graph)
    if structured:
        layers = _prune_channels(graph, sparsity, exclude)
    else:
        layers = _prune_magnitude(graph, sparsity, exclude)
    graph.write_back()
    result = PruneResult(m, layers, sparsity, structured)
    if output_path is not None:
        result.save(output_path)
    return result


# ---------------------------------------------------------------------------------------------
# The graph as the pruner reads it

class _Graph:
    def __init__(self, graph):
        from onnx import numpy_helper
        self.graph = graph
        self.inits = {t.name: t for t in graph.initializer}
        self.arrays = {}  # name -> np.ndarray, for the initializers we read or change
        self.changed = set()
        self.readers = {}
        self.producer = {}
        for node in graph.node:
            for name in node.input:
                if name:
                    self.readers.setdefault(name, []).append(node)
            for name in node.output:
                self.producer[name] = node
        self.outputs = {o.name for o in graph.output}
        self._to_array = numpy_helper.to_array

    def const(self, name, depth=0):
        """The float constant `name` as an array (read it, do not write it: see writable), or
        None. Sees through Identity nodes and Constant nodes: torch shares equal biases through
        Identity and writes Clip bounds as Constant nodes."""
        import numpy as np
        if name in self.arrays:
            return self.arrays[name]
        if name in self.inits:
            a = self._to_array(self.inits[name])
            if a.dtype != np.float32:
                return None
            self.arrays[name] = a.copy()
            return self.arrays[name]
        node = self.producer.get(name)
        if node is None or depth > 16:
            return None
        if node.op_type == "Identity" and node.domain in ("", "ai.onnx"):
            return self.const(node.input[0], depth + 1)
        if node.op_type == "Constant":
            t = _attr(node, "value", None)
            if t is not None and not isinstance(t, (int, float, list)):
                a = self._to_array(t)
                return a.astype(np.float32) if a.dtype == np.float32 else None
        return None

    def writable(self, node, index):
        """node.input[index] as an array only `node` reads: the initializer itself when nothing
        else reads it, else a copy under a new name that node.input[index] then names."""
        name = node.input[index]
        a = self.const(name)
        if a is None:
            return None
        if name in self.inits and self.uses(name) == 1:
            self.changed.add(name)
            return a
        from onnx import numpy_helper
        fresh = f"{node.name or node.output[0]}_{index}_pruned"
        while fresh in self.inits:
            fresh += "_"
        copy = a.copy()
        t = self.graph.initializer.add()
        t.CopyFrom(numpy_helper.from_array(copy, fresh))
        self.inits[fresh] = t
        self.arrays[fresh] = copy
        self.changed.add(fresh)
        self.readers[name] = [r for r in self.readers.get(name, []) if r is not node]
        self.readers.setdefault(fresh, []).append(node)
        node.input[index] = fresh
        return copy

    def only_reader(self, value):
        r = self.readers.get(value, [])
        return r[0] if len(r) == 1 and value not in self.outputs else None

    def uses(self, name):
        return len(self.readers.get(name, []))

    def write_back(self):
        from onnx import numpy_helper
        for name in self.changed:
            self.inits[name].CopyFrom(numpy_helper.from_array(self.arrays[name], name))


def _attr(node, name, default):
    import onnx
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _excluded(node, exclude):
    return node.name in exclude or node.op_type in exclude


# ---------------------------------------------------------------------------------------------
# Magnitude pruning

def _prune_magnitude(g, sparsity, exclude):
    import numpy as np
    layers = []
    for node in g.graph.node:
        if node.op_type not in PRUNABLE_OPS or node.domain not in ("", "ai.onnx") or _excluded(node, exclude):
            continue
        if len(node.input) < 2 or g.const(node.input[1]) is None or g.const(node.input[1]).size == 0:
            continue
        w = g.const(node.input[1])
        k = int(math.floor(sparsity * w.size))
        if k > 0:
            cut = np.argpartition(np.abs(w).reshape(-1), k - 1)[:k]
            w = g.writable(node, 1)  # a weight shared with another node is copied first
            w.reshape(-1)[cut] = 0.0
        layers.append({"node": node.name or node.output[0], "op_type": node.op_type, "total": int(w.size),
                       "pruned": int(k), "kind": "weights"})
    return layers


# ---------------------------------------------------------------------------------------------
# Channel pruning

def _zero_preserving(g, node):
    if node.op_type in ZERO_PRESERVING and node.domain in ("", "ai.onnx"):
        return True
    if node.op_type == "Clip":
        bounds = [_attr(node, "min", None), _attr(node, "max", None)]  # opset < 11: attributes
        for i in (1, 2):  # opset >= 11: optional constant inputs
            if len(node.input) > i and node.input[i]:
                c = g.const(node.input[i])
                if c is None or c.size != 1:
                    return False
                bounds[i - 1] = float(c.reshape(-1)[0])
        lo, hi = bounds
        return (lo is None or lo <= 0.0) and (hi is None or hi >= 0.0)
    return False


def _batchnorm_params(g, node, channels):
    """(scale, shift, mean, var) arrays of a foldable BatchNormalization, or None."""
    if node.op_type != "BatchNormalization" or len(node.input) < 5 or _attr(node, "training_mode", 0):
        return None
    params = [g.const(n) for n in node.input[1:5]]
    if any(p is None or p.shape != (channels,) for p in params):
        return None
    return params


def _epilogue(g, conv, channels):
    """Follows a convolution's output through the BatchNorm and activation the compiler fuses
    into it. Returns (batchnorm node or None, the value its readers see) or None when the chain
    is not one the compiler folds (a value with several readers before its end)."""
    value, bn = conv.output[0], None
    node = g.only_reader(value)
    if node is not None and _batchnorm_params(g, node, channels) is not None:
        bn, value = node, node.output[0]
        node = g.only_reader(value)
    if node is not None and _zero_preserving(g, node):
        value = node.output[0]
    return bn, value


def _channel_path(g, value, channels, exclude, depth=0):
    """The depthwise convolutions that carry a zeroed channel of `value` on, when every reader
    of `value` is a convolution for which the channel's removal is exact; None otherwise."""
    readers = g.readers.get(value, [])
    if not readers or value in g.outputs or depth > 64:
        return None
    carried = []
    for node in readers:
        if node.op_type != "Conv" or node.input[0] != value or value in node.input[1:]:
            return None
        w = g.const(node.input[1])
        if w is None or w.ndim < 3:
            return None
        group = int(_attr(node, "group", 1))
        if group == 1:
            continue
        if group != channels or w.shape[0] != channels or w.shape[1] != 1:
            return None
        if _excluded(node, exclude):
            return None
        bn, out = _epilogue(g, node, channels)
        if len(node.input) > 2 and node.input[2] and g.const(node.input[2]) is None:
            return None
        rest = _channel_path(g, out, channels, exclude, depth + 1)
        if rest is None:
            return None
        carried.append((node, bn))
        carried.extend(rest)
    return carried


def _zero_channels(g, conv, bn, drop):
    g.writable(conv, 1)[drop] = 0.0
    if len(conv.input) > 2 and conv.input[2]:
        g.writable(conv, 2)[drop] = 0.0
    if bn is not None:
        for i in (1, 2):  # gain and shift: BatchNorm(0) is then 0
            g.writable(bn, i)[drop] = 0.0


def _prune_channels(g, sparsity, exclude):
    import numpy as np
    layers = []
    for conv in list(g.graph.node):
        if conv.op_type != "Conv" or conv.domain not in ("", "ai.onnx") or _excluded(conv, exclude):
            continue
        if int(_attr(conv, "group", 1)) != 1 or len(conv.input) < 2:
            continue
        w = g.const(conv.input[1])
        if w is None or w.ndim < 3:
            continue
        if len(conv.input) > 2 and conv.input[2] and g.const(conv.input[2]) is None:
            continue
        channels = w.shape[0]
        bn, out = _epilogue(g, conv, channels)
        carried = _channel_path(g, out, channels, exclude)
        if carried is None:
            continue
        k = min(int(math.floor(sparsity * channels)), channels - 1)
        score = np.abs(w.reshape(channels, -1)).sum(axis=1)
        if bn is not None:
            scale, _, _, var = (g.const(n) for n in bn.input[1:5])
            eps = float(_attr(bn, "epsilon", 1e-5))
            score = score * np.abs(scale) / np.sqrt(var + eps)
        drop = np.sort(np.argsort(score, kind="stable")[:k]) if k > 0 else np.array([], dtype=np.int64)
        if k > 0:
            _zero_channels(g, conv, bn, drop)
            for node, node_bn in carried:
                _zero_channels(g, node, node_bn, drop)
        layers.append({"node": conv.name or conv.output[0], "op_type": "Conv", "total": int(channels),
                       "pruned": int(k), "kind": "channels", "channels": [int(c) for c in drop],
                       "carried_through": [n.name or n.output[0] for n, _ in carried]})
    return layers


# ---------------------------------------------------------------------------------------------
# Knowledge distillation

class DistillResult:
    """Mean loss per epoch (`losses`) and the student, trained in place."""

    def __init__(self, student, losses):
        self.student = student
        self.losses = losses

    def __repr__(self):
        return f"DistillResult(epochs={len(self.losses)}, first={self.losses[0]:.4g}, last={self.losses[-1]:.4g})"


def _torch():
    try:
        import torch
    except ImportError as e:
        from .errors import NotImplemented  # noqa: A004 - ONNX Runtime's name
        raise NotImplemented("pyflame_rt.compress: distillation needs PyTorch; install Debian's python3-torch "
                             f"({e})") from e
    return torch


def teacher_logits(teacher, feed, output_index=0):
    """The teacher's raw output for one feed: `teacher` is a session (anything with
    run(None, feed)) or a callable taking the feed."""
    import numpy as np
    out = teacher.run(None, feed)[output_index] if hasattr(teacher, "run") else teacher(feed)
    return np.asarray(out, dtype=np.float32)


def soft_targets(teacher, feed, temperature=1.0, output_index=0):
    """softmax(teacher logits / temperature) along the last axis, as the student's target."""
    import numpy as np
    z = teacher_logits(teacher, feed, output_index) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def distill(teacher, student, data, epochs=1, temperature=4.0, alpha=0.9, lr=1e-3, optimizer=None,
            output_index=0, progress=False):
    """Trains the torch module `student` to match `teacher` (a session or callable).
    data: a re-iterable of feeds ({input name: array}) or (feed, labels) pairs; the student
    takes the feed's arrays as positional tensors in the feed's order. The loss is
    alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * cross-entropy(labels) when labels
    are given, else the KL term alone. Teacher outputs are computed once and reused each epoch."""
    from .errors import InvalidArgument
    torch = _torch()
    if temperature <= 0:
        raise InvalidArgument(f"distill: temperature must be > 0, got {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise InvalidArgument(f"distill: alpha must be in [0, 1], got {alpha}")
    batches = []
    for item in data:
        feed, labels = item if isinstance(item, tuple) else (item, None)
        if not isinstance(feed, dict) or not feed:
            raise InvalidArgument(f"distill: each data item must be a feed dict (or (feed, labels)), got {type(feed).__name__}")
        batches.append((feed, labels, teacher_logits(teacher, feed, output_index)))
    if not batches:
        raise InvalidArgument("distill: data is empty")
    opt = optimizer or torch.optim.Adam(student.parameters(), lr=lr)
    T = float(temperature)
    iterator = range(int(epochs))
    if progress:
        try:
            from tqdm import tqdm
            iterator = tqdm(iterator, desc="distill", unit="epoch")
        except ImportError:
            pass
    losses = []
    student.train()
    for _ in iterator:
        total = 0.0
        for feed, labels, logits in batches:
            inputs = [torch.from_numpy(v) for v in feed.values()]
            s = student(*inputs)
            t = torch.from_numpy(logits)
            kl = torch.nn.functional.kl_div(torch.log_softmax(s / T, dim=-1), torch.softmax(t / T, dim=-1),
                                            reduction="batchmean") * (T * T)
            loss = kl if labels is None else alpha * kl + (1.0 - alpha) * torch.nn.functional.cross_entropy(
                s, torch.as_tensor(labels, dtype=torch.long))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
        losses.append(total / len(batches))
    student.eval()
    return DistillResult(student, losses)
