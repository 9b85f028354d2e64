#!/usr/bin/python3
"""Reduced precision on the bench CNNs and the transformer encoder, side by side in one run: our
INT8 static (QDQ model fused into int8 convolutions and matmuls) vs our fp32 vs ONNX Runtime (onnxruntime-node) running the same
QDQ model; FP16/BF16 weights vs fp32.

    PYTHONPATH=build/python /usr/bin/python3 bench/quant_bench.py [--models resnet50,mobilenet_v2,encoder]
        [--samples 200] [--calib 16] [--runs 20] [--threads 1] [--method minmax]
    ONEDNN_MAX_CPU_ISA=AVX2 ... : our kernels as on an AVX2-only host (ONNX Runtime unaffected)

Accuracy: cosine similarity to our fp32 output and top-1 agreement over --samples random
inputs (standard normal, fixed seed; calibration uses --calib other random inputs); the
encoder's top-1 is the argmax of each token's 256 features.  Latency:
p50 over --runs runs after warm-up, each runtime in turn at the same thread count. Weight
memory (fp16/bf16): bytes of the model's initializers as stored, bytes of the initializers the
compiled program holds, and the RSS growth of a fresh process from creating the session and
from its first run (when the weights are packed), fp32 vs half.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "tools"))

import export_models  # noqa: E402
from host import cpu_model, cpu_flags  # noqa: E402  (bench/ is sys.path[0])
import ort_reference  # noqa: E402

import pyflame_rt as rt  # noqa: E402
from pyflame_rt import quantization as q  # noqa: E402






def p50_ours(sess, feed, runs, warmup=3):
    for _ in range(warmup):
        sess.run(None, feed)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times))


def p50_ort(path, feed, runs, threads, warmup=3):
    modules = ort_reference.ensure_ort()
    with tempfile.TemporaryDirectory() as tmp:
        args = ["node", os.path.join(REPO, "tests", "tools", "ort_run.js"), path, os.path.join(tmp, "out")]
        for i, (name, value) in enumerate(feed.items()):
            p = os.path.join(tmp, f"in{i}.npy")
            np.save(p, value)
            args.append(f"{name}={p}")
        args += ["--threads", str(threads), "--time", str(runs), "--warmup", str(warmup)]
        out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=1800,
                             env=dict(os.environ, ORT_NODE_MODULES=modules)).stdout
        return float(np.median(json.loads(out.strip().splitlines()[-1])["latencies_ms"]))


def initializer_bytes(path):
    """Bytes of the initializers as stored (by element type: bf16 counts 2, not its fp32 view)."""
    import onnx
    sizes = {1: 4, 2: 1, 3: 1, 5: 2, 6: 4, 7: 8, 10: 2, 11: 8, 16: 2, 9: 1}
    m = onnx.load(path)
    return sum(int(np.prod(t.dims, dtype=np.int64)) * sizes.get(t.data_type, 4) for t in m.graph.initializer)


def p50_interleaved(sessions, feed, runs, rounds=4):
    """p50 per session, the sessions taking turns (runs // rounds calls each per turn) so the
    machine's drifts hit all of them alike."""
    times = [[] for _ in sessions]
    for s in sessions:
        for _ in range(3):
            s.run(None, feed)
    per = max(1, runs // rounds)
    for _ in range(rounds):
        for i, s in enumerate(sessions):
            for _ in range(per):
                t = time.perf_counter()
                s.run(None, feed)
                times[i].append((time.perf_counter() - t) * 1e3)
    return [float(np.median(t)) for t in times]


def accuracy(ref_sess, sess, feeds):
    """(min cosine, mean cosine, top-1 agreement): cosine over each whole output, top-1 along
    its last axis (one class per image, one feature per token)."""
    cos, agree, total = [], 0, 0
    for f in feeds:
        r = ref_sess.run(None, f)[0].astype(np.float64)
        o = sess.run(None, f)[0].astype(np.float64)
        cos.append(float(r.ravel() @ o.ravel() / (np.linalg.norm(r) * np.linalg.norm(o))))
        rl, ol = r.reshape(-1, r.shape[-1]), o.reshape(-1, o.shape[-1])
        agree += int((np.argmax(rl, axis=1) == np.argmax(ol, axis=1)).sum())
        total += rl.shape[0]
    return min(cos), float(np.mean(cos)), agree / total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="resnet50,mobilenet_v2")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--calib", type=int, default=16)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--method", default="minmax")
    ap.add_argument("--dtypes", default="int8,fp16,bfloat16")
    args = ap.parse_args()
    model_dir = os.path.join(REPO, "build", "models")
    os.makedirs(model_dir, exist_ok=True)
    names = args.models.split(",")
    export_models.export(model_dir, names)
    print(f"# quant_bench {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  CPU: {cpu_model()} "
          f"({os.cpu_count()} cores; flags {' '.join(cpu_flags())})  threads={args.threads}  "
          f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset: all the CPU has)')}")
    opts = rt.SessionOptions()
    opts.intra_op_num_threads = args.threads
    rng = np.random.default_rng(0)
    for name in names:
        path = os.path.join(model_dir, f"{name}.onnx")
        shape = (1, 128, 256) if name == "encoder" else (1, 3, 224, 224)
        calib = [{"input": rng.standard_normal(shape).astype(np.float32)} for _ in range(args.calib)]
        evals = [{"input": rng.standard_normal(shape).astype(np.float32)} for _ in range(args.samples)]
        fp32 = rt.InferenceSession(path, opts)
        print(f"\n## {name}")
        for dtype in args.dtypes.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                if dtype == "int8":
                    cfg = q.QuantConfig(mode="static", calibration_data=calib, method=args.method)
                    t0 = time.perf_counter()
                    model, report = q.quantize(path, cfg)
                    t_quant = time.perf_counter() - t0
                    qpath = os.path.join(tmp, f"{name}.int8.onnx")
                    import onnx
                    onnx.save(model, qpath)
                    sess = rt.InferenceSession(qpath, opts)
                    placement = sess.get_node_placement()
                    fallback = [p["op_type"] for p in placement if p.get("kernel") != "native"]
                    int8_ops = sum(p["op_type"] in ("QLinearConv", "QLinearConvAdd", "QLinearMatMul", "QMatMul")
                                   for p in placement)
                    mn, mean, top1 = accuracy(fp32, sess, evals)
                    # ORT and ours take turns (ours, ORT, ours, ORT QDQ again): on a shared host the
                    # load moves between measurements, each side sees the same share of it.
                    a32, a8 = p50_interleaved([fp32, sess], evals[0], args.runs // 2)
                    o1 = p50_ort(qpath, evals[0], args.runs // 2, args.threads)
                    t_ort32 = p50_ort(path, evals[0], args.runs, args.threads)
                    b32, b8 = p50_interleaved([fp32, sess], evals[0], args.runs // 2)
                    o2 = p50_ort(qpath, evals[0], args.runs // 2, args.threads)
                    t_fp32, t_ours, t_ort = (a32 + b32) / 2, (a8 + b8) / 2, (o1 + o2) / 2
                    print(f"int8 static ({args.method}, {len(report['nodes'])} nodes, quantize {t_quant:.1f} s): "
                          f"cosine min {mn:.4f} mean {mean:.4f}, top-1 agreement {top1 * 100:.1f}% "
                          f"over {len(evals)} inputs")
                    print(f"  p50 ours int8 {t_ours:.1f} ms | ours fp32 {t_fp32:.1f} ms | ORT QDQ {t_ort:.1f} ms | "
                          f"ORT fp32 {t_ort32:.1f} ms -> speed-up vs our fp32 {t_fp32 / t_ours:.2f}x, "
                          f"ours/ORT-QDQ {t_ours / t_ort:.2f} (turns: ours {a8:.1f}, {b8:.1f}; ORT QDQ {o1:.1f}, "
                          f"{o2:.1f} ms; load average {os.getloadavg()[0]:.1f})")
                    print(f"  int8 kernels: {int8_ops} nodes; nodes not on native kernels: {len(fallback)} "
                          f"{sorted(set(fallback))[:6]}")
                else:
                    cfg = q.QuantConfig(mode="dynamic", dtype=dtype)
                    model, report = q.quantize(path, cfg)
                    import onnx
                    hpath = os.path.join(tmp, f"{name}.{dtype}.onnx")
                    onnx.save(model, hpath)
                    sess = rt.InferenceSession(hpath, opts)
                    mn, mean, top1 = accuracy(fp32, sess, evals)
                    a32, ah = p50_interleaved([fp32, sess], evals[0], args.runs // 2)
                    try:  # ORT on the same half model (its Casts run as ops), between our two halves
                        t_ort_h = f"{p50_ort(hpath, evals[0], args.runs, args.threads):.1f} ms"
                    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, ValueError) as e:
                        t_ort_h = f"n/a ({type(e).__name__})"
                    b32, bh = p50_interleaved([fp32, sess], evals[0], args.runs // 2)
                    t_fp32, t_h = (a32 + b32) / 2, (ah + bh) / 2
                    s32, sh = initializer_bytes(path), initializer_bytes(hpath)
                    mem32, memh = memory_in_process(path, args.threads, shape), memory_in_process(hpath, args.threads, shape)
                    w = mem_weights(sess)
                    print(f"{dtype} weights: cosine min {mn:.5f} mean {mean:.5f}, top-1 {top1 * 100:.1f}% over "
                          f"{len(evals)} inputs; p50 {t_h:.1f} ms vs fp32 {t_fp32:.1f} ms ({t_h / t_fp32:.2f}x); "
                          f"stored weights {sh / 2**20:.1f} MiB vs {s32 / 2**20:.1f} MiB; ORT on the half model "
                          f"{t_ort_h}")
                    print(f"  executable initializers {memh['initializer_bytes'] / 2**20:.1f} MiB vs fp32 "
                          f"{mem32['initializer_bytes'] / 2**20:.1f} MiB; process RSS above the baseline after "
                          f"session creation {memh['rss_created'] / 2**20:.0f} MiB vs {mem32['rss_created'] / 2**20:.0f} MiB, "
                          f"after the first run (weights packed) {memh['rss_first_run'] / 2**20:.0f} MiB vs "
                          f"{mem32['rss_first_run'] / 2**20:.0f} MiB")
                    print(f"  half compute {w['half_compute']}, packed weights halved: {w['packed_weights_halved']}, "
                          f"bf16 kernels declined {w['bf16_kernels_declined']}; reference-kernel nodes: "
                          f"{len(sess.get_fallback_nodes())} {sess.get_fallback_nodes()[:4]}")
                    for note in w["notes"]:
                        print(f"  note: {note}")


def mem_weights(sess):
    """The CPU device's weights report (pyflame_rt: quantization_report()['weights_in_memory'])."""
    return sess._weights_in_memory()


_MEM_PROBE = """
import json, sys
import numpy as np
import pyflame_rt as rt
def rss():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
base = rss()
o = rt.SessionOptions(); o.intra_op_num_threads = int(sys.argv[2])
s = rt.InferenceSession(sys.argv[1], o)
created = rss() - base
s.run(None, {'input': np.zeros(tuple(int(d) for d in sys.argv[3].split(',')), np.float32)})
first = rss() - base
print(json.dumps({'rss_created': created, 'rss_first_run': first,
                  'initializer_bytes': s._weights_in_memory()['initializer_bytes']}))
"""


def memory_in_process(path, threads, shape):
    """RSS growth of a fresh process (same environment, so the same ISA cap) from creating a
    session on `path`, then after its first run, and the initializer bytes its program holds."""
    out = subprocess.run([sys.executable, "-c", _MEM_PROBE, path, str(threads), ",".join(map(str, shape))], check=True, capture_output=True,
                         text=True, timeout=600, env=dict(os.environ))
    return json.loads(out.stdout.strip().splitlines()[-1])

if __name__ == "__main__":
    main()
