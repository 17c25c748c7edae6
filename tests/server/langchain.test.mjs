// LangChain JS (@langchain/openai) against `vllm serve`, as its users point it at vLLM:
// ChatOpenAI with configuration.baseURL (tool calling through bindTools, whole and streamed; a
// tool result fed back; withStructuredOutput by JSON schema and by function calling; a plain
// invoke) and the completions-style OpenAI LLM class (the analogue of Python's VLLMOpenAI).
//
// The server is tiny-qwen3 with the flags vLLM documents for Qwen3 (hermes tool parser, qwen3
// reasoning parser), as in tools.test.mjs. The model has random weights, so it never decides to
// call a tool by itself: the tests force calls with tool_choice ("required" or a named tool) and
// ask for JSON with response_format json_schema, which the server enforces with a grammar; ajv
// then checks what LangChain hands back against the schema sent. A fetch wrapper records each
// request body, so a test also checks what LangChain put on the wire.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ChatOpenAI, OpenAI as OpenAILLM } from '@langchain/openai';
import { tool } from '@langchain/core/tools';
import { HumanMessage, ToolMessage, AIMessageChunk } from '@langchain/core/messages';
import { z } from 'zod';
import { startServer } from './harness.mjs';
import { validates, WEATHER } from './schemas.mjs';


const MODEL = 'tiny-qwen3';
// An OpenAI-format tool (a plain object) and a LangChain tool() with a zod schema, side by side.
const getWeather = { type: 'function', function: { name: 'get_weather', description: 'Weather forecast', parameters: WEATHER } };
const TimeArgs = z.object({ zone: z.enum(['UTC', 'CET']), verbose: z.boolean() }).strict();
const getTime = tool(async ({ zone }) => `12:00 ${zone}`, { name: 'get_time', description: 'Current time', schema: TimeArgs });
const SCHEMAS = { get_weather: WEATHER, get_time: z.toJSONSchema(TimeArgs) };
const PERSON = {
  title: 'person',
  description: 'A person',
  type: 'object',
  properties: { name: { type: 'string', maxLength: 12 }, age: { type: 'integer', minimum: 0, maximum: 120 } },
  required: ['name', 'age'],
  additionalProperties: false,
};
const Person = z.object({ name: z.string().max(12), age: z.number().int().min(0).max(120) });
const ASK = [new HumanMessage('What is the weather in Paris for 3 days?')];
// Thinking off (Qwen3's template then closes an empty <think> block): sent as extra body fields
// through modelKwargs, LangChain's counterpart of Python's extra_body.
const NO_THINKING = { chat_template_kwargs: { enable_thinking: false } };


// A LangChain tool call ({ name, args, id, type }): a known tool, arguments its schema accepts.
function checkCall(call, names = Object.keys(SCHEMAS)) {
  assert.equal(call.type, 'tool_call');
  assert.match(call.id, /^chatcmpl-tool-[0-9a-f]{32}$/);
  assert.ok(names.includes(call.name), call.name);
  validates(SCHEMAS[call.name], call.args);
  if (call.name === 'get_time') assert.ok(TimeArgs.safeParse(call.args).success);
  return call;
}

