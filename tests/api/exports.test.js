'use strict';
// CSV exports against clients that stop reading (issue 14, "one client can
// exhaust the pool"): a stalled export holds no pooled database connection, so
// every other database route keeps answering; exports are capped per user
// (429 rate_limited) and in all (503), with Retry-After, never queued; and a
// client that makes no progress for SEND_TIMEOUT_S is dropped.
//
// The stalled clients are raw sockets that send the request, read the status
// line and then never read again, so the kernel's buffers fill and the server
// can send no more. The device holds a year of one-minute readings (about
// 14 MB of CSV), several times what the socket buffers take.
const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const h = require('./lib/harness');

const { after, before, describe } = test;

const POOL_SIZE = 2;
const PER_USER = 2;
const TOTAL = 3; // > POOL_SIZE: the stalled exports alone would take every connection
const ROWS = 525600;

const ctx = h.suite({ server: { env: {
  DB_POOL_SIZE: POOL_SIZE, EXPORT_MAX_PER_USER: PER_USER, EXPORT_MAX_TOTAL: TOTAL,
} } });

let owner; // a client user owning the big device: {email, password, token}
let big;

// The owner and the device, made once for both suites (a root before() would
// run ahead of the harness's own).
let made = null;
function setup() {
  made ??= makeOwnerAndDevice();
  return made;
}

async function makeOwnerAndDevice() {
  const account = await h.createUser(ctx.server, { role: 'client' });
  const tokens = await h.login(ctx.server, account.email, account.password);
  owner = { ...account, token: tokens.access_token, id: tokens.user.id };
  const res = await ctx.api('POST', '/api/v1/devices', { token: ctx.admin.token,
    body: { name: 'Busy meter', max_hourly_kwh: 5, owner_id: owner.id } });
  assert.equal(res.status, 201, res.text);
  big = res.json;
  ctx.pg.psql(`insert into readings (device_id, ts, value)
    select ${big.id}, g, 1000 + extract(epoch FROM g - timestamptz '2025-01-01 00:00Z') / 600
    from generate_series(timestamptz '2025-01-01 00:00Z', timestamptz '2025-12-31 23:59Z',
      interval '1 minute') g`);
}

