// The official openai client over HTTPS, run by tls.test.mjs in its own node process so that
// NODE_EXTRA_CA_CERTS (read once at start-up) can name the test's self-signed certificate.
// Usage: node tls_client.mjs BASE_URL MODEL; prints a JSON summary on stdout.
import OpenAI from 'openai';

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 });
const completion = await client.completions.create({ model, prompt: 'Hello', max_tokens: 5, ignore_eos: true });
const stream = await client.chat.completions.create({
  model, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 6, ignore_eos: true, stream: true,
  stream_options: { include_usage: true },
});
let chunks = 0;
let text = '';
let usage = null;
let finish = null;
for await (const chunk of stream) {
  ++chunks;
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    text += c.delta?.content ?? '';
    if (c.finish_reason) finish = c.finish_reason;
  }
}
console.log(JSON.stringify({
  completion: { finish: completion.choices[0].finish_reason, tokens: completion.usage.completion_tokens },
  chat: { chunks, text, finish, tokens: usage?.completion_tokens },
}));
