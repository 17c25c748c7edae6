// Shared set-up of the `vllm serve` end-to-end tests: reference model folders (written once by
// vllm-make-model under the build tree), a server process on 127.0.0.1 with a free port, and
// small HTTP helpers (raw fetch and SSE parsing) next to the official openai client.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '../..');
export const DATA = process.env.VLLM_TEST_DATA_DIR ?? path.join(ROOT, 'tests/data');
const BIN = process.env.VLLM_BIN;
const MAKE_MODEL = process.env.VLLM_MAKE_MODEL;
const MODELS_DIR = process.env.VLLM_SERVER_TEST_MODELS ?? path.join(ROOT, 'build/server-test-models');

// The recipe of tests/data/models/<name>/golden.json (weights.seed, weights.dtype).
const MODELS = {
  'tiny-phi': { seed: 11, dtype: 'float16', tokenizer: ['vocab.json', 'merges.txt'] },
  'tiny-llama3': { seed: 13, dtype: 'bfloat16', tokenizer: ['tokenizer.json'] },
  'tiny-qwen3': { seed: 14, dtype: 'bfloat16', tokenizer: ['tokenizer.json'] },
};

export function golden(name) {
  return JSON.parse(fs.readFileSync(path.join(DATA, 'models', name, 'golden.json'), 'utf8'));
}

// A model folder for `name` (made once; concurrent test files race safely through a rename).
export function modelDir(name) {
  const spec = MODELS[name];
  if (!spec) throw new Error(`unknown test model ${name}`);
  const out = path.join(MODELS_DIR, name);
  if (fs.existsSync(path.join(out, '.complete'))) return out;
  if (!MAKE_MODEL) throw new Error('VLLM_MAKE_MODEL is not set (run through ctest)');
  fs.mkdirSync(MODELS_DIR, { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const m = path.join(DATA, 'models', name);
  const copies = [
    path.join(m, 'generation_config.json'),
    path.join(m, 'tokenizer_config.json'),
    ...spec.tokenizer.map((f) => path.join(DATA, 'tokenizers', name, f)),
  ];
  execFileSync(MAKE_MODEL, [
    '--config', path.join(m, 'config.json'), '--out', tmp, '--seed', String(spec.seed), '--dtype', spec.dtype,
    ...copies.flatMap((c) => ['--copy', c]),
  ], { stdio: 'inherit' });
  fs.writeFileSync(path.join(tmp, '.complete'), '');
  try {
    fs.renameSync(tmp, out);
  } catch {
    fs.rmSync(tmp, { recursive: true, force: true });  // another test file made it first
  }
  return out;
}

// VLLM_TEST_DATA_PARALLEL_SIZE=N runs every server of a suite with --data-parallel-size N (the
// server_dp_* ctest entries: the same suites against N replicas behind one API server).
const DP = process.env.VLLM_TEST_DATA_PARALLEL_SIZE;

// Starts `vllm serve <model>` on 127.0.0.1 and a free port; resolves once it listens.
export async function startServer(name, extraArgs = [], { env = {}, timeoutMs = 120000 } = {}) {
  if (!BIN) throw new Error('VLLM_BIN is not set (run through ctest)');
  const dir = modelDir(name);
  const dp = DP && !extraArgs.includes('--data-parallel-size') ? ['--data-parallel-size', DP] : [];
  const args = ['serve', dir, '--host', '127.0.0.1', '--port', '0', '--dtype', 'float32', '--kv-cache-space', '0.25',
    ...(extraArgs.includes('--served-model-name') ? [] : ['--served-model-name', name]), ...dp, ...extraArgs];
  const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let log = '';
  const onData = (d) => { log += d.toString(); };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const { scheme, port } = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in time:\n${log}`)), timeoutMs);
    const check = () => {
      const m = log.match(/Uvicorn running on (https?):\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ scheme: m[1], port: Number(m[2]) });
      }
    };
    child.stdout.on('data', check);
    child.stderr.on('data', check);
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (code ${code}, signal ${signal}) before listening:\n${log}`));
    });
  });
  const url = `${scheme}://127.0.0.1:${port}`;
  return {
    url,
    port,
    baseURL: `${url}/v1`,
    child,
    log: () => log,
    exited,
    // SIGTERM; resolves with the exit code (fails the caller after a timeout).
    async stop(signal = 'SIGTERM', ms = 20000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      let timer;
      const res = await Promise.race([exited, new Promise((r) => { timer = setTimeout(() => r(null), ms); })]);
      clearTimeout(timer);
      if (res === null) {
        child.kill('SIGKILL');
        throw new Error(`server did not exit within ${ms} ms after ${signal}:\n${log.slice(-4000)}`);
      }
      return res.code;
    },
  };
}

export async function postJSON(url, body, headers = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, json };
}

// Parses an SSE body into its data payloads ("[DONE]" kept as the string).
export function parseSSE(text) {
  const events = [];
  for (const block of text.split('\n\n')) {
    if (!block.trim()) continue;
    const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
    events.push(data === '[DONE]' ? data : JSON.parse(data));
  }
  return events;
}

export async function streamRaw(url, body, headers = {}) {
  const res = await postJSON(url, { ...body, stream: true }, headers);
  return { ...res, events: res.status === 200 ? parseSSE(res.text) : [] };
}

// A sample of a Prometheus text exposition ("name{labels} value"), or undefined: the sum of the
// samples that match, which is the server's total when each data-parallel replica has its own
// (engine="0", engine="1", ...); filter on engine="i" for one replica's.
// Polls fn every 50 ms until it returns something truthy (returned), or fails after ms naming `what`.
export async function waitFor(what, fn, ms = 60000) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function metric(text, name, labelFilter = '') {
  let sum;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = line.match(/^([^{\s]+)(\{[^}]*\})?\s+(\S+)$/);
    if (m && m[1] === name && (m[2] ?? '').includes(labelFilter)) sum = (sum ?? 0) + Number(m[3]);
  }
  return sum;
}
