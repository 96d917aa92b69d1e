#!/usr/bin/env node
// Checks the code against the stage graph declared in CMakeLists.txt (written by CMake to
// <build>/stage_graph.json), and README.md's copy of that graph. Run by ctest as `stage_graph`.
//
//   node scripts/check_stage_graph.mjs GRAPH_JSON [--write-readme]
//
// The rules:
//  - every public header include/moirai/*.h belongs to exactly one stage;
//  - a stage's files (src/<stage>/ and its public headers) include public headers only of itself and of the
//    stages it depends on, directly or not, and private headers only of src/<stage>/ (as "name.h");
//  - every declared stage dependency is used by a direct include and not implied by another declared one (so
//    the declared graph is exactly the code's);
//  - a stage that includes a third-party library's headers declares that library, and declares none it does
//    not include;
//  - tests/<stage>/ include public headers of that stage and those below it, and private headers of that
//    stage only; apps/ include only public headers; bench/ may also include private headers (white-box);
//  - every .cpp of src/<stage>/ and apps/moirai/ is listed in the CMakeLists.txt next to it (no GLOB);
//  - README.md's stage graph, between its stage-graph markers, is the one this script prints.
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const [graphFile, ...flags] = process.argv.slice(2);
if (!graphFile) {
  console.error('usage: check_stage_graph.mjs GRAPH_JSON [--write-readme]');
  process.exit(2);
}

// Third-party headers by include prefix, and the CMake target a stage must declare to include them.
const LIBRARIES = [
  ['fmt/', 'fmt::fmt'],
  ['nlohmann/', 'nlohmann_json::nlohmann_json'],
  ['Eigen/', 'Eigen3::Eigen'],
  ['coin/', 'PkgConfig::CBC'],
  ['grpcpp/', 'PkgConfig::GRPCPP'],
  ['google/protobuf/', 'protobuf::libprotobuf'],
  ['onnx/', 'onnx'],
  ['thread', 'Threads::Threads'],
];
const IGNORED_LIBRARIES = new Set(['onnx_proto']);  // linked with `onnx`, never included on its own

const stages = JSON.parse(fs.readFileSync(graphFile, 'utf8')).stages;
const byName = new Map(stages.map((s) => [s.name, s]));
const errors = [];

function closure(name) {
  const seen = new Set();
  const visit = (n) => byName.get(n).stages.forEach((d) => { if (!seen.has(d)) { seen.add(d); visit(d); } });
  visit(name);
  return seen;
}

function ownersOfHeaders() {
  const owner = new Map();
  for (const s of stages) {
    for (const h of s.headers) {
      if (owner.has(h)) errors.push(`CMakeLists.txt: moirai/${h} is declared by stages ${owner.get(h)} and ${s.name}`);
      if (!fs.existsSync(path.join(root, 'include/moirai', h)))
        errors.push(`CMakeLists.txt: stage ${s.name} declares include/moirai/${h}, which does not exist`);
      owner.set(h, s.name);
    }
  }
  for (const h of fs.readdirSync(path.join(root, 'include/moirai')))
    if (!owner.has(h)) errors.push(`include/moirai/${h}: no stage declares it (HEADERS in CMakeLists.txt)`);
  return owner;
}

function filesUnder(dir) {
  const full = path.join(root, dir);
  if (!fs.existsSync(full)) return [];
  return fs.readdirSync(full, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(path.join(dir, e.name)) : /\.(h|hpp|cpp|cc)$/.test(e.name) ? [path.join(dir, e.name)] : []);
}

