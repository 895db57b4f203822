'use strict';
// The deployment topology on loopback, without Docker (issue 8): one PostgreSQL, two
// `wattline serve` instances sharing one JWT secret, and Debian's nginx started with
// docker/nginx.conf rendered for local upstreams (tools/render-nginx.sh), terminating
// TLS with the certificate `make certs` makes, and (issue 19) a streaming replica of the
// PostgreSQL that both instances read charts and lists from (DATABASE_READ_URL; the test
// waits for it to replay what a check then reads). Every client request goes through nginx;
// the instances are only looked at (logs, /metrics) to know which one did what.
// Checked: the dashboard and the API work through nginx; a WebSocket session through
// nginx gets its alerts whichever instance took the readings; and with one instance
// killed (SIGKILL) during a stream of device posts, the stream goes on through the
// other, every acknowledged reading is stored exactly once and the hourly figures and
// alerts are exactly what the readings say.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const path = require('node:path');
const h = require('./lib/harness');
const certs = require('./lib/certs');
const hs = require('./lib/https');
const ngx = require('./lib/nginx');
const { startReplica } = require('./lib/replica');

const { before, after } = test;

const HOUR = 3600 * 1000;
const MINUTE = 60 * 1000;
// Hours in the past (no reading may be in the future), one range per test.
const ALERT_BASE_HOUR = Math.floor(Date.now() / HOUR) * HOUR - 2000 * HOUR;
const STREAM_BASE_HOUR = Math.floor(Date.now() / HOUR) * HOUR - 1000 * HOUR;
const iso = (ms) => new Date(ms).toISOString();

const ctx = { instances: [], killed: new Set() };

before(async () => {
  const dir = certs.tempDir('wattline-topology-');
  ctx.dev = certs.makeDevCerts(path.join(dir, 'certs'));
  ctx.pg = await h.startPostgres();
  ctx.replica = await startReplica(ctx.pg);
  const nginxPort = await h.freePort();
  ctx.publicWsUrl = `wss://127.0.0.1:${nginxPort}/ws`;
  // Both instances must accept each other's tokens: one secret for the deployment.
  // nginx reaches them from 127.0.0.1: its X-Forwarded-For names the client.
  const env = { PUBLIC_WS_URL: ctx.publicWsUrl, JWT_SECRET: crypto.randomBytes(48).toString('hex'),
    TRUSTED_PROXIES: '127.0.0.1', DATABASE_READ_URL: ctx.replica.readUrlFor(ctx.pg.url) };
  // One after the other: the first applies the migrations.
  for (let i = 0; i < 2; i++) {
    const server = await h.startServer({ databaseUrl: ctx.pg.url, env });
    ctx.instances.push(server);
    await server.waitReady();
    await ngx.waitForListener(server.wsPort);
  }
  ctx.nginx = await ngx.startNginx({ port: nginxPort, cert: ctx.dev.cert, key: ctx.dev.key,
    ca: ctx.dev.ca,
    http: ctx.instances.map((s) => `127.0.0.1:${s.httpPort}`),
    ws: ctx.instances.map((s) => `127.0.0.1:${s.wsPort}`) });
  ctx.client = hs.client(ctx.nginx.baseUrl, { ca: ctx.dev.ca });
  ctx.api = ctx.client.api;

  const admin = await h.createUser(ctx.instances[0], { role: 'admin' });
  const adminTokens = await hs.login(ctx.api, admin.email, admin.password);
  ctx.admin = { ...admin, token: adminTokens.access_token };
  const password = `Pw-${crypto.randomBytes(6).toString('hex')}-x9`;
  const created = await ctx.api('POST', '/api/v1/users', { token: ctx.admin.token,
    body: { email: 'owner@topology.example.test', name: 'Topology owner', password, role: 'client' } });
  assert.equal(created.status, 201, created.text);
  const ownerTokens = await hs.login(ctx.api, 'owner@topology.example.test', password);
  ctx.owner = { id: ownerTokens.user.id, token: ownerTokens.access_token };
});

