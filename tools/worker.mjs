// A moirai worker: hosts the stages (ONNX sub-models) of one device behind the gRPC service of
// proto/worker.proto, runs each stage with ONNX Runtime as soon as all its inputs for a request have arrived, and
// pushes every output tensor straight to the worker of each consuming stage (peer to peer). Graph outputs stay
// here until the coordinator fetches them (Result). Started by `moirai worker`, or directly:
//
//   node tools/worker.mjs --listen HOST:PORT [--threads N] [--provider cpu|cuda:K] [--device NAME]
//
// With port 0 it binds a free port. The first line on stdout is "listening on HOST:PORT" (the bound address).
// Bad input (an unknown stage, a mis-shaped tensor, a model that does not load) is answered with a gRPC error
// naming the stage and tensor; the worker keeps serving. One stage runs at a time (the device executes one
// operator group at a time, as the simulator assumes) and one tensor is sent at a time (one send port).
// ONNX Runtime runs in a thread of its own: its session.run blocks the thread that calls it, and the main thread
// must keep receiving and sending tensors while a stage computes (ports and compute overlap, as simulated).
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { Worker as Thread, isMainThread, parentPort } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const here = path.dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const opts = { listen: '', threads: 1, provider: 'cpu', device: '', proto: path.join(here, '..', 'proto', 'worker.proto') };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--listen') opts.listen = next();
    else if (a === '--threads') opts.threads = Number(next());
    else if (a === '--provider') opts.provider = next();
    else if (a === '--device') opts.device = next();
    else if (a === '--proto') opts.proto = next();
    else throw new Error(`unknown argument ${a}`);
  }
  if (!/^.+:\d+$/.test(opts.listen)) throw new Error(`--listen needs HOST:PORT, not '${opts.listen}'`);
  if (!Number.isInteger(opts.threads) || opts.threads < 1 || opts.threads > 1024)
    throw new Error(`--threads must be an integer in 1..1024`);
  if (!/^(cpu|cuda(:\d+)?)$/.test(opts.provider)) throw new Error(`--provider must be cpu or cuda:K, not '${opts.provider}'`);
  return opts;
}

// Element types: typed array and element size.
const DTYPES = {
  float32: [Float32Array, 4], float64: [Float64Array, 8], float16: [Uint16Array, 2],
  int64: [BigInt64Array, 8], int32: [Int32Array, 4], int16: [Int16Array, 2], int8: [Int8Array, 1],
  uint64: [BigUint64Array, 8], uint32: [Uint32Array, 4], uint16: [Uint16Array, 2], uint8: [Uint8Array, 1],
  bool: [Uint8Array, 1],
};

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;  // CLOCK_MONOTONIC, as the coordinator's steady_clock
const shapeText = (s) => `[${s.join(',')}]`;

class RpcError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/// A proto Tensor as {type, dims, data} (what ort.Tensor takes), checked against the stage's input spec.
function fromProto(t, spec, stage) {
  const where = `stage '${stage}', tensor '${t.name}'`;
  if (t.dtype !== spec.dtype) throw new RpcError(grpc.status.INVALID_ARGUMENT, `${where}: element type ${t.dtype || '(none)'}, expected ${spec.dtype}`);
  const shape = t.shape.map(Number);
  if (shape.length !== spec.shape.length || shape.some((d, i) => d !== Number(spec.shape[i])))
    throw new RpcError(grpc.status.INVALID_ARGUMENT, `${where}: shape ${shapeText(shape)}, expected ${shapeText(spec.shape.map(Number))}`);
  const entry = DTYPES[t.dtype];
  if (!entry) throw new RpcError(grpc.status.INVALID_ARGUMENT, `${where}: unsupported element type ${t.dtype}`);
  const [Ctor, size] = entry;
  const n = shape.reduce((a, b) => a * b, 1);
  const bytes = t.data ?? Buffer.alloc(0);
  if (bytes.length !== n * size)
    throw new RpcError(grpc.status.INVALID_ARGUMENT, `${where}: ${bytes.length} bytes of data, expected ${n * size} (${n} x ${t.dtype})`);
  const data = new Ctor(n);  // an owned, aligned copy (the message buffer may be a slice of a larger one)
  new Uint8Array(data.buffer).set(bytes);
  return { type: t.dtype, dims: shape, data };
}

function toProto(name, tensor) {
  const d = tensor.data;
  return { name, dtype: tensor.type, shape: tensor.dims, data: Buffer.from(d.buffer, d.byteOffset, d.byteLength) };
}