describe(`LangChain JS (@langchain/openai) on ${MODEL}`, () => {
  let server;
  let bodies = [];
  const recordingFetch = async (url, init) => {
    if (typeof init?.body === 'string') bodies.push({ url: String(url), body: JSON.parse(init.body) });
    return fetch(url, init);
  };
  // The chat model as a user would make it: any API key, our server as the base URL.
  const chat = (fields = {}) => new ChatOpenAI({
    model: MODEL, apiKey: 'unused', maxRetries: 0, temperature: 1.0, maxTokens: 200,
    configuration: { baseURL: server.baseURL, fetch: recordingFetch }, modelKwargs: NO_THINKING, ...fields });
  const lastBody = () => bodies.at(-1).body;

  before(async () => {
    server = await startServer(MODEL, ['--disable-log-stats', '--disable-uvicorn-access-log', '--enable-auto-tool-choice',
      '--tool-call-parser', 'hermes', '--reasoning-parser', 'qwen3',
      '--structured-outputs-config', '{"disable_any_whitespace": true, "enable_in_reasoning": true}']);
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  it('bindTools + tool_choice "required": tool_calls that fit their tool, invoke and stream alike', async () => {
    for (let seed = 0; seed < 3; seed++) {
      const model = chat().bindTools([getWeather, getTime], { tool_choice: 'required', parallel_tool_calls: false, seed });
      bodies = [];
      const msg = await model.invoke(ASK);
      const sent = lastBody();
      assert.equal(sent.tool_choice, 'required');
      assert.deepEqual(sent.tools.map((t) => t.function.name), ['get_weather', 'get_time']);
      assert.equal(sent.chat_template_kwargs.enable_thinking, false);
      assert.equal(msg.tool_calls.length, 1, JSON.stringify(msg));  // parallel_tool_calls: false
      assert.deepEqual(msg.invalid_tool_calls, []);
      checkCall(msg.tool_calls[0]);
      assert.equal(msg.response_metadata.finish_reason, 'tool_calls');
      assert.ok(msg.usage_metadata.output_tokens > 0);

      // Streamed: the chunks, concatenated as LangChain does, hold the same call.
      let joined;
      for await (const chunk of await model.stream(ASK)) {
        assert.ok(chunk instanceof AIMessageChunk);
        joined = joined ? joined.concat(chunk) : chunk;
      }
      assert.equal(lastBody().stream, true);
      assert.equal(joined.tool_calls.length, 1, JSON.stringify(joined));
      assert.deepEqual(joined.invalid_tool_calls, []);
      checkCall(joined.tool_calls[0]);
      assert.deepEqual([joined.tool_calls[0].name, joined.tool_calls[0].args], [msg.tool_calls[0].name, msg.tool_calls[0].args]);
      assert.equal(joined.response_metadata.finish_reason, 'tool_calls');
    }
  });

  it('a named tool (tool_choice by name, strict tools): its call, validated; streamed the same', async () => {
    for (const name of ['get_time', 'get_weather']) {
      const model = chat().bindTools([getWeather, getTime], { tool_choice: name, strict: true, seed: 5 });
      const msg = await model.invoke(ASK);
      assert.deepEqual(lastBody().tool_choice, { type: 'function', function: { name } });
      assert.deepEqual(lastBody().tools.map((t) => t.function.strict), [true, true]);
      assert.equal(msg.tool_calls.length, 1, JSON.stringify(msg));
      checkCall(msg.tool_calls[0], [name]);
      let joined;
      for await (const chunk of await model.stream(ASK)) joined = joined ? joined.concat(chunk) : chunk;
      assert.deepEqual(joined.tool_calls.map((c) => [c.name, c.args]), [[name, msg.tool_calls[0].args]]);
    }
  });

  it('an agent turn: the tool runs, its ToolMessage goes back, the model answers in text', async () => {
    const model = chat({ temperature: 0 }).bindTools([getWeather, getTime], { tool_choice: 'get_time' });
    const ai = await model.invoke(ASK);
    const call = checkCall(ai.tool_calls[0], ['get_time']);
    const result = await getTime.invoke(call);  // a ToolMessage carrying the call's id
    assert.ok(result instanceof ToolMessage);
    assert.equal(result.tool_call_id, call.id);
    const answer = await chat({ temperature: 0, maxTokens: 8 }).bindTools([getWeather, getTime], { tool_choice: 'none' })
      .invoke([...ASK, ai, result]);
    // LangChain's history went over as OpenAI messages: the assistant's call, then the result.
    const sent = lastBody().messages;
    assert.deepEqual(sent.map((m) => m.role), ['user', 'assistant', 'tool']);
    assert.equal(sent[1].tool_calls[0].id, call.id);
    assert.equal(sent[2].tool_call_id, call.id);
    assert.deepEqual(answer.tool_calls, []);
    assert.equal(typeof answer.content, 'string');
    assert.ok(answer.content.length > 0);
    assert.ok(answer.usage_metadata.input_tokens > ai.usage_metadata.input_tokens + 10, JSON.stringify(answer.usage_metadata));
  });

  it('withStructuredOutput (JSON schema, the default method for non-GPT models): objects the schema validates', async () => {
    // A JSON Schema object and a zod schema; the method left to LangChain's default, and named.
    const cases = [[PERSON, undefined], [PERSON, 'jsonSchema'], [Person, 'jsonSchema'], [Person, undefined]];
    for (const [i, [schema, method]] of cases.entries()) {
      const model = chat({ temperature: 1.0 }).withStructuredOutput(schema, { name: 'person', ...(method ? { method } : {}) });
      bodies = [];
      const doc = await model.invoke('Give me a person.', { seed: i });
      const rf = lastBody().response_format;
      assert.equal(rf.type, 'json_schema', JSON.stringify(lastBody()));
      assert.equal(rf.json_schema.name, 'person');
      validates(PERSON, doc);
      if (schema === Person) assert.ok(Person.safeParse(doc).success);
    }
    // Streamed: LangChain parses the growing JSON; the last partial is the whole object.
    const model = chat().withStructuredOutput(PERSON, { method: 'jsonSchema' });
    let last;
    for await (const partial of await model.stream('Give me a person.', { seed: 7 })) last = partial;
    assert.equal(lastBody().stream, true);
    validates(PERSON, last);
  });

  it('withStructuredOutput by function calling: a forced call to the schema\'s tool', async () => {
    for (const [i, schema] of [PERSON, Person].entries()) {
      const model = chat().withStructuredOutput(schema, { name: 'person', method: 'functionCalling' });
      bodies = [];
      const doc = await model.invoke('Give me a person.', { seed: i });
      assert.deepEqual(lastBody().tool_choice, { type: 'function', function: { name: 'person' } });
      validates(PERSON, doc);
      // includeRaw: the AIMessage with the call next to the parsed arguments.
      const raw = await chat().withStructuredOutput(schema, { name: 'person', method: 'functionCalling', includeRaw: true })
        .invoke('Give me a person.', { seed: i });
      assert.equal(raw.parsingError, undefined);
      assert.equal(raw.raw.tool_calls[0].name, 'person');
      validates(PERSON, raw.parsed);
    }
  });

  it('a plain invoke and stream: text content, usage, streamed text the same as whole', async () => {
    const model = chat({ temperature: 0.8, maxTokens: 12 });
    const msg = await model.invoke([new HumanMessage('Say hello.')], { seed: 3 });
    assert.equal(typeof msg.content, 'string');
    assert.ok(msg.content.length > 0);
    assert.equal(msg.response_metadata.finish_reason, 'length');
    assert.equal(msg.usage_metadata.output_tokens, 12);
    assert.deepEqual(msg.tool_calls, []);
    let text = '';
    let usage;
    for await (const chunk of await model.stream([new HumanMessage('Say hello.')], { seed: 3 })) {
      text += chunk.content;
      usage = chunk.usage_metadata ?? usage;
    }
    assert.deepEqual(lastBody().stream_options, { include_usage: true });
    assert.equal(text, msg.content);
    assert.equal(usage.output_tokens, 12);
  });

  it('reasoning (thinking on): the <think> block in additional_kwargs.reasoning_content, the rest content', async () => {
    // The server's grammar (covering the reasoning: enable_in_reasoning) writes a <think> block.
    const grammar = 'root ::= "<think>" [a-z ]{4,30} "</think>" "\\n\\n" "The answer is " [0-9]{1,3} "."';
    const model = chat({ maxTokens: 80, modelKwargs: { structured_outputs: { grammar } } });
    const msg = await model.invoke('Count.', { seed: 3 });
    assert.equal(lastBody().chat_template_kwargs, undefined);
    assert.match(msg.additional_kwargs.reasoning_content, /^[a-z ]{4,30}$/, JSON.stringify(msg));
    assert.match(msg.content, /^\s*The answer is [0-9]{1,3}\.$/);
    let joined;
    for await (const chunk of await model.stream('Count.', { seed: 3 })) joined = joined ? joined.concat(chunk) : chunk;
    assert.equal(joined.additional_kwargs.reasoning_content, msg.additional_kwargs.reasoning_content);
    assert.equal(joined.content, msg.content);
  });

  it('the completions LLM class (OpenAI, as VLLMOpenAI in Python): /v1/completions, batch and stream', async () => {
    const llm = new OpenAILLM({ model: MODEL, apiKey: 'unused', maxRetries: 0, temperature: 0.8, maxTokens: 10,
      configuration: { baseURL: server.baseURL, fetch: recordingFetch }, modelKwargs: { seed: 4 } });
    bodies = [];
    const text = await llm.invoke('The capital of France is');
    assert.match(bodies.at(-1).url, /\/v1\/completions$/);
    assert.equal(typeof text, 'string');
    assert.ok(text.length > 0);
    // generate() sends several prompts in one request (prompt as an array), one generation each.
    const res = await llm.generate(['Once upon a time', 'The capital of France is']);
    assert.deepEqual(bodies.at(-1).body.prompt, ['Once upon a time', 'The capital of France is']);
    assert.equal(res.generations.length, 2);
    assert.equal(res.generations[1][0].text, text);  // the same seed, the same prompt
    assert.equal(res.llmOutput.tokenUsage.completionTokens, 20);
    let streamed = '';
    for await (const chunk of await llm.stream('The capital of France is')) streamed += chunk;
    assert.equal(bodies.at(-1).body.stream, true);
    assert.equal(streamed, text);
    // Constrained through the completions API too: vLLM's structured_outputs in the body.
    const json = await new OpenAILLM({ model: MODEL, apiKey: 'unused', maxRetries: 0, temperature: 1.0, maxTokens: 60,
      configuration: { baseURL: server.baseURL }, modelKwargs: { seed: 1, structured_outputs: { json: PERSON } } })
      .invoke('A person as JSON:');
    validates(PERSON, JSON.parse(json), json);
  });
});
