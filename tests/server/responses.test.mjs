// /v1/responses (OpenAI's Responses API as vLLM serves it) with the official openai client:
// response objects and their usage, the streamed events (order, sequence numbers, deltas that
// join into the final text), instructions and previous_response_id continuations (the prompt
// checked token for token against the chat rendering through /tokenize), function tools and
// function_call / function_call_output items, text.format constrained output, the store
// (retrieve, delete, store: false, the LRU bound) and 400s in OpenAI's shape with `param`.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, postJSON } from './harness.mjs';
import { validates } from './schemas.mjs';

const MODEL = 'tiny-qwen3';
const TOOL = {
  type: 'function',
  name: 'get_weather',
  description: 'Weather of a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
// The same tool in the chat completions shape, for /tokenize.
const CHAT_TOOL = { type: 'function', function: { name: TOOL.name, description: TOOL.description, parameters: TOOL.parameters } };

describe(`responses on ${MODEL}`, () => {
  let server;
  let client;
  // The prompt length /tokenize gives a chat conversation (what the responses prompt must equal).
  const chatTokens = async (messages, extra = {}) => {
    const r = await postJSON(`${server.url}/tokenize`, { model: MODEL, messages, ...extra });
    assert.equal(r.status, 200, r.text);
    return r.json.count;
  };
  const expect400 = async (body, param, pattern) => {
    const r = await postJSON(`${server.baseURL}/responses`, { model: MODEL, max_output_tokens: 2, ...body });
    assert.equal(r.status, 400, `${JSON.stringify(body)} -> ${r.text}`);
    assert.equal(r.json.error.code, 400);
    assert.equal(r.json.error.type, 'BadRequestError');
    assert.equal(r.json.error.param, param, r.text);
    if (pattern) assert.match(r.json.error.message, pattern);
  };

  before(async () => {
    server = await startServer(MODEL, ['--disable-log-stats', '--disable-uvicorn-access-log',
      '--structured-outputs-config', 'disable_any_whitespace=true']);
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  it('a response object: message output, usage, incomplete when cut by max_output_tokens', async () => {
    const r = await client.responses.create({ model: MODEL, input: 'Hello!', max_output_tokens: 5, temperature: 0, user: 'u1', metadata: { k: 'v' } });
    assert.match(r.id, /^resp_[0-9a-f]{32}$/);
    assert.equal(r.object, 'response');
    assert.equal(r.model, MODEL);
    assert.equal(typeof r.created_at, 'number');
    assert.equal(r.output.length, 1);
    const msg = r.output[0];
    assert.equal(msg.type, 'message');
    assert.equal(msg.role, 'assistant');
    assert.match(msg.id, /^msg_[0-9a-f]{32}$/);
    assert.equal(msg.content.length, 1);
    assert.equal(msg.content[0].type, 'output_text');
    assert.deepEqual(msg.content[0].annotations, []);
    assert.equal(r.output_text, msg.content[0].text);  // the client's helper joins the output text
    // The tiny model does not stop by itself within 5 greedy tokens: cut by the length limit.
    assert.equal(r.status, 'incomplete');
    assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
    assert.equal(msg.status, 'incomplete');
    assert.equal(r.usage.output_tokens, 5);
    assert.equal(r.usage.input_tokens, await chatTokens([{ role: 'user', content: 'Hello!' }]));
    assert.equal(r.usage.total_tokens, r.usage.input_tokens + 5);
    assert.deepEqual(r.usage.input_tokens_details, { cached_tokens: r.usage.input_tokens_details.cached_tokens });
    assert.deepEqual(r.usage.output_tokens_details, { reasoning_tokens: 0 });
    // The request's settings, echoed as vLLM and OpenAI return them.
    assert.equal(r.temperature, 0);
    assert.equal(r.top_p, 1);
    assert.equal(r.max_output_tokens, 5);
    assert.equal(r.user, 'u1');
    assert.deepEqual(r.metadata, { k: 'v' });
    assert.equal(r.tool_choice, 'auto');
    assert.deepEqual(r.tools, []);
    assert.equal(r.parallel_tool_calls, true);
    assert.equal(r.previous_response_id, null);
    assert.equal(r.store, true);
    assert.equal(r.truncation, 'disabled');
    assert.deepEqual(r.text, { format: { type: 'text' } });
    assert.equal(r.background, false);
    assert.equal(r.error, null);
  });

  it('streaming: events in order with consecutive sequence numbers; the deltas join into the final text', async () => {
    const params = { model: MODEL, input: 'Tell me a story.', max_output_tokens: 12, temperature: 0 };
    const full = await client.responses.create(params);
    const stream = await client.responses.create({ ...params, stream: true });
    const events = [];
    for await (const e of stream) events.push(e);
    assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
    const types = events.map((e) => e.type);
    const deltas = events.filter((e) => e.type === 'response.output_text.delta');
    assert.ok(deltas.length > 0);
    assert.deepEqual(types, [
      'response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added',
      ...deltas.map(() => 'response.output_text.delta'),
      'response.output_text.done', 'response.content_part.done', 'response.output_item.done',
      full.status === 'incomplete' ? 'response.incomplete' : 'response.completed',
    ]);
    const [created, inProgress, added, partAdded] = events;
    assert.equal(created.response.status, 'in_progress');
    assert.deepEqual(created.response.output, []);
    assert.equal(created.response.usage, null);
    assert.equal(inProgress.response.id, created.response.id);
    assert.equal(added.output_index, 0);
    assert.equal(added.item.type, 'message');
    assert.equal(added.item.status, 'in_progress');
    assert.deepEqual(added.item.content, []);
    assert.equal(partAdded.item_id, added.item.id);
    assert.equal(partAdded.part.text, '');
    const text = deltas.map((d) => d.delta).join('');
    for (const d of deltas) {
      assert.equal(d.item_id, added.item.id);
      assert.equal(d.output_index, 0);
      assert.equal(d.content_index, 0);
    }
    assert.equal(text, full.output_text);  // greedy: the same text streamed or not
    const [textDone, partDone, itemDone, last] = events.slice(-4);
    assert.equal(textDone.text, text);
    assert.equal(partDone.part.text, text);
    assert.equal(itemDone.item.id, added.item.id);
    assert.equal(itemDone.item.content[0].text, text);
    assert.equal(itemDone.item.status, full.output[0].status);
    const final = last.response;
    assert.equal(final.id, created.response.id);
    assert.equal(final.status, full.status);
    assert.deepEqual(final.output, [itemDone.item]);
    assert.deepEqual(final.usage.output_tokens, full.usage.output_tokens);
    assert.deepEqual(final.usage.input_tokens, full.usage.input_tokens);
  });

  it('streaming: raw SSE has an event: line per event, naming its type; the client accumulator agrees', async () => {
    const res = await fetch(`${server.baseURL}/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, input: 'Hi', max_output_tokens: 4, temperature: 0, stream: true }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/event-stream/);
    const body = await res.text();
    const blocks = body.split('\n\n').filter((b) => b.trim());
    assert.ok(blocks.length >= 8);
    for (const b of blocks) {
      const lines = b.split('\n');
      assert.equal(lines.length, 2, b);
      assert.ok(lines[0].startsWith('event: ') && lines[1].startsWith('data: '), b);
      assert.equal(JSON.parse(lines[1].slice(6)).type, lines[0].slice(7));
    }
    assert.ok(!body.includes('[DONE]'));
    // responses.stream() rebuilds the response from the events and checks their indices.
    const final = await client.responses.stream({ model: MODEL, input: 'Hi', max_output_tokens: 4, temperature: 0 }).finalResponse();
    const plain = await client.responses.create({ model: MODEL, input: 'Hi', max_output_tokens: 4, temperature: 0 });
    assert.equal(final.output_text, plain.output_text);
    assert.equal(final.output[0].content[0].text, plain.output_text);
  });

  it('instructions become a system message first; previous_response_id continues without them', async () => {
    const first = await client.responses.create({ model: MODEL, instructions: 'Answer in French.', input: 'What is 2+2?', max_output_tokens: 6, temperature: 0 });
    assert.equal(first.instructions, 'Answer in French.');
    assert.equal(first.usage.input_tokens, await chatTokens([
      { role: 'system', content: 'Answer in French.' }, { role: 'user', content: 'What is 2+2?' }]));
    const second = await client.responses.create({ model: MODEL, previous_response_id: first.id, input: 'And 3+3?', max_output_tokens: 6, temperature: 0 });
    assert.equal(second.previous_response_id, first.id);
    assert.equal(second.instructions, null);
    // The second prompt holds the first turn (without its instructions) and the first answer.
    const turn2 = [{ role: 'user', content: 'What is 2+2?' }, { role: 'assistant', content: first.output_text }, { role: 'user', content: 'And 3+3?' }];
    assert.equal(second.usage.input_tokens, await chatTokens(turn2));
    // A third turn chains through both, with new instructions of its own.
    const third = await client.responses.create({ model: MODEL, previous_response_id: second.id, instructions: 'Be brief.', input: [{ role: 'user', content: [{ type: 'input_text', text: 'Thanks' }] }], max_output_tokens: 2, temperature: 0 });
    assert.equal(third.usage.input_tokens, await chatTokens([
      { role: 'system', content: 'Be brief.' }, ...turn2, { role: 'assistant', content: second.output_text }, { role: 'user', content: 'Thanks' }]));
  });

  it('input items: message roles, content parts, and a partial assistant message that is continued', async () => {
    const input = [
      { type: 'message', role: 'developer', content: 'Be nice.' },
      { role: 'user', content: [{ type: 'input_text', text: 'Hello' }, { type: 'input_text', text: 'there' }] },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Hi!', annotations: [] }], status: 'completed' },
      { role: 'user', content: 'Bye' },
    ];
    const r = await client.responses.create({ model: MODEL, input, max_output_tokens: 2 });
    assert.equal(r.usage.input_tokens, await chatTokens([
      { role: 'developer', content: 'Be nice.' }, { role: 'user', content: 'Hello\nthere' },
      { role: 'assistant', content: 'Hi!' }, { role: 'user', content: 'Bye' }]));
    const partial = [{ role: 'user', content: 'Hi' }, { type: 'message', role: 'assistant', content: 'The answer is', status: 'incomplete' }];
    const c = await client.responses.create({ model: MODEL, input: partial, max_output_tokens: 2 });
    assert.equal(c.usage.input_tokens, await chatTokens([{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'The answer is' }],
      { add_generation_prompt: false, continue_final_message: true }));
  });

  it('function tools reach the template; function_call and function_call_output items become tool calls and tool messages', async () => {
    const plain = await client.responses.create({ model: MODEL, input: 'Weather in Paris?', max_output_tokens: 1 });
    const withTools = await client.responses.create({ model: MODEL, input: 'Weather in Paris?', tools: [TOOL], max_output_tokens: 1 });
    assert.deepEqual(withTools.tools, [TOOL]);
    assert.equal(withTools.usage.input_tokens, await chatTokens([{ role: 'user', content: 'Weather in Paris?' }], { tools: [CHAT_TOOL] }));
    assert.ok(withTools.usage.input_tokens > plain.usage.input_tokens);
    const input = [
      { role: 'user', content: 'Weather in Paris?' },
      { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city": "Paris"}' },
      { type: 'function_call_output', call_id: 'call_1', output: 'sunny, 24 C' },
    ];
    const r = await client.responses.create({ model: MODEL, input, tools: [TOOL], max_output_tokens: 1 });
    const messages = [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'sunny, 24 C' },
    ];
    assert.equal(r.usage.input_tokens, await chatTokens(messages, { tools: [CHAT_TOOL] }));
    assert.ok(r.usage.input_tokens > withTools.usage.input_tokens);
    // The tool's output is in the prompt: its text shows in the detokenized prompt.
    const tok = await postJSON(`${server.url}/tokenize`, { model: MODEL, messages, tools: [CHAT_TOOL] });
    const text = (await postJSON(`${server.url}/detokenize`, { tokens: tok.json.tokens })).json.prompt;
    assert.ok(text.includes('sunny, 24 C') && text.includes('get_weather'), text);
    // tool_choice none/auto are served; a later turn continues after the tool output.
    const next = await client.responses.create({ model: MODEL, previous_response_id: r.id, input: 'Thanks', tools: [TOOL], tool_choice: 'none', max_output_tokens: 1 });
    assert.equal(next.tool_choice, 'none');
    assert.equal(next.usage.input_tokens, await chatTokens([...messages,
      ...(r.output_text ? [{ role: 'assistant', content: r.output_text }] : []), { role: 'user', content: 'Thanks' }], { tools: [CHAT_TOOL] }));
  });

  it('text.format json_schema and json_object constrain the output', async () => {
    const schema = {
      type: 'object',
      properties: { city: { type: 'string', enum: ['Paris', 'Rome', 'Oslo'] }, rank: { type: 'integer', minimum: 1, maximum: 9 } },
      required: ['city', 'rank'],
      additionalProperties: false,
    };
    const format = { type: 'json_schema', name: 'pick', schema, strict: true };
    const r = await client.responses.create({ model: MODEL, input: 'Pick a city.', text: { format }, max_output_tokens: 60, temperature: 0 });
    assert.equal(r.status, 'completed', JSON.stringify(r.output));
    const doc = validates(schema, JSON.parse(r.output_text), r.output_text);
    assert.deepEqual(Object.keys(doc), ['city', 'rank']);
    assert.deepEqual(r.text.format, format);
    // Streamed: the deltas join into a valid document too.
    const stream = await client.responses.create({ model: MODEL, input: 'Pick a city.', text: { format }, max_output_tokens: 60, temperature: 0, stream: true });
    let streamed = '';
    for await (const e of stream) if (e.type === 'response.output_text.delta') streamed += e.delta;
    assert.equal(streamed, r.output_text);
    const obj = await client.responses.create({ model: MODEL, input: 'JSON please', text: { format: { type: 'json_object' } }, max_output_tokens: 200, temperature: 0 });
    if (obj.status === 'completed') assert.equal(typeof JSON.parse(obj.output_text), 'object');
    else assert.equal(obj.status, 'incomplete');
  });

  it('include message.output_text.logprobs: one entry per output token', async () => {
    const r = await client.responses.create({ model: MODEL, input: 'Hi', max_output_tokens: 3, temperature: 0, include: ['message.output_text.logprobs'], top_logprobs: 2 });
    const lps = r.output[0].content[0].logprobs;
    assert.equal(lps.length, 3);
    for (const lp of lps) {
      assert.equal(typeof lp.token, 'string');
      assert.ok(lp.logprob <= 0);
      assert.equal(lp.top_logprobs.length, 2);
    }
    assert.equal(lps.map((l) => l.token).join(''), r.output_text);
    assert.equal(r.top_logprobs, 2);
  });

  it('the store: retrieve, delete, cancel; store false keeps nothing', async () => {
    const r = await client.responses.create({ model: MODEL, input: 'Remember me', max_output_tokens: 2 });
    const got = await client.responses.retrieve(r.id);
    const { output_text: _a, ...gotFields } = got;
    const { output_text: _b, ...createdFields } = r;
    assert.deepEqual(gotFields, createdFields);
    const cancel = await postJSON(`${server.baseURL}/responses/${r.id}/cancel`, {});
    assert.equal(cancel.status, 400);
    assert.match(cancel.json.error.message, /Cannot cancel a synchronous response/);
    const del = await fetch(`${server.baseURL}/responses/${r.id}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.deepEqual(await del.json(), { id: r.id, object: 'response.deleted', deleted: true });
    await assert.rejects(client.responses.retrieve(r.id), (e) => e.status === 404 && /not found/.test(e.message));

    const unstored = await client.responses.create({ model: MODEL, input: 'Forget me', max_output_tokens: 2, store: false });
    assert.equal(unstored.store, false);
    await assert.rejects(client.responses.retrieve(unstored.id), (e) => e.status === 404);
    const cont = await postJSON(`${server.baseURL}/responses`, { model: MODEL, input: 'Next', previous_response_id: unstored.id });
    assert.equal(cont.status, 404);
    assert.equal(cont.json.error.param, 'previous_response_id');
    assert.match(cont.json.error.message, new RegExp(`Response with id '${unstored.id}' not found`));
    const unknown = await fetch(`${server.baseURL}/responses/resp_unknown`);
    assert.equal(unknown.status, 404);
    const wrong = await fetch(`${server.baseURL}/responses/${r.id}`, { method: 'PUT' });
    assert.equal(wrong.status, 405);
  });

  it('tool_choice required: a function_call item whose arguments fit the tool, whole and streamed; the round trip', async () => {
    const req = { model: MODEL, input: 'Weather in Paris?', tools: [TOOL], tool_choice: 'required', parallel_tool_calls: false,
      temperature: 1.0, max_output_tokens: 200, text: undefined };
    let call = null;
    for (let seed = 0; seed < 30 && !call; seed++) {  // a random-weight model finishes by chance
      const r = await client.responses.create({ ...req, seed });
      if (r.status !== 'completed') continue;
      const calls = r.output.filter((i) => i.type === 'function_call');
      assert.equal(calls.length, 1, JSON.stringify(r.output));
      call = calls[0];
    }
    assert.ok(call, 'no constrained call finished');
    assert.equal(call.name, 'get_weather');
    assert.match(call.call_id, /^chatcmpl-tool-/);
    const args = JSON.parse(call.arguments);
    assert.equal(typeof args.city, 'string');
    // Streamed: function_call_arguments deltas that join to the final item's arguments.
    const stream = await client.responses.create({ ...req, stream: true });
    let joined = '';
    let final = null;
    for await (const e of stream) {
      if (e.type === 'response.function_call_arguments.delta') joined += e.delta;
      if (e.type === 'response.completed' || e.type === 'response.incomplete') final = e.response;
    }
    const item = final.output.find((i) => i.type === 'function_call');
    if (final.status === 'completed') {
      assert.ok(item, JSON.stringify(final.output));
      assert.equal(joined, item.arguments);
    }
    // The call and its output go back in; the next answer is plain text.
    const next = await client.responses.create({ model: MODEL, max_output_tokens: 4, tools: [TOOL],
      input: [{ role: 'user', content: 'Weather in Paris?' }, { type: 'function_call', call_id: call.call_id, name: call.name,
        arguments: call.arguments }, { type: 'function_call_output', call_id: call.call_id, output: 'sunny' }] });
    assert.ok(next.usage.input_tokens > 20);
    assert.ok(next.output.every((i) => i.type === 'message'));
  });

  it('built-in tools and unsupported features are 400s in OpenAI\'s shape', async () => {
    for (const type of ['web_search', 'web_search_preview', 'file_search', 'code_interpreter', 'computer_use_preview', 'mcp', 'image_generation']) {
      await assert.rejects(client.responses.create({ model: MODEL, input: 'x', tools: [{ type }] }),
        (e) => e.status === 400 && e.param === 'tools[0].type' && e.message.includes(`'${type}'`));
    }
    await expect400({ input: 'x', tools: [TOOL, { type: 'mcp', server_label: 'a' }] }, 'tools[1].type', /function tools only/);
    await expect400({ input: 'x', background: true }, 'background', /background/);
    await expect400({ input: 'x', background: true, store: false }, 'background', /store/);
    await expect400({ input: 'x', tools: [TOOL], tool_choice: { type: 'function', name: 'nope' } }, 'tool_choice', /does not match/);
    await expect400({ input: 'x', tool_choice: { type: 'web_search' } }, 'tool_choice.type');
    await expect400({ input: 'x', prompt: { id: 'pmpt_1' } }, 'prompt');
    await expect400({ input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'http://x/y.png' }] }] }, 'input[0].content[0].type', /text-only/);
    await expect400({ input: [{ type: 'item_reference', id: 'msg_1' }] }, 'input[0].type');
    await expect400({ input: [{ type: 'computer_call', id: 'x' }] }, 'input[0].type', /Unsupported input item type: computer_call/);
  });

  it('malformed fields: 400 naming the field', async () => {
    const cases = [
      [{}, 'input'],
      [{ input: 5 }, 'input'],
      [{ input: [5] }, 'input[0]'],
      [{ input: [{ role: 'robot', content: 'x' }] }, 'input[0].role'],
      [{ input: [{ role: 'user' }] }, 'input[0].content'],
      [{ input: [{ role: 'user', content: [{ type: 'input_text' }] }] }, 'input[0].content[0].text'],
      [{ input: [{ type: 'function_call', call_id: 'c', name: 'f', arguments: '{not json' }] }, 'input[0].arguments'],
      [{ input: [{ type: 'function_call', name: 'f', arguments: '{}' }] }, 'input[0].call_id'],
      [{ input: [{ type: 'function_call_output', call_id: 'c' }] }, 'input[0].output'],
      [{ input: 'x', instructions: 3 }, 'instructions'],
      [{ input: 'x', max_output_tokens: 0 }, 'max_output_tokens'],
      [{ input: 'x', max_output_tokens: 'many' }, 'max_output_tokens'],
      [{ input: 'x', temperature: 'hot' }, 'temperature'],
      [{ input: 'x', temperature: -1 }, 'temperature'],
      [{ input: 'x', top_p: 2 }, 'top_p'],
      [{ input: 'x', store: 'yes' }, 'store'],
      [{ input: 'x', stream: 1 }, 'stream'],
      [{ input: 'x', metadata: { a: 1 } }, 'metadata'],
      [{ input: 'x', metadata: Object.fromEntries([...Array(17).keys()].map((i) => [`k${i}`, 'v'])) }, 'metadata'],
      [{ input: 'x', tools: {} }, 'tools'],
      [{ input: 'x', tools: [{ type: 'function' }] }, 'tools[0].name'],
      [{ input: 'x', tools: [{ type: 'function', name: 'f', parameters: 'x' }] }, 'tools[0].parameters'],
      [{ input: 'x', tool_choice: 'sometimes' }, 'tool_choice'],
      [{ input: 'x', text: { format: { type: 'yaml' } } }, 'text.format.type'],
      [{ input: 'x', text: { format: { type: 'json_schema', name: 'a' } } }, 'text.format.schema'],
      [{ input: 'x', text: { format: { type: 'json_schema', schema: {} } } }, 'text.format.name'],
      [{ input: 'x', text: { format: { type: 'json_schema', name: 'a', schema: { type: 'object', properties: { a: { type: 'frobnicate' } } } } } }, 'text.format'],
      [{ input: 'x', include: ['everything'] }, 'include'],
      [{ input: 'x', top_logprobs: 50 }, 'top_logprobs'],
      [{ input: 'x', truncation: 'sometimes' }, 'truncation'],
      [{ input: 'x', service_tier: 'gold' }, 'service_tier'],
      [{ input: 'x', previous_response_id: 7 }, 'previous_response_id'],
      [{ input: 'x', reasoning: 'deep' }, 'reasoning'],
    ];
    for (const [body, param] of cases) await expect400(body, param);
    const model = await postJSON(`${server.baseURL}/responses`, { model: 'nope', input: 'x' });
    assert.equal(model.status, 404);
    assert.equal(model.json.error.param, 'model');
  });
});

