// /v1/chat/completions with the Llama-3 (tiny-llama3) and Qwen3 (tiny-qwen3) chat templates:
// the prompt holds exactly the tokens of the golden rendering (tests/data/models/<m>/golden.json
// tokenizer.chat), checked through /tokenize; responses and streams keep OpenAI's shapes.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, postJSON, streamRaw, golden } from './harness.mjs';

for (const MODEL of ['tiny-llama3', 'tiny-qwen3']) {
  describe(`chat on ${MODEL}`, () => {
    let server;
    let client;
    before(async () => {
      server = await startServer(MODEL, ['--disable-log-stats', '--disable-uvicorn-access-log']);
      client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0 });
    });
    after(async () => {
      assert.equal(await server.stop(), 0);
    });

    it('refuses a request chat template without --trust-request-chat-template (as vLLM)', async () => {
      const tmpl = '{% for m in messages %}{{ m.content }}{% endfor %}';
      const messages = [{ role: 'user', content: 'hi' }];
      for (const [url, extra] of [[`${server.baseURL}/chat/completions`, { chat_template: tmpl }],
                                  [`${server.baseURL}/chat/completions`, { chat_template_kwargs: { chat_template: tmpl } }],
                                  [`${server.url}/tokenize`, { chat_template: tmpl }]]) {
        const r = await postJSON(url, { model: MODEL, messages, max_tokens: 1, ...extra });
        assert.equal(r.status, 400, r.text);
        assert.match(r.json.error.message, /--trust-request-chat-template is not set/);
      }
      // null is no template.
      const ok = await postJSON(`${server.baseURL}/chat/completions`, { model: MODEL, messages, max_tokens: 1, chat_template: null });
      assert.equal(ok.status, 200, ok.text);
    });

    it('renders every golden conversation to the golden tokens', async () => {
      const cases = golden(MODEL).tokenizer.chat;
      assert.ok(cases.length > 0);
      for (const c of cases) {
        const { add_generation_prompt: agp, ...kwargs } = c.kwargs;
        const body = { model: MODEL, messages: c.messages, add_generation_prompt: agp };
        if (Object.keys(kwargs).length) body.chat_template_kwargs = kwargs;
        if (c.tools) body.tools = c.tools, body.tool_choice = 'none';  // rendered, not parsed ("auto" needs --enable-auto-tool-choice, as in vLLM)
        const viaChat = await postJSON(`${server.url}/tokenize`, body);
        const viaText = await postJSON(`${server.url}/tokenize`, { model: MODEL, prompt: c.text, add_special_tokens: false });
        assert.equal(viaChat.status, 200, viaChat.text);
        assert.deepEqual(viaChat.json.tokens, viaText.json.tokens, `rendering differs for ${JSON.stringify(c)}`);
        const detok = await postJSON(`${server.url}/detokenize`, { tokens: viaChat.json.tokens });
        assert.equal(detok.json.prompt, c.text);
        if (agp) {
          // A chat completion puts exactly these tokens into the prompt.
          const { add_generation_prompt: _, ...request } = body;
          const r = await client.chat.completions.create({ ...request, max_tokens: 1 });
          assert.equal(r.usage.prompt_tokens, viaChat.json.count);
          const echo = await postJSON(`${server.baseURL}/chat/completions`, { ...body, max_tokens: 1, return_token_ids: true });
          assert.deepEqual(echo.json.prompt_token_ids, viaChat.json.tokens);
        }
      }
    });

    it('chat.completion response shape and usage', async () => {
      const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 7, temperature: 0, ignore_eos: true });
      assert.match(r.id, /^chatcmpl-[0-9a-f]{32}$/);
      assert.equal(r.object, 'chat.completion');
      assert.equal(r.model, MODEL);
      assert.equal(r.choices.length, 1);
      assert.equal(r.choices[0].message.role, 'assistant');
      assert.equal(typeof r.choices[0].message.content, 'string');
      assert.equal(r.choices[0].finish_reason, 'length');
      assert.equal(r.usage.completion_tokens, 7);
      assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 7);
    });

    it('streaming: role first, exactly one finish_reason per choice, same text as non-streamed', async () => {
      const params = { model: MODEL, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Tell me a joke.' }], max_completion_tokens: 10, temperature: 0.8, seed: 99, n: 2 };
      const full = await client.chat.completions.create(params);
      const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
      const text = new Map();
      const finishes = new Map();
      const firstDelta = new Map();
      let usage;
      for await (const chunk of stream) {
        assert.equal(chunk.object, 'chat.completion.chunk');
        if (chunk.usage) usage = chunk.usage;
        for (const ch of chunk.choices) {
          if (!firstDelta.has(ch.index)) firstDelta.set(ch.index, ch.delta);
          text.set(ch.index, (text.get(ch.index) ?? '') + (ch.delta.content ?? ''));
          if (ch.finish_reason) finishes.set(ch.index, [...(finishes.get(ch.index) ?? []), ch.finish_reason]);
        }
      }
      for (const ch of full.choices) {
        assert.deepEqual(firstDelta.get(ch.index), { role: 'assistant', content: '' });
        assert.equal(text.get(ch.index), ch.message.content);
        assert.deepEqual(finishes.get(ch.index), [ch.finish_reason]);
      }
      assert.equal(usage.completion_tokens, full.usage.completion_tokens);
      assert.equal(usage.prompt_tokens, full.usage.prompt_tokens);
    });

    it('logprobs with top_logprobs in the chat format', async () => {
      const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 2, ignore_eos: true });
      const content = r.choices[0].logprobs.content;
      assert.equal(content.length, 4);
      for (const e of content) {
        assert.equal(typeof e.token, 'string');
        assert.ok(e.logprob <= 0);
        assert.deepEqual(e.bytes, [...Buffer.from(e.token, 'utf8')]);
        assert.equal(e.top_logprobs.length, 2);
        assert.equal(e.top_logprobs[0].logprob, e.logprob);  // greedy: the chosen token is the best
      }
      const s = await streamRaw(`${server.baseURL}/chat/completions`, { model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 2, ignore_eos: true });
      const streamed = s.events.slice(1, -1).flatMap((c) => c.choices[0].logprobs?.content ?? []);
      assert.deepEqual(streamed.map((e) => e.token), content.map((e) => e.token));
    });

    it('content parts, tool messages, continue_final_message and echo', async () => {
      const parts = await postJSON(`${server.url}/tokenize`, { model: MODEL, messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello!' }] }] });
      const plain = await postJSON(`${server.url}/tokenize`, { model: MODEL, messages: [{ role: 'user', content: 'Hello!' }] });
      assert.deepEqual(parts.json.tokens, plain.json.tokens);
      const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
      const messages = [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
      ];
      const withTools = await postJSON(`${server.baseURL}/chat/completions`, { model: MODEL, messages, tools, tool_choice: 'none', max_tokens: 2 });
      assert.equal(withTools.status, 200, withTools.text);
      const cont = await postJSON(`${server.url}/tokenize`, { model: MODEL, messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'The answer is' }], add_generation_prompt: false, continue_final_message: true });
      const text = (await postJSON(`${server.url}/detokenize`, { tokens: cont.json.tokens })).json.prompt;
      assert.ok(text.endsWith('The answer is'), text);
      const echo = await postJSON(`${server.baseURL}/chat/completions`, { model: MODEL, messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'The answer is' }], add_generation_prompt: false, continue_final_message: true, echo: true, max_tokens: 3, temperature: 0 });
      assert.equal(echo.status, 200, echo.text);
      assert.ok(echo.json.choices[0].message.content.startsWith('The answer is'));
      assert.equal(echo.json.choices[0].message.role, 'assistant');
    });
  });
}

