// Load: 512 concurrent streaming requests on tiny-phi (64 tokens each, ignore_eos) all finish
// with the right token counts, while 100 other clients disconnect mid-stream; once idle, the
// aborted requests hold no KV cache (vllm:kv_cache_usage_perc back to 0).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, parseSSE, metric } from './harness.mjs';

const MODEL = 'tiny-phi';
const N = Number(process.env.VLLM_SERVER_TEST_STREAMS ?? 512);
const KILLED = Number(process.env.VLLM_SERVER_TEST_KILLED ?? 100);
const TOKENS = 64;
let server;

before(async () => {
  server = await startServer(MODEL, ['--disable-log-stats', '--disable-uvicorn-access-log', '--max-num-seqs', '256']);
});
after(async () => {
  assert.equal(await server.stop(), 0);
});

function body(i, maxTokens) {
  return JSON.stringify({
    model: MODEL, prompt: `Request number ${i} says`, max_tokens: maxTokens, ignore_eos: true, temperature: 0.7, seed: i,
    stream: true, stream_options: { include_usage: true },
  });
}

async function fullStream(i) {
  const res = await fetch(`${server.baseURL}/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(i, TOKENS) });
  assert.equal(res.status, 200);
  const events = parseSSE(await res.text());
  assert.equal(events.at(-1), '[DONE]');
  const usage = events.at(-2).usage;
  const chunks = events.slice(0, -2);
  const finishes = chunks.filter((c) => c.choices[0].finish_reason);
  return { usage, chunks: chunks.length, finishes: finishes.map((c) => c.choices[0].finish_reason) };
}

// Starts a long stream, resolves once its first event arrived, and returns a function that
// drops the connection.
async function startKilled(i) {
  const ctrl = new AbortController();
  const res = await fetch(`${server.baseURL}/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(100000 + i, 1500), signal: ctrl.signal });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  const first = await reader.read();
  assert.ok(!first.done);
  return () => {
    ctrl.abort();
    reader.cancel().catch(() => {});
  };
}

async function metrics() {
  return (await fetch(`${server.url}/metrics`)).text();
}

describe('concurrency', () => {
  it(`${N} concurrent streams complete while ${KILLED} clients disconnect mid-stream`, { timeout: 150000 }, async () => {
    const t0 = Date.now();
    const killers = await Promise.all(Array.from({ length: KILLED }, (_, i) => startKilled(i)));
    const running = metric(await metrics(), 'vllm:num_requests_running');
    assert.ok(running >= 1, `long requests are not running (${running})`);
    const streams = Array.from({ length: N }, (_, i) => fullStream(i).catch((e) => ({ error: e })));
    // Drop the long requests while the others stream.
    await new Promise((r) => setTimeout(r, 200));
    for (const kill of killers) kill();
    const results = await Promise.all(streams);
    const failed = results.filter((r) => r.error);
    assert.equal(failed.length, 0, `failed streams: ${failed.slice(0, 3).map((f) => f.error).join('; ')}`);
    for (const r of results) {
      assert.equal(r.usage.completion_tokens, TOKENS);
      assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + TOKENS);
      assert.deepEqual(r.finishes, ['length']);
      assert.ok(r.chunks >= 1 && r.chunks <= TOKENS);
    }
    // Idle: nothing running or waiting, and the killed requests hold no KV blocks.
    let text;
    for (let i = 0; i < 100; ++i) {
      text = await metrics();
      if (metric(text, 'vllm:num_requests_running') === 0 && metric(text, 'vllm:num_requests_waiting') === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(metric(text, 'vllm:num_requests_running'), 0);
    assert.equal(metric(text, 'vllm:num_requests_waiting'), 0);
    assert.equal(metric(text, 'vllm:kv_cache_usage_perc'), 0);
    assert.equal(metric(text, 'vllm:request_success_total', 'finished_reason="abort"'), KILLED);
    assert.equal(metric(text, 'vllm:request_success_total', 'finished_reason="length"'), N);
    // The aborted requests stopped early: far fewer tokens than their 1500 each.
    assert.ok(metric(text, 'vllm:generation_tokens_total') < N * TOKENS + KILLED * 300);
    console.log(`# ${N} streams x ${TOKENS} tokens + ${KILLED} aborted in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
});
