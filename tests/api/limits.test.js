'use strict';
// Limits that protect the server (API.md, Operations): credentials before the body, 64 KiB
// bodies on every route but ingestion, parse memory in proportion to the body, and a
// chunked body over the cap that is not read forever.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const h = require('./lib/harness');

const ctx = h.suite();

// One raw HTTP/1.1 exchange: writes head (and body, if any), then collects what comes back
// until the server closes or `wait` ms pass. feed(socket) may keep writing.
function exchange(server, head, { body, wait = 3000, feed } = {}) {
  return new Promise((resolve) => {
    const socket = net.connect(server.httpPort, '127.0.0.1');
    const started = Date.now();
    let text = '';
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve({ text, closed, ms: Date.now() - started, status: Number(text.split(' ')[1]) || 0 });
    };
    socket.on('data', (chunk) => { text += chunk; });
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.write(head);
    if (body) socket.write(body);
    if (feed) feed(socket);
    setTimeout(() => finish(false), wait);
  });
}

function post(path, headers) {
  return `POST ${path} HTTP/1.1\r\nHost: test\r\n` +
    Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
}

function rssKiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]);
}

async function createDevice(name) {
  const res = await ctx.api('POST', '/api/v1/devices', { token: ctx.admin.token,
    body: { name, max_hourly_kwh: 1e6, reading_type: 'interval' } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

test('a bad token is 401 before any body byte is sent, cached or looked up', async () => {
  const device = await createDevice('401 first');
  for (const token of ['never-issued-device-token-0000000000', `${device.token}x`]) {
    // The body is announced and never sent: the answer cannot have waited for it.
    const res = await exchange(ctx.server, post('/api/v1/measurements', {
      Authorization: `Bearer ${token}`, 'Content-Type': 'application/json',
      'Content-Length': 1000000 }));
    assert.equal(res.status, 401, res.text);
    assert.ok(res.closed, 'the connection is closed rather than the body read');
  }
  // A user route too, with a token that needs a look-up.
  const res = await exchange(ctx.server, post('/api/v1/users', {
    Authorization: 'Bearer not.a.jwt', 'Content-Type': 'application/json',
    'Content-Length': 60000 }));
  assert.equal(res.status, 401, res.text);
});

test('a good token looked up on a cache miss lets the body be read after it', async () => {
  const device = await createDevice('miss then body');
  const body = JSON.stringify({ ts: '2026-09-03T00:00:00Z', kwh: 0.5 });
  const res = await exchange(ctx.server, post('/api/v1/measurements', {
    Authorization: `Bearer ${device.token}`, 'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body) }), { body });
  assert.equal(res.status, 200, res.text);
  assert.match(res.text, /"accepted":1/);
});

test('64 KiB on every route but ingestion, MAX_BODY_BYTES there', async () => {
  const json = { 'content-type': 'application/json' };
  const padded = (n) => JSON.stringify({ email: 'x@example.test', password: 'p'.repeat(n) });
  const fits = 65536 - padded(0).length;
  let res = await ctx.api('POST', '/api/v1/auth/login', { body: padded(fits + 1), headers: json });
  assert.equal(res.status, 413, res.text);
  assert.equal(res.json.code, 'body_too_large');
  res = await ctx.api('POST', '/api/v1/auth/login', { body: padded(fits), headers: json });
  assert.notEqual(res.status, 413, res.text);

  const device = await createDevice('big batch');
  const base = Date.parse('2026-09-04T00:00:00Z');
  const measurements = Array.from({ length: 3000 },
    (_, i) => ({ ts: new Date(base + i * 1000).toISOString(), kwh: 0.001 }));
  const batch = JSON.stringify({ measurements });
  assert.ok(batch.length > 65536);
  res = await ctx.api('POST', '/api/v1/measurements', { token: device.token, body: batch,
    headers: { 'content-type': 'application/json' } });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.accepted, 3000);
});

test('a chunked body over the cap is cut off, not read forever', async () => {
  let sent = 0;
  const res = await exchange(ctx.server, post('/api/v1/auth/login', {
    'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }), {
    wait: 10000,
    feed: (socket) => {
      const chunk = `10000\r\n${'['.repeat(0x10000)}\r\n`;
      const timer = setInterval(() => {
        if (socket.destroyed) return clearInterval(timer);
        socket.write(chunk, () => {});
        sent += 0x10000;
      }, 5);
    },
  });
  assert.ok(res.closed, `still reading after ${sent} bytes`);
  assert.ok(res.status === 413 || res.text === '', res.text);
  // 64 KiB, then at most 8 MiB dropped so that a client that stops soon gets its 413.
  assert.ok(sent < 32 * 1024 * 1024, `${sent} bytes were taken before the cut`);
  // The server is fine afterwards.
  assert.equal((await ctx.api('GET', '/healthz')).status, 200);
});

test('hostile JSON costs memory in proportion to the body: RSS stays flat', async () => {
  const pid = ctx.server.pid;
  // The example: 1.5 MB of empty arrays to the anonymous login route, four at once,
  // and the same kind of body just under the 64 KiB cap, which is parsed (or refused) in full.
  const huge = `[${'[],'.repeat(500000)}[]]`;
  const capped = `[${'[],'.repeat(21000)}[]]`;
  assert.ok(capped.length <= 65536);
  const send = (body) => ctx.api('POST', '/api/v1/auth/login', { body,
    headers: { 'content-type': 'application/json' } }).catch(() => ({ status: 0 }));
  await send(capped); // warm-up: the connection pool, the threads' first allocations
  const before = rssKiB(pid);
  const statuses = [];
  for (let round = 0; round < 3; round++) {
    const results = await Promise.all([...Array.from({ length: 4 }, () => send(huge)),
      ...Array.from({ length: 4 }, () => send(capped))]);
    statuses.push(...results.map((r) => r.status));
  }
  const grown = rssKiB(pid) - before;
  assert.ok(grown < 8 * 1024, `RSS grew by ${grown} KiB`);
  // Refused for their size before being read (the client may see the close before the
  // 413), or for their shape before being parsed.
  for (let i = 0; i < statuses.length; i++) {
    if (i % 8 < 4) assert.ok(statuses[i] === 413 || statuses[i] === 0, String(statuses[i]));
    else assert.equal(statuses[i], 400);
  }
});
