// Tool calling and reasoning through `vllm serve` with the official openai client, on tiny-qwen3
// (Qwen3's tokenizer and chat template, which renders tools and <think> blocks) served with
// --enable-auto-tool-choice --tool-call-parser hermes --reasoning-parser qwen3 (constraints
// covering the reasoning too, so that a test can write a <think> block with a grammar).
//
// A random-weight model won't decide to call a tool, so: tool_choice "required" and a named
// function constrain the output (the calls then always parse, and their arguments are checked
// against the tool's schema by ajv); "auto" is tested by constraining the output with a regex to
// a hermes tool-call block and checking what the parser makes of it; reasoning likewise, with
// a grammar that writes a <think> block.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, postJSON } from './harness.mjs';
import { validates, WEATHER } from './schemas.mjs';


const MODEL = 'tiny-qwen3';
const TIME = {
  type: 'object',
  properties: { zone: { type: 'string', enum: ['UTC', 'CET'] } },
  required: ['zone'],
  additionalProperties: false,
};
const TOOLS = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather forecast', parameters: WEATHER } },
  { type: 'function', function: { name: 'get_time', description: 'Current time', parameters: TIME } },
];
const SCHEMAS = { get_weather: WEATHER, get_time: TIME };
const ASK = [{ role: 'user', content: 'What is the weather in Paris for 3 days?' }];
// Thinking off: the template closes an empty <think> block, so the answer starts at once.
const NO_THINKING = { chat_template_kwargs: { enable_thinking: false } };

function checkCall(call, names = Object.keys(SCHEMAS)) {
  assert.equal(call.type, 'function');
  assert.match(call.id, /^chatcmpl-tool-[0-9a-f]{32}$/);
  assert.ok(names.includes(call.function.name), call.function.name);
  return validates(SCHEMAS[call.function.name], JSON.parse(call.function.arguments), call.function.arguments);
}

// Joins a stream's chunks into one message per choice, as OpenAI's clients do.
async function collect(stream) {
  const msg = { content: '', reasoning: '', tool_calls: [], finish_reason: null };
  for await (const chunk of stream) {
    for (const ch of chunk.choices) {
      const d = ch.delta;
      if (d.content) msg.content += d.content;
      if (d.reasoning) msg.reasoning += d.reasoning;
      for (const tc of d.tool_calls ?? []) {
        if (!msg.tool_calls[tc.index]) {
          // The first delta of a call has its id, type and whole name.
          assert.ok(tc.id && tc.type === 'function' && tc.function?.name, JSON.stringify(tc));
          msg.tool_calls[tc.index] = { id: tc.id, type: 'function', function: { name: tc.function.name, arguments: '' } };
        } else {
          assert.equal(tc.function?.name, undefined, 'a later delta repeats the name');
        }
        msg.tool_calls[tc.index].function.arguments += tc.function?.arguments ?? '';
      }
      if (ch.finish_reason) msg.finish_reason = ch.finish_reason;
    }
  }
  return msg;
}

