#!/usr/bin/python3
"""Channel pruning on the bench CNNs, side by side in one run: our session on the unpruned
model, on the pruned one (pyflame_rt.compress.prune(structured=True); the compiler removes the
zero channels), and ONNX Runtime (onnxruntime-node) on the same pruned model (which it runs at
full size: the channels are zeros, not gone).

    PYTHONPATH=build/python /usr/bin/python3 bench/prune_bench.py [--models mobilenet_v2,resnet50]
        [--sparsity 0.3,0.5] [--runs 40] [--threads 1]

Prints per model and sparsity: the channels pruned, the weights the optimised graph keeps, p50 of
each (ours unpruned and pruned interleaved; ORT in its own process), the ratios, and the relative
L2 distance between our output and ORT's on the pruned model (the removal must be exact). Accuracy is
not measured: the bench models have random weights, so pruning them says nothing about a trained
model's accuracy (fine-tune or distil after pruning, as with any pruning method).
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "tools"))

import export_models  # noqa: E402
import ort_reference  # noqa: E402
import quant_bench  # noqa: E402 - its timing helpers

import pyflame_rt as rt  # noqa: E402
from pyflame_rt import compress  # noqa: E402


def kept_weights(sess_bytes, tmp, threads):
    """Float weights in our optimised graph (after zero_channel_pruning)."""
    import onnx
    so = rt.SessionOptions()
    so.intra_op_num_threads = threads
    so.optimized_model_filepath = os.path.join(tmp, "optimized.onnx")
    rt.InferenceSession(sess_bytes, sess_options=so)
    m = onnx.load(so.optimized_model_filepath)
    return sum(int(np.prod(t.dims, dtype=np.int64)) for t in m.graph.initializer if t.data_type == 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="mobilenet_v2,resnet50")
    ap.add_argument("--sparsity", default="0.3,0.5")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    print(f"# prune_bench {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  CPU: {quant_bench.cpu_model()}  "
          f"threads={args.threads}  load average {os.getloadavg()[0]:.1f}")
    print("| model | sparsity | channels pruned | weights kept | ours p50 ms | ours pruned p50 ms | speed-up |"
          " ORT pruned p50 ms | ours pruned / ORT | rel. L2 to ORT |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    so = rt.SessionOptions()
    so.intra_op_num_threads = args.threads
    model_dir = os.path.join(REPO, "build", "models")
    paths = export_models.export(model_dir, args.models.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in paths.items():
            import onnx
            m = onnx.load(path)
            feed = {m.graph.input[0].name: np.random.default_rng(0).standard_normal(
                [d.dim_value or 1 for d in m.graph.input[0].type.tensor_type.shape.dim]).astype(np.float32)}
            full_bytes = m.SerializeToString()
            full_weights = kept_weights(full_bytes, tmp, args.threads)
            for s in (float(x) for x in args.sparsity.split(",")):
                result = compress.prune(m, s, structured=True)
                pruned_path = result.save(os.path.join(tmp, f"{name}_{s}.onnx"))
                channels = sum(layer["pruned"] for layer in result.layers)
                total = sum(layer["total"] for layer in result.layers)
                kept = kept_weights(result.bytes(), tmp, args.threads)
                full = rt.InferenceSession(full_bytes, sess_options=so)
                pruned = rt.InferenceSession(pruned_path, sess_options=so)
                t_full, t_pruned = quant_bench.p50_interleaved([full, pruned], feed, args.runs)
                t_ort = quant_bench.p50_ort(pruned_path, feed, args.runs, args.threads)
                ours = pruned.run(None, feed)[0].astype(np.float64)
                ref = next(iter(ort_reference.run_ort(pruned_path, feed).values())).astype(np.float64)
                err = float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))
                print(f"| {name} | {s} | {channels} of {total} | {kept / full_weights:.2f} | {t_full:.2f} | "
                      f"{t_pruned:.2f} | {t_full / t_pruned:.2f}x | {t_ort:.2f} | {t_pruned / t_ort:.2f} | {err:.1e} |", flush=True)


if __name__ == "__main__":
    main()
