// /v1/completions (and the small endpoints) on tiny-phi, through the official openai client
// and raw HTTP.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import net from 'node:net';
import { startServer, postJSON, streamRaw, metric } from './harness.mjs';

const MODEL = 'tiny-phi';
let server;
let client;

before(async () => {
  server = await startServer(MODEL, ['--disable-log-stats', '--enable-prompt-tokens-details']);
  client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  assert.equal(await server.stop(), 0);
});

async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

// Per choice index: concatenated text and the finish_reasons seen.
function byIndex(chunks) {
  const out = new Map();
  for (const c of chunks) {
    for (const ch of c.choices) {
      const e = out.get(ch.index) ?? { text: '', finish: [] };
      e.text += ch.text;
      if (ch.finish_reason) e.finish.push(ch.finish_reason);
      out.set(ch.index, e);
    }
  }
  return out;
}

describe('completions', () => {
  it('San Francisco is a: length, usage 4 + 16 = 20', async () => {
    const r = await client.completions.create({ model: MODEL, prompt: 'San Francisco is a' });
    assert.match(r.id, /^cmpl-[0-9a-f]{32}$/);
    assert.equal(r.object, 'text_completion');
    assert.equal(r.model, MODEL);
    assert.equal(typeof r.created, 'number');
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].index, 0);
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(typeof r.choices[0].text, 'string');
    assert.ok(r.choices[0].text.length > 0);
    assert.equal(r.usage.prompt_tokens, 4);
    assert.equal(r.usage.completion_tokens, 16);
    assert.equal(r.usage.total_tokens, 20);
    assert.equal(typeof r.usage.prompt_tokens_details.cached_tokens, 'number');
  });

  it('streamed text equals non-streamed text for the same seed', async () => {
    const params = { model: MODEL, prompt: 'San Francisco is a', temperature: 0.8, seed: 1234, max_tokens: 24 };
    const full = await client.completions.create(params);
    const chunks = await collect(await client.completions.create({ ...params, stream: true }));
    const got = byIndex(chunks).get(0);
    assert.equal(got.text, full.choices[0].text);
    assert.deepEqual(got.finish, [full.choices[0].finish_reason]);
    for (const c of chunks) assert.equal(c.id, chunks[0].id);
  });

  it('n=3 streams interleave by index with exactly one finish_reason each', async () => {
    const params = { model: MODEL, prompt: 'The capital of France is', n: 3, temperature: 1.0, seed: 7, max_tokens: 12 };
    const chunks = await collect(await client.completions.create({ ...params, stream: true }));
    const idx = byIndex(chunks);
    assert.deepEqual([...idx.keys()].sort(), [0, 1, 2]);
    for (const [, e] of idx) assert.equal(e.finish.length, 1);
    // Chunks of different choices alternate rather than one choice streaming whole first.
    const order = chunks.flatMap((c) => c.choices.map((ch) => ch.index));
    assert.ok(order.indexOf(1) < order.lastIndexOf(0), `choices did not interleave: ${order}`);
    const full = await client.completions.create(params);
    assert.equal(full.choices.length, 3);
    for (const ch of full.choices) assert.equal(idx.get(ch.index).text, ch.text);
    assert.equal(full.usage.completion_tokens, 36);
  });

  it('include_usage adds a last chunk with empty choices; continuous_usage_stats adds usage to every chunk', async () => {
    const r = await streamRaw(`${server.baseURL}/completions`, {
      model: MODEL, prompt: 'Hello', max_tokens: 5, stream_options: { include_usage: true },
    });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/event-stream/);
    assert.equal(r.events.at(-1), '[DONE]');
    const last = r.events.at(-2);
    assert.deepEqual(last.choices, []);
    assert.deepEqual(last.usage, { prompt_tokens: 1, total_tokens: 6, completion_tokens: 5, prompt_tokens_details: last.usage.prompt_tokens_details });
    for (const e of r.events.slice(0, -2)) assert.equal(e.usage, undefined);

    const c = await streamRaw(`${server.baseURL}/completions`, {
      model: MODEL, prompt: 'Hello', max_tokens: 5, stream_options: { include_usage: true, continuous_usage_stats: true },
    });
    const chunks = c.events.slice(0, -2);
    chunks.forEach((e, i) => {
      assert.equal(e.usage.prompt_tokens, 1);
      assert.equal(e.usage.completion_tokens, i + 1);
      assert.equal(e.usage.total_tokens, i + 2);
    });
    // Without stream_options there is no usage chunk.
    const plain = await streamRaw(`${server.baseURL}/completions`, { model: MODEL, prompt: 'Hello', max_tokens: 3 });
    assert.ok(plain.events.slice(0, -1).every((e) => e.choices.length === 1 && e.usage === undefined));
  });

  it('echo prepends the prompt; echo with max_tokens 0 returns only the prompt', async () => {
    const prompt = 'San Francisco is a';
    const plain = await client.completions.create({ model: MODEL, prompt, max_tokens: 6, temperature: 0 });
    const echoed = await client.completions.create({ model: MODEL, prompt, max_tokens: 6, temperature: 0, echo: true });
    assert.equal(echoed.choices[0].text, prompt + plain.choices[0].text);
    const only = await client.completions.create({ model: MODEL, prompt, max_tokens: 0, echo: true });
    assert.equal(only.choices[0].text, prompt);
    const streamed = await collect(await client.completions.create({ model: MODEL, prompt, max_tokens: 6, temperature: 0, echo: true, stream: true }));
    assert.equal(byIndex(streamed).get(0).text, prompt + plain.choices[0].text);
  });

  it('logprobs: tokens, token_logprobs, top_logprobs (up to logprobs + 1) and text_offset', async () => {
    const r = await client.completions.create({ model: MODEL, prompt: 'San Francisco is a', max_tokens: 8, temperature: 0, logprobs: 3 });
    const lp = r.choices[0].logprobs;
    assert.equal(lp.tokens.length, 8);
    assert.equal(lp.token_logprobs.length, 8);
    assert.equal(lp.top_logprobs.length, 8);
    assert.equal(lp.text_offset.length, 8);
    let offset = 0;
    lp.tokens.forEach((tok, i) => {
      assert.equal(lp.text_offset[i], offset);
      offset += [...tok].length;
      assert.ok(lp.token_logprobs[i] <= 0);
      const top = lp.top_logprobs[i];
      assert.ok(Object.keys(top).length >= 3 && Object.keys(top).length <= 4);
      assert.ok(tok in top, `sampled token ${JSON.stringify(tok)} missing from top_logprobs`);
      // Greedy: the sampled token is the most likely one.
      assert.equal(Math.max(...Object.values(top)), lp.token_logprobs[i]);
    });
    if (!r.choices[0].text.includes('\ufffd')) assert.equal(lp.tokens.join(''), r.choices[0].text);

    // Echo with logprobs: the prompt's tokens come first, the first one without a log-prob.
    const e = await client.completions.create({ model: MODEL, prompt: 'San Francisco is a', max_tokens: 2, temperature: 0, logprobs: 1, echo: true });
    const elp = e.choices[0].logprobs;
    assert.equal(elp.tokens.length, 6);
    assert.equal(elp.token_logprobs[0], null);
    assert.equal(elp.top_logprobs[0], null);
    assert.ok(elp.token_logprobs.slice(1).every((v) => typeof v === 'number'));
    assert.equal(elp.tokens.slice(0, 4).join(''), 'San Francisco is a');

    // Streamed logprobs carry on the text offsets.
    const s = await streamRaw(`${server.baseURL}/completions`, { model: MODEL, prompt: 'San Francisco is a', max_tokens: 4, temperature: 0, logprobs: 2 });
    const offsets = s.events.slice(0, -1).flatMap((c) => c.choices[0].logprobs.text_offset);
    assert.deepEqual(offsets, lp.text_offset.slice(0, 4));
  });

  it('stop strings end the text before the stop string (or include it on request)', async () => {
    const base = { model: MODEL, prompt: 'San Francisco is a', max_tokens: 16, temperature: 0 };
    const full = (await client.completions.create(base)).choices[0].text;
    const lp = (await client.completions.create({ ...base, logprobs: 0 })).choices[0].logprobs.tokens;
    // A stop string from the middle of the greedy output: the text up to its first occurrence.
    const stop = lp[4].trim().length ? lp[4].trim() : lp[5];
    const at = full.indexOf(stop);
    assert.ok(at > 0);
    const r = await client.completions.create({ ...base, stop: [stop, 'zzzzqqq'] });
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.choices[0].stop_reason, stop);
    assert.equal(r.choices[0].text, full.slice(0, at));
    const inc = await postJSON(`${server.baseURL}/completions`, { ...base, stop, include_stop_str_in_output: true });
    assert.equal(inc.json.choices[0].text, full.slice(0, at + stop.length));
    const streamed = await collect(await client.completions.create({ ...base, stop, stream: true }));
    const got = byIndex(streamed).get(0);
    assert.equal(got.text, full.slice(0, at));
    assert.deepEqual(got.finish, ['stop']);
  });

  it('max_tokens, min_tokens, stop_token_ids and ignore_eos', async () => {
    const base = { model: MODEL, prompt: 'San Francisco is a', temperature: 0 };
    const five = await client.completions.create({ ...base, max_tokens: 5 });
    assert.equal(five.usage.completion_tokens, 5);
    const ids = (await postJSON(`${server.baseURL}/completions`, { ...base, max_tokens: 8, return_token_ids: true })).json.choices[0].token_ids;
    assert.equal(ids.length, 8);
    const stopAt = ids.indexOf(ids[2]);  // its first occurrence
    const stopped = await postJSON(`${server.baseURL}/completions`, { ...base, max_tokens: 8, stop_token_ids: [ids[2]] });
    assert.equal(stopped.json.choices[0].finish_reason, 'stop');
    assert.equal(stopped.json.choices[0].stop_reason, ids[2]);
    assert.equal(stopped.json.usage.completion_tokens, stopAt + 1);
    // min_tokens blocks the stop token until that many tokens exist.
    const min = await postJSON(`${server.baseURL}/completions`, { ...base, max_tokens: 8, stop_token_ids: [ids[2]], min_tokens: 6 });
    assert.ok(min.json.usage.completion_tokens >= 6, JSON.stringify(min.json.usage));
    const ign = await client.completions.create({ ...base, max_tokens: 20, ignore_eos: true });
    assert.equal(ign.usage.completion_tokens, 20);
  });

  it('token-id prompts and lists of prompts', async () => {
    const tok = await postJSON(`${server.url}/tokenize`, { model: MODEL, prompt: 'San Francisco is a' });
    assert.equal(tok.status, 200);
    assert.equal(tok.json.count, 4);
    assert.equal(tok.json.max_model_len, 2048);
    const a = await client.completions.create({ model: MODEL, prompt: 'San Francisco is a', max_tokens: 5, temperature: 0 });
    const b = await client.completions.create({ model: MODEL, prompt: tok.json.tokens, max_tokens: 5, temperature: 0 });
    assert.equal(b.choices[0].text, a.choices[0].text);
    const many = await client.completions.create({ model: MODEL, prompt: ['San Francisco is a', 'Hello'], n: 2, max_tokens: 3, temperature: 0.5, seed: 3 });
    assert.deepEqual(many.choices.map((c) => c.index), [0, 1, 2, 3]);
    assert.equal(many.usage.prompt_tokens, 4 + 1);
    assert.equal(many.usage.completion_tokens, 12);
    const ids2 = await postJSON(`${server.baseURL}/completions`, { model: MODEL, prompt: [tok.json.tokens, [15496]], max_tokens: 2 });
    assert.equal(ids2.status, 200);
    assert.equal(ids2.json.choices.length, 2);
    const s = await streamRaw(`${server.baseURL}/completions`, { model: MODEL, prompt: ['a', 'b'], n: 2, max_tokens: 3 });
    const finishes = s.events.slice(0, -1).flatMap((c) => c.choices.filter((ch) => ch.finish_reason).map((ch) => ch.index));
    assert.deepEqual(finishes.sort(), [0, 1, 2, 3]);
  });

  it('request id: X-Request-Id is echoed and names the completion', async () => {
    const r = await postJSON(`${server.baseURL}/completions`, { model: MODEL, prompt: 'Hi', max_tokens: 1 }, { 'X-Request-Id': 'my-req-42' });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-request-id'), 'my-req-42');
    assert.equal(r.json.id, 'cmpl-my-req-42');
  });

  it('models, health, version, tokenize, detokenize, metrics', async () => {
    const models = await client.models.list();
    const ids = [];
    for await (const m of models) ids.push(m);
    assert.equal(ids.length, 1);
    assert.equal(ids[0].id, MODEL);
    assert.equal(ids[0].object, 'model');
    assert.equal(ids[0].owned_by, 'vllm');
    assert.equal(ids[0].max_model_len, 2048);
    const health = await fetch(`${server.url}/health`);
    assert.equal(health.status, 200);
    const version = await (await fetch(`${server.url}/version`)).json();
    assert.equal(typeof version.version, 'string');
    const tok = await postJSON(`${server.url}/tokenize`, { prompt: 'Hello world', return_token_strs: true });
    assert.deepEqual(tok.json.token_strs.length, tok.json.count);
    const detok = await postJSON(`${server.url}/detokenize`, { tokens: tok.json.tokens });
    assert.equal(detok.json.prompt, 'Hello world');
    const res = await fetch(`${server.url}/metrics`);
    assert.match(res.headers.get('content-type'), /^text\/plain/);
    const text = await res.text();
    for (const name of ['vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:kv_cache_usage_perc',
      'vllm:prefix_cache_queries_total', 'vllm:prefix_cache_hits_total', 'vllm:num_preemptions_total',
      'vllm:prompt_tokens_total', 'vllm:generation_tokens_total', 'vllm:time_to_first_token_seconds_count',
      'vllm:inter_token_latency_seconds_count', 'vllm:e2e_request_latency_seconds_count',
      'vllm:request_prompt_tokens_count', 'vllm:request_generation_tokens_count']) {
      const v = metric(text, name, `model_name="${MODEL}"`);
      assert.ok(v !== undefined, `${name} missing`);
    }
    assert.ok(metric(text, 'vllm:generation_tokens_total') > 0);
    assert.ok(metric(text, 'vllm:request_success_total', 'finished_reason="length"') > 0);
    assert.match(text, /# TYPE vllm:e2e_request_latency_seconds histogram/);
    assert.match(text, /vllm:e2e_request_latency_seconds_bucket\{[^}]*le="\+Inf"[^}]*\} \d/);
  });

  it('raw HTTP: pipelining, HTTP/1.0 streaming, 100-continue, malformed requests', async () => {
    const port = Number(new URL(server.url).port);
    // Sends raw bytes, returns everything the server sends until it closes (or a timeout).
    const raw = (data, { waitContinue = false } = {}) => new Promise((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1');
      let out = '';
      const timer = setTimeout(() => { sock.destroy(); resolve(out); }, 5000);
      sock.on('data', (d) => {
        out += d.toString();
        if (waitContinue && out.startsWith('HTTP/1.1 100 Continue\r\n\r\n') && !sock.sentBody) {
          sock.sentBody = true;
          sock.write(waitContinue);
        }
      });
      sock.on('end', () => { clearTimeout(timer); resolve(out); });
      sock.on('error', reject);
      sock.write(data);
    });
    const pipelined = await raw('GET /version HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(pipelined.match(/HTTP\/1\.1 200 OK/g).length, 2);
    assert.match(pipelined, /\{"version":"[^"]+"\}HTTP\/1\.1 200 OK/);
    const body = JSON.stringify({ model: MODEL, prompt: 'Hi', max_tokens: 3, stream: true });
    const http10 = await raw(`POST /v1/completions HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    assert.match(http10, /^HTTP\/1\.0 200 OK\r\n/);
    assert.doesNotMatch(http10, /transfer-encoding/i);
    assert.match(http10, /data: \[DONE\]\n\n$/);
    const plain = JSON.stringify({ model: MODEL, prompt: 'Hi', max_tokens: 2 });
    const cont = await raw(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nConnection: close\r\nContent-Length: ${plain.length}\r\n\r\n`, { waitContinue: plain });
    assert.match(cont, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
    const garbage = await raw('NOT HTTP AT ALL\r\n\r\n');
    assert.match(garbage, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(garbage, /"type":"BadRequestError"/);
  });

  it('CORS: preflight and allow-origin on responses', async () => {
    const pre = await fetch(`${server.baseURL}/completions`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://example.com', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,authorization' },
    });
    assert.equal(pre.status, 200);
    assert.equal(pre.headers.get('access-control-allow-origin'), '*');
    assert.match(pre.headers.get('access-control-allow-methods'), /POST/);
    assert.equal(pre.headers.get('access-control-allow-headers'), 'content-type,authorization');
    const r = await fetch(`${server.url}/v1/models`, { headers: { Origin: 'http://example.com' } });
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
  });
});
