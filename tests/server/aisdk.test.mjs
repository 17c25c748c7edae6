// The Vercel AI SDK (`ai` with @ai-sdk/openai-compatible) against `vllm serve`, as its docs
// point it at vLLM: createOpenAICompatible({ name: 'vllm', baseURL }). generateText and
// streamText with tools (a jsonSchema() tool and a zod tool) and a forced tool choice; a two-step
// agent loop whose tool result goes back to the model; generateObject / streamObject and
// Output.object with a schema (the provider sends response_format json_schema only with
// supportsStructuredOutputs: true); and the provider's completion model on /v1/completions.
//
// As in tools.test.mjs the model is tiny-qwen3 with random weights served with the hermes tool
// parser and the qwen3 reasoning parser: it never decides to call a tool, so the tests force the
// calls ("required" or a named tool) and the server's grammar makes them valid; ajv checks the
// inputs the SDK hands back against the schemas sent. A fetch wrapper records each request body.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateText, streamText, generateObject, streamObject, tool, jsonSchema, Output, stepCountIs } from 'ai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { z } from 'zod';
import { startServer } from './harness.mjs';
import { validates, WEATHER } from './schemas.mjs';


const MODEL = 'tiny-qwen3';
const TimeArgs = z.object({ zone: z.enum(['UTC', 'CET']), verbose: z.boolean() }).strict();
const SCHEMAS = { get_weather: WEATHER, get_time: z.toJSONSchema(TimeArgs) };
const PERSON = {
  type: 'object',
  properties: { name: { type: 'string', maxLength: 12 }, age: { type: 'integer', minimum: 0, maximum: 120 } },
  required: ['name', 'age'],
  additionalProperties: false,
};
const Person = z.object({ name: z.string().max(12), age: z.number().int().min(0).max(120) });
const PROMPT = 'What is the weather in Paris for 3 days?';
// Thinking off (Qwen3's template then closes an empty <think> block): extra body fields go in
// providerOptions under the provider's name, the SDK's counterpart of Python's extra_body.
const NO_THINKING = { vllm: { chat_template_kwargs: { enable_thinking: false } } };


// An AI SDK tool call ({ toolCallId, toolName, input }): a known tool, input its schema accepts.
function checkCall(call, names = Object.keys(SCHEMAS)) {
  assert.equal(call.type, 'tool-call');
  assert.ok(!call.invalid, `the SDK found the call invalid: ${JSON.stringify(call)}`);
  assert.match(call.toolCallId, /^chatcmpl-tool-[0-9a-f]{32}$/);
  assert.ok(names.includes(call.toolName), call.toolName);
  validates(SCHEMAS[call.toolName], call.input);
  return call;
}

