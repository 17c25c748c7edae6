// Every error `vllm serve` answers: status, OpenAI/vLLM error body, and a server that still
// serves afterwards. The server runs with an API key.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, postJSON } from './harness.mjs';

const MODEL = 'tiny-phi';
const KEY = 'sk-test-key';
const AUTH = { Authorization: `Bearer ${KEY}` };
let server;
let client;

before(async () => {
  server = await startServer(MODEL, ['--api-key', KEY, '--disable-log-stats', '--disable-uvicorn-access-log', '--trust-request-chat-template']);
  client = new OpenAI({ baseURL: server.baseURL, apiKey: KEY, maxRetries: 0 });
});
after(async () => {
  assert.equal(await server.stop(), 0);
});
// After every error the server must still serve a normal request.
afterEach(async () => {
  const r = await client.completions.create({ model: MODEL, prompt: 'ok', max_tokens: 2 });
  assert.equal(r.choices[0].finish_reason, 'length');
});

function assertError(res, status, { type, message, param } = {}) {
  assert.equal(res.status, status, res.text);
  assert.ok(res.json && res.json.error, `not an error body: ${res.text}`);
  const e = res.json.error;
  assert.deepEqual(Object.keys(e), ['message', 'type', 'param', 'code']);
  assert.equal(e.code, status);
  assert.equal(typeof e.message, 'string');
  if (type) assert.equal(e.type, type);
  if (message instanceof RegExp) assert.match(e.message, message);
  else if (message) assert.equal(e.message, message);
  if (param !== undefined) assert.equal(e.param, param);
}

const completions = () => `${server.baseURL}/completions`;
const post = (body, headers = AUTH) => postJSON(completions(), body, headers);