describe('--chat-template and --served-model-name', () => {
  it('a template file, and an inline template with escapes', async () => {
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vllm-tmpl-')), 'tmpl.jinja');
    fs.writeFileSync(file, '{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}');
    const server = await startServer('tiny-phi', ['--disable-log-stats', '--chat-template', file, '--served-model-name', 'first', 'second']);
    try {
      const messages = [{ role: 'user', content: 'Hello' }];
      const tok = await postJSON(`${server.url}/tokenize`, { model: 'second', messages });
      const text = await postJSON(`${server.url}/detokenize`, { tokens: tok.json.tokens });
      assert.equal(text.json.prompt, '<user>Hello\n<assistant>');
      const r = await postJSON(`${server.baseURL}/chat/completions`, { model: 'second', messages, max_tokens: 2 });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.model, 'first');
      assert.equal(r.json.usage.prompt_tokens, tok.json.count);
      const models = await (await fetch(`${server.baseURL}/models`)).json();
      assert.deepEqual(models.data.map((m) => m.id), ['first', 'second']);
    } finally {
      assert.equal(await server.stop(), 0);
    }
    // A template that loops over a message's parts gets them as a list ("auto" detects it, as
    // vLLM does); --chat-template-content-format string hands it the joined text instead.
    const loops = '{% for m in messages %}{% for p in m["content"] %}<{{ p.text }}>{% endfor %}{% endfor %}';
    const parts = [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }, { role: 'user', content: 'c' }];
    for (const [flags, want] of [[[], '<a><b><c>'], [['--chat-template-content-format', 'openai'], '<a><b><c>'],
                                 [['--chat-template-content-format', 'string'], '<><><><>']]) {
      const s = await startServer('tiny-phi', ['--disable-log-stats', '--chat-template', loops, ...flags]);
      try {
        const tok = await postJSON(`${s.url}/tokenize`, { messages: parts });
        assert.equal(tok.status, 200, tok.text);
        const text = await postJSON(`${s.url}/detokenize`, { tokens: tok.json.tokens });
        assert.equal(text.json.prompt, want, flags.join(' '));
      } finally {
        assert.equal(await s.stop(), 0);
      }
    }
    const inline = await startServer('tiny-phi', ['--disable-log-stats', '--chat-template', '{% for m in messages %}[{{ m.content }}]\\n{% endfor %}']);
    try {
      const tok = await postJSON(`${inline.url}/tokenize`, { messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }] });
      const text = await postJSON(`${inline.url}/detokenize`, { tokens: tok.json.tokens });
      assert.equal(text.json.prompt, '[a]\n[b]\n');
    } finally {
      assert.equal(await inline.stop(), 0);
    }
  });
});