function includes(file) {
  const lines = fs.readFileSync(path.join(root, file), 'utf8').split('\n');
  const found = [];
  lines.forEach((line, i) => {
    const m = line.match(/^\s*#\s*include\s*([<"])([^>"]+)[>"]/);
    if (m) found.push({ line: i + 1, quoted: m[1] === '"', name: m[2] });
  });
  return found;
}

// What an include names: a public header, a private header of some stage, a test helper, or a library.
function classify(file, inc, owner) {
  if (inc.name.startsWith('moirai/')) return { kind: 'public', stage: owner.get(inc.name.slice(7)) };
  if (inc.quoted) {
    const local = path.normalize(path.join(path.dirname(file), inc.name));
    const privateStage = (p) => (p.startsWith('src/') ? p.split('/')[1] : null);
    if (fs.existsSync(path.join(root, local))) {
      return local.startsWith('src/') ? { kind: 'private', stage: privateStage(local), local } : { kind: 'test' };
    }
    if (fs.existsSync(path.join(root, 'src', inc.name))) return { kind: 'private', stage: privateStage(`src/${inc.name}`), prefixed: true };
    if (fs.existsSync(path.join(root, 'tests', inc.name))) return { kind: 'test' };
  }
  const lib = LIBRARIES.find(([prefix]) => (prefix.endsWith('/') ? inc.name.startsWith(prefix) : inc.name === prefix));
  return lib ? { kind: 'library', target: lib[1] } : { kind: 'system' };
}

function checkStage(stage, owner) {
  const allowed = closure(stage.name);
  const used = new Set();
  const libs = new Set();
  const files = [...filesUnder(`src/${stage.name}`), ...stage.headers.map((h) => `include/moirai/${h}`)];
  for (const file of files) {
    for (const inc of includes(file)) {
      const what = classify(file, inc, owner);
      const at = `${file}:${inc.line}: #include "${inc.name}"`;
      if (what.kind === 'public' && what.stage !== stage.name) {
        if (!what.stage) continue;  // reported as a header without a stage
        used.add(what.stage);
        if (!allowed.has(what.stage))
          errors.push(`${at}: a header of stage ${what.stage}, which ${stage.name} does not depend on`);
      } else if (what.kind === 'private' && what.stage !== stage.name) {
        errors.push(`${at}: a private header of stage ${what.stage} (give ${what.stage} a public header for it)`);
      } else if (what.kind === 'private' && what.prefixed) {
        errors.push(`${at}: a stage includes its own private headers by file name ("${path.basename(inc.name)}")`);
      } else if (what.kind === 'library') {
        libs.add(what.target);
        if (file.startsWith('include/') && !stage.public_libraries.includes(what.target))
          errors.push(`${at}: a public header of ${stage.name} includes ${what.target}, not in its PUBLIC_LIBRARIES`);
      }
    }
  }
  for (const dep of stage.stages) {
    if (!used.has(dep)) errors.push(`CMakeLists.txt: stage ${stage.name} declares ${dep} but includes none of its headers`);
    const via = stage.stages.find((other) => other !== dep && closure(other).has(dep));
    if (via) errors.push(`CMakeLists.txt: stage ${stage.name} declares ${dep}, already implied by ${via}`);
  }
  const declared = [...stage.libraries, ...stage.public_libraries];
  for (const lib of libs)
    if (!declared.includes(lib)) errors.push(`CMakeLists.txt: stage ${stage.name} includes ${lib} headers but does not declare it`);
  for (const lib of declared)
    if (!libs.has(lib) && !IGNORED_LIBRARIES.has(lib) && LIBRARIES.some(([, t]) => t === lib))
      errors.push(`CMakeLists.txt: stage ${stage.name} declares ${lib} but includes none of its headers`);
}

// tests/<stage>, tests/support, tests/cli, apps and bench: public headers as linked, private ones as allowed.
function checkClients(owner) {
  const groups = [
    ...stages.map((s) => ({ dir: `tests/${s.name}`, publicOk: new Set([s.name, ...closure(s.name)]), privateOk: s.name })),
    { dir: 'tests/support', privateOk: null },
    { dir: 'tests/cli', privateOk: null },
    { dir: 'apps', privateOk: null },
    { dir: 'bench', privateOk: '*' },
  ];
  for (const g of groups) {
    for (const file of filesUnder(g.dir)) {
      for (const inc of includes(file)) {
        const what = classify(file, inc, owner);
        const at = `${file}:${inc.line}: #include "${inc.name}"`;
        if (what.kind === 'public' && g.publicOk && what.stage && !g.publicOk.has(what.stage))
          errors.push(`${at}: a header of stage ${what.stage}, which ${g.dir} does not link`);
        if (what.kind === 'private' && g.privateOk !== '*' && what.stage !== g.privateOk)
          errors.push(`${at}: a private header of stage ${what.stage}`);
      }
    }
  }
}

// Explicit source lists: a .cpp missing from its directory's CMakeLists.txt would silently not be built.
function checkSourceLists() {
  for (const dir of [...stages.map((s) => `src/${s.name}`), 'apps/moirai']) {
    const list = path.join(root, dir, 'CMakeLists.txt');
    const listed = fs.existsSync(list) ? new Set(fs.readFileSync(list, 'utf8').match(/[\w.-]+\.cpp/g) || []) : new Set();
    for (const file of fs.readdirSync(path.join(root, dir)))
      if (file.endsWith('.cpp') && !listed.has(file)) errors.push(`${dir}/CMakeLists.txt: does not list ${file}`);
  }
}

// README's copy: one row per stage, in CMake's order.
function readmeTable() {
  const rows = stages.map((s) => `| \`${s.name}\` | ${s.stages.map((d) => `\`${d}\``).join(', ') || '-'} | ` +
    `${s.headers.map((h) => `\`${h}\``).join(', ')} | ${[...s.public_libraries, ...s.libraries].filter((l) => !IGNORED_LIBRARIES.has(l)).join(', ') || '-'} |`);
  return ['| stage | depends on | public headers (`include/moirai/`) | libraries |', '|---|---|---|---|', ...rows].join('\n');
}

const BEGIN = '<!-- stage-graph: generated by scripts/check_stage_graph.mjs from CMakeLists.txt -->';
const END = '<!-- /stage-graph -->';
function checkReadme(write) {
  const file = path.join(root, 'README.md');
  const text = fs.readFileSync(file, 'utf8');
  const start = text.indexOf(BEGIN), end = text.indexOf(END);
  if (start < 0 || end < start) return errors.push(`README.md: no stage graph between "${BEGIN}" and "${END}"`);
  const want = `${BEGIN}\n${readmeTable()}\n${END}`;
  if (text.slice(start, end + END.length) === want) return;
  if (write) return fs.writeFileSync(file, text.slice(0, start) + want + text.slice(end + END.length));
  errors.push('README.md: the stage graph differs from CMakeLists.txt (node scripts/check_stage_graph.mjs ' +
    `${graphFile} --write-readme rewrites it)`);
}

const owner = ownersOfHeaders();
stages.forEach((s) => checkStage(s, owner));
checkClients(owner);
checkSourceLists();
checkReadme(flags.includes('--write-readme'));
for (const e of errors) console.error(e);
if (errors.length) {
  console.error(`stage graph: ${errors.length} problem(s)`);
  process.exit(1);
}
console.log(`stage graph: ${stages.length} stages, every include follows it`);
