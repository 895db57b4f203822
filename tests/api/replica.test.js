'use strict';
// DATABASE_READ_URL (issue 19): the contract's charts, readings, exports and lists read
// from a real streaming replica (lib/replica.js: pg_basebackup -R of this file's
// cluster, on its own port), everything else from the primary.
// Checked: those reads are answered by the replica (counted on /metrics, and seen on
// the standby itself: the wattline-read sessions and the scans they made); a read whose
// replica session dies while it waits is answered by the primary; a write
// followed by a read of the single object sees itself at once, even with the replica's
// replay paused; a lagging replica (replay paused past DATABASE_READ_MAX_LAG_S) is not
// read from and the reads see the write; a replica stopped (fast shutdown) or killed
// (kill -9) breaks no read and not /readyz, /metrics says so, and once it is back the
// reads go to it again.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const path = require('node:path');
const h = require('./lib/harness');
const { startReplica } = require('./lib/replica');

const { before, after } = test;

const ctx = { pg: null, admin: null };
const DAY = '2026-11-21';
// A day of readings for the chart: hours 10..13 UTC.
const READINGS = [10, 11, 12, 13].map((hour, i) => ({
  ts: `${DAY}T${String(hour).padStart(2, '0')}:00:00Z`, meter_kwh: 100 + i * 2,
}));
const WAIT = { timeout: 20000 };

const r = { replica: null, servers: [], total: 6, readings: READINGS.length };

const JWT_SECRET = crypto.randomBytes(48).toString('hex');

// Two instances on the one primary and replica, sharing the JWT secret: `fast` never
// judges the replica too far behind (its replica reads are certain, so they can be
// counted exactly), `strict` gives up on it after one second of lag. One after the
// other: the first applies the migrations.
async function startInstance(maxLag) {
  const server = await h.startServer({ databaseUrl: ctx.pg.url, env: {
    JWT_SECRET,
    DATABASE_READ_URL: r.replica.readUrlFor(ctx.pg.url),
    DATABASE_READ_MAX_LAG_S: String(maxLag),
    DB_READ_POOL_SIZE: '2',
    WEBHOOK_ALLOW_PRIVATE: '1',
  } });
  r.servers.push(server);
  await server.waitReady();
  return server;
}

// Every value of /metrics by its full name with labels.
async function metrics(server) {
  const res = await h.api(server, 'GET', '/metrics');
  assert.equal(res.status, 200, res.text);
  const out = {};
  for (const line of res.text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out[line.slice(0, at)] = Number(line.slice(at + 1));
  }
  return out;
}

const READS = {
  replica: 'wattline_db_reads_total{pool="replica"}',
  fallback: 'wattline_db_reads_total{pool="fallback"}',
  retried: 'wattline_db_reads_total{pool="retried"}',
};

async function readCounts(server) {
  const m = await metrics(server);
  return { replica: m[READS.replica], fallback: m[READS.fallback], retried: m[READS.retried] };
}

async function waitInUse(server, inUse) {
  await h.waitFor(async () => (await metrics(server)).wattline_db_replica_in_use === inUse,
    { ...WAIT, message: `wattline_db_replica_in_use ${inUse}` });
}

// Every route that may read from the replica, one request each, as the admin (the
// client for its conversation's messages is not needed: admins read them all).
function readRoutes() {
  const d = r.device.id;
  return [
    ['chart', `/api/v1/devices/${d}/consumption?date=${DAY}`],
    ['chart range', `/api/v1/devices/${d}/consumption?from=${DAY}T00:00:00Z&to=2026-11-23T00:00:00Z&bucket=day`],
    ['readings', `/api/v1/devices/${d}/measurements`],
    ['export', `/api/v1/devices/${d}/measurements`, { accept: 'text/csv' }],
    ['devices', '/api/v1/devices'],
    ['users', '/api/v1/users'],
    ['alerts', '/api/v1/alerts'],
    ['commands', `/api/v1/devices/${d}/commands`],
    ['webhooks', '/api/v1/me/webhooks'],
    ['deliveries', `/api/v1/me/webhooks/${r.webhook.id}/deliveries`],
    ['conversations', '/api/v1/conversations'],
    ['messages', `/api/v1/conversations/${r.conversation.id}/messages`],
  ];
}

