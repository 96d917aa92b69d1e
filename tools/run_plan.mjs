// Runs the sub-models of a manifest.json (written by `moirai export`) in run order with ONNX Runtime, feeding
// each with the tensors the earlier ones produced, and compares the final outputs with the original model run on
// the same seeded random inputs. With --repeats N it also times both (median of N after --warmup runs).
//
//   node tools/run_plan.mjs MANIFEST [ORIGINAL_MODEL] [--repeats N] [--warmup N] [--seed S] [--tol T]
//                           [--stat median|min] [--threads N] [--json]
//
// --threads N: intra-operator threads of every session (0 = ONNX Runtime's default, one per core); sessions run
// their operators sequentially and idle pools never spin, as a worker with N threads does.
//
// Exit status: 0 when every output matches (max |diff| <= tol * max |reference|, tol = 1e-4), 1 on a mismatch,
// 2 on any other error. --json prints one JSON object on stdout (the summary goes to stderr).
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import * as ort from 'onnxruntime-node';

function parseArgs(argv) {
  const opts = { repeats: 1, warmup: 1, seed: 1, tol: 1e-4, json: false, stat: 'median', threads: 0, positional: [] };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--repeats') opts.repeats = Math.max(1, parseInt(next(), 10));
    else if (a === '--warmup') opts.warmup = Math.max(0, parseInt(next(), 10));
    else if (a === '--seed') opts.seed = parseInt(next(), 10);
    else if (a === '--tol') opts.tol = parseFloat(next());
    else if (a === '--threads') opts.threads = parseInt(next(), 10);
    else if (a === '--json') opts.json = true;
    else if (a === '--stat') opts.stat = next();
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else opts.positional.push(a);
  }
  if (opts.stat !== 'median' && opts.stat !== 'min') throw new Error(`--stat must be median or min, not ${opts.stat}`);
  if (!(opts.threads >= 0 && opts.threads <= 1024)) throw new Error('--threads must be an integer from 0 to 1024');
  if (opts.positional.length < 1 || opts.positional.length > 2)
    throw new Error('usage: node tools/run_plan.mjs MANIFEST [ORIGINAL_MODEL] [--repeats N] [--warmup N] [--seed S] [--tol T] [--stat median|min] [--threads N] [--json]');
  return opts;
}