/// The compute thread: owns the ONNX Runtime sessions; answers {id, op: 'load'|'run'} messages.
async function computeThread() {
  const ort = await import('onnxruntime-node');
  let sessions = new Map();
  parentPort.on('message', async (msg) => {
    try {
      if (msg.op === 'load') {
        const next = new Map();
        for (const s of msg.stages) {
          let session;
          try {
            session = await ort.InferenceSession.create(s.model, msg.options);
          } catch (e) {
            for (const made of next.values()) await made.release?.();
            throw new Error(`stage '${s.name}': the model does not load: ${e.message ?? e}`);
          }
          next.set(s.name, session);
          const have = [...session.inputNames].sort().join(', ');
          const want = [...s.inputs].sort().join(', ');
          let problem = have === want ? '' : `stage '${s.name}': the model's inputs (${have}) differ from the stage's (${want})`;
          for (const o of s.outputs)
            if (!problem && !session.outputNames.includes(o)) problem = `stage '${s.name}': the model has no output '${o}'`;
          if (problem) {
            for (const made of next.values()) await made.release?.();
            throw new Error(problem);
          }
        }
        for (const old of sessions.values()) await old.release?.();
        sessions = next;
        parentPort.postMessage({ id: msg.id });
      } else if (msg.op === 'run') {
        const feeds = {};
        for (const [k, t] of Object.entries(msg.feeds)) feeds[k] = new ort.Tensor(t.type, t.data, t.dims);
        const start = nowMs();
        const out = await sessions.get(msg.stage).run(feeds);
        const end = nowMs();
        const outputs = {};
        for (const [k, t] of Object.entries(out)) outputs[k] = { type: t.type, dims: t.dims, data: t.data };
        // Moved, not copied: a structured clone of a large output costs the main thread about 1 ms per 256 KiB
        // here (measured with gpt_tiny's logits), time a request spends after its last stage.
        const reply = { id: msg.id, outputs, start, end };
        try {
          parentPort.postMessage(reply, [...new Set(Object.values(outputs).map((t) => t.data.buffer))]);
        } catch {  // a buffer that cannot be detached (owned by the runtime): copy it
          parentPort.postMessage(reply);
        }
      }
    } catch (e) {
      parentPort.postMessage({ id: msg.id, error: e.message ?? String(e) });
    }
  });
}

/// The main thread's handle on the compute thread: call(message) -> promise of the answer.
class Compute {
  constructor() {
    this.thread = new Thread(fileURLToPath(import.meta.url));
    this.next = 1;
    this.pending = new Map();
    this.thread.on('message', (msg) => {
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.error !== undefined) p.reject(new Error(msg.error));
      else p.resolve(msg);
    });
    this.thread.on('error', (e) => {
      console.error(`worker.mjs: error: the ONNX Runtime thread failed: ${e.message ?? e}`);
      process.exit(2);
    });
  }
  call(msg) {
    return new Promise((resolve, reject) => {
      const id = this.next++;
      this.pending.set(id, { resolve, reject });
      this.thread.postMessage({ ...msg, id });
    });
  }
}

const CHANNEL_OPTIONS = { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 };

class Worker {
  constructor(opts, service) {
    this.opts = opts;
    this.device = opts.device;
    this.service = service;
    this.compute = new Compute();
    this.stages = new Map();    // name -> {outputs, inputs: Map(name -> spec), routes: Map(tensor -> [route])}
    this.requests = new Map();  // id -> request state
    this.queue = [];            // [request id, stage name] ready to run, in arrival order
    this.running = false;
    this.sending = Promise.resolve();  // one tensor on the wire at a time
    this.peers = new Map();     // address -> client
    this.stageRuns = [];
    this.transfers = [];
  }

  sessionOptions() {
    const provider = this.opts.provider === 'cpu' ? 'cpu' : { name: 'cuda', deviceId: Number(this.opts.provider.split(':')[1] ?? 0) };
    // No spin-waiting in idle thread pools: stages of this and other workers share the CPU.
    return {
      intraOpNumThreads: this.opts.threads, interOpNumThreads: 1, executionMode: 'sequential',
      graphOptimizationLevel: 'all', logSeverityLevel: 3, executionProviders: [provider],
      extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    };
  }

  request(id) {
    let r = this.requests.get(id);
    if (!r) {
      r = { inputs: new Map(), started: new Set(), done: new Set(), held: [], error: null, sends: 0, waiters: new Set() };
      this.requests.set(id, r);
    }
    return r;
  }

  notify(r) {
    for (const w of [...r.waiters]) w();
  }

  fail(id, message) {
    const r = this.request(id);
    if (!r.error) r.error = message;
    this.notify(r);
  }