after(async () => {
  ctx.client?.close();
  const problems = [];
  try {
    if (ctx.nginx) await ctx.nginx.stop();
  } catch (err) {
    problems.push(err);
  }
  for (const server of ctx.instances) {
    if (ctx.killed.has(server)) continue; // its exit was the test's doing
    try {
      await server.stop();
    } catch (err) {
      problems.push(err);
    }
  }
  if (ctx.replica) await ctx.replica.destroy();
  if (ctx.pg) await ctx.pg.destroy();
  if (problems.length) throw problems[0];
});

async function createDevice(name, { limit }) {
  const res = await ctx.api('POST', '/api/v1/devices', { token: ctx.admin.token,
    body: { name, max_hourly_kwh: limit, reading_type: 'interval', owner_id: ctx.owner.id } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

// The instance (index into ctx.instances) that logged a request with this id, or -1.
function instanceThatServed(requestId) {
  return ctx.instances.findIndex((s) => s.logs().some((line) => line.request_id === requestId));
}

// Reads the instances answered from the replica, in all.
async function replicaReads() {
  let sum = 0;
  for (const server of ctx.instances) {
    if (ctx.killed.has(server)) continue;
    const text = await (await fetch(`${server.baseUrl}/metrics`)).text();
    const m = /^wattline_db_reads_total\{pool="replica"\} (\d+)$/m.exec(text);
    assert.ok(m, 'wattline_db_reads_total is not in /metrics');
    sum += Number(m[1]);
  }
  return sum;
}

async function openSessions(server) {
  const res = await fetch(`${server.baseUrl}/metrics`);
  const text = await res.text();
  const m = /^wattline_ws_sessions_open (\d+)$/m.exec(text);
  assert.ok(m, 'wattline_ws_sessions_open is not in /metrics');
  return Number(m[1]);
}

test('the dashboard and the API work through nginx', async () => {
  const dashboard = await ctx.api('GET', '/');
  assert.equal(dashboard.status, 200);
  assert.match(dashboard.headers['content-type'], /^text\/html/);
  assert.ok(dashboard.headers['strict-transport-security'], 'nginx sends HSTS');

  const config = await ctx.api('GET', '/api/v1/config');
  assert.equal(config.status, 200, config.text);
  assert.equal(config.json.ws_url, ctx.publicWsUrl, 'the instances name the proxy\'s wss:// URL');

  const metrics = await ctx.api('GET', '/metrics');
  assert.equal(metrics.status, 404, 'the per-instance metrics are not published through the proxy');

  const device = await createDevice('topology meter', { limit: 100 });
  const hour = ALERT_BASE_HOUR - 24 * HOUR;
  const requestIds = [];
  for (let i = 0; i < 4; i++) {
    const rid = `topo-api-${i}-${crypto.randomBytes(4).toString('hex')}`;
    requestIds.push(rid);
    const res = await ctx.api('POST', '/api/v1/measurements', { token: device.token,
      headers: { 'x-request-id': rid }, body: { ts: iso(hour + i * MINUTE), kwh: 0.25 } });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { accepted: 1, duplicates: 0 });
    assert.equal(res.headers['x-request-id'], rid, 'the request id passes through nginx');
  }
  const day = iso(hour).slice(0, 10);
  // The chart reads from the replica: once it has replayed the readings, through it.
  await ctx.replica.waitCaughtUp(ctx.pg);
  await h.waitFor(async () => (await ctx.api('GET', `/api/v1/devices/${device.id}/consumption?date=${day}`,
    { token: ctx.owner.token })).status === 200 && (await replicaReads()) > 0,
  { timeout: 20000, message: 'an instance to read a chart from the replica' });
  const readsBefore = await replicaReads();
  const consumption = await ctx.api('GET', `/api/v1/devices/${device.id}/consumption?date=${day}`,
    { token: ctx.owner.token });
  assert.equal(consumption.status, 200, consumption.text);
  assert.equal(consumption.json.total_kwh, 1);
  const list = await ctx.api('GET', '/api/v1/devices', { token: ctx.owner.token });
  assert.equal(list.status, 200, list.text);
  assert.ok(list.json.items.some((d) => d.id === device.id), 'the device list, from the replica');
  assert.equal(await replicaReads() - readsBefore, 2, 'the chart and the list came from the replica');

  // Round robin: both instances took part.
  await h.waitFor(() => requestIds.every((rid) => instanceThatServed(rid) >= 0),
    { message: 'every post in an instance log' });
  const served = new Set(requestIds.map(instanceThatServed));
  assert.deepEqual([...served].sort(), [0, 1], 'nginx spreads requests over both instances');
});

test('failed logins through nginx from one client do not lock out another', async () => {
  // Two clients on their own loopback addresses; nginx sees each as itself and says so
  // in X-Forwarded-For, which the instances believe from 127.0.0.1 (TRUSTED_PROXIES).
  const A = '127.0.0.2';
  const B = '127.0.0.3';
  const user = await h.createUser(ctx.instances[0], {});
  const loginFrom = (address, body, headers = {}) => hs.request(`${ctx.nginx.baseUrl}/api/v1/auth/login`,
    { method: 'POST', ca: ctx.dev.ca, body, headers, tlsOptions: { localAddress: address },
      timeout: 60000 }); // a burst of password hashes under the sanitizers takes a while
  // More failures than an instance lets one address make (50), one guess per account
  // and two per account at most, so that no account is locked.
  // At once, so that nginx's burst is exceeded however slow the hashing is.
  const results = await Promise.all(Array.from({ length: 60 }, (_, i) => loginFrom(A,
    { email: `spray-${i >> 1}@topology.example.test`, password: `Guess-${i & 1}` },
    { 'x-forwarded-for': B }))); // a forged header changes nothing
  const statuses = results.map((res) => res.status);
  assert.ok(statuses.includes(401), `statuses ${statuses}`);
  // A is never let in. On a loaded machine nginx may give up (504) on a hash that takes
  // longer than its proxy_read_timeout; what matters is B, below.
  assert.ok(statuses.every((st) => [401, 429, 503, 504].includes(st)), `statuses ${statuses}`);
  const limited = results.find((res) => res.status === 429);
  assert.ok(limited, `nginx let all of them through: ${statuses}`);
  assert.equal(limited.json.code, 'too_many_attempts');
  assert.match(limited.headers['content-type'], /^application\/problem\+json/);
  assert.ok(Number(limited.headers['retry-after']) >= 1, 'Retry-After');

  // B logs in at once, on whichever instance.
  for (let i = 0; i < 2; i++) {
    const rid = `topo-login-b-${i}-${crypto.randomBytes(4).toString('hex')}`;
    const res = await loginFrom(B, { email: user.email, password: user.password },
      { 'x-request-id': rid });
    assert.equal(res.status, 200, res.text);
    // The log line is written once the answer is sent.
    const line = await h.waitFor(() => ctx.instances.flatMap((s) => s.logs())
      .find((l) => l.request_id === rid), { timeout: 5000 });
    assert.equal(line.client, B, 'the instance saw the client\'s own address');
  }
  // The instances attributed A's failures to A, never to the forged B or to nginx.
  const clients = new Set(ctx.instances.flatMap((s) => s.logs())
    .filter((l) => l.route === '/api/v1/auth/login' && l.status === 401).map((l) => l.client));
  assert.deepEqual([...clients], [A]);
});

test('a WebSocket session through nginx gets its alert whichever instance took the readings',
  async () => {
    const device = await createDevice('topology alert meter', { limit: 1 });
    const session = await hs.wsSession(ctx.publicWsUrl, ctx.owner.token, { ca: ctx.dev.ca });
    try {
      assert.deepEqual(session.ready, { type: 'ready', user_id: ctx.owner.id });
      const holders = await Promise.all(ctx.instances.map(openSessions));
      const holder = holders.findIndex((n) => n === 1);
      assert.deepEqual(holders.slice().sort(), [0, 1], `sessions per instance: ${holders}`);

      // One over-limit reading per fresh hour until each instance has taken at least
      // one; every one of them must reach the session, through whichever instance.
      const takers = [];
      for (let i = 0; i < 20 && new Set(takers).size < 2; i++) {
        const hour = ALERT_BASE_HOUR + i * HOUR;
        const rid = `topo-ws-${i}-${crypto.randomBytes(4).toString('hex')}`;
        const res = await ctx.api('POST', '/api/v1/measurements', { token: device.token,
          headers: { 'x-request-id': rid }, body: { ts: iso(hour + 30 * MINUTE), kwh: 1.5 } });
        assert.equal(res.status, 200, res.text);
        const { alert } = await session.next('alert');
        assert.equal(alert.device_id, device.id);
        assert.equal(Date.parse(alert.hour_start), hour);
        assert.equal(alert.hour_kwh, 1.5);
        takers.push(await h.waitFor(() => {
          const taker = instanceThatServed(rid);
          return taker >= 0 ? String(taker) : null;
        }, { message: `request ${rid} in an instance log` }));
      }
      assert.equal(new Set(takers).size, 2, `posts went to instances ${takers}`);
      assert.ok(takers.some((t) => Number(t) !== holder),
        'at least one alert crossed from the ingesting instance to the session\'s');
      assert.equal(session.received('alert').length, takers.length, 'no alert twice');
    } finally {
      await session.close();
    }
  });

// Energy of reading i of a stream: multiples of 1/16 kWh, which add exactly in binary,
// so the hourly figures can be compared with === .
const streamKwh = (i) => (((i * 7) % 5) + 1) * 0.0625;
const STREAM_STEP = 10 * MINUTE; // 6 readings per hour
const STREAM_READINGS = 150; // per device: 25 hours
const STREAM_DEVICES = 3;
const STREAM_LIMIT = 1; // kWh per hour; some hours exceed it, some do not
const RETRYABLE = new Set([502, 503, 504]);
const RETRY_PAUSE_MS = 50;
const READING_DEADLINE_MS = 30000;

// Posts one reading through nginx until it is acknowledged (200), like a device with
// retries would: a network error or 502/503/504 means "try again, same reading".
async function postUntilAcknowledged(device, reading, stats) {
  const deadline = Date.now() + READING_DEADLINE_MS;
  let attempts = 0;
  for (;;) {
    attempts++;
    let res = null;
    let failure;
    try {
      res = await ctx.api('POST', '/api/v1/measurements', { token: device.token, body: reading,
        timeout: 10000 });
      failure = RETRYABLE.has(res.status) ? `HTTP ${res.status}` : null;
    } catch (err) {
      failure = err.code || err.message;
    }
    if (!failure) {
      assert.equal(res.status, 200, `${reading.ts}: ${res.text}`);
      return { ...res.json, attempts };
    }
    stats.failures[failure] = (stats.failures[failure] || 0) + 1;
    if (Date.now() >= deadline) {
      throw new Error(`reading ${reading.ts} of device ${device.id} not acknowledged within ` +
        `${READING_DEADLINE_MS} ms; failures: ${JSON.stringify(stats.failures)}`);
    }
    await h.sleep(RETRY_PAUSE_MS);
  }
}

// Expected energy per UTC hour of one device's stream: {hourMs: kwh}.
function expectedHours(readings) {
  const hours = new Map();
  for (const r of readings) {
    const hour = Math.floor(Date.parse(r.ts) / HOUR) * HOUR;
    hours.set(hour, (hours.get(hour) || 0) + r.kwh);
  }
  return hours;
}

test('SIGKILL of one instance during a stream of posts: the stream goes on, every ' +
  'acknowledged reading is stored once, the hourly figures are exact', async (t) => {
  const devices = [];
  for (let d = 0; d < STREAM_DEVICES; d++) {
    devices.push(await createDevice(`stream meter ${d}`, { limit: STREAM_LIMIT }));
  }
  const streams = devices.map((device, d) => ({
    device,
    readings: Array.from({ length: STREAM_READINGS }, (_, i) => ({
      ts: iso(STREAM_BASE_HOUR + d * 50 * HOUR + i * STREAM_STEP), kwh: streamKwh(i + d) })),
    acks: [],
  }));
  const stats = { failures: {} };
  const victim = ctx.instances[1];
  const survivor = ctx.instances[0];
  let acknowledged = 0;
  let acknowledgedAtKill = null;
  let killed = null;
  const killAfter = Math.floor((STREAM_DEVICES * STREAM_READINGS) / 3);

  const victimPostsBefore = victim.logs().filter((l) => l.route === '/api/v1/measurements').length;
  await Promise.all(streams.map(async (stream) => {
    for (const reading of stream.readings) {
      const ack = await postUntilAcknowledged(stream.device, reading, stats);
      stream.acks.push({ reading, ...ack });
      acknowledged++;
      if (acknowledged === killAfter && !killed) {
        acknowledgedAtKill = acknowledged;
        ctx.killed.add(victim);
        killed = victim.kill(); // the other streams keep posting meanwhile
      }
    }
  }));
  const killInfo = await killed;
  assert.equal(killInfo.signal, 'SIGKILL');
  const victimPosts = victim.logs().filter((l) => l.route === '/api/v1/measurements').length;
  assert.ok(victimPosts > victimPostsBefore, 'the killed instance was taking part in the stream');
  assert.ok(acknowledged > acknowledgedAtKill, 'the stream went on after the kill');
  assert.equal(acknowledged, STREAM_DEVICES * STREAM_READINGS);

  // Every acknowledgement is one reading: accepted now, or a duplicate because an
  // earlier attempt was committed but its answer lost with the instance. A duplicate
  // on a first attempt could only come from a request this client never sent.
  for (const stream of streams) {
    for (const ack of stream.acks) {
      assert.equal(ack.accepted + ack.duplicates, 1, JSON.stringify(ack));
      if (ack.duplicates === 1) assert.ok(ack.attempts > 1, `first attempt was a duplicate: ${ack.reading.ts}`);
    }
  }

  const ids = devices.map((d) => d.id).join(',');
  const stored = ctx.pg.rows(`SELECT device_id, (extract(epoch FROM ts) * 1000)::bigint AS ms,
      value, count(*) OVER (PARTITION BY device_id, ts) AS copies
    FROM readings WHERE device_id IN (${ids}) ORDER BY device_id, ts`);
  const storedHours = ctx.pg.rows(`SELECT device_id, (extract(epoch FROM hour) * 1000)::bigint AS ms,
      kwh FROM device_hours WHERE device_id IN (${ids}) ORDER BY device_id, hour`);
  const alerts = ctx.pg.rows(`SELECT device_id, (extract(epoch FROM hour_start) * 1000)::bigint AS ms,
      count(*) AS n FROM alerts WHERE device_id IN (${ids}) GROUP BY 1, 2 ORDER BY 1, 2`);

  for (const stream of streams) {
    const id = stream.device.id;
    const mine = stored.filter((r) => r.device_id === id);
    assert.deepEqual(mine.map((r) => [Number(r.ms), r.value, r.copies]),
      stream.readings.map((r) => [Date.parse(r.ts), r.kwh, 1]),
      `device ${id}: every reading stored exactly once with its value`);

    const expected = expectedHours(stream.readings);
    assert.deepEqual(
      storedHours.filter((r) => r.device_id === id).map((r) => [Number(r.ms), r.kwh]),
      [...expected].sort((a, b) => a[0] - b[0]),
      `device ${id}: device_hours are the exact sums of the readings`);

    const overLimit = [...expected].filter(([, kwh]) => kwh > STREAM_LIMIT).map(([ms]) => ms)
      .sort((a, b) => a - b);
    assert.ok(overLimit.length > 0 && overLimit.length < expected.size, 'the stream tests both sides');
    assert.deepEqual(alerts.filter((a) => a.device_id === id).map((a) => [Number(a.ms), a.n]),
      overLimit.map((ms) => [ms, 1]), `device ${id}: one alert per hour over the limit, no more`);

    // The same figures through the API, through nginx, now served by the survivor.
    const hourOf = (r) => Math.floor(Date.parse(r.ts) / HOUR) * HOUR;
    const from = iso(hourOf(stream.readings[0]));
    const to = iso(hourOf(stream.readings.at(-1)) + HOUR);
    const res = await ctx.api('GET', `/api/v1/devices/${id}/consumption?from=${from}&to=${to}` +
      '&bucket=hour', { token: ctx.owner.token });
    assert.equal(res.status, 200, res.text);
    const fromApi = res.json.hours.filter((b) => b.kwh !== 0).map((b) => [Date.parse(b.start), b.kwh]);
    assert.deepEqual(fromApi, [...expected].sort((a, b) => a[0] - b[0]),
      `device ${id}: the consumption API gives the same hours`);
  }

  // The survivor is healthy, and stops cleanly (no sanitizer report) in after().
  const health = await ctx.api('GET', '/healthz');
  assert.equal(health.status, 200);
  assert.ok(!survivor.exited);
  t.diagnostic(`retried failures while one instance died: ${JSON.stringify(stats.failures)}`);
});
