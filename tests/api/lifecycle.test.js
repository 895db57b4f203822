'use strict';
// The server under load and at shutdown: 10,000 requests under the sanitizers,
// then SIGTERM while requests are in flight.
const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./lib/harness');

const ctx = h.suite();

async function createDevice(name) {
  const res = await ctx.api('POST', '/api/v1/devices', { token: ctx.admin.token,
    body: { name, max_hourly_kwh: 1e6, reading_type: 'interval' } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

test('10,000 requests of every kind: no error (leaks are checked when the server stops)',
  async () => {
    const devices = await Promise.all(Array.from({ length: 8 }, (_, i) => createDevice(`load ${i}`)));
    const start = Date.parse('2026-09-01T00:00:00Z');
    let next = 0;
    const statuses = {};
    const worker = async (w) => {
      for (let i = next++; i < 10000; i = next++) {
        const d = devices[i % devices.length];
        let res;
        switch (i % 5) {
          case 0:
          case 1:
            res = await ctx.api('POST', '/api/v1/measurements', { token: d.token,
              body: { ts: new Date(start + i * 1000).toISOString(), kwh: 0.001 } });
            break;
          case 2:
            res = await ctx.api('GET', `/api/v1/devices/${d.id}/consumption?date=2026-09-01`,
              { token: ctx.admin.token });
            break;
          case 3:
            res = await ctx.api('GET', i % 2 ? '/api/v1/nope' : '/healthz');
            break;
          default:
            res = await ctx.api('POST', '/api/v1/measurements', { token: w % 2 ? d.token : 'bad-token-0000000000',
              body: '{"broken":', headers: { 'content-type': 'application/json' } });
        }
        statuses[res.status] = (statuses[res.status] || 0) + 1;
        assert.ok(res.status < 500, `request ${i}: ${res.status} ${res.text}`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, (_, w) => worker(w)));
    const total = Object.values(statuses).reduce((a, b) => a + b, 0);
    assert.equal(total, 10000);
    const stored = Number(await ctx.pg.scalar('SELECT count(*) FROM readings'));
    assert.equal(stored, 4000);
  });

test('SIGTERM: requests in flight finish and are stored; the process exits 0', async () => {
  const pg = await h.startPostgres();
  const server = await h.startServer({ databaseUrl: pg.url });
  let stopped;
  try {
    await server.waitReady();
    const admin = await h.createUser(server, { email: 'drain@example.test', role: 'admin' });
    const token = (await h.login(server, admin.email, admin.password)).access_token;
    const dev = await h.api(server, 'POST', '/api/v1/devices', { token,
      body: { name: 'drain', max_hourly_kwh: 100, reading_type: 'interval' } });
    const base = Date.parse('2026-09-02T00:00:00Z');
    const batches = Array.from({ length: 12 }, (_, b) => ({ measurements: Array.from(
      { length: 2000 }, (_, i) => ({ ts: new Date(base + (b * 2000 + i) * 1000).toISOString(), kwh: 0.01 })) }));
    const inFlight = batches.map((body) => h.api(server, 'POST', '/api/v1/measurements',
      { token: dev.json.token, body }).catch((err) => ({ status: 0, err })));
    await h.sleep(30);
    stopped = server.stop('SIGTERM'); // throws on a non-zero exit or a sanitizer report
    const results = await Promise.all(inFlight);
    const answered = results.filter((r) => r.status !== 0);
    for (const r of answered) assert.equal(r.status, 200, r.text);
    const accepted = answered.reduce((n, r) => n + r.json.accepted, 0);
    await stopped;
    stopped = null;
    const stored = Number(await pg.scalar('SELECT count(*) FROM readings'));
    // Every answered request's readings are stored; none is half stored.
    assert.equal(stored, accepted);
    assert.equal(stored % 2000, 0);
  } finally {
    if (stopped) await stopped.catch(() => {});
    else await server.stop().catch(() => {});
    await pg.destroy();
  }
});

// PostgreSQL's processes, stopped (SIGSTOP) or continued: a database that no longer answers
// but whose host still acknowledges every packet, which no timeout on our side notices.
function freezePostgres(pg, signal) {
  const postmaster = Number(fs.readFileSync(path.join(pg.dataDir, 'postmaster.pid'), 'utf8')
    .split('\n')[0]);
  const children = execFileSync('pgrep', ['-P', String(postmaster)], { encoding: 'utf8' })
    .split('\n').filter(Boolean).map(Number);
  for (const pid of [postmaster, ...children]) process.kill(pid, signal);
}

test('SIGTERM while ingestion waits on a frozen database: answered or closed, exit 0 in time',
  async () => {
    const pg = await h.startPostgres();
    const server = await h.startServer({ databaseUrl: pg.url, env: { SHUTDOWN_TIMEOUT_S: 4 } });
    let frozen = false;
    try {
      await server.waitReady();
      const admin = await h.createUser(server, { email: 'frozen@example.test', role: 'admin' });
      const token = (await h.login(server, admin.email, admin.password)).access_token;
      const dev = await h.api(server, 'POST', '/api/v1/devices', { token,
        body: { name: 'frozen', max_hourly_kwh: 100, reading_type: 'interval' } });
      const base = Date.parse('2026-09-05T00:00:00Z');
      const post = (i) => h.api(server, 'POST', '/api/v1/measurements', { token: dev.json.token,
        body: { ts: new Date(base + i * 1000).toISOString(), kwh: 0.01 } })
        .catch(() => ({ status: 0 }));
      assert.equal((await post(0)).status, 200);
      freezePostgres(pg, 'SIGSTOP');
      frozen = true;
      const inFlight = Array.from({ length: 24 }, (_, i) => post(i + 1));
      await h.sleep(500);
      const started = Date.now();
      await server.stop('SIGTERM'); // throws on a non-zero exit, a signal (abort) or a report
      assert.ok(Date.now() - started < 4000 + 1000, `exited after ${Date.now() - started} ms`);
      const results = await Promise.all(inFlight);
      freezePostgres(pg, 'SIGCONT');
      frozen = false;
      for (const r of results) assert.ok([0, 503].includes(r.status), `${r.status} ${r.text}`);
      assert.ok(results.some((r) => r.status === 503), 'queued submissions are failed with 503');
      // Once PostgreSQL runs again, what was answered 503 is not stored.
      await h.sleep(500);
      const stored = new Set(pg.rows(`SELECT extract(epoch FROM ts)::bigint AS s FROM readings`)
        .map((r) => Number(r.s)));
      results.forEach((r, i) => {
        if (r.status === 503) assert.ok(!stored.has(base / 1000 + i + 1), `reading ${i + 1}`);
      });
      assert.ok(stored.has(base / 1000));
    } finally {
      if (frozen) freezePostgres(pg, 'SIGCONT');
      await server.stop().catch(() => {});
      await pg.destroy();
    }
  });

test('a statement that outlives DB_TIMEOUT_S is 503; SIGTERM meanwhile drains cleanly', async () => {
  const pg = await h.startPostgres();
  const server = await h.startServer({ databaseUrl: pg.url,
    env: { DB_TIMEOUT_S: 3, SHUTDOWN_TIMEOUT_S: 8 } });
  let locker;
  try {
    await server.waitReady();
    const admin = await h.createUser(server, { email: 'locked@example.test', role: 'admin' });
    const token = (await h.login(server, admin.email, admin.password)).access_token;
    const dev = await h.api(server, 'POST', '/api/v1/devices', { token,
      body: { name: 'locked', max_hourly_kwh: 100, reading_type: 'interval' } });
    const base = Date.parse('2026-09-06T00:00:00Z');
    const post = (i) => h.api(server, 'POST', '/api/v1/measurements', { token: dev.json.token,
      body: { ts: new Date(base + i * 1000).toISOString(), kwh: 0.01 } })
      .catch(() => ({ status: 0 }));
    assert.equal((await post(0)).status, 200);
    // Another session holds the device's row: every group commit of it waits.
    locker = spawn('psql', ['-X', '-q', '-d', pg.url], { stdio: ['pipe', 'ignore', 'ignore'] });
    locker.stdin.write(`BEGIN; SELECT 1 FROM devices WHERE id = ${dev.json.id} FOR UPDATE;\n`);
    await h.waitFor(() => Number(pg.scalar(`SELECT count(*) FROM pg_locks l JOIN pg_class c
      ON c.oid = l.relation WHERE c.relname = 'devices' AND l.mode = 'RowShareLock'`)) > 0);
    const started = Date.now();
    const waiting = await post(1);
    assert.equal(waiting.status, 503, waiting.text); // cancelled after 3 s, not hung
    assert.ok(Date.now() - started < 3000 + 2000, `${Date.now() - started} ms`);
    assert.ok(waiting.headers.get('retry-after'));
    const inFlight = Array.from({ length: 8 }, (_, i) => post(i + 2));
    await h.sleep(300);
    const stopping = Date.now();
    await server.stop('SIGTERM');
    assert.ok(Date.now() - stopping < 8000, `exited after ${Date.now() - stopping} ms`);
    const results = await Promise.all(inFlight);
    for (const r of results) assert.equal(r.status, 503, r.text); // all answered: none hung
    locker.stdin.end('ROLLBACK;\n');
    assert.equal(Number(pg.scalar('SELECT count(*) FROM readings')), 1);
  } finally {
    if (locker) locker.kill();
    await server.stop().catch(() => {});
    await pg.destroy();
  }
});
