'use strict';
// GET /api/v1/devices/{id}/measurements: stored readings as the device sent
// them, as JSON pages or (Accept: text/csv) one streamed CSV file of any size.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const h = require('./lib/harness');

const { after, before, describe } = test;
// A small pool: a connection an export failed to give back would soon show as 503s.
const POOL_SIZE = 4;
const ctx = h.suite({ server: { env: { DB_POOL_SIZE: POOL_SIZE } } });

function assertProblem(res, status, code, field) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers.get('content-type'), /^application\/problem\+json/);
  if (code) assert.equal(res.json.code, code, res.text);
  if (field !== undefined) assert.equal(res.json.field, field, res.text);
}

async function createDevice(body) {
  const res = await ctx.api('POST', '/api/v1/devices', { token: ctx.admin.token,
    body: { name: 'Meter', max_hourly_kwh: 5, ...body } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

function readings(deviceId, query = '', { token = ctx.admin.token, headers } = {}) {
  return ctx.api('GET', `/api/v1/devices/${deviceId}/measurements${query}`, { token, headers });
}

function csv(deviceId, query = '', token = ctx.admin.token) {
  return readings(deviceId, query, { token, headers: { accept: 'text/csv' } });
}

function csvFrom(server, deviceId, query) {
  return h.api(server, 'GET', `/api/v1/devices/${deviceId}/measurements${query}`,
    { token: ctx.admin.token, headers: { accept: 'text/csv' } });
}

function vmRssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

// The exact doubles stored, as PostgreSQL prints them (shortest round trip).
const STORED = [
  ['2026-02-01T10:00:00Z', '48213.7'],
  ['2026-02-01T10:00:00.25Z', '48213.75'],
  ['2026-02-01T10:00:00.500001Z', '0.30000000000000004'],
  ['2026-02-01T11:00:00Z', '1e-300'],
  ['2026-03-01T00:00:00Z', '0'],
];

describe('JSON pages', () => {
  let meter;

  before(async () => {
    meter = await createDevice({ name: 'Cumulative' });
    const values = STORED.map(([ts, v]) => `(${meter.id}, '${ts}', '${v}'::float8)`).join(', ');
    ctx.pg.psql(`insert into readings (device_id, ts, value) values ${values}`);
  });

  test('a cumulative device\'s readings as {ts, meter_kwh}, oldest first, exact', async () => {
    const res = await readings(meter.id);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, {
      items: STORED.map(([ts, v]) => ({ ts, meter_kwh: Number(v) })),
      next_cursor: null,
    });
  });

  test('an interval device\'s readings as {ts, kwh}, through real ingestion', async () => {
    const dev = await createDevice({ name: 'Interval', reading_type: 'interval' });
    const post = await ctx.api('POST', '/api/v1/measurements', { token: dev.token, body: {
      measurements: [{ ts: '2026-04-01T10:05:00.125+02:00', kwh: 0.42 },
        { ts: '2026-04-01T07:00:00Z', kwh: 0.1 }] } });
    assert.equal(post.status, 200, post.text);
    const res = await readings(dev.id);
    assert.deepEqual(res.json.items, [
      { ts: '2026-04-01T07:00:00Z', kwh: 0.1 },
      { ts: '2026-04-01T08:05:00.125Z', kwh: 0.42 },
    ]);
  });

  test('limit and cursor page through; from (inclusive) and to (exclusive) bound', async () => {
    const seen = [];
    let cursor = null;
    let pages = 0;
    do {
      const q = `?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const res = await readings(meter.id, q);
      assert.equal(res.status, 200, res.text);
      seen.push(...res.json.items.map((r) => r.ts));
      cursor = res.json.next_cursor;
      pages++;
    } while (cursor !== null);
    assert.equal(pages, 3);
    assert.deepEqual(seen, STORED.map(([ts]) => ts));

    const range = await readings(meter.id,
      '?from=2026-02-01T10:00:00.25Z&to=2026-02-01T11:00:00Z');
    assert.deepEqual(range.json.items.map((r) => r.ts),
      ['2026-02-01T10:00:00.25Z', '2026-02-01T10:00:00.500001Z']);
    // A cursor keeps the range it was used with.
    const first = await readings(meter.id, '?limit=1&from=2026-02-01T10:00:00.25Z');
    const next = await readings(meter.id,
      `?limit=10&to=2026-03-01T00:00:00Z&cursor=${encodeURIComponent(first.json.next_cursor)}`);
    assert.deepEqual(next.json.items.map((r) => r.ts),
      ['2026-02-01T10:00:00.500001Z', '2026-02-01T11:00:00Z']);
    assert.equal(next.json.next_cursor, null);
  });

  test('malformed queries are 400, an empty range 422', async () => {
    for (const [query, code, field] of [
      ['?from=yesterday', 'invalid_query', 'from'],
      ['?to=2026-02-01', 'invalid_query', 'to'],
      ['?limit=0', 'invalid_query', 'limit'],
      ['?cursor=nope', 'invalid_cursor', 'cursor'],
      ['?cursor=ZDE', 'invalid_cursor', 'cursor'], // a devices-list cursor
    ]) {
      assertProblem(await readings(meter.id, query), 400, code, field);
    }
    assertProblem(await readings(meter.id, '?from=2026-02-02T00:00:00Z&to=2026-02-01T00:00:00Z'),
      422, 'invalid_field', 'to');
  });
});

describe('CSV', () => {
  let meter;
  let empty;

  before(async () => {
    meter = await createDevice({ name: 'CSV meter' });
    empty = await createDevice({ name: 'Silent', reading_type: 'interval' });
    const values = STORED.map(([ts, v]) => `(${meter.id}, '${ts}', '${v}'::float8)`).join(', ');
    ctx.pg.psql(`insert into readings (device_id, ts, value) values ${values}`);
  });

  test('Accept: text/csv gives the range as an attachment, values exact', async () => {
    const res = await csv(meter.id);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers.get('content-type'), 'text/csv; charset=utf-8');
    assert.equal(res.headers.get('content-disposition'),
      `attachment; filename="device-${meter.id}.csv"`);
    const lines = res.text.split('\n');
    assert.equal(lines.pop(), ''); // ends with a newline
    assert.equal(lines[0], 'ts,meter_kwh');
    assert.equal(lines.length, STORED.length + 1);
    lines.slice(1).forEach((line, i) => {
      const [ts, value] = line.split(',');
      assert.equal(ts, STORED[i][0]);
      assert.equal(value, STORED[i][1], line); // the shortest text that reads back exactly
    });
    assert.equal(lines[1], '2026-02-01T10:00:00Z,48213.7');

    const range = await csv(meter.id, '?from=2026-02-01T10:00:00.25Z&to=2026-02-01T10:00:01Z&limit=1');
    assert.deepEqual(range.text.trim().split('\n'),
      ['ts,meter_kwh', '2026-02-01T10:00:00.25Z,48213.75', '2026-02-01T10:00:00.500001Z,0.30000000000000004']);

    const none = await csv(empty.id);
    assert.equal(none.status, 200);
    assert.equal(none.text, 'ts,kwh\n');
  });

  test('text/csv is chosen among several types unless refused with q=0', async () => {
    for (const accept of ['application/json;q=0.5, text/csv', 'TEXT/CSV;charset=utf-8',
      'text/html,text/csv;q=0.1']) {
      const res = await readings(meter.id, '', { headers: { accept } });
      assert.equal(res.headers.get('content-type'), 'text/csv; charset=utf-8', accept);
    }
    for (const accept of ['application/json', 'text/csv;q=0', 'text/csvx', '*/*']) {
      const res = await readings(meter.id, '', { headers: { accept } });
      assert.equal(res.headers.get('content-type'), 'application/json', accept);
    }
  });

  test('errors come as problems before any CSV; other people\'s devices are 404', async () => {
    const account = await h.createUser(ctx.server, { role: 'client' });
    const tokens = await h.login(ctx.server, account.email, account.password);
    assertProblem(await csv(meter.id, '', tokens.access_token), 404, 'not_found');
    assertProblem(await readings(meter.id, '', { token: tokens.access_token }), 404, 'not_found');
    assertProblem(await csv(999999), 404, 'not_found');
    assertProblem(await csv(meter.id, '?from=bad'), 400, 'invalid_query', 'from');
    assertProblem(await csv(meter.id, ''.concat('?from=2026-02-02T00:00:00Z&to=2026-02-01T00:00:00Z')),
      422);
    const own = await createDevice({ name: 'Theirs', owner_id: tokens.user.id });
    assert.equal((await csv(own.id, '', tokens.access_token)).status, 200);
  });
});

// ASan keeps freed memory in quarantine (256 MiB by default) before reusing it,
// so every batch an export frees would look like growth. The export tests get
// their own server with a small quarantine: the RSS then shows what the
// program holds, which is what the 64 MiB bound is about. The options are the
// harness's plus the quarantine size.
const EXPORT_ASAN_OPTIONS =
  'detect_leaks=1:abort_on_error=0:exitcode=86:halt_on_error=1:quarantine_size_mb=4';

describe('a year of one-minute readings', () => {
  let big;
  let server;
  const ROWS = 525600;

  before(async () => {
    server = await h.startServer({ databaseUrl: ctx.pg.url,
      env: { DB_POOL_SIZE: POOL_SIZE, ASAN_OPTIONS: EXPORT_ASAN_OPTIONS,
        JWT_SECRET: ctx.server.jwtSecret } }); // the admin's token works on both
    big = await createDevice({ name: 'Busy meter' });
    ctx.pg.psql(`insert into readings (device_id, ts, value)
      select ${big.id}, g, 1000 + extract(epoch FROM g - timestamptz '2025-01-01 00:00Z') / 600
      from generate_series(timestamptz '2025-01-01 00:00Z', timestamptz '2025-12-31 23:59Z',
        interval '1 minute') g`);
    assert.equal(Number(ctx.pg.scalar(`select count(*) from readings where device_id = ${big.id}`)),
      ROWS);
  });

  after(() => server.stop());

  test('streams as CSV: every row, in order, without buffering it in memory', async (t) => {
    // Warm up: the first export's one-time allocations are not growth.
    assert.equal((await csvFrom(server, big.id, '?to=2025-01-02T00:00:00Z')).status, 200);
    const pid = server.pid;
    const before = vmRssKiB(pid);
    let peak = before;
    const sampler = setInterval(() => { peak = Math.max(peak, vmRssKiB(pid)); }, 10);

    const res = await fetch(`${server.baseUrl}/api/v1/devices/${big.id}/measurements`, {
      headers: { authorization: `Bearer ${ctx.admin.token}`, accept: 'text/csv' } });
    assert.equal(res.status, 200);
    const decoder = new TextDecoder();
    let lines = 0;
    let first = null;
    let last = null;
    let partial = '';
    let bytes = 0;
    for await (const chunk of res.body) {
      bytes += chunk.length;
      const text = partial + decoder.decode(chunk, { stream: true });
      const parts = text.split('\n');
      partial = parts.pop();
      for (const line of parts) {
        if (lines === 0) assert.equal(line, 'ts,meter_kwh');
        else if (lines === 1) first = line;
        last = line;
        lines++;
      }
      peak = Math.max(peak, vmRssKiB(pid));
    }
    clearInterval(sampler);
    assert.equal(partial, '');
    assert.equal(lines, ROWS + 1);
    assert.equal(first, '2025-01-01T00:00:00Z,1000');
    assert.equal(last, '2025-12-31T23:59:00Z,53559.9');
    assert.ok(bytes > 12 * 1024 * 1024, `only ${bytes} bytes`);
    const growthMiB = (peak - before) / 1024;
    t.diagnostic(`${bytes} bytes; server RSS ${before >> 10} MiB, peak growth ${growthMiB.toFixed(1)} MiB`);
    // Streaming grows by a few MiB. Holding the whole query result (525,600 rows in
    // one PGresult) measured 53 MiB, so the bound is 32 MiB rather than 64: with 64 a
    // buffering export would still pass.
    assert.ok(growthMiB < 32, `the server grew by ${growthMiB.toFixed(1)} MiB during the export`);
  });

  // An export the server admits (at most EXPORT_MAX_PER_USER, 2, per user at a
  // time): an abandoned one gives its slot back once the server has seen its
  // socket go, a moment after the client aborts, so a 429 is retried.
  async function admittedExport(method = 'GET') {
    return h.waitFor(async () => {
      const abort = new AbortController();
      const res = await fetch(`${server.baseUrl}/api/v1/devices/${big.id}/measurements`, {
        method, headers: { authorization: `Bearer ${ctx.admin.token}`, accept: 'text/csv' },
        signal: abort.signal });
      if (res.status !== 429) return { res, abort };
      await res.text();
      return null;
    }, { timeout: 10000, message: 'the slots of abandoned exports given back' });
  }

  test('a client that disconnects mid-stream gets its connection back to the pool', async () => {
    for (let i = 0; i < POOL_SIZE + 2; i++) {
      const { res, abort } = await admittedExport();
      assert.equal(res.status, 200);
      const reader = res.body.getReader();
      await reader.read();
      abort.abort();
      await reader.read().catch(() => {});
    }
    const { res: head } = await admittedExport('HEAD');
    assert.equal(head.status, 200);
    // Every abandoned export rolled back and released its connection.
    await h.waitFor(() => Number(ctx.pg.scalar(`select count(*) from pg_stat_activity
      where datname = current_database() and state like 'idle in transaction%'`)) === 0,
    { timeout: 10000, message: 'no connection left inside an export transaction' });
    for (let i = 0; i < POOL_SIZE * 3; i++) {
      const res = await h.api(server, 'GET', `/api/v1/devices/${big.id}/measurements?limit=1`,
        { token: ctx.admin.token });
      assert.equal(res.status, 200, res.text);
    }
    const whole = await csvFrom(server, big.id, '?from=2025-06-01T00:00:00Z&to=2025-06-01T01:00:00Z');
    assert.equal(whole.text.trim().split('\n').length, 61);
  });
});