// Reads every route through server and checks each answer against what the primary
// holds: 200 and the stored data.
async function readEverything(server) {
  for (const [name, path, headers] of readRoutes()) {
    const res = await h.api(server, 'GET', path, { token: ctx.admin.token, headers });
    assert.equal(res.status, 200, `${name}: ${res.text}`);
    if (name === 'chart') assert.equal(res.json.total_kwh, r.total, res.text);
    if (name === 'readings') assert.equal(res.json.items.length, r.readings, res.text);
    if (name === 'export') assert.equal(res.text.trim().split('\n').length, r.readings + 1);
    if (name === 'devices') assert.ok(res.json.items.some((x) => x.id === r.device.id));
    if (name === 'messages') assert.equal(res.json.items[0].text, 'hello support', res.text);
  }
  return readRoutes().length;
}

// What the standby saw: the server's read sessions, and index or sequential scans of
// the tables behind the chart, the readings and the device list.
function standbyScans() {
  return Number(r.replica.scalar(`select coalesce(sum(coalesce(seq_scan, 0) +
    coalesce(idx_scan, 0)), 0) from pg_stat_user_tables
    where relname in ('devices', 'device_hours', 'users') or relname like 'readings%'`));
}

// One hook: node runs a file's top-level before hooks concurrently.
before(async () => {
  ctx.pg = await h.startPostgres();
  r.replica = await startReplica(ctx.pg);
  r.fast = await startInstance(3600);
  r.strict = await startInstance(1);
  const admin = await h.createUser(r.fast, { role: 'admin' });
  ctx.admin = { ...admin, token: (await h.login(r.fast, admin.email, admin.password)).access_token };
  const api = (method, path, body, token = ctx.admin.token) =>
    h.api(r.fast, method, path, { token, body });
  let res = await api('POST', '/api/v1/devices', { name: 'Replica meter', max_hourly_kwh: 100 });
  assert.equal(res.status, 201, res.text);
  r.device = res.json;
  res = await api('POST', '/api/v1/measurements', { measurements: READINGS }, r.device.token);
  assert.equal(res.status, 200, res.text);
  res = await api('POST', '/api/v1/devices/' + r.device.id + '/commands', { name: 'relay' });
  assert.equal(res.status, 201, res.text);
  res = await api('POST', '/api/v1/me/webhooks',
    { url: 'http://127.0.0.1:9/hook', events: ['alert'] });
  assert.equal(res.status, 201, res.text);
  r.webhook = res.json;
  const client = await h.createUser(r.fast, { role: 'client' });
  const tokens = await h.login(r.fast, client.email, client.password);
  res = await api('GET', '/api/v1/me/conversation', undefined, tokens.access_token);
  assert.equal(res.status, 200, res.text);
  r.conversation = res.json;
  res = await api('POST', `/api/v1/conversations/${r.conversation.id}/messages`,
    { text: 'hello support' }, tokens.access_token);
  assert.equal(res.status, 201, res.text);
  await r.replica.waitCaughtUp(ctx.pg);
  await waitInUse(r.fast, 1);
  await waitInUse(r.strict, 1);
});

after(async () => {
  try {
    for (const server of r.servers) await server.stop();
  } finally {
    if (r.replica) await r.replica.destroy();
    if (ctx.pg) await ctx.pg.destroy();
  }
});

test('charts, readings, exports and lists are read from the replica', async () => {
  const m = await metrics(r.fast);
  assert.equal(m.wattline_db_replica_up, 1);
  assert.ok(m.wattline_db_replica_lag_seconds >= 0, 'the lag is measured');
  assert.equal(m['wattline_db_read_pool_connections{state="size"}'], 2);

  const scansBefore = standbyScans();
  const before = await readCounts(r.fast);
  const n = await readEverything(r.fast);
  const afterReads = await readCounts(r.fast);
  assert.equal(afterReads.replica - before.replica, n, 'every read answered by the replica');
  assert.equal(afterReads.fallback - before.fallback, 0);
  assert.equal(afterReads.retried - before.retried, 0);

  // The standby itself saw them: its wattline-read sessions, and their scans.
  const sessions = r.replica.scalar(`select count(*) from pg_stat_activity
    where application_name = 'wattline-read'`);
  assert.ok(sessions >= 1, `wattline-read sessions on the standby: ${sessions}`);
  // Backends report their counts when idle, within PostgreSQL's stats interval.
  await h.waitFor(() => standbyScans() > scansBefore,
    { ...WAIT, message: 'the standby to count the scans the reads made' });
  // The primary has no wattline-read session: the replica's pool never goes there.
  assert.equal(ctx.pg.scalar(`select count(*) from pg_stat_activity
    where application_name = 'wattline-read'`), 0);
});