  async load(req) {
    const t0 = nowMs();
    const seen = new Set();
    for (const s of req.stages) {
      if (!s.name) throw new RpcError(grpc.status.INVALID_ARGUMENT, 'a stage without a name');
      if (seen.has(s.name)) throw new RpcError(grpc.status.INVALID_ARGUMENT, `stage '${s.name}' is listed twice`);
      seen.add(s.name);
      for (const r of s.routes)
        if (!s.outputs.some((o) => o.name === r.tensor))
          throw new RpcError(grpc.status.INVALID_ARGUMENT, `stage '${s.name}': a route for '${r.tensor}', which is not an output`);
    }
    // The thread builds every session and checks its inputs and outputs before replacing the old ones.
    try {
      await this.compute.call({
        op: 'load', options: this.sessionOptions(),
        stages: req.stages.map((s) => ({ name: s.name, model: s.model, inputs: s.inputs.map((t) => t.name), outputs: s.outputs.map((t) => t.name) })),
      });
    } catch (e) {
      throw new RpcError(grpc.status.INVALID_ARGUMENT, e.message);
    }
    const stages = new Map();
    for (const s of req.stages) {
      const routes = new Map();
      for (const r of s.routes) {
        if (!routes.has(r.tensor)) routes.set(r.tensor, []);
        routes.get(r.tensor).push(r);
      }
      stages.set(s.name, { outputs: s.outputs, inputs: new Map(s.inputs.map((t) => [t.name, t])), routes });  // model bytes: thread only
    }
    this.stages = stages;
    this.device = req.device || this.device;
    // A new load starts a new run: its request ids start again, so earlier state and records must go.
    this.requests.clear();
    this.queue = [];
    this.stageRuns = [];
    this.transfers = [];
    return { load_ms: nowMs() - t0 };
  }

  stage(name) {
    const st = this.stages.get(name);
    if (!st) {
      const known = [...this.stages.keys()].join(', ') || 'none loaded';
      throw new RpcError(grpc.status.NOT_FOUND, `unknown stage '${name}' (this worker runs: ${known})`);
    }
    return st;
  }

  /// Hands a tensor of request `id` to local stages; runs those whose inputs are now complete.
  deliver(id, stageNames, name, tensor) {
    const r = this.request(id);
    for (const s of stageNames) {
      if (!r.inputs.has(s)) r.inputs.set(s, new Map());
      r.inputs.get(s).set(name, tensor);
      const st = this.stages.get(s);
      if (!r.started.has(s) && r.inputs.get(s).size === st.inputs.size) {
        r.started.add(s);
        this.queue.push([id, s]);
      }
    }
    this.drain();
  }

  push(req) {
    if (!req.tensor) throw new RpcError(grpc.status.INVALID_ARGUMENT, 'a push without a tensor');
    if (!req.stages.length) throw new RpcError(grpc.status.INVALID_ARGUMENT, `tensor '${req.tensor.name}': no stage named`);
    const id = Number(req.request);
    let tensor = null;
    for (const s of req.stages) {
      const st = this.stage(s);
      const spec = st.inputs.get(req.tensor.name);
      if (!spec)
        throw new RpcError(grpc.status.INVALID_ARGUMENT, `stage '${s}' has no input '${req.tensor.name}' (inputs: ${[...st.inputs.keys()].join(', ')})`);
      tensor = fromProto(req.tensor, spec, s);
    }
    // Acknowledge first (the sender times the transfer up to the acknowledgement), then hand it to the stages.
    setImmediate(() => this.deliver(id, req.stages, req.tensor.name, tensor));
  }

  async drain() {
    if (this.running) return;
    this.running = true;
    while (this.queue.length) {
      const [id, s] = this.queue.shift();
      try {
        await this.runStage(id, s);
      } catch (e) {  // a bug here must fail the request, not the worker
        this.fail(id, `stage '${s}': ${e.message ?? e}`);
      }
    }
    this.running = false;
  }

  async runStage(id, name) {
    const r = this.requests.get(id);
    const st = this.stages.get(name);
    if (!r || !st || r.error) return;
    const feeds = Object.fromEntries(r.inputs.get(name) ?? []);
    r.inputs.delete(name);
    let out, start, end;
    try {
      ({ outputs: out, start, end } = await this.compute.call({ op: 'run', stage: name, feeds }));
    } catch (e) {
      this.fail(id, `stage '${name}' failed: ${e.message ?? e}`);
      return;
    }
    const run = { request: id, stage: name, start_ms: start, end_ms: end, handed_ms: end };
    this.stageRuns.push(run);
    for (const o of st.outputs) {
      const tensor = out[o.name];
      for (const route of st.routes.get(o.name) ?? []) {
        if (route.coordinator) r.held.push(toProto(o.name, tensor));
        else if (!route.peer) this.deliver(id, route.stages, o.name, tensor);
        else this.send(id, name, route, o.name, tensor);
      }
    }
    run.handed_ms = nowMs();
    r.done.add(name);
    this.notify(r);
  }