describe(`tool calling and reasoning on ${MODEL}`, () => {
  let server;
  let client;
  before(async () => {
    server = await startServer(MODEL, ['--disable-log-stats', '--disable-uvicorn-access-log', '--enable-auto-tool-choice',
      '--tool-call-parser', 'hermes', '--reasoning-parser', 'qwen3',
      '--structured-outputs-config', '{"disable_any_whitespace": true, "enable_in_reasoning": true}']);
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  it('tool_choice "required": calls whose arguments fit their tool, whole and streamed alike', async () => {
    for (let seed = 0; seed < 3; seed++) {
      const req = { model: MODEL, messages: ASK, tools: TOOLS, tool_choice: 'required', temperature: 1.0, seed,
        max_tokens: 200, parallel_tool_calls: false, ...NO_THINKING };
      const r = await client.chat.completions.create(req);
      const c = r.choices[0];
      assert.equal(c.finish_reason, 'tool_calls', JSON.stringify(c));
      assert.equal(c.message.tool_calls.length, 1);  // parallel_tool_calls: false
      checkCall(c.message.tool_calls[0]);
      const s = await collect(await client.chat.completions.create({ ...req, stream: true }));
      assert.equal(s.finish_reason, 'tool_calls');
      assert.equal(s.content, '');
      assert.deepEqual(s.tool_calls.map((t) => [t.function.name, t.function.arguments]),
        c.message.tool_calls.map((t) => [t.function.name, t.function.arguments]));
    }
  });

  it('a named function: its arguments, validated; streamed arguments join to the same', async () => {
    const req = { model: MODEL, messages: ASK, tools: TOOLS, temperature: 1.0, seed: 5, max_tokens: 100,
      tool_choice: { type: 'function', function: { name: 'get_time' } }, ...NO_THINKING };
    const r = await client.chat.completions.create(req);
    const call = r.choices[0].message.tool_calls[0];
    checkCall(call, ['get_time']);
    const s = await collect(await client.chat.completions.create({ ...req, stream: true }));
    assert.equal(s.tool_calls.length, 1);
    assert.equal(s.tool_calls[0].function.arguments, call.function.arguments);
    assert.equal(s.finish_reason, 'tool_calls');
  });

  it('"auto": a hermes block in the output becomes tool_calls, never content', async () => {
    const block = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "(Paris|Rome)", "days": [1-7]}}\n</tool_call>';
    const regex = 'Sure\\. ' + block.replace(/[{}]/g, (m) => '\\' + m);
    const req = { model: MODEL, messages: ASK, tools: TOOLS, tool_choice: 'auto', temperature: 1.0, seed: 1,
      max_tokens: 120, structured_outputs: { regex }, ...NO_THINKING };
    const r = await client.chat.completions.create(req);
    const c = r.choices[0];
    assert.equal(c.finish_reason, 'tool_calls', JSON.stringify(c));
    assert.equal(c.message.tool_calls.length, 1);
    const args = checkCall(c.message.tool_calls[0], ['get_weather']);
    assert.ok(['Paris', 'Rome'].includes(args.city));
    assert.equal(c.message.content, 'Sure. ');
    const s = await collect(await client.chat.completions.create({ ...req, stream: true }));
    assert.equal(s.content, 'Sure. ');
    assert.equal(s.finish_reason, 'tool_calls');
    assert.deepEqual(JSON.parse(s.tool_calls[0].function.arguments), args);
    // Without tools in the request nothing is parsed: the block is plain content.
    const plain = await client.chat.completions.create({ ...req, tools: undefined, tool_choice: undefined });
    assert.match(plain.choices[0].message.content, /<tool_call>/);
    assert.deepEqual(plain.choices[0].message.tool_calls, []);
  });

  it('a tool result fed back renders through the template (two turns)', async () => {
    const first = await client.chat.completions.create({ model: MODEL, messages: ASK, tools: TOOLS, tool_choice: 'required',
      parallel_tool_calls: false, temperature: 0, max_tokens: 200, ...NO_THINKING });
    const call = first.choices[0].message.tool_calls[0];
    const messages = [...ASK, { role: 'assistant', content: null, tool_calls: [call] },
      { role: 'tool', tool_call_id: call.id, content: '{"forecast": "sunny"}' }];
    const tok = await postJSON(`${server.baseURL.replace(/\/v1$/, '')}/tokenize`, { model: MODEL, messages, tools: TOOLS });
    assert.equal(tok.status, 200, tok.text);
    const second = await client.chat.completions.create({ model: MODEL, messages, tools: TOOLS, tool_choice: 'none',
      temperature: 0, max_tokens: 8, ...NO_THINKING });
    // The prompt holds the call and its result: exactly the tokens /tokenize counts with the
    // generation prompt and the closed thinking block (the template's own tail).
    assert.ok(second.usage.prompt_tokens > first.usage.prompt_tokens + 10, JSON.stringify(second.usage));
    assert.deepEqual(second.choices[0].message.tool_calls, []);
  });

  it('reasoning: a <think> block goes to reasoning (and reasoning_content), the rest to content', async () => {
    // Thinking on: the template leaves the block to the model; the grammar writes one.
    const grammar = 'root ::= "<think>" [a-z ]{4,30} "</think>" "\\n\\n" "The answer is " [0-9]{1,3} "."';
    const req = { model: MODEL, messages: [{ role: 'user', content: 'Count.' }], temperature: 1.0, seed: 3,
      max_tokens: 80, structured_outputs: { grammar } };
    const raw = await postJSON(`${server.baseURL}/chat/completions`, req);
    assert.equal(raw.status, 200, raw.text);
    const m = raw.json.choices[0].message;
    assert.equal(raw.json.choices[0].finish_reason, 'stop', raw.text);
    assert.match(m.reasoning, /^[a-z ]{4,30}$/);
    assert.equal(m.reasoning_content, m.reasoning);
    assert.match(m.content, /^\s*The answer is [0-9]{1,3}\.$/);
    const s = await collect(await client.chat.completions.create({ ...req, stream: true }));
    assert.equal(s.reasoning, m.reasoning);
    assert.equal(s.content, m.content);
    const hidden = await postJSON(`${server.baseURL}/chat/completions`, { ...req, include_reasoning: false });
    assert.equal(hidden.json.choices[0].message.reasoning, null);
    assert.equal(hidden.json.choices[0].message.content, m.content);
  });

  it('errors as vLLM gives them', async () => {
    const url = `${server.baseURL}/chat/completions`;
    let r = await postJSON(url, { model: MODEL, messages: ASK, tool_choice: 'required' });
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /`tools` must be set/);
    r = await postJSON(url, { model: MODEL, messages: ASK, tools: TOOLS, tool_choice: { type: 'function', function: { name: 'nope' } } });
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /does not match any of the specified `tools`/);
    r = await postJSON(url, { model: MODEL, messages: ASK, tools: [] });
    assert.equal(r.status, 400);
    r = await postJSON(url, { model: MODEL, messages: ASK, tools: TOOLS, tool_choice: 'sometimes' });
    assert.equal(r.status, 400);
    // A past call whose arguments are not JSON, or hold a number past a double's range: a 400, not a 500.
    for (const args of ['{"a": ', '{"a": 1e400}']) {
      const history = [...ASK, { role: 'assistant', tool_calls: [{ id: 'c1', type: 'function',
        function: { name: 'get_weather', arguments: args } }] }, { role: 'tool', tool_call_id: 'c1', content: 'sunny' }];
      r = await postJSON(url, { model: MODEL, messages: history, tools: TOOLS, max_tokens: 2 });
      assert.equal(r.status, 400, r.text);
      assert.match(r.json.error.message, /function\.arguments is not valid JSON/);
    }
  });
});