describe(`Vercel AI SDK (ai + @ai-sdk/openai-compatible) on ${MODEL}`, () => {
  let server;
  let bodies = [];
  let vllm;  // the provider, as the SDK's docs make it for vLLM
  let tools;
  const recordingFetch = async (url, init) => {
    if (typeof init?.body === 'string') bodies.push({ url: String(url), body: JSON.parse(init.body) });
    return fetch(url, init);
  };
  const lastBody = () => bodies.at(-1).body;

  before(async () => {
    server = await startServer(MODEL, ['--disable-log-stats', '--disable-uvicorn-access-log', '--enable-auto-tool-choice',
      '--tool-call-parser', 'hermes', '--reasoning-parser', 'qwen3',
      '--structured-outputs-config', '{"disable_any_whitespace": true, "enable_in_reasoning": true}']);
    vllm = createOpenAICompatible({ name: 'vllm', baseURL: server.baseURL, apiKey: 'unused', includeUsage: true,
      supportsStructuredOutputs: true, fetch: recordingFetch });
    tools = {
      get_weather: tool({ description: 'Weather forecast', inputSchema: jsonSchema(WEATHER) }),
      get_time: tool({ description: 'Current time', inputSchema: TimeArgs, execute: async ({ zone }) => `12:00 ${zone}` }),
    };
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  const base = () => ({ model: vllm(MODEL), maxRetries: 0, temperature: 1.0, maxOutputTokens: 200, providerOptions: NO_THINKING });

  it('generateText + toolChoice "required": calls that fit their tool; streamText gives the same', async () => {
    for (let seed = 0; seed < 3; seed++) {
      // get_weather has no execute: the SDK returns its calls; get_time's run, one step only.
      // One call: with parallel calls allowed a random model writes calls until max_tokens cuts
      // the array, and the server returns a cut array as content, not calls. The SDK has no setting
      // for parallel_tool_calls; it goes as an extra body field through providerOptions.
      const req = { ...base(), prompt: PROMPT, tools, toolChoice: 'required', seed,
        providerOptions: { vllm: { ...NO_THINKING.vllm, parallel_tool_calls: false } } };
      bodies = [];
      const r = await generateText(req);
      const sent = lastBody();
      assert.equal(sent.tool_choice, 'required');
      assert.deepEqual(sent.tools.map((t) => t.function.name), ['get_weather', 'get_time']);
      assert.deepEqual(sent.tools[0].function.parameters, WEATHER);
      assert.equal(sent.chat_template_kwargs.enable_thinking, false);
      assert.equal(sent.parallel_tool_calls, false);
      assert.equal(r.finishReason, 'tool-calls');
      assert.equal(r.toolCalls.length, 1, JSON.stringify(r.content));
      checkCall(r.toolCalls[0]);
      assert.equal(r.text, '');
      assert.ok(r.usage.outputTokens > 0);

      const s = streamText(req);
      const parts = [];
      for await (const part of s.fullStream) {
        assert.notEqual(part.type, 'error', JSON.stringify(part));
        parts.push(part.type);
      }
      assert.equal(lastBody().stream, true);
      assert.deepEqual(lastBody().stream_options, { include_usage: true });
      assert.ok(parts.includes('tool-input-start') && parts.includes('tool-input-delta'), parts.join());
      const calls = await s.toolCalls;
      calls.forEach((c) => checkCall(c));
      assert.deepEqual(calls.map((c) => [c.toolName, c.input]), r.toolCalls.map((c) => [c.toolName, c.input]));
      assert.equal(await s.finishReason, 'tool-calls');
      assert.equal((await s.usage).outputTokens, r.usage.outputTokens);
    }
  });

  it('a named tool ({ type: "tool", toolName }): its call, validated; streamed the same', async () => {
    for (const toolName of ['get_weather', 'get_time']) {
      const req = { ...base(), prompt: PROMPT, tools, toolChoice: { type: 'tool', toolName }, seed: 5 };
      const r = await generateText(req);
      assert.deepEqual(lastBody().tool_choice, { type: 'function', function: { name: toolName } });
      assert.equal(r.toolCalls.length, 1, JSON.stringify(r.content));
      checkCall(r.toolCalls[0], [toolName]);
      const s = streamText(req);
      const calls = await s.toolCalls;
      assert.deepEqual(calls.map((c) => [c.toolName, c.input]), [[toolName, r.toolCalls[0].input]]);
    }
  });

  it('an agent loop: the tool runs, its result goes back, the next step answers in text', async () => {
    const r = await generateText({
      ...base(), temperature: 0, prompt: PROMPT, tools, stopWhen: stepCountIs(2),
      // Step 1 must call get_time; step 2 must answer (a random model would call tools forever).
      prepareStep: ({ stepNumber }) => ({ toolChoice: stepNumber === 0 ? { type: 'tool', toolName: 'get_time' } : 'none' }),
    });
    assert.equal(r.steps.length, 2);
    const [first, second] = r.steps;
    const call = checkCall(first.toolCalls[0], ['get_time']);
    assert.equal(first.toolResults[0].output, `12:00 ${call.input.zone}`);
    const sent = bodies.at(-1).body;
    assert.deepEqual(sent.messages.map((m) => m.role), ['user', 'assistant', 'tool']);
    assert.equal(sent.messages[1].tool_calls[0].id, call.toolCallId);
    assert.equal(sent.messages[2].tool_call_id, call.toolCallId);
    assert.equal(sent.tool_choice, 'none');
    assert.deepEqual(second.toolCalls, []);
    assert.ok(second.text.length > 0);
    assert.ok(second.usage.inputTokens > first.usage.inputTokens + 10);
  });

  it('generateObject / streamObject / Output.object: objects the schema validates (response_format json_schema)', async () => {
    for (const [seed, schema] of [jsonSchema(PERSON), Person, Person].entries()) {
      bodies = [];
      const r = await generateObject({ ...base(), schema, schemaName: 'person', prompt: 'Give me a person.', seed });
      const rf = lastBody().response_format;
      assert.equal(rf.type, 'json_schema', JSON.stringify(lastBody()));
      assert.equal(rf.json_schema.name, 'person');
      validates(PERSON, r.object);
      assert.equal(r.finishReason, 'stop');
    }
    const s = streamObject({ ...base(), schema: Person, prompt: 'Give me a person.', seed: 4 });
    let partials = 0;
    for await (const partial of s.partialObjectStream) { partials++; assert.equal(typeof partial, 'object'); }
    assert.ok(partials > 0);
    validates(PERSON, await s.object);
    assert.equal(lastBody().response_format.type, 'json_schema');
    // The newer form: generateText with an output spec.
    const t = await generateText({ ...base(), output: Output.object({ schema: Person }), prompt: 'Give me a person.', seed: 6 });
    assert.equal(lastBody().response_format.type, 'json_schema');
    validates(PERSON, t.output);
  });

  it('plain text: generateText and streamText agree; usage counted', async () => {
    const req = { ...base(), temperature: 0.8, maxOutputTokens: 12, prompt: 'Say hello.', seed: 3 };
    const r = await generateText(req);
    assert.ok(r.text.length > 0);
    assert.equal(r.finishReason, 'length');
    assert.equal(r.usage.outputTokens, 12);
    const s = streamText(req);
    let text = '';
    for await (const delta of s.textStream) text += delta;
    assert.equal(text, r.text);
    assert.equal((await s.usage).outputTokens, 12);
  });

  it('reasoning (thinking on): reasoningText from the <think> block, text the rest; streamed alike', async () => {
    // The server's grammar (covering the reasoning: enable_in_reasoning) writes a <think> block.
    const grammar = 'root ::= "<think>" [a-z ]{4,30} "</think>" "\\n\\n" "The answer is " [0-9]{1,3} "."';
    const req = { ...base(), maxOutputTokens: 80, prompt: 'Count.', seed: 3,
      providerOptions: { vllm: { structured_outputs: { grammar } } } };
    const r = await generateText(req);
    assert.match(r.reasoningText, /^[a-z ]{4,30}$/, JSON.stringify(r.content));
    assert.match(r.text, /^\s*The answer is [0-9]{1,3}\.$/);
    const s = streamText(req);
    let reasoning = '';
    let text = '';
    for await (const part of s.fullStream) {
      if (part.type === 'reasoning-delta') reasoning += part.text;
      if (part.type === 'text-delta') text += part.text;
    }
    assert.equal(reasoning, r.reasoningText);
    assert.equal(text, r.text);
  });

  it('the completion model (provider.completionModel): /v1/completions, whole and streamed', async () => {
    const req = { model: vllm.completionModel(MODEL), maxRetries: 0, temperature: 0.8, maxOutputTokens: 10, seed: 4,
      prompt: 'The capital of France is' };
    bodies = [];
    const r = await generateText(req);
    assert.match(bodies.at(-1).url, /\/v1\/completions$/);
    assert.equal(typeof bodies.at(-1).body.prompt, 'string');
    assert.ok(r.text.length > 0);
    assert.equal(r.usage.outputTokens, 10);
    const s = streamText(req);
    let text = '';
    for await (const delta of s.textStream) text += delta;
    assert.equal(text, r.text);
  });
});