  client(peer) {
    let c = this.peers.get(peer);
    if (!c) {
      c = new this.service(peer, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
      this.peers.set(peer, c);
    }
    return c;
  }

  send(id, stage, route, name, tensor) {
    const r = this.request(id);
    r.sends += 1;
    const message = { request: id, stages: route.stages, tensor: toProto(name, tensor) };
    const bytes = message.tensor.data.length;
    this.sending = this.sending.then(() => new Promise((resolve) => {
      const start = nowMs();
      this.client(route.peer).Push(message, (err) => {
        const end = nowMs();
        r.sends -= 1;
        if (err) {
          this.fail(id, `stage '${stage}': sending '${name}' to worker ${route.peer} (stage ${route.stages.join(', ')}) failed: ${err.details || err.message}`);
        } else {
          this.transfers.push({ request: id, tensor: name, peer: route.peer, stages: route.stages, bytes, start_ms: start, end_ms: end });
          this.notify(r);
        }
        resolve();
      });
    }));
  }

  result(call) {
    const id = Number(call.request.request);
    const wanted = call.request.stages;
    try {
      for (const s of wanted) this.stage(s);
    } catch (e) {
      call.emit('error', { code: e.code, details: e.message });
      return;
    }
    const r = this.request(id);
    // A stage without inputs (e.g. one that only reads constants) starts when the request reaches this worker.
    for (const s of wanted)
      if (this.stages.get(s).inputs.size === 0 && !r.started.has(s)) {
        r.started.add(s);
        this.queue.push([id, s]);
      }
    this.drain();
    const reported = new Set();
    let finished = false;
    const check = () => {
      if (finished) return;
      if (r.error) {
        finished = true;
        r.waiters.delete(check);
        call.emit('error', { code: grpc.status.ABORTED, details: r.error });
        this.requests.delete(id);
        return;
      }
      for (const s of wanted) {
        if (r.done.has(s) && !reported.has(s)) {
          reported.add(s);
          call.write({ stage: s, last: false, outputs: [] });
        }
      }
      if (reported.size === wanted.length && r.sends === 0) {
        finished = true;
        r.waiters.delete(check);
        call.write({ stage: '', last: true, outputs: r.held });
        call.end();
        this.requests.delete(id);
      }
    };
    r.waiters.add(check);
    call.on('cancelled', () => {
      finished = true;
      r.waiters.delete(check);
    });
    check();
  }
}

function unary(fn) {
  return async (call, callback) => {
    try {
      callback(null, await fn(call.request));
    } catch (e) {
      callback({ code: e.code ?? grpc.status.INTERNAL, details: e.message ?? String(e) });
    }
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const def = protoLoader.loadSync(opts.proto, { keepCase: true, longs: Number, defaults: true, arrays: true });
  const proto = grpc.loadPackageDefinition(def).moirai.worker;
  const worker = new Worker(opts, proto.Worker);
  const server = new grpc.Server(CHANNEL_OPTIONS);
  server.addService(proto.Worker.service, {
    Load: unary((req) => worker.load(req)),
    Push: unary((req) => (worker.push(req), {})),
    Result: (call) => worker.result(call),
    Trace: unary((req) => {
      const reply = { stages: worker.stageRuns, transfers: worker.transfers };
      if (req.clear) {
        worker.stageRuns = [];
        worker.transfers = [];
      }
      return reply;
    }),
    Ping: unary(() => ({ now_ms: nowMs(), device: worker.device, threads: opts.threads, provider: opts.provider,
      memory_bytes: os.totalmem() })),
    Shutdown: unary(() => {
      setImmediate(() => server.tryShutdown(() => process.exit(0)));
      setTimeout(() => process.exit(0), 2000).unref();
      return {};
    }),
  });
  const sep = opts.listen.lastIndexOf(':');
  const host = opts.listen.slice(0, sep);
  await new Promise((resolve, reject) => {
    server.bindAsync(opts.listen, grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) reject(new Error(`cannot listen on ${opts.listen}: ${err.message}`));
      else {
        process.stdout.write(`listening on ${host}:${port}\n`);
        resolve();
      }
    });
  });
}

if (isMainThread) {
  main().catch((err) => {
    console.error(`worker.mjs: error: ${err.message ?? err}`);
    process.exit(2);
  });
} else {
  computeThread();
}