describe('--reasoning-parser qwen3 without --enable-auto-tool-choice', () => {
  let server;
  let client;
  before(async () => {
    server = await startServer(MODEL, ['--disable-log-stats', '--disable-uvicorn-access-log', '--reasoning-parser', 'qwen3']);
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  it('a JSON schema applies to the answer after the reasoning', async () => {
    // Thinking on: the output starts inside the reasoning, free text up to </think>, then the
    // schema. A random model would ramble; a bias on </think> (token 151668) ends the reasoning
    // at once, and the answer must still be the schema's.
    const schema = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'], additionalProperties: false };
    for (let seed = 0; seed < 3; seed++) {
      const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'ok?' }], seed,
        temperature: 1.0, max_tokens: 40, logit_bias: { 151668: 100 },
        response_format: { type: 'json_schema', json_schema: { name: 'x', schema } } });
      const c = r.choices[0];
      assert.equal(c.finish_reason, 'stop', JSON.stringify(c));
      assert.deepEqual(Object.keys(JSON.parse(c.message.content)), ['ok'], JSON.stringify(c.message));
      assert.ok(!c.message.content.includes('think'));
    }
    // Without the bias nothing ends the reasoning: all of the (cut) output is reasoning.
    const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'ok?' }], seed: 1,
      temperature: 1.0, max_tokens: 12, response_format: { type: 'json_schema', json_schema: { name: 'x', schema } } });
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.choices[0].message.content, null);
    assert.ok(r.choices[0].message.reasoning.length > 0);
  });

  it('tool_choice "auto" with tools is a 400 naming the flags; "none" and "required" work', async () => {
    {
      const url = `${server.baseURL}/chat/completions`;
      let r = await postJSON(url, { model: MODEL, messages: ASK, tools: TOOLS, max_tokens: 4, ...NO_THINKING });
      assert.equal(r.status, 400);
      assert.match(r.json.error.message, /--enable-auto-tool-choice/);
      r = await postJSON(url, { model: MODEL, messages: ASK, tools: TOOLS, tool_choice: 'none', max_tokens: 4, ...NO_THINKING });
      assert.equal(r.status, 200, r.text);
      r = await postJSON(url, { model: MODEL, messages: ASK, tools: TOOLS, tool_choice: 'required', max_tokens: 200,
        temperature: 0, ...NO_THINKING });
      assert.equal(r.status, 200, r.text);
    }
  });
});
