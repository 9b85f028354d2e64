#!/usr/bin/env node
// ONNX Runtime's own per-node profile (onnxruntime-node, enableProfiling) of one model, for
// bench/node_profile.py: WARMUP + RUNS runs of the input, then the trace file's path on stdout.
//
//   node ort_profile.js MODEL.onnx IN.npy THREADS RUNS WARMUP PREFIX
'use strict';
const path = require('path');
const fs = require('fs');

const modules = process.env.ORT_NODE_MODULES ||
    path.join(__dirname, '..', 'build', 'npm', 'node_modules');
const ort = require(path.join(modules, 'onnxruntime-node'));

function readNpyF32(file) {
  const buf = fs.readFileSync(file);
  const headerLen = buf.readUInt16LE(8);
  const header = buf.toString('latin1', 10, 10 + headerLen);
  if (!/'descr':\s*'<f4'/.test(header)) throw new Error(`${file}: expected float32`);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map(s => s.trim()).filter(s => s).map(Number);
  const start = 10 + headerLen;
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + buf.length));
  return new ort.Tensor('float32', data, shape);
}

async function main() {
  const [model, input, threads, runs, warmup, prefix] = process.argv.slice(2);
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: Number(threads), interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all', enableProfiling: true, profileFilePrefix: prefix});
  const feeds = {[session.inputNames[0]]: readNpyF32(input)};
  for (let i = 0; i < Number(warmup) + Number(runs); ++i) await session.run(feeds);
  const before = new Set(fs.readdirSync(path.dirname(prefix)));
  session.endProfiling();
  const made = fs.readdirSync(path.dirname(prefix)).filter(f => !before.has(f) || f.startsWith(path.basename(prefix)));
  process.stdout.write(made.map(f => path.join(path.dirname(prefix), f)).join('\n') + '\n');
}

main().catch(e => { process.stderr.write(`ort_profile: ${e.message}\n`); process.exit(1); });
