// HTTPS (vLLM's --ssl-keyfile/--ssl-certfile/--ssl-ca-certs/--ssl-cert-reqs): a self-signed
// certificate made with the openssl CLI at test time; the official openai client does a
// completion and a streamed chat over https; plain HTTP to the TLS port gets a clean 400;
// garbage and stalled handshakes do not hurt the server; client certificates when required.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { startServer } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const MODEL = 'tiny-qwen3';
let dir;
let cert;
let key;

function makeCert(name) {
  const k = path.join(dir, `${name}.key`);
  const c = path.join(dir, `${name}.pem`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', k, '-out', c, '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  return { key: k, cert: c };
}

// GET over https with our CA (and optionally a client certificate); resolves { status, body }.
function httpsGet(url, extra = {}) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca: fs.readFileSync(cert), ...extra }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
  });
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vllm-tls-'));
  ({ key, cert } = makeCert('server'));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('https', () => {
  let server;
  before(async () => {
    server = await startServer(MODEL, ['--disable-log-stats', '--ssl-keyfile', key, '--ssl-certfile', cert]);
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  it('announces https and serves the openai client (completion and streamed chat)', async () => {
    assert.match(server.log(), /Uvicorn running on https:\/\/127\.0\.0\.1:\d+/);
    const out = await new Promise((resolve, reject) => {
      execFile(process.execPath, [path.join(here, 'tls_client.mjs'), `${server.url}/v1`, MODEL],
        { env: { ...process.env, NODE_EXTRA_CA_CERTS: cert }, timeout: 120000 },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout))));
    });
    assert.deepEqual(out.completion, { finish: 'length', tokens: 5 });
    assert.equal(out.chat.finish, 'length');
    assert.equal(out.chat.tokens, 6);
    assert.ok(out.chat.chunks >= 3);
    assert.equal(typeof out.chat.text, 'string');
  });

  it('keeps connections alive across requests', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: fs.readFileSync(cert) });
    const ports = new Set();
    for (let i = 0; i < 3; ++i) {
      const r = await new Promise((resolve, reject) => {
        https.get(`${server.url}/version`, { agent }, (res) => {
          ports.add(res.socket.localPort);
          let body = '';
          res.on('data', (d) => { body += d; });
          res.on('end', () => resolve({ status: res.statusCode, body }));
        }).on('error', reject);
      });
      assert.equal(r.status, 200);
      assert.match(r.body, /"version"/);
    }
    assert.equal(ports.size, 1);  // one connection served all three
    agent.destroy();
  });

  it('ends Connection: close responses and HTTP/1.0 streams with a clean TLS close', async () => {
    const body = JSON.stringify({ model: MODEL, prompt: 'a', max_tokens: 5, ignore_eos: true, stream: true });
    for (const req of ['GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      `POST /v1/completions HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`]) {
      const out = await new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: server.port, ca: fs.readFileSync(cert), servername: 'localhost' }, () => s.write(req));
        let data = '';
        let clean = false;
        s.on('data', (d) => { data += d; });
        s.on('end', () => { clean = true; });  // the server's close_notify, then its FIN
        s.on('error', reject);
        s.on('close', () => resolve({ data, clean }));
      });
      assert.match(out.data, /^HTTP\/1\.[01] 200 /);
      assert.ok(out.clean, 'no clean TLS close');
      if (req.startsWith('POST')) assert.match(out.data, /data: \[DONE\]\n\n$/);
    }
  });

  it('refuses an untrusted client cleanly (no CA given)', async () => {
    await assert.rejects(fetch(`${server.url}/health`), /fetch failed/);
    assert.equal((await httpsGet(`${server.url}/health`)).status, 200);
  });

  it('plain HTTP to the TLS port gets a plain 400 and the connection closes', async () => {
    const r = await fetch(`http://127.0.0.1:${server.port}/health`);
    assert.equal(r.status, 400);
    const body = await r.json();
    assert.equal(body.error.message, 'The plain HTTP request was sent to an HTTPS port');
    assert.equal((await httpsGet(`${server.url}/health`)).status, 200);
  });

  it('survives garbage, truncated handshakes and a TLS client that sends junk after the handshake', async () => {
    // Random bytes: the handshake fails and the server closes the connection.
    const garbage = net.connect(server.port, '127.0.0.1');
    garbage.on('error', () => {});
    const garbageClosed = new Promise((r) => garbage.on('close', r));
    garbage.write(crypto.randomBytes(8192));
    await garbageClosed;
    // A record header that promises more than it sends, and a silent client: they wait for the
    // handshake's time limit without holding anything else up.
    const stalled = [Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff]), Buffer.alloc(0)].map((bytes) => {
      const sock = net.connect(server.port, '127.0.0.1');
      sock.on('error', () => {});
      sock.write(bytes);
      return sock;
    });
    // A proper handshake followed by bytes that are not HTTP: a 400, then the close.
    const raw = await new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: server.port, ca: fs.readFileSync(cert), servername: 'localhost' }, () => {
        s.write('NOT HTTP AT ALL\r\n\r\n');
      });
      let data = '';
      s.on('data', (d) => { data += d; });
      s.on('error', reject);
      s.on('close', () => resolve(data));
    });
    assert.match(raw, /^HTTP\/1\.1 400 /);
    assert.equal((await httpsGet(`${server.url}/health`)).status, 200);
    for (const s of stalled) s.destroy();
  });
});

describe('https with client certificates (--ssl-cert-reqs 2)', () => {
  let server;
  let clientCert;
  before(async () => {
    clientCert = makeCert('client');
    // The client's self-signed certificate is its own CA.
    server = await startServer(MODEL, ['--disable-log-stats', '--ssl-keyfile', key, '--ssl-certfile', cert,
      '--ssl-ca-certs', clientCert.cert, '--ssl-cert-reqs', '2']);
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  it('accepts a client with a trusted certificate and refuses one without', async () => {
    const ok = await httpsGet(`${server.url}/health`, { key: fs.readFileSync(clientCert.key), cert: fs.readFileSync(clientCert.cert) });
    assert.equal(ok.status, 200);
    await assert.rejects(httpsGet(`${server.url}/health`));
  });
});

describe('https flags', () => {
  it('a missing certificate file fails at start-up with a clear message', async () => {
    await assert.rejects(startServer(MODEL, ['--ssl-keyfile', key, '--ssl-certfile', path.join(dir, 'nope.pem')], { timeoutMs: 60000 }),
      /cannot load --ssl-certfile/);
    await assert.rejects(startServer(MODEL, ['--ssl-certfile', cert], { timeoutMs: 60000 }), /needs both --ssl-keyfile and --ssl-certfile/);
  });
});
