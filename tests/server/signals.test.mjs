// SIGTERM and SIGINT: the server stops accepting, ends what is in flight and exits 0.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './harness.mjs';

const MODEL = 'tiny-phi';

describe('signals', () => {
  it('SIGTERM while idle exits 0', async () => {
    const server = await startServer(MODEL, ['--disable-log-stats']);
    assert.equal((await fetch(`${server.url}/health`)).status, 200);
    assert.equal(await server.stop('SIGTERM'), 0);
    assert.match(server.log(), /Shutting down/);
    assert.match(server.log(), /Finished server process/);
    await assert.rejects(fetch(`${server.url}/health`));
  });

  it('SIGINT while idle exits 0', async () => {
    const server = await startServer(MODEL, ['--disable-log-stats']);
    assert.equal(await server.stop('SIGINT'), 0);
  });

  it('SIGTERM during a stream ends the stream and exits 0', async () => {
    const server = await startServer(MODEL, ['--disable-log-stats']);
    const res = await fetch(`${server.baseURL}/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, prompt: 'a', max_tokens: 1900, ignore_eos: true, stream: true }),
    });
    const reader = res.body.getReader();
    assert.ok(!(await reader.read()).done);
    const code = server.stop('SIGTERM');
    let text = '';
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
    } catch {
      // The connection may be closed under us; what matters is that the server exits.
    }
    assert.equal(await code, 0);
    // When the final events arrived before the connection closed: one finish_reason, "abort".
    if (text.includes('data: [DONE]')) assert.equal(text.match(/"finish_reason":"abort"/g)?.length, 1, text.slice(-2000));
  });
});
