// Hostile clients (issue 20): every attack gets a 400/413/501/503 (OpenAI's error shape on API
// routes) and the server stays up and serves a normal request right after. Deep JSON, huge
// objects, out-of-range numbers, HTTP framing tricks, too many prompts, a full waiting queue,
// and stream readers that stop reading.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import OpenAI from 'openai';
import { startServer, postJSON, metric, waitFor } from './harness.mjs';

function assertError(res, status, { type, message, param } = {}) {
  assert.equal(res.status, status, res.text?.slice(0, 500));
  assert.ok(res.json && res.json.error, `not an error body: ${res.text?.slice(0, 500)}`);
  const e = res.json.error;
  assert.deepEqual(Object.keys(e), ['message', 'type', 'param', 'code']);
  assert.equal(e.code, status);
  if (type) assert.equal(e.type, type);
  if (message instanceof RegExp) assert.match(e.message, message);
  else if (message) assert.equal(e.message, message);
  if (param !== undefined) assert.equal(e.param, param);
}

// Sends raw bytes on a fresh connection; resolves with everything the server sent once it
// closes the connection (or after `ms`, to catch hangs).
function rawExchange(port, bytes, ms = 30000) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no close within ${ms} ms; got ${data.slice(0, 300)}`)); }, ms);
    sock.on('data', (d) => { data += d.toString('latin1'); });
    sock.on('error', () => {});
    sock.on('close', () => { clearTimeout(timer); resolve(data); });
    sock.write(bytes);
  });
}

function statusOf(raw) {
  const m = raw.match(/^HTTP\/1\.[01] (\d{3})/);
  return m ? Number(m[1]) : undefined;
}

function bodyOf(raw) {
  return JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4));
}

// Removes HTTP/1.1 chunked framing (each chunk here holds whole SSE events).
function dechunk(raw) {
  let body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  let out = '';
  for (;;) {
    const eol = body.indexOf('\r\n');
    if (eol < 0) break;
    const size = parseInt(body.slice(0, eol), 16);
    if (!size) break;
    out += body.slice(eol + 2, eol + 2 + size);
    body = body.slice(eol + 2 + size + 2);
  }
  return out;
}

function sseEvents(text) {
  return text.split('\n\n').filter((b) => b.startsWith('data: ')).map((b) => b.slice(6)).map((d) => (d === '[DONE]' ? d : JSON.parse(d)));
}

const deep = (n) => '['.repeat(n) + ']'.repeat(n);

describe('hostile requests', () => {
  const MODEL = 'tiny-qwen3';
  const KEY = 'sk-hostile';
  const AUTH = { Authorization: `Bearer ${KEY}` };
  let server;
  let client;
  before(async () => {
    server = await startServer(MODEL, ['--api-key', KEY, '--disable-log-stats', '--disable-uvicorn-access-log']);
    client = new OpenAI({ baseURL: server.baseURL, apiKey: KEY, maxRetries: 0 });
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });
  // After every attack the server must still serve a normal request.
  afterEach(async () => {
    const r = await client.completions.create({ model: MODEL, prompt: 'ok', max_tokens: 2, ignore_eos: true });
    assert.equal(r.choices[0].finish_reason, 'length');
  });

  const routes = () => [
    [`${server.baseURL}/completions`, { model: MODEL, prompt: 'a', max_tokens: 1 }],
    [`${server.baseURL}/chat/completions`, { model: MODEL, messages: [{ role: 'user', content: 'a' }], max_tokens: 1 }],
    [`${server.url}/tokenize`, { model: MODEL, prompt: 'a' }],
    [`${server.url}/detokenize`, { model: MODEL, tokens: [1] }],
  ];
  const FIELDS = ['model', 'stop', 'max_tokens', 'temperature', 'logit_bias', 'stream_options', 'chat_template_kwargs', 'tools', 'messages'];
  const withField = (base, field, raw) => `${JSON.stringify(base).slice(0, -1)},"${field}":${raw}}`;

  it('JSON nested 100,000 deep (whole body or any field): 400, no crash', async () => {
    const bomb = deep(100000);
    for (const [url, base] of routes()) {
      assertError(await postJSON(url, bomb, AUTH), 400, { type: 'BadRequestError', message: /nested too deeply \(more than 1000 levels/ });
      for (const field of FIELDS) {
        assertError(await postJSON(url, withField(base, field, bomb), AUTH), 400, { message: /nested too deeply/ });
      }
    }
    // Objects too, and unbalanced input.
    const objects = '{"a":'.repeat(100000) + '1' + '}'.repeat(100000);
    assertError(await postJSON(`${server.url}/tokenize`, objects), 400, { message: /nested too deeply/ });
    assertError(await postJSON(`${server.url}/tokenize`, '['.repeat(100000)), 400, { message: /nested too deeply/ });
  });

  it('values nested just under the limit are ordinary bad values', async () => {
    // 999 levels inside the body's object: within the limit, so every code path that walks a
    // value (error excerpts, conversions, the chat template's values) must cope with it.
    const value = deep(999);
    for (const [url, base] of routes()) {
      for (const field of FIELDS) {
        const r = await postJSON(url, withField(base, field, value), AUTH);
        assert.ok(r.status === 200 || r.status === 400, `${url} ${field}: ${r.status} ${r.text.slice(0, 300)}`);
        if (r.status === 400) assert.ok(r.text.length < 2000, `error too long: ${r.text.length}`);
      }
    }
    const kw = await postJSON(`${server.baseURL}/chat/completions`,
      { model: MODEL, messages: [{ role: 'user', content: 'a' }], max_tokens: 1, chat_template_kwargs: { x: JSON.parse(deep(900)) } }, AUTH);
    assertError(kw, 400, { message: /nested too deeply/ });
  });

  it('objects with 160,000 keys parse in linear time, and other clients are not held up', async () => {
    // Each of these took 16-28 s with ordered_json's quadratic inserts, on the I/O threads.
    const keys = (n, value = '0', offset = 0) => Array.from({ length: n }, (_, i) => `"${i + offset}":${value}`).join(',');
    const bodies = [
      [`${server.baseURL}/completions`, `{"model":"${MODEL}","prompt":"a","max_tokens":1,${keys(160000).replace(/"(\d+)":/g, '"k$1":')}}`],
      [`${server.baseURL}/completions`, `{"model":"${MODEL}","prompt":"a","max_tokens":1,"logit_bias":{${keys(150000)}}}`],
      [`${server.baseURL}/chat/completions`, `{"model":"${MODEL}","messages":[{"role":"user","content":"a"}],"max_tokens":1,"chat_template_kwargs":{${keys(100000).replace(/"(\d+)":/g, '"k$1":')}}}`],
      [`${server.baseURL}/chat/completions`, `{"model":"${MODEL}","messages":[{"role":"user","content":"a"}],"max_tokens":1,"tools":[{"type":"function","function":{"name":"f",${keys(100000).replace(/"(\d+)":/g, '"k$1":')}}}]}`],
      [`${server.url}/tokenize`, `{"model":"${MODEL}","prompt":"a",${keys(160000).replace(/"(\d+)":/g, '"k$1":')}}`],
    ];
    const t0 = Date.now();
    const big = bodies.map(([url, body]) => postJSON(url, body, AUTH));
    // While those are parsed, the I/O threads still answer.
    assert.equal((await fetch(`${server.url}/health`)).status, 200);
    const chat = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    assert.equal(chat.choices.length, 1);
    // Served, or refused for what they are (the rendered tools do not fit the context), never a 5xx.
    const results = await Promise.all(big);
    for (const r of results) assert.ok(r.status === 200 || r.status === 400, `${r.status}: ${r.text.slice(0, 300)}`);
    assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 400, 200]);
    // Only a hang detector (16-28 s each before, a fraction of a second now).
    assert.ok(Date.now() - t0 < 60000, `took ${Date.now() - t0} ms`);
  });

  it('duplicate keys keep the last value, as Python does', async () => {
    const r = await postJSON(`${server.url}/tokenize`, `{"model":"${MODEL}","prompt":"first","prompt":"a b"}`);
    assert.equal(r.status, 200);
    const direct = await postJSON(`${server.url}/tokenize`, { model: MODEL, prompt: 'a b' });
    assert.deepEqual(r.json.tokens, direct.json.tokens);
  });

  it('numbers out of range: a validation error naming the field', async () => {
    assertError(await postJSON(`${server.baseURL}/completions`, `{"model":"${MODEL}","prompt":"a","max_tokens":1e400}`, AUTH), 400, {
      message: 'max_tokens: Input should be a finite number, got 1e400', param: 'max_tokens',
    });
    assertError(await postJSON(`${server.baseURL}/chat/completions`, `{"model":"${MODEL}","messages":[],"temperature":-1e999}`, AUTH), 400, {
      message: 'temperature: Input should be a finite number, got -1e999', param: 'temperature',
    });
    assertError(await postJSON(`${server.baseURL}/completions`, `{"model":"${MODEL}","prompt":"a","logit_bias":{"5":1${'0'.repeat(400)}}}`, AUTH), 400, {
      message: /^logit_bias\.5: Input should be a finite number, got 10000/, param: 'logit_bias',
    });
    // No library text anywhere.
    const r = await postJSON(`${server.baseURL}/completions`, { model: MODEL, prompt: 'a', logprobs: 'x' }, AUTH);
    assert.doesNotMatch(r.text, /json\.exception/);
  });

  it('HTTP framing: Transfer-Encoding other than chunked is 501; a missing or repeated Host is 400', async () => {
    const body = '{"prompt":"a"}';
    const chunked = `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    let raw = await rawExchange(server.port, `POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n${chunked}`);
    assert.equal(statusOf(raw), 501, raw);
    assert.match(bodyOf(raw).error.message, /Transfer-Encoding 'gzip, chunked' is not implemented/);
    raw = await rawExchange(server.port, `POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`);
    assert.equal(statusOf(raw), 501, raw);
    // Plain chunked works.
    raw = await rawExchange(server.port, `POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunked}`);
    assert.equal(statusOf(raw), 200, raw);
    raw = await rawExchange(server.port, `POST /tokenize HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    assert.equal(statusOf(raw), 400, raw);
    assert.match(bodyOf(raw).error.message, /missing Host header/);
    raw = await rawExchange(server.port, `POST /tokenize HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    assert.equal(statusOf(raw), 400, raw);
    assert.match(bodyOf(raw).error.message, /more than one Host header/);
    // HTTP/1.0 needs no Host.
    raw = await rawExchange(server.port, `POST /tokenize HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    assert.equal(statusOf(raw), 200, raw);
    // Keep-alive: responses with and without a body, one after the other on one connection
    // (an empty body once made the writer loop on zero-byte writes).
    raw = await rawExchange(server.port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /version HTTP/1.1\r\nHost: x\r\n\r\n' +
      'HEAD /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(raw.match(/HTTP\/1\.1 200 OK/g)?.length, 4, raw);
    assert.match(raw, /"version"/);
    // Content-Length and chunked together (request smuggling): refused.
    raw = await rawExchange(server.port, `POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`);
    assert.equal(statusOf(raw), 400, raw);
  });

  it('too many prompts or sequences in one request: 400 before any is tokenized', async () => {
    const many = await postJSON(`${server.baseURL}/completions`, { model: MODEL, prompt: Array(100000).fill('a'), max_tokens: 1 }, AUTH);
    assertError(many, 400, { message: 'This request has 100000 prompts, more than the 1024 one request may carry (--max-prompts-per-request).', param: 'prompt' });
    assertError(await postJSON(`${server.baseURL}/completions`, { model: MODEL, prompt: Array(1025).fill([1, 2]), max_tokens: 1 }, AUTH), 400, { param: 'prompt' });
    assertError(await postJSON(`${server.baseURL}/completions`, { model: MODEL, prompt: ['a', 'b'], n: 600, max_tokens: 1 }, AUTH), 400, {
      message: /asks for 2 x 600 sequences/, param: 'n',
    });
    assertError(await postJSON(`${server.baseURL}/chat/completions`, { model: MODEL, messages: [{ role: 'user', content: 'a' }], n: 2, best_of: 100000, max_tokens: 1 }, AUTH), 400, { param: 'n' });
    // At the limit it is served.
    const ok = await postJSON(`${server.baseURL}/completions`, { model: MODEL, prompt: Array(64).fill([1, 2]), n: 16, temperature: 1, max_tokens: 1 }, AUTH);
    assert.equal(ok.status, 200, ok.text.slice(0, 300));
    assert.equal(ok.json.choices.length, 1024);
  });
});

describe('admission limit (--max-waiting-requests)', () => {
  const MODEL = 'tiny-phi';
  let server;
  before(async () => {
    server = await startServer(MODEL, ['--disable-log-stats', '--disable-uvicorn-access-log', '--max-num-seqs', '1', '--max-waiting-requests', '2']);
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  it('past the limit: 503 with Retry-After, counted in /metrics', async () => {
    const long = () => {
      const ctrl = new AbortController();
      const done = fetch(`${server.baseURL}/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, signal: ctrl.signal,
        body: JSON.stringify({ model: MODEL, prompt: 'a', max_tokens: 1900, ignore_eos: true, stream: true }),
      }).then((r) => r.body.getReader().read()).catch(() => {});
      return { ctrl, done };
    };
    const metrics = async () => (await fetch(`${server.url}/metrics`)).text();
    const held = [long()];
    await waitFor('one running request', async () => metric(await metrics(), 'vllm:num_requests_running') === 1);
    held.push(long(), long());
    await waitFor('two waiting requests', async () => metric(await metrics(), 'vllm:num_requests_waiting') === 2);

    const r = await postJSON(`${server.baseURL}/completions`, { model: MODEL, prompt: 'a', max_tokens: 1 });
    assertError(r, 503, { type: 'ServiceUnavailableError', message: /overloaded: 2 requests are waiting \(--max-waiting-requests 2\)/ });
    assert.equal(r.headers.get('retry-after'), '1');
    const client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0 });
    await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'a' }] }), (e) => e.status === 503);
    let text = await metrics();
    assert.equal(metric(text, 'vllm:num_requests_rejected_total'), 2);
    assert.equal(metric(text, 'vllm:max_waiting_requests'), 2);
    assert.match(text, /# TYPE vllm:num_requests_rejected_total counter/);

    for (const h of held) h.ctrl.abort();
    text = await waitFor('idle', async () => {
      const t = await metrics();
      return metric(t, 'vllm:num_requests_running') === 0 && metric(t, 'vllm:num_requests_waiting') === 0 ? t : null;
    });
    assert.equal(metric(text, 'vllm:kv_cache_usage_perc'), 0);
    const ok = await postJSON(`${server.baseURL}/completions`, { model: MODEL, prompt: 'a', max_tokens: 2 });
    assert.equal(ok.status, 200);
  });
});