test('a write then a read of the single object sees itself, the replica paused', async () => {
  r.replica.psql('select pg_wal_replay_pause()');
  try {
    const res = await h.api(r.fast, 'PATCH', `/api/v1/devices/${r.device.id}`,
      { token: ctx.admin.token, body: { name: 'Renamed at once' } });
    assert.equal(res.status, 200, res.text);
    const got = await h.api(r.fast, 'GET', `/api/v1/devices/${r.device.id}`,
      { token: ctx.admin.token });
    assert.equal(got.json.name, 'Renamed at once', 'GET /devices/{id} reads the primary');

    // A device created now is not on the paused replica yet: its chart is asked of the
    // replica (fast never gives up on it), found missing, and answered by the primary.
    const created = await h.api(r.fast, 'POST', '/api/v1/devices',
      { token: ctx.admin.token, body: { name: 'Brand new', max_hourly_kwh: 1 } });
    assert.equal(created.status, 201, created.text);
    const before = await readCounts(r.fast);
    const chart = await h.api(r.fast, 'GET',
      `/api/v1/devices/${created.json.id}/consumption?date=${DAY}`, { token: ctx.admin.token });
    assert.equal(chart.status, 200, chart.text);
    assert.equal(chart.json.device_id, created.json.id);
    const afterChart = await readCounts(r.fast);
    assert.equal(afterChart.retried - before.retried, 1, 'the replica\'s 404 went to the primary');
    // A list is the replica's as it stands (the lag caveat in docs/deploy.md).
    const list = await h.api(r.fast, 'GET', '/api/v1/devices?limit=1000',
      { token: ctx.admin.token });
    assert.equal(list.status, 200, list.text);
    assert.ok(!list.json.items.some((x) => x.id === created.json.id),
      'the device list came from the paused replica');
  } finally {
    r.replica.psql('select pg_wal_replay_resume()');
  }
  await r.replica.waitCaughtUp(ctx.pg);
});

test('a replica lagging past DATABASE_READ_MAX_LAG_S is not read from; reads see the write', async () => {
  await waitInUse(r.strict, 1);
  r.replica.psql('select pg_wal_replay_pause()');
  try {
    const res = await h.api(r.strict, 'POST', '/api/v1/measurements', { token: r.device.token,
      body: { ts: `${DAY}T14:00:00Z`, meter_kwh: 110 } });
    assert.equal(res.status, 200, res.text);
    r.total = 10;
    r.readings += 1;
    await waitInUse(r.strict, 0);
    const m = await metrics(r.strict);
    assert.equal(m.wattline_db_replica_up, 1, 'it answers, but lags');
    assert.ok(m.wattline_db_replica_lag_seconds > 1, `lag ${m.wattline_db_replica_lag_seconds}`);
    const before = await readCounts(r.strict);
    const chart = await h.api(r.strict, 'GET', `/api/v1/devices/${r.device.id}/consumption?date=${DAY}`,
      { token: ctx.admin.token });
    assert.equal(chart.status, 200, chart.text);
    assert.equal(chart.json.total_kwh, 10, 'the chart includes the reading the replica lacks');
    const afterChart = await readCounts(r.strict);
    assert.equal(afterChart.fallback - before.fallback, 1);
    assert.equal(afterChart.replica - before.replica, 0);
    assert.equal(Number(r.replica.scalar(`select count(*) from readings
      where device_id = ${r.device.id}`)), READINGS.length, 'the replica still lacks it');
  } finally {
    r.replica.psql('select pg_wal_replay_resume()');
  }
  await r.replica.waitCaughtUp(ctx.pg);
  await waitInUse(r.strict, 1);
  const before = await readCounts(r.strict);
  const chart = await h.api(r.strict, 'GET', `/api/v1/devices/${r.device.id}/consumption?date=${DAY}`,
    { token: ctx.admin.token });
  assert.equal(chart.json.total_kwh, 10, chart.text);
  assert.equal((await readCounts(r.strict)).replica - before.replica, 1, 'back on the replica');
});

