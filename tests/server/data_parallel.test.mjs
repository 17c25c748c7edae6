// Data parallelism: `vllm serve --data-parallel-size 2` runs two CPU replicas behind one API
// server. A request goes to the replica whose prefix cache holds the longest run of its blocks,
// then to the least loaded one; /metrics reports each replica under engine="0" / engine="1".
// Where a request ran is read from those per-replica numbers (running requests, finished
// requests, prefix-cache hits), never from the server's logs.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, postJSON, metric, waitFor } from './harness.mjs';

const MODEL = 'tiny-phi';
const BLOCK = 16;  // the default --block-size
let server;

before(async () => {
  server = await startServer(MODEL, ['--data-parallel-size', '2', '--disable-log-stats', '--disable-uvicorn-access-log']);
});
after(async () => {
  assert.equal(await server.stop(), 0);
});

async function metrics() {
  return (await fetch(`${server.url}/metrics`)).text();
}

function perEngine(text, name, extra = '') {
  return [0, 1].map((e) => metric(text, name, `engine="${e}"${extra ? ',' + extra : ''}`));
}

// Waits until each replica runs exactly `want[e]` requests (none waiting), returns the metrics.
async function waitRunning(want) {
  return waitFor(`running requests per replica ${JSON.stringify(want)}`, async () => {
    const t = await metrics();
    const running = perEngine(t, 'vllm:num_requests_running');
    const waiting = perEngine(t, 'vllm:num_requests_waiting');
    return running[0] === want[0] && running[1] === want[1] && waiting[0] === 0 && waiting[1] === 0 ? t : null;
  });
}

// A long streamed request that keeps its replica busy until the returned function drops it.
async function holdStream(prompt) {
  const ctrl = new AbortController();
  const res = await fetch(`${server.baseURL}/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, prompt, max_tokens: 1500, ignore_eos: true, stream: true }),
    signal: ctrl.signal,
  });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  assert.ok(!(await reader.read()).done);
  return () => {
    ctrl.abort();
    reader.cancel().catch(() => {});
  };
}

async function complete(prompt) {
  const r = await postJSON(`${server.baseURL}/completions`, { model: MODEL, prompt, max_tokens: 2, ignore_eos: true });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

// Many distinct words: a prompt of several blocks that shares no block with the other prompts.
function longPrompt(topic) {
  return `${topic} ` + Array.from({ length: 40 }, (_, i) => `${topic}-${i * 7 % 13} item ${i}`).join(', ');
}

describe('data parallel serving', () => {
  it('labels each replica in /metrics', async () => {
    const text = await metrics();
    for (const name of ['vllm:num_requests_running', 'vllm:prefix_cache_queries_total', 'vllm:prefix_cache_hits_total',
      'vllm:generation_tokens_total']) {
      const [a, b] = perEngine(text, name);
      assert.equal(typeof a, 'number', `${name} engine="0"`);
      assert.equal(typeof b, 'number', `${name} engine="1"`);
    }
    assert.equal(metric(text, 'vllm:num_requests_running', 'engine="2"'), undefined);
  });

  it('sends a repeated long prompt to the replica that cached it, even when the other is less loaded', { timeout: 120000 }, async () => {
    // Both idle: the first request goes to the lowest index, replica 0.
    const dropX = await holdStream('Xylophone players gather in the old hall to practise');
    await waitRunning([1, 0]);
    // Replica 0 is busy: the long prompt goes to replica 1, which caches its blocks.
    const A = longPrompt('Amber');
    const first = await complete(A);
    const promptTokens = first.usage.prompt_tokens;
    assert.ok(promptTokens >= 6 * BLOCK, `a prompt of several blocks (${promptTokens} tokens)`);
    let text = await metrics();
    assert.deepEqual(perEngine(text, 'vllm:request_success_total', 'finished_reason="length"'), [0, 1]);
    // A second hold lands on replica 1 (loads 1 and 0); then replica 0's is dropped, so that
    // replica 1 is now the busier one.
    const dropZ = await holdStream('Zebras cross the river at dawn while the herd waits');
    await waitRunning([1, 1]);
    dropX();
    text = await waitRunning([0, 1]);
    const hitsBefore = perEngine(text, 'vllm:prefix_cache_hits_total');
    const successBefore = perEngine(text, 'vllm:request_success_total', 'finished_reason="length"');

    // The repeat: least load says replica 0, the cached prefix says replica 1. The prefix wins,
    // and it is a hit there of every whole block before the last token.
    const again = await complete(A);
    assert.equal(again.usage.prompt_tokens, promptTokens);
    text = await metrics();
    const hitsAfter = perEngine(text, 'vllm:prefix_cache_hits_total');
    const successAfter = perEngine(text, 'vllm:request_success_total', 'finished_reason="length"');
    assert.equal(successAfter[1] - successBefore[1], 1, 'the repeat ran on replica 1');
    assert.equal(successAfter[0], successBefore[0], 'nothing new finished on replica 0');
    assert.equal(hitsAfter[1] - hitsBefore[1], Math.floor((promptTokens - 1) / BLOCK) * BLOCK);
    assert.equal(hitsAfter[0], hitsBefore[0]);
    dropZ();
    await waitRunning([0, 0]);
  });

  it('spreads distinct prompts sent together over both replicas', { timeout: 120000 }, async () => {
    const topics = ['Quartz', 'Maple', 'Harbor', 'Violet', 'Copper', 'Saturn'];
    const drops = await Promise.all(topics.map((t) => holdStream(longPrompt(t))));
    // Each arrives while the earlier ones still run: least load alternates them, 3 and 3.
    await waitRunning([3, 3]);
    for (const drop of drops) drop();
    const text = await waitRunning([0, 0]);
    const aborted = perEngine(text, 'vllm:request_success_total', 'finished_reason="abort"');
    assert.ok(aborted[0] >= 3 && aborted[1] >= 3, `aborts per replica: ${aborted}`);
    assert.equal(metric(text, 'vllm:kv_cache_usage_perc'), 0);
  });

  it('routes a cache_salt apart from the unsalted prompt, consistently', { timeout: 120000 }, async () => {
    // A salted repeat of a cached prompt shares no block with it (the salt changes every hash):
    // no hit anywhere; the salted prompt's own repeat then hits where it ran.
    const B = longPrompt('Birch');
    await complete(B);
    let text = await metrics();
    const hitsBefore = perEngine(text, 'vllm:prefix_cache_hits_total');
    const salted = await postJSON(`${server.baseURL}/completions`,
      { model: MODEL, prompt: B, max_tokens: 2, ignore_eos: true, cache_salt: 'tenant-7' });
    assert.equal(salted.status, 200, salted.text);
    text = await metrics();
    const hitsMid = perEngine(text, 'vllm:prefix_cache_hits_total');
    assert.deepEqual(hitsMid, hitsBefore);
    const saltedAgain = await postJSON(`${server.baseURL}/completions`,
      { model: MODEL, prompt: B, max_tokens: 2, ignore_eos: true, cache_salt: 'tenant-7' });
    assert.equal(saltedAgain.status, 200, saltedAgain.text);
    text = await metrics();
    const hitsAfter = perEngine(text, 'vllm:prefix_cache_hits_total');
    const gained = (hitsAfter[0] - hitsMid[0]) + (hitsAfter[1] - hitsMid[1]);
    assert.equal(gained, Math.floor((saltedAgain.json.usage.prompt_tokens - 1) / BLOCK) * BLOCK);
  });
});
