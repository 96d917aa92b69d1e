// Loads an ONNX model in ONNX Runtime (CPU execution provider) at one graph optimisation level and writes the
// optimised graph ONNX Runtime would run (optimizedModelFilePath), so `moirai coarsen --from-runtime` can read
// back which original nodes each runtime node replaced.
//
//   node tools/ort_optimize.mjs MODEL OUT --level basic|extended|all [--json]
//
// Prints one JSON line {"ort_version", "level", "out"} with --json. Exit status 0 on success, 2 on any error
// (the message goes to stderr, one line).
import fs from 'node:fs';
import process from 'node:process';
import * as ort from 'onnxruntime-node';

const LEVELS = ['basic', 'extended', 'all'];

function parseArgs(argv) {
  const opts = { level: 'extended', json: false, positional: [] };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    if (a === '--level') {
      if (i + 1 >= argv.length) throw new Error('--level needs a value');
      opts.level = argv[++i];
    } else if (a === '--json') opts.json = true;
    else if (a === '--version') opts.version = true;
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else opts.positional.push(a);
  }
  if (!LEVELS.includes(opts.level)) throw new Error(`--level must be basic, extended or all, not ${opts.level}`);
  if (!opts.version && opts.positional.length !== 2)
    throw new Error('usage: node tools/ort_optimize.mjs MODEL OUT --level basic|extended|all [--json] | --version');
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const version = ort.env.versions?.node ?? ort.env.versions?.common ?? 'unknown';
  if (opts.version) {
    console.log(version);
    return;
  }
  const [model, out] = opts.positional;
  if (!fs.existsSync(model)) throw new Error(`${model}: no such file`);
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: opts.level,
    optimizedModelFilePath: out,
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    logSeverityLevel: 3,
  });
  await session.release?.();
  if (!fs.existsSync(out)) throw new Error(`${model}: ONNX Runtime wrote no optimised model to ${out}`);
  if (opts.json) console.log(JSON.stringify({ ort_version: version, level: opts.level, out }));
}

main().catch((e) => {
  console.error(`ort_optimize: ${String(e?.message ?? e).split('\n')[0]}`);
  process.exit(2);
});