test('a replica read whose session dies mid-way is answered by the primary', async () => {
  await waitInUse(r.fast, 1);
  // An ACCESS EXCLUSIVE lock on the primary reaches the standby, where the startup
  // process holds it until the primary's transaction ends: the chart's statement on the
  // replica waits there, and its session is terminated while it waits.
  const locker = spawn(path.join(h.pgBinDir(), 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1',
    '-d', ctx.pg.url], { stdio: ['pipe', 'ignore', 'pipe'] });
  const locked = new Promise((resolve) => locker.on('close', resolve));
  locker.stdin.end('begin; lock table device_hours in access exclusive mode; ' +
    'select pg_sleep(8); commit;\n');
  try {
    // The lock's WAL record is sent once flushed: any commit after it flushes it.
    await h.waitFor(() => {
      ctx.pg.psql('select txid_current()');
      return Number(r.replica.scalar(`select count(*) from pg_locks
        where mode = 'AccessExclusiveLock' and relation = 'device_hours'::regclass`)) > 0;
    }, { ...WAIT, message: 'the lock to be replayed on the standby' });
    const before = await readCounts(r.fast);
    const chart = h.api(r.fast, 'GET', `/api/v1/devices/${r.device.id}/consumption?date=${DAY}`,
      { token: ctx.admin.token });
    const waiting = `from pg_stat_activity where application_name = 'wattline-read'
      and wait_event_type = 'Lock'`;
    await h.waitFor(() => Number(r.replica.scalar(`select count(*) ${waiting}`)) > 0,
      { ...WAIT, message: 'the chart to wait on the standby' });
    r.replica.psql(`select pg_terminate_backend(pid) ${waiting}`);
    const res = await chart;
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.total_kwh, r.total, res.text);
    const afterChart = await readCounts(r.fast);
    assert.equal(afterChart.retried - before.retried, 1, 'retried on the primary');
    assert.equal(afterChart.replica - before.replica, 0);
  } finally {
    assert.equal(await locked, 0, 'the locking transaction on the primary');
  }
});

for (const [how, stop] of [
  ['stopped (fast shutdown)', () => r.replica.stop({ mode: 'fast' })],
  ['killed (kill -9)', () => r.replica.crash()],
]) {
  test(`a replica ${how} breaks no read; once back, reads go to it again`, async () => {
    await waitInUse(r.fast, 1);
    await stop();
    try {
      await h.waitFor(async () => (await metrics(r.fast)).wattline_db_replica_up === 0,
        { ...WAIT, message: 'wattline_db_replica_up 0' });
      const before = await readCounts(r.fast);
      const n = await readEverything(r.fast);
      const afterReads = await readCounts(r.fast);
      assert.equal(afterReads.fallback - before.fallback, n, 'every read fell back');
      assert.equal(afterReads.replica - before.replica, 0);
      const m = await metrics(r.fast);
      assert.equal(m.wattline_db_replica_in_use, 0);
      assert.ok(Number.isNaN(m.wattline_db_replica_lag_seconds), 'no lag known while down');
      const ready = await h.api(r.fast, 'GET', '/readyz');
      assert.equal(ready.status, 200, '/readyz does not depend on the replica');
    } finally {
      await r.replica.start();
    }
    await waitInUse(r.fast, 1);
    // The pool reconnects at most twice a second after failures: the first read may
    // still go to the primary. Then every read goes to the replica.
    await h.waitFor(async () => {
      const was = (await readCounts(r.fast)).replica;
      await readEverything(r.fast);
      return (await readCounts(r.fast)).replica > was;
    }, { ...WAIT, message: 'a read answered by the replica again' });
    const before = await readCounts(r.fast);
    const n = await readEverything(r.fast);
    assert.equal((await readCounts(r.fast)).replica - before.replica, n, 'back on the replica');
  });
}