// Sends a CSV export request on a raw socket and resolves, once the response
// head is in, to {sock, status, head, body}: body holds what came with the
// head. The socket is then paused: nothing more is read from the kernel until
// the caller resumes it.
function stalledExport(server, deviceId, token) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(server.httpPort, '127.0.0.1');
    let received = Buffer.alloc(0);
    const onData = (chunk) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      sock.pause();
      sock.off('data', onData);
      sock.off('error', reject);
      sock.on('error', () => {}); // a drop is examined by the caller
      const head = received.subarray(0, end).toString('latin1');
      resolve({ sock, status: Number(head.split(' ')[1]), head,
        body: received.subarray(end + 4) });
    };
    sock.on('data', onData);
    sock.on('error', reject);
    sock.on('connect', () => sock.write(
      `GET /api/v1/devices/${deviceId}/measurements HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
      `Authorization: Bearer ${token}\r\nAccept: text/csv\r\n\r\n`));
  });
}

function header(head, name) {
  const re = new RegExp(`^${name}:\\s*(.*)$`, 'im');
  const m = re.exec(head);
  return m ? m[1].trim() : null;
}

// Reads the rest of a paused socket until it ends, the chunked body is
// complete, or timeoutMs passes: resolves to {bytes, ended, tail}, tail being
// the last bytes read.
function drain(stalled, timeoutMs) {
  const { sock } = stalled;
  return new Promise((resolve) => {
    let bytes = stalled.body.length;
    let tail = stalled.body.subarray(-16);
    const done = (ended) => {
      clearTimeout(timer);
      sock.removeAllListeners('data');
      resolve({ bytes, ended, tail: tail.toString('latin1') });
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on('data', (chunk) => {
      bytes += chunk.length;
      tail = Buffer.concat([tail, chunk]).subarray(-16);
      if (tail.toString('latin1').endsWith('\r\n0\r\n\r\n')) done(false);
    });
    sock.once('end', () => done(true));
    sock.once('close', () => done(true));
    sock.resume();
  });
}

function idleInTransaction() {
  return Number(ctx.pg.scalar(`select count(*) from pg_stat_activity
    where datname = current_database() and state like 'idle in transaction%'`));
}

describe('clients that stop reading an export', () => {
  const stalled = [];

  before(setup);

  after(() => {
    for (const s of stalled) s.sock.destroy();
  });

  test(`${TOTAL} stalled exports (pool of ${POOL_SIZE}): every database route still answers`,
    async () => {
      // Two from the owner, one from the admin: TOTAL exports, POOL_SIZE connections.
      for (const token of [owner.token, owner.token, ctx.admin.token]) {
        const s = await stalledExport(ctx.server, big.id, token);
        stalled.push(s);
        assert.equal(s.status, 200, s.head);
        assert.equal(header(s.head, 'content-type'), 'text/csv; charset=utf-8');
      }
      await h.sleep(1000); // let the socket buffers fill: the server can send no more

      // No export keeps a transaction (and its connection) open while it waits.
      assert.equal(idleInTransaction(), 0, 'a stalled export holds a transaction open');

      // Login (a hashing worker, then the database), the device list, the
      // readings as JSON and a consumption query all answer: each needs a
      // pooled connection.
      for (let i = 0; i < 3; i++) {
        const tokens = await h.login(ctx.server, owner.email, owner.password);
        assert.ok(tokens.access_token);
        const list = await ctx.api('GET', '/api/v1/devices', { token: ctx.admin.token });
        assert.equal(list.status, 200, list.text);
        const page = await ctx.api('GET', `/api/v1/devices/${big.id}/measurements?limit=2`,
          { token: owner.token });
        assert.equal(page.status, 200, page.text);
        assert.equal(page.json.items[0].ts, '2025-01-01T00:00:00Z');
        const day = await ctx.api('GET',
          `/api/v1/devices/${big.id}/consumption?date=2025-03-01`, { token: owner.token });
        assert.equal(day.status, 200, day.text);
      }
      const health = await ctx.api('GET', '/healthz');
      assert.equal(health.status, 200);
      const ready = await ctx.api('GET', '/readyz');
      assert.equal(ready.status, 200, ready.text);
    });

  test('past the caps an export is 429 rate_limited (per user) or 503 (in all), ' +
    'with Retry-After, at once', async () => {
    assert.equal(stalled.length, TOTAL, 'the previous test left its exports open');
    // The owner has PER_USER exports open: 429, whatever the total.
    const mine = await ctx.api('GET', `/api/v1/devices/${big.id}/measurements`,
      { token: owner.token, headers: { accept: 'text/csv' } });
    assert.equal(mine.status, 429, mine.text);
    assert.equal(mine.json.code, 'rate_limited');
    assert.match(mine.headers.get('content-type'), /^application\/problem\+json/);
    assert.match(mine.headers.get('retry-after') ?? '', /^[1-9][0-9]*$/);
    // The admin has one open, under its own cap, but the server has TOTAL: 503.
    const all = await ctx.api('GET', `/api/v1/devices/${big.id}/measurements`,
      { token: ctx.admin.token, headers: { accept: 'text/csv' } });
    assert.equal(all.status, 503, all.text);
    assert.match(all.headers.get('content-type'), /^application\/problem\+json/);
    assert.match(all.headers.get('retry-after') ?? '', /^[1-9][0-9]*$/);
    // JSON pages are not exports: never capped.
    const page = await ctx.api('GET', `/api/v1/devices/${big.id}/measurements?limit=1`,
      { token: owner.token });
    assert.equal(page.status, 200, page.text);

    // A stalled client that reads again gets the whole file, exactly.
    const first = stalled.shift();
    const rest = await drain(first, 60000);
    assert.equal(rest.tail.endsWith('\r\n0\r\n\r\n'), true, 'the chunked body is complete');
    // (chunk framing aside) a year of lines: far more than the socket buffers held
    assert.ok(rest.bytes > 12 * 1024 * 1024, `only ${rest.bytes} bytes`);
    first.sock.destroy();
    // Its slot is free again (the server notices the end of the stream).
    await h.waitFor(async () => {
      const res = await ctx.api('GET', `/api/v1/devices/${big.id}/measurements` +
        '?from=2025-06-01T00:00:00Z&to=2025-06-01T01:00:00Z',
      { token: owner.token, headers: { accept: 'text/csv' } });
      return res.status === 200 && res.text.trim().split('\n').length === 61;
    }, { timeout: 10000, message: 'an export slot freed by a finished export' });
  });
});

describe('SEND_TIMEOUT_S', () => {
  let server;
  const SEND_TIMEOUT_S = 3;

  before(async () => {
    await setup();
    // CONNECTION_TIMEOUT stays at its default (60): the send deadline is its own.
    server = await h.startServer({ databaseUrl: ctx.pg.url, env: {
      DB_POOL_SIZE: POOL_SIZE, EXPORT_MAX_PER_USER: 1, SEND_TIMEOUT_S,
      JWT_SECRET: ctx.server.jwtSecret } }); // the same tokens work on both
  });

  after(() => server.stop());

  test('a client that reads nothing for SEND_TIMEOUT_S is dropped and frees its export',
    async () => {
      const s = await stalledExport(server, big.id, owner.token);
      try {
        assert.equal(s.status, 200, s.head);
        // Its one export slot is taken while it stalls.
        const second = await h.api(server, 'GET', `/api/v1/devices/${big.id}/measurements`,
          { token: owner.token, headers: { accept: 'text/csv' } });
        assert.equal(second.status, 429, second.text);
        // Well past the deadline, the server has given up on it: the slot is free...
        await h.waitFor(async () => {
          const res = await h.api(server, 'GET', `/api/v1/devices/${big.id}/measurements` +
            '?from=2025-06-01T00:00:00Z&to=2025-06-01T00:10:00Z',
          { token: owner.token, headers: { accept: 'text/csv' } });
          return res.status === 200;
        }, { timeout: (SEND_TIMEOUT_S + 10) * 1000, interval: 250,
          message: 'the stalled export dropped after SEND_TIMEOUT_S' });
        // ...and the connection is closed with the file incomplete.
        const rest = await drain(s, 20000);
        assert.equal(rest.ended, true, 'the server closed the connection');
        assert.equal(rest.tail.endsWith('\r\n0\r\n\r\n'), false, 'the body was cut short');
        assert.ok(rest.bytes < 12 * 1024 * 1024, `${rest.bytes} bytes: the whole file came`);
      } finally {
        s.sock.destroy();
      }
    });

  test('a client that keeps reading, however slowly, is not dropped', async () => {
    // Reads 512 KiB every half second, about half the file over the test: the
    // export takes longer than SEND_TIMEOUT_S several times over, but never
    // stalls that long. (The server's socket reports room to write only once
    // a good part of its send buffer has drained, so a reader much slower than
    // this can look stalled to it: the deadline is about the server's sends.)
    const s = await stalledExport(server, big.id, owner.token);
    try {
      assert.equal(s.status, 200, s.head);
      let bytes = s.body.length;
      let ended = false;
      s.sock.on('end', () => { ended = true; });
      s.sock.on('close', () => { ended = true; });
      const until = Date.now() + (SEND_TIMEOUT_S * 2 + 1) * 1000;
      while (Date.now() < until && !ended) {
        await h.sleep(500);
        s.sock.resume();
        let got = 0;
        await new Promise((resolve) => {
          const onData = (chunk) => {
            bytes += chunk.length;
            got += chunk.length;
            if (got >= 512 * 1024 || ended) {
              s.sock.pause();
              s.sock.off('data', onData);
              resolve();
            }
          };
          s.sock.on('data', onData);
        });
      }
      assert.equal(ended, false, `dropped after ${bytes} bytes`);
    } finally {
      s.sock.destroy();
    }
  });
});