describe('errors', () => {
  it('400: malformed JSON and wrong content type', async () => {
    assertError(await post('{"prompt": "a", '), 400, { type: 'BadRequestError', message: /^JSON decode error/ });
    const r = await fetch(completions(), { method: 'POST', headers: { ...AUTH, 'content-type': 'text/plain' }, body: '{}' });
    assertError({ status: r.status, json: await r.json(), text: '' }, 400, { message: /Only 'application\/json' is allowed/ });
  });

  it('400: wrong types name the field', async () => {
    assertError(await post({ model: MODEL, prompt: 'a', max_tokens: 'ten' }), 400, { message: /max_tokens must be an integer/ });
    assertError(await post({ model: MODEL, prompt: 'a', temperature: 'hot' }), 400, { message: /temperature must be a number/ });
    assertError(await post({ model: MODEL, prompt: 12 }), 400, { param: 'prompt' });
    assertError(await post({ model: MODEL, prompt: 'a', stream: 'yes' }), 400, { message: /stream must be a boolean/ });
    assertError(await post({ model: MODEL, prompt: 'a', stop: 5 }), 400, { message: /stop/ });
    assertError(await post({ model: MODEL }), 400, { message: 'Either prompt or prompt_embeds must be provided and non-empty.' });
  });

  it('400: out-of-range values carry the SamplingParams messages', async () => {
    assertError(await post({ model: MODEL, prompt: 'a', temperature: -1 }), 400, { message: /temperature must be non-negative/ });
    assertError(await post({ model: MODEL, prompt: 'a', top_p: 1.5 }), 400, { message: /top_p must be in \(0, 1\]/ });
    assertError(await post({ model: MODEL, prompt: 'a', n: 0 }), 400, { message: /n must be at least 1/ });
    assertError(await post({ model: MODEL, prompt: 'a', max_tokens: 0 }), 400, { message: /max_tokens must be at least 1/ });
    assertError(await post({ model: MODEL, prompt: 'a', logprobs: -2 }), 400, { message: '`logprobs` must be a positive value or -1.' });
  });

  it('400: prompt plus max_tokens beyond the model length', async () => {
    const prompt = Array.from({ length: 2040 }, (_, i) => 100 + (i % 1000));
    assertError(await post({ model: MODEL, prompt, max_tokens: 16 }), 400, {
      message: "You passed 2040 input tokens and requested 16 output tokens. However, the model's context length is only 2048 tokens, resulting in a maximum input length of 2032 tokens. Please reduce the length of the input prompt.",
      param: 'input_tokens',
    });
    assertError(await post({ model: MODEL, prompt: 'a', max_tokens: 5000 }), 400, { message: /max_tokens=5000 cannot be greater than max_model_len=2048/ });
    // A text that cannot fit is refused before it is tokenized.
    assertError(await post({ model: MODEL, prompt: 'x '.repeat(400000), max_tokens: 16 }), 400, {
      message: /^You passed 800000 input characters and requested 16 output tokens\. However, the model's context length is only 2048 tokens, resulting in a maximum input length of 2032 tokens \(at most \d+ characters\)\. Please reduce the length of the input prompt\.$/,
      param: 'input_text',
    });
    // The same prompt fits with a smaller max_tokens.
    const ok = await post({ model: MODEL, prompt, max_tokens: 8 });
    assert.equal(ok.status, 200);
  });

  it('400: token ids out of the vocabulary', async () => {
    assertError(await post({ model: MODEL, prompt: [1, 2, 60000] }), 400, { message: 'Token id 60000 is out of vocabulary' });
    assertError(await post({ model: MODEL, prompt: [1, -2] }), 400, { param: 'prompt' });
    assertError(await post({ model: MODEL, prompt: 'a', stop_token_ids: [99999] }), 400, { message: /out-of-vocab/ });
    assertError(await postJSON(`${server.url}/detokenize`, { tokens: [70000] }), 400, { message: 'Token id 70000 is out of vocabulary' });
  });

  it('400: logprobs above the limit', async () => {
    assertError(await post({ model: MODEL, prompt: 'a', logprobs: 25 }), 400, { message: 'Requested sample logprobs of 25, which is greater than max allowed: 20' });
    assertError(await post({ model: MODEL, prompt: 'a', prompt_logprobs: 21 }), 400, { message: /Requested prompt logprobs of 21/ });
    const chat = await postJSON(`${server.baseURL}/chat/completions`, { model: MODEL, messages: [{ role: 'user', content: 'hi' }], top_logprobs: 3 }, AUTH);
    assertError(chat, 400, { message: 'when using `top_logprobs`, `logprobs` must be set to true.' });
  });

  it('400: stream_options without stream, prompt_logprobs with stream, suffix, priority', async () => {
    assertError(await post({ model: MODEL, prompt: 'a', stream_options: { include_usage: true } }), 400, {
      message: 'Stream options can only be defined when `stream=True`.', param: 'stream_options',
    });
    assertError(await post({ model: MODEL, prompt: 'a', stream: true, prompt_logprobs: 1 }), 400, { message: '`prompt_logprobs` are not available when `stream=True`.' });
    assertError(await post({ model: MODEL, prompt: 'a', suffix: 'b' }), 400, { message: 'suffix is not currently supported' });
    assertError(await post({ model: MODEL, prompt: 'a', priority: 3 }), 400, { message: /Priority scheduling is not enabled/ });
    assertError(await post({ model: MODEL, prompt: 'a', cache_salt: '' }), 400, { message: /cache_salt/ });
    // A bad streaming request is answered before any event: a plain JSON error.
    const r = await post({ model: MODEL, prompt: 'a', stream: true, temperature: -3 });
    assertError(r, 400, { message: /temperature/ });
  });

  it('400: chat without a chat template, and bad messages', async () => {
    const url = `${server.baseURL}/chat/completions`;
    assertError(await postJSON(url, { model: MODEL, messages: [{ role: 'user', content: 'hi' }] }, AUTH), 400, {
      message: /default chat template is no longer allowed/,
    });
    assertError(await postJSON(url, { model: MODEL, messages: 'hi' }, AUTH), 400, { param: 'messages' });
    assertError(await postJSON(url, { model: MODEL, messages: [{ content: 'hi' }] }, AUTH), 400, { param: 'messages' });
    const tmpl = '{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}';
    assertError(await postJSON(url, { model: MODEL, messages: [{ role: 'user', content: 'hi' }], chat_template: tmpl, add_generation_prompt: true, continue_final_message: true }, AUTH), 400, {
      message: 'Cannot set both `continue_final_message` and `add_generation_prompt` to True.',
    });
    assertError(await postJSON(url, { model: MODEL, messages: [{ role: 'user', content: 'hi' }], chat_template: '{% if %}' }, AUTH), 400, { param: 'chat_template' });
    assertError(await postJSON(url, { model: MODEL, messages: [{ role: 'user', content: 'hi' }], chat_template: tmpl, tools: [] }, AUTH), 400, { param: 'tools' });
    assertError(await postJSON(url, { model: MODEL, messages: [{ role: 'user', content: 'hi' }], chat_template: tmpl, tool_choice: 'auto' }, AUTH), 400, {
      message: 'When using `tool_choice`, `tools` must be set.',
    });
    assertError(await postJSON(url, { model: MODEL, messages: [{ role: 'user', content: 'hi' }], chat_template: tmpl, tools: [{ type: 'function', function: { name: 5 } }] }, AUTH), 400, { param: 'tools' });
    assertError(await postJSON(url, { model: MODEL, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://x' } }] }], chat_template: tmpl }, AUTH), 400, { message: /not supported/ });
    // With a request template it works.
    const ok = await postJSON(url, { model: MODEL, messages: [{ role: 'user', content: 'hi' }], chat_template: tmpl, max_tokens: 3 }, AUTH);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.usage.completion_tokens, 3);
  });

  it('401: missing or wrong API key on /v1 routes only', async () => {
    assertError(await post({ model: MODEL, prompt: 'a' }, {}), 401, { message: 'Unauthorized' });
    assertError(await post({ model: MODEL, prompt: 'a' }, { Authorization: 'Bearer nope' }), 401);
    const models = await fetch(`${server.baseURL}/models`);
    assert.equal(models.status, 401);
    const bad = new OpenAI({ baseURL: server.baseURL, apiKey: 'wrong', maxRetries: 0 });
    await assert.rejects(bad.completions.create({ model: MODEL, prompt: 'a' }), (e) => e.status === 401);
    assert.equal((await fetch(`${server.url}/health`)).status, 200);
    assert.equal((await fetch(`${server.url}/metrics`)).status, 200);
    assert.equal((await postJSON(`${server.url}/tokenize`, { prompt: 'a' })).status, 200);
  });

  it('404: unknown model or route', async () => {
    assertError(await post({ model: 'gpt-4', prompt: 'a' }), 404, { type: 'NotFoundError', message: 'The model `gpt-4` does not exist.', param: 'model' });
    await assert.rejects(client.completions.create({ model: 'nope', prompt: 'a' }), (e) => e.status === 404 && /does not exist/.test(e.message));
    const r = await fetch(`${server.baseURL}/nothing`, { headers: AUTH });
    assertError({ status: r.status, json: await r.json(), text: '' }, 404, { type: 'NotFoundError' });
  });

  it('405: wrong method', async () => {
    const r = await fetch(completions(), { headers: AUTH });
    assertError({ status: r.status, json: await r.json(), text: '' }, 405);
    assert.equal(r.headers.get('allow'), 'POST');
    const m = await fetch(`${server.url}/metrics`, { method: 'POST' });
    assert.equal(m.status, 405);
  });

  it('413: body over the limit', async () => {
    const big = JSON.stringify({ model: MODEL, prompt: 'x'.repeat(33 * 1024 * 1024) });
    const r = await fetch(completions(), { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json' }, body: big });
    const res = { status: r.status, json: await r.json(), text: '' };
    assertError(res, 413);
  });
});