describe('the response store bound (--max-stored-responses)', () => {
  it('keeps the most recently used responses; 0 stores nothing', async () => {
    const server = await startServer(MODEL, ['--disable-log-stats', '--disable-uvicorn-access-log', '--max-stored-responses', '2']);
    try {
      const client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0 });
      const make = () => client.responses.create({ model: MODEL, input: 'x', max_output_tokens: 1 });
      const a = await make();
      const b = await make();
      await client.responses.retrieve(a.id);  // a is now more recently used than b
      const c = await make();                 // evicts b
      await client.responses.retrieve(a.id);
      await client.responses.retrieve(c.id);
      await assert.rejects(client.responses.retrieve(b.id), (e) => e.status === 404);
    } finally {
      assert.equal(await server.stop(), 0);
    }
    const none = await startServer(MODEL, ['--disable-log-stats', '--disable-uvicorn-access-log', '--max-stored-responses', '0']);
    try {
      const client = new OpenAI({ baseURL: none.baseURL, apiKey: 'unused', maxRetries: 0 });
      const r = await client.responses.create({ model: MODEL, input: 'x', max_output_tokens: 1 });
      assert.equal(r.store, false);
      await assert.rejects(client.responses.retrieve(r.id), (e) => e.status === 404);
    } finally {
      assert.equal(await none.stop(), 0);
    }
  });
});
