// Structured outputs through `vllm serve`, with the official openai client: every request form
// (response_format json_schema and json_object, vLLM's structured_outputs object, the older
// guided_* fields), completions and chat, streaming and not; answers checked by ajv, the regex, or
// the choice list; bad constraints are 400s in OpenAI's shape that say what and where.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, postJSON } from './harness.mjs';
import * as schemas from './schemas.mjs';

const MODEL = 'tiny-llama3';
const PERSON = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 16 },
    age: { type: 'integer', minimum: 0, maximum: 120 },
    email: { type: 'string', format: 'email' },
  },
  required: ['name', 'age'],
  additionalProperties: false,
};

// The answer's text parsed as JSON and valid under `schema`.
const validates = (schema, text) => schemas.validates(schema, JSON.parse(text), text);

describe(`structured outputs on ${MODEL}`, () => {
  let server;
  let client;
  before(async () => {
    server = await startServer(MODEL, ['--disable-log-stats', '--disable-uvicorn-access-log']);
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  it('response_format json_schema (chat): a document the schema validates, keys in schema order', async () => {
    // A random-weight model closes the object by chance (about one seed in five at 120 tokens):
    // seeds are tried until three did, each of those checked.
    let stopped = 0;
    for (let seed = 0; seed < 30 && stopped < 3; seed++) {
      const r = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content: 'Give me a person as JSON.' }],
        response_format: { type: 'json_schema', json_schema: { name: 'person', schema: PERSON, strict: true } },
        temperature: 1.0,
        seed,
        max_tokens: 120,
      });
      const c = r.choices[0];
      if (c.finish_reason !== 'stop') continue;
      stopped++;
      const doc = validates(PERSON, c.message.content);
      assert.deepEqual(Object.keys(doc).slice(0, 2), ['name', 'age']);
    }
    assert.ok(stopped > 0, 'no constrained answer finished');
  });

  it('response_format json_object (chat, streaming): the deltas join into one JSON object', async () => {
    let done = 0;
    for (let seed = 0; seed < 10 && done < 2; seed++) {
      const stream = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content: 'JSON please' }],
        response_format: { type: 'json_object' },
        temperature: 0.7,
        seed,
        max_tokens: 400,
        stream: true,
      });
      let text = '';
      let finish = null;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      if (finish !== 'stop') continue;
      done++;
      const doc = JSON.parse(text);
      assert.equal(typeof doc, 'object');
      assert.ok(doc !== null && !Array.isArray(doc));
    }
    assert.ok(done > 0);
  });

  it('structured_outputs (extra body) on completions: choice, regex, grammar, json', async () => {
    const choices = ['red', 'green', 'blue'];
    for (let seed = 0; seed < 4; seed++) {
      const r = await client.completions.create({
        model: MODEL, prompt: 'Colour:', max_tokens: 10, temperature: 1.0, seed,
        structured_outputs: { choice: choices },
      });
      assert.ok(choices.includes(r.choices[0].text), r.choices[0].text);
      assert.equal(r.choices[0].finish_reason, 'stop');
    }
    const re = /^\d{3}-\d{4}$/;
    const r2 = await client.completions.create({
      model: MODEL, prompt: 'Phone:', max_tokens: 20, temperature: 1.0, seed: 1, structured_outputs: { regex: '\\d{3}-\\d{4}' },
    });
    assert.match(r2.choices[0].text, re);
    const grammar = 'root ::= "(" expr ")"\nexpr ::= [0-9]+ (("+" | "*") [0-9]+){0,3}';
    const r3 = await client.completions.create({
      model: MODEL, prompt: 'Sum:', max_tokens: 30, temperature: 1.0, seed: 2, structured_outputs: { grammar },
    });
    if (r3.choices[0].finish_reason === 'stop') assert.match(r3.choices[0].text, /^\(\d+([+*]\d+){0,3}\)$/);
    const r4 = await client.completions.create({
      model: MODEL, prompt: 'Person:', max_tokens: 120, temperature: 0, structured_outputs: { json: PERSON },
    });
    if (r4.choices[0].finish_reason === 'stop') validates(PERSON, r4.choices[0].text);
  });

  it('guided_* fields (older clients), chat and completions, n > 1', async () => {
    const r = await client.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: 'yes or no?' }], max_tokens: 8, temperature: 1.0, seed: 3, n: 3,
      guided_choice: ['yes', 'no'],
    });
    assert.equal(r.choices.length, 3);
    for (const c of r.choices) assert.ok(['yes', 'no'].includes(c.message.content), c.message.content);
    const r2 = await client.completions.create({
      model: MODEL, prompt: 'Date:', max_tokens: 16, temperature: 1.0, seed: 4, guided_regex: '20[0-9]{2}-[01][0-9]-[0-3][0-9]',
    });
    assert.match(r2.choices[0].text, /^20\d{2}-[01]\d-[0-3]\d$/);
    const r3 = await client.completions.create({
      model: MODEL, prompt: 'Person:', max_tokens: 120, temperature: 1.0, seed: 5, guided_json: PERSON,
      guided_whitespace_pattern: ' ?',
    });
    if (r3.choices[0].finish_reason === 'stop') {
      validates(PERSON, r3.choices[0].text);
      assert.ok(!/\n/.test(r3.choices[0].text), 'the whitespace pattern allows no newline');
    }
  });

  it('a constrained and an unconstrained request together: the unconstrained one is unchanged', async () => {
    const plain = { model: MODEL, prompt: 'Once upon a time', max_tokens: 12, temperature: 0 };
    const alone = await client.completions.create(plain);
    const [constrained, together] = await Promise.all([
      client.completions.create({ ...plain, structured_outputs: { regex: '[a-z ]{5,30}' } }),
      client.completions.create(plain),
    ]);
    assert.equal(together.choices[0].text, alone.choices[0].text);
    assert.match(constrained.choices[0].text, /^[a-z ]{5,30}$/);
  });

  it('bad constraints are 400s that name the problem and where it is', async () => {
    const cases = [
      [{ structured_outputs: { json: { type: 'number', minimum: 1.5 } } }, /minimum/],
      [{ structured_outputs: { regex: '(ab' } }, /position/],
      [{ structured_outputs: { grammar: 'root ::= "a" missing' } }, /line 1, column/],
      [{ structured_outputs: { regex: 'a', choice: ['a'] } }, /only use one kind/],
      [{ structured_outputs: {} }, /must use one kind/],
      [{ response_format: { type: 'json_schema', json_schema: { name: 'x' } } }, /schema/],
      [{ response_format: { type: 'xml' } }, /response_format.type/],
      [{ guided_choice: [] }, /choice/],
      [{ guided_decoding_backend: 'outlines', guided_regex: 'a' }, /not available/],
    ];
    for (const [extra, message] of cases) {
      const r = await postJSON(`${server.baseURL}/completions`, { model: MODEL, prompt: 'x', max_tokens: 4, ...extra });
      assert.equal(r.status, 400, `${JSON.stringify(extra)}: ${r.text}`);
      assert.equal(r.json.error.code, 400);
      assert.equal(r.json.error.type, 'BadRequestError');
      assert.match(r.json.error.message, message, JSON.stringify(extra));
    }
    // The server is still fine.
    const ok = await client.completions.create({ model: MODEL, prompt: 'x', max_tokens: 2, structured_outputs: { choice: ['ok'] } });
    assert.equal(ok.choices[0].text, 'ok');
  });
});
