'use strict';
// Fault drill: `pg_ctl stop -m immediate` (PostgreSQL crashes) while 8 simulated devices
// post, and PostgreSQL started again a few seconds later. While it is down the server
// answers 503 with Retry-After on ingestion and every other route that needs the
// database, /healthz stays 200 (and quick), /readyz is 503; afterwards the same server
// process recovers by itself, and nothing it acknowledged is lost (the audit of
// server-kill.test.js: stored exactly once, nothing invented, hours recomputed).
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../api/lib/harness');
const drill = require('./lib/drill');

const DOWN_MS = 4000;

async function timed(fn) {
  const t0 = Date.now();
  const res = await fn();
  return { ...res, ms: Date.now() - t0 };
}

function assert503(res, what) {
  assert.equal(res.status, 503, `${what} while PostgreSQL is down: ${res.status} ${res.text}`);
  const retryAfter = res.headers.get('retry-after');
  assert.match(String(retryAfter), /^[1-9][0-9]*$/, `${what}: Retry-After ${retryAfter}`);
}

test('PostgreSQL crashes mid-load: 503 + Retry-After while down, recovery without a restart',
  { timeout: 180000 }, async (t) => {
    const began = Date.now();
    const pg = await h.startPostgres();
    const server = await h.startServer({ databaseUrl: pg.url });
    let fleet = null;
    t.after(async () => {
      if (fleet) fleet.stop();
      await server.kill();
      await pg.destroy();
    });
    await server.waitReady();
    const admin = await h.createUser(server, { role: 'admin' });
    const token = (await h.login(server, admin.email, admin.password)).access_token;

    // A device of our own, to probe ingestion by hand; its token is cached by now.
    const probeDev = await h.api(server, 'POST', '/api/v1/devices', { token,
      body: { name: 'probe', max_hourly_kwh: 100, reading_type: 'interval' } });
    assert.equal(probeDev.status, 201, probeDev.text);
    const probe = probeDev.json;
    const probeBase = Math.floor(Date.now() / 1000) * 1000 - 3600e3;
    const probeTs = (k) => new Date(probeBase + k * 1000).toISOString();
    const acked = [];
    const post = (ts) => h.api(server, 'POST', '/api/v1/measurements',
      { token: probe.token, body: { ts, kwh: 0.25 } });
    const first = await post(probeTs(0));
    assert.equal(first.status, 200, first.text);
    acked.push(Date.parse(probeTs(0)));

    fleet = await drill.startFleet(server, token, { devices: 8, count: 100, speed: 300,
      seedBase: 200 });
    await h.waitFor(() => drill.storedCount(pg) >= 150, { timeout: 30000,
      message: 'readings stored before the crash' });

    await pg.stop({ mode: 'immediate' });
    const downAt = Date.now();
    const refused = [];
    let rounds = 0;
    while (Date.now() - downAt < DOWN_MS) {
      rounds++;
      const ts = probeTs(1000 + rounds);
      const [ingest, list, chart, loginRes, health, ready] = await Promise.all([
        timed(() => post(ts)),
        timed(() => h.api(server, 'GET', '/api/v1/devices', { token })),
        timed(() => h.api(server, 'GET', `/api/v1/devices/${probe.id}/consumption?` +
          `date=${new Date().toISOString().slice(0, 10)}`, { token })),
        timed(() => h.api(server, 'POST', '/api/v1/auth/login',
          { body: { email: admin.email, password: admin.password } })),
        timed(() => h.api(server, 'GET', '/healthz')),
        timed(() => h.api(server, 'GET', '/readyz')),
      ]);
      assert503(ingest, 'POST /api/v1/measurements');
      refused.push(Date.parse(ts));
      assert503(list, 'GET /api/v1/devices');
      assert503(chart, 'GET consumption');
      assert503(loginRes, 'POST /api/v1/auth/login');
      assert.equal(health.status, 200, `/healthz while PostgreSQL is down: ${health.status}`);
      assert.ok(health.ms < 2000, `/healthz took ${health.ms} ms while PostgreSQL is down`);
      assert.equal(ready.status, 503, `/readyz while PostgreSQL is down: ${ready.status}`);
      for (const r of [ingest, list, chart, loginRes]) {
        assert.ok(r.ms < 12000, `a request took ${r.ms} ms to fail while PostgreSQL is down`);
      }
      await h.sleep(300);
    }
    await pg.start();
    const upAt = Date.now();
    await server.waitReady({ timeout: 30000 });
    const recoveredMs = Date.now() - upAt;
    assert.equal(server.exited, false, 'the same server process recovered');
    const after = await post(probeTs(2));
    assert.equal(after.status, 200, `ingestion after recovery: ${after.status} ${after.text}`);
    acked.push(Date.parse(probeTs(2)));

    const results = await fleet.finished(90000);
    const details = drill.describeSims(fleet);
    for (const r of results) {
      assert.equal(r.code, 0, `a simulator did not finish cleanly:\n${details}`);
      assert.ok(r.summary && r.summary.pending === 0, details);
    }
    const retries = results.reduce((n, r) => n + r.summary.retries, 0);
    assert.ok(retries > 0, `the outage caused retries:\n${details}`);

    const a = drill.audit(pg, fleet);
    const probeStored = pg.rows(`select (extract(epoch from ts) * 1000)::bigint as ms
      from readings where device_id = ${probe.id} order by ts`).map((r) => Number(r.ms));
    drill.report('pg-restart', { downMs: upAt - downAt, probeRounds: rounds, recoveredMs,
      retries, ...a, examples: undefined, seconds: Math.round((Date.now() - began) / 1000) });
    assert.deepEqual(probeStored, acked, 'the probe device: what was acknowledged, nothing ' +
      'of what was refused with 503');
    assert.equal(a.acknowledged, 8 * 100);
    assert.equal(a.lost, 0, `acknowledged readings lost:\n${a.examples.join('\n')}`);
    assert.equal(a.invented, 0, a.examples.join('\n'));
    assert.equal(a.valueMismatches, 0, a.examples.join('\n'));
    assert.equal(a.stored, a.acknowledged);
    assert.equal(a.hourMismatches, 0, `hours differ from a recomputation:\n${a.examples.join('\n')}`);
    assert.equal(a.missingAlerts, 0, a.examples.join('\n'));
    assert.equal(a.wrongAlerts, 0, a.examples.join('\n'));

    await server.stop();
  });