describe('slow stream readers (backpressure)', () => {
  const MODEL = 'tiny-phi';
  let server;
  before(async () => {
    // 1000 log-probs per token make ~30 KB events: streams that outgrow the kernel's socket
    // buffers (up to 4 MB on loopback) within a few hundred tokens.
    server = await startServer(MODEL, ['--disable-log-stats', '--disable-uvicorn-access-log', '--max-logprobs', '1000',
      '--max-stream-buffer-bytes', '65536', '--stalled-client-timeout', '3']);
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  const metrics = async () => (await fetch(`${server.url}/metrics`)).text();
  // A streamed completion of n x 150 tokens with 1000 log-probs each: some 4.5 MB per sequence.
  const request = (n) => {
    const body = JSON.stringify({ model: MODEL, prompt: 'a', max_tokens: 150, ignore_eos: true, logprobs: 1000, n, stream: true, stream_options: { include_usage: true } });
    return `POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  };
  // Waits until `n` sequences are paused and the token count holds still; returns that count.
  const stablePause = async (n) => {
    let last = -1;
    return waitFor(`${n} paused sequences`, async () => {
      const t = await metrics();
      const tokens = metric(t, 'vllm:generation_tokens_total');
      const paused = metric(t, 'vllm:num_requests_output_paused') === n;
      const stable = paused && tokens === last;
      last = paused ? tokens : -1;
      if (!stable) await new Promise((r) => setTimeout(r, 250));
      return stable ? tokens : null;
    });
  };
  // A client that sends the request and then reads nothing until told to.
  const slowClient = (n) => {
    const sock = net.connect(server.port, '127.0.0.1');
    sock.pause();
    const closed = new Promise((r) => sock.on('close', r));
    sock.on('error', () => {});
    sock.write(request(n));
    return { sock, closed };
  };

  it('a client that stops reading pauses its request (others run on) and resumes when it reads', async () => {
    const { sock, closed } = slowClient(2);
    // Its two sequences (n = 2) pause. (They may resume and pause again a few times while the
    // kernel grows the socket's send buffer; then the client's closed window stops that.)
    const tokens = await stablePause(2);
    assert.ok(tokens < 300, `generated ${tokens} of 300 tokens before pausing`);
    // Others are served meanwhile, and the paused request makes no progress.
    const other = await postJSON(`${server.baseURL}/completions`, { model: MODEL, prompt: 'b', max_tokens: 8, ignore_eos: true });
    assert.equal(other.status, 200);
    const after = metric(await metrics(), 'vllm:generation_tokens_total');
    assert.equal(after, tokens + 8);
    assert.equal(metric(await metrics(), 'vllm:num_requests_output_paused'), 2);
    // Now read everything: the stream completes, whole.
    let raw = '';
    sock.on('data', (d) => { raw += d.toString('latin1'); if (raw.endsWith('0\r\n\r\n')) sock.end(); });
    sock.resume();
    await closed;
    const events = sseEvents(dechunk(raw));
    assert.equal(events.at(-1), '[DONE]');
    assert.equal(events.at(-2).usage.completion_tokens, 300);
    const finishes = events.slice(0, -2).filter((e) => e.choices[0].finish_reason).map((e) => e.choices[0].finish_reason);
    assert.deepEqual(finishes, ['length', 'length']);
    const text = await metrics();
    assert.equal(metric(text, 'vllm:num_requests_output_paused'), 0);
    assert.equal(metric(text, 'vllm:request_success_total', 'finished_reason="abort"'), 0);
  });

  it('a client that never reads is disconnected after --stalled-client-timeout; its request is aborted', async () => {
    const before = metric(await metrics(), 'vllm:request_success_total', 'finished_reason="abort"');
    const lengthBefore = metric(await metrics(), 'vllm:request_success_total', 'finished_reason="length"');
    const { sock } = slowClient(2);
    await waitFor('the request to pause', async () => metric(await metrics(), 'vllm:num_requests_output_paused') === 2);
    // The server gives up on the connection after 3 s without progress and aborts the request
    // (a client that reads nothing may not even notice the close: watch the server instead).
    const text = await waitFor('the abort', async () => {
      const t = await metrics();
      return metric(t, 'vllm:request_success_total', 'finished_reason="abort"') > before &&
        metric(t, 'vllm:num_requests_running') === 0 && metric(t, 'vllm:num_requests_waiting') === 0 ? t : null;
    });
    sock.destroy();
    assert.equal(metric(text, 'vllm:request_success_total', 'finished_reason="length"'), lengthBefore);
    assert.equal(metric(text, 'vllm:kv_cache_usage_perc'), 0);
    assert.equal(metric(text, 'vllm:num_requests_output_paused'), 0);
  });
});

describe('paused requests and sequence slots', () => {
  const MODEL = 'tiny-phi';
  let server;
  before(async () => {
    server = await startServer(MODEL, ['--disable-log-stats', '--disable-uvicorn-access-log', '--max-num-seqs', '2', '--max-logprobs', '1000',
      '--max-stream-buffer-bytes', '65536', '--stalled-client-timeout', '120']);
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  it('clients that do not read cannot hold every slot', async () => {
    const metrics = async () => (await fetch(`${server.url}/metrics`)).text();
    const body = JSON.stringify({ model: MODEL, prompt: 'a', max_tokens: 300, ignore_eos: true, logprobs: 1000, n: 2, stream: true });
    const socks = [0, 1].map(() => {
      const sock = net.connect(server.port, '127.0.0.1');
      sock.pause();
      sock.on('error', () => {});
      sock.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      return sock;
    });
    // n = 2 each: two requests would fill both slots twice over; they pause, and are preempted
    // when a waiting request needs a slot.
    await waitFor('paused requests', async () => metric(await metrics(), 'vllm:num_requests_output_paused') >= 2);
    const ok = await postJSON(`${server.baseURL}/completions`, { model: MODEL, prompt: 'c', max_tokens: 4, ignore_eos: true });
    assert.equal(ok.status, 200, ok.text);
    assert.ok(metric(await metrics(), 'vllm:num_preemptions_total') >= 1);
    for (const s of socks) s.destroy();
    const text = await waitFor('idle', async () => {
      const t = await metrics();
      return metric(t, 'vllm:num_requests_running') === 0 && metric(t, 'vllm:num_requests_waiting') === 0 ? t : null;
    });
    assert.equal(metric(text, 'vllm:kv_cache_usage_perc'), 0);
  });
});
