#!/usr/bin/env node
// Runs an ONNX model with ONNX Runtime (onnxruntime-node) on .npy inputs: the reference peer
// for whole-model tests and benchmarks.
//
//   node ort_run.js MODEL.onnx OUTDIR NAME=IN.npy ... [--threads N] [--time RUNS --warmup W]
//                   [--execution-mode sequential|parallel]
//
// Writes OUTDIR/<output name>.npy and OUTDIR/outputs.json. With --time it also prints a JSON
// object {"latencies_ms": [...], "max_rss_kb": N, "cpu_ms": X, "runq_wait_ms": W} on stdout
// (after warm-up runs; cpu_ms: CPU time per timed run; runq_wait_ms: time the threads were
// runnable but waiting for a core, per timed run, from the kernel's schedstat).
'use strict';
const fs = require('fs');
const path = require('path');

const modules = process.env.ORT_NODE_MODULES ||
    path.join(__dirname, '..', '..', 'build', 'npm', 'node_modules');
const ort = require(path.join(modules, 'onnxruntime-node'));

const NPY_TYPES = {
  '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array],
  '<i4': ['int32', Int32Array], '<i8': ['int64', BigInt64Array],
  '|u1': ['uint8', Uint8Array], '|i1': ['int8', Int8Array], '|b1': ['bool', Uint8Array],
  '<i2': ['int16', Int16Array], '<u2': ['uint16', Uint16Array],
};

// Nanoseconds this process's threads have waited runnable for a core (schedstat's second field).
function runqWaitNs() {
  let total = 0;
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      total += Number(fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'latin1').split(' ')[1]);
    } catch (e) { /* a thread that ended meanwhile */ }
  }
  return total;
}

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: Fortran order unsupported`);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map(s => s.trim()).filter(s => s).map(Number);
  const type = NPY_TYPES[descr];
  if (!type) throw new Error(`${file}: unsupported dtype ${descr}`);
  const dataStart = start + headerLen;
  const bytes = buf.buffer.slice(buf.byteOffset + dataStart, buf.byteOffset + buf.length);
  let data = new type[1](bytes.slice(0));
  if (type[0] === 'bool') data = Uint8Array.from(data);
  return new ort.Tensor(type[0], data, shape);
}

function writeNpy(file, tensor) {
  const descrOf = {float32: '<f4', float64: '<f8', int32: '<i4', int64: '<i8', uint8: '|u1',
                   int8: '|i1', bool: '|b1', int16: '<i2', uint16: '<u2'};
  const descr = descrOf[tensor.type];
  if (!descr) throw new Error(`cannot write ${tensor.type} output`);
  const dims = tensor.dims;
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1; pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const data = tensor.data;
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
}

// Peak resident memory of this process (VmHWM): unlike resourceUsage().maxRSS it does not
// inherit the parent's peak across exec.
function peakRssKb() {
  const m = /VmHWM:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'latin1'));
  return m ? Number(m[1]) : 0;
}

async function main() {
  const args = process.argv.slice(2);
  let threads = 1, timeRuns = 0, warmup = 10, mode = 'sequential';
  const positional = [];
  for (let i = 0; i < args.length; ++i) {
    if (args[i] === '--threads') threads = Number(args[++i]);
    else if (args[i] === '--time') timeRuns = Number(args[++i]);
    else if (args[i] === '--warmup') warmup = Number(args[++i]);
    else if (args[i] === '--execution-mode') mode = args[++i];
    else positional.push(args[i]);
  }
  const [model, outDir, ...inputs] = positional;
  if (!model || !outDir) throw new Error('usage: ort_run.js MODEL OUTDIR NAME=IN.npy ... [--threads N]');
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: mode === 'parallel' ? 2 : 1, executionMode: mode,
    graphOptimizationLevel: 'all'});
  const feeds = {};
  inputs.forEach((spec, i) => {
    const eq = spec.indexOf('=');
    const name = eq > 0 ? spec.slice(0, eq) : session.inputNames[i];
    feeds[name] = readNpy(eq > 0 ? spec.slice(eq + 1) : spec);
  });
  const results = await session.run(feeds);
  fs.mkdirSync(outDir, {recursive: true});
  const index = {};
  session.outputNames.forEach((name, i) => {
    const file = `${i}_${name.replace(/[^A-Za-z0-9_.-]/g, '_')}.npy`;
    writeNpy(path.join(outDir, file), results[name]);
    index[name] = file;
  });
  fs.writeFileSync(path.join(outDir, 'outputs.json'), JSON.stringify(index));
  if (timeRuns > 0) {
    for (let i = 0; i < warmup; ++i) await session.run(feeds);
    const lat = [];
    const cpu0 = process.cpuUsage();
    const wait0 = runqWaitNs();
    for (let i = 0; i < timeRuns; ++i) {
      const t0 = process.hrtime.bigint();
      await session.run(feeds);
      lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    // CPU time per run (user + system, all threads, in ms): less swayed by a loaded machine.
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000 / timeRuns;
    const waitMs = (runqWaitNs() - wait0) / 1e6 / timeRuns;
    process.stdout.write(JSON.stringify({latencies_ms: lat, max_rss_kb: peakRssKb(), cpu_ms: cpuMs,
                                         runq_wait_ms: waitMs}) + '\n');
  }
}

main().catch(e => { process.stderr.write(`ort_run: ${e.message}\n`); process.exit(1); });