// Small deterministic generator (mulberry32): the same seed gives the same inputs on every machine.
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomTensor(spec, next) {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  // Integer inputs are usually token ids: keep them inside the embedding table (index_bound) or small.
  const bound = spec.index_bound > 0 ? spec.index_bound : 10;
  switch (spec.dtype) {
    case 'float32': return new ort.Tensor('float32', Float32Array.from({ length: n }, () => next() * 2 - 1), spec.shape);
    case 'float64': return new ort.Tensor('float64', Float64Array.from({ length: n }, () => next() * 2 - 1), spec.shape);
    case 'int64': return new ort.Tensor('int64', BigInt64Array.from({ length: n }, () => BigInt(Math.floor(next() * bound))), spec.shape);
    case 'int32': return new ort.Tensor('int32', Int32Array.from({ length: n }, () => Math.floor(next() * bound)), spec.shape);
    case 'bool': return new ort.Tensor('bool', Uint8Array.from({ length: n }, () => (next() < 0.5 ? 1 : 0)), spec.shape);
    default: throw new Error(`input '${spec.name}': random ${spec.dtype} inputs are not supported`);
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : 0;
};
const fastest = (xs) => (xs.length ? Math.min(...xs) : 0);
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const manifestPath = opts.positional[0];
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  const original = opts.positional[1] ?? manifest.model;
  if (manifest.weights === false)
    throw new Error(`${manifestPath}: the model's weights are absent (a weight-stripped model); export NAME.weights.onnx to run it`);
  const dir = path.dirname(manifestPath);
  // No spin-waiting in idle thread pools: with one session per sub-model, spinning pools would steal the CPU
  // from the session that runs next.
  const sessionOptions = {
    graphOptimizationLevel: 'all', logSeverityLevel: 3,
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
  if (opts.threads > 0) Object.assign(sessionOptions, { intraOpNumThreads: opts.threads, interOpNumThreads: 1, executionMode: 'sequential' });

  const next = rng(opts.seed);
  const feeds = {};
  for (const spec of manifest.inputs) feeds[spec.name] = randomTensor(spec, next);

  const reference = await ort.InferenceSession.create(original, sessionOptions);
  const subs = [];
  const byName = new Map(manifest.submodels.map((s) => [s.name, s]));
  for (const name of manifest.run_order) {
    const spec = byName.get(name);
    if (!spec) throw new Error(`${manifestPath}: run_order names '${name}', which is not a sub-model`);
    subs.push({ spec, session: await ort.InferenceSession.create(path.join(dir, spec.file), sessionOptions) });
  }

  const runOriginal = async () => reference.run(feeds);
  const runSplit = async (times) => {
    const values = new Map(Object.entries(feeds));
    for (const { spec, session } of subs) {
      const subFeeds = {};
      for (const input of spec.inputs) {
        const v = values.get(input.name);
        if (v === undefined) throw new Error(`sub-model '${spec.name}' needs '${input.name}', which nothing produced before it`);
        subFeeds[input.name] = v;
      }
      const t0 = nowMs();
      const out = await session.run(subFeeds);
      if (times) times[spec.name].push(nowMs() - t0);
      for (const [k, v] of Object.entries(out)) values.set(k, v);
    }
    return values;
  };

  const ref = await runOriginal();
  const got = await runSplit(null);
  let maxDiff = 0, maxRef = 0;
  const perOutput = {};
  for (const out of manifest.outputs) {
    const a = ref[out.name], b = got.get(out.name);
    if (!a || !b) throw new Error(`output '${out.name}' is missing from the ${a ? 'split' : 'original'} run`);
    if (a.data.length !== b.data.length) throw new Error(`output '${out.name}': ${a.data.length} vs ${b.data.length} elements`);
    let d = 0, r = 0;
    for (let i = 0; i < a.data.length; ++i) {
      const x = Number(a.data[i]), y = Number(b.data[i]);
      d = Math.max(d, Math.abs(x - y));
      r = Math.max(r, Math.abs(x));
      if (Number.isNaN(x) !== Number.isNaN(y)) d = Infinity;
    }
    perOutput[out.name] = { max_abs_diff: d, max_reference: r };
    maxDiff = Math.max(maxDiff, d);
    maxRef = Math.max(maxRef, r);
  }
  const tolerance = opts.tol * Math.max(maxRef, 1e-30);  // relative to the largest reference magnitude
  const match = maxDiff <= tolerance;

  // Timing: warm-up, then the median of the repetitions (sessions already created).
  const times = Object.fromEntries(subs.map(({ spec }) => [spec.name, []]));
  const originalTimes = [], splitTimes = [];
  // The original first, then the chain: idle thread pools of one never spin while the other is timed.
  for (let i = 0; i < opts.warmup; ++i) await runOriginal();
  for (let i = 0; i < opts.repeats; ++i) {
    const t0 = nowMs();
    await runOriginal();
    originalTimes.push(nowMs() - t0);
  }
  for (let i = 0; i < opts.warmup; ++i) await runSplit(null);
  for (let i = 0; i < opts.repeats; ++i) {
    const t0 = nowMs();
    await runSplit(times);
    splitTimes.push(nowMs() - t0);
  }
  const pick = opts.stat === 'min' ? fastest : median;
  const result = {
    match, max_abs_diff: maxDiff, max_reference: maxRef, tolerance,
    outputs: perOutput, submodels: subs.length, repeats: opts.repeats,
    statistic: opts.stat, threads: opts.threads, original_ms: pick(originalTimes), split_ms: pick(splitTimes),
    original_min_ms: fastest(originalTimes), split_min_ms: fastest(splitTimes),
    submodel_ms: Object.fromEntries(Object.entries(times).map(([k, v]) => [k, pick(v)])),
  };
  const summary = `${match ? 'match' : 'MISMATCH'}: ${subs.length} sub-models, max |diff| ${maxDiff.toExponential(3)} ` +
    `(max |reference| ${maxRef.toExponential(3)}, tolerance ${result.tolerance.toExponential(3)}); ` +
    `original ${result.original_ms.toFixed(3)} ms, split ${result.split_ms.toFixed(3)} ms (${opts.stat} of ${opts.repeats})`;
  if (opts.json) {
    console.error(summary);
    console.log(JSON.stringify(result));
  } else {
    console.log(summary);
  }
  return match ? 0 : 1;
}

main().then((code) => process.exit(code), (err) => {
  console.error(`run_plan.mjs: error: ${err.message ?? err}`);
  process.exit(2);
});
