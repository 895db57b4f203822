'use strict';
// Two Wattline instances on one database: alerts reach the owner's sessions on every
// instance through PostgreSQL LISTEN/NOTIFY, and an instance whose LISTEN connection
// drops catches up from the alerts table, delivering what it missed exactly once.
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');
const wsc = require('./lib/wsclient');

const { before, after } = test;

const HOUR = 3600 * 1000;
const BASE_HOUR = Math.floor(Date.now() / HOUR) * HOUR - 20000 * HOUR;
let nextHour = 0;
const iso = (ms) => new Date(ms).toISOString();
const QUIET_MS = 1500;

let pg, one, two, admin, alice, device;

before(async () => {
  pg = await h.startPostgres();
  one = await h.startServer({ databaseUrl: pg.url });
  // Same secret: a token from either instance works on both, as behind a load balancer.
  two = await h.startServer({ databaseUrl: pg.url, env: { JWT_SECRET: one.jwtSecret } });
  const adminAccount = await h.createUser(one, { role: 'admin' });
  admin = (await h.login(one, adminAccount.email, adminAccount.password)).access_token;
  const account = await h.createUser(one, { role: 'client' });
  const tokens = await h.login(one, account.email, account.password);
  alice = { id: tokens.user.id, token: tokens.access_token };
  const res = await h.api(one, 'POST', '/api/v1/devices', { token: admin,
    body: { name: 'multi', max_hourly_kwh: 1, reading_type: 'interval', owner_id: alice.id } });
  assert.equal(res.status, 201, res.text);
  device = res.json;
});

after(async () => {
  try {
    if (one) await one.stop();
    if (two) await two.stop();
  } finally {
    if (pg) await pg.destroy();
  }
});

// One reading over the limit in a fresh hour, posted to `server`: one alert.
async function raiseAlert(server) {
  const hour = BASE_HOUR + (nextHour++) * HOUR;
  const res = await h.api(server, 'POST', '/api/v1/measurements', { token: device.token,
    body: { ts: iso(hour + 60 * 1000), kwh: 5 } });
  assert.equal(res.status, 200, res.text);
  return iso(hour).replace('.000Z', 'Z');
}

// pg_stat_activity is cluster-wide: asked through the postgres database, which stays open
// while wattline refuses connections.
function listenerPids() {
  return pg.rows(`SELECT pid FROM pg_stat_activity WHERE application_name = 'wattline-listener'`,
    { database: 'postgres' }).map((r) => r.pid);
}

function killListeners() {
  return pg.rows(`SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
    WHERE application_name = 'wattline-listener'`, { database: 'postgres' });
}

test('a reading posted to instance 1 reaches sessions on both instances, once each', async () => {
  const onTwo = await wsc.session(two.wsUrl, alice.token);
  const onOne = await wsc.session(one.wsUrl, alice.token);
  const hour = await raiseAlert(one);
  assert.equal((await onTwo.next('alert')).alert.hour_start, hour);
  assert.equal((await onOne.next('alert')).alert.hour_start, hour);
  await h.sleep(QUIET_MS);
  assert.equal(onTwo.received('alert').length, 1);
  assert.equal(onOne.received('alert').length, 1);
  await Promise.all([onTwo.close(), onOne.close()]);
});

test('each instance holds one LISTEN connection named wattline-listener', async () => {
  await h.waitFor(() => listenerPids().length === 2, { message: 'two listeners' });
});

test('an alert raised while the LISTEN connection is down is delivered once, after it is back',
  async () => {
    const c = await wsc.session(two.wsUrl, alice.token);
    // Keep the listeners from reconnecting until the alert is committed: new connections to
    // the database are refused, the ones already open (pools, ingestion) carry on.
    pg.psql('ALTER DATABASE wattline ALLOW_CONNECTIONS false', { database: 'postgres' });
    try {
      assert.equal(killListeners().length, 2);
      await h.waitFor(() => listenerPids().length === 0, { message: 'listeners gone' });
      const hour = await raiseAlert(one);
      await h.sleep(500);
      assert.equal(c.received('alert').length, 0, 'nobody could have told instance 2 yet');
      pg.psql('ALTER DATABASE wattline ALLOW_CONNECTIONS true', { database: 'postgres' });
      const msg = await c.next('alert', 15000);
      assert.equal(msg.alert.hour_start, hour);
    } finally {
      pg.psql('ALTER DATABASE wattline ALLOW_CONNECTIONS true', { database: 'postgres' });
    }
    await h.waitFor(() => listenerPids().length === 2, { timeout: 15000, message: 'listeners back' });
    // Live again, and nothing was delivered twice.
    const hour = await raiseAlert(one);
    assert.equal((await c.next('alert')).alert.hour_start, hour);
    await h.sleep(QUIET_MS);
    const ids = c.received('alert').map((m) => m.alert.id);
    assert.equal(ids.length, 2);
    assert.ok(ids[0] < ids[1]);
    const metrics = await h.api(two, 'GET', '/metrics');
    assert.match(metrics.text, /wattline_ws_alerts_delivered_total 3/);
    await c.close();
  });

test('a listener killed mid-stream: alerts around the reconnect arrive once and in order',
  async () => {
    const c = await wsc.session(two.wsUrl, alice.token);
    const posted = [];
    for (let i = 0; i < 6; i++) {
      if (i === 3) {
        killListeners();
      }
      posted.push(await raiseAlert(one));
    }
    await h.waitFor(() => c.received('alert').length >= 6, { timeout: 15000,
      message: 'all six alerts' });
    await h.sleep(QUIET_MS);
    const got = c.received('alert');
    assert.deepEqual(got.map((m) => m.alert.hour_start), posted);
    const ids = got.map((m) => m.alert.id);
    assert.deepEqual(ids, [...ids].sort((x, y) => x - y));
    await c.close();
  });

test('a graceful shutdown closes the sessions with 1001 and exits cleanly', async () => {
  const c = await wsc.session(two.wsUrl, alice.token);
  c.send({ type: 'subscribe', device_id: device.id });
  const quiet = await wsc.open(two.wsUrl); // not even authenticated
  const stopped = two.stop(); // throws on a sanitizer report or a non-zero exit
  assert.equal(await c.closedWithin(5000), 1001);
  assert.equal(await quiet.closedWithin(5000), 1001);
  const result = await stopped;
  assert.equal(result.code, 0);
  // Instance 1 carries on.
  const d = await wsc.session(one.wsUrl, alice.token);
  const hour = await raiseAlert(one);
  assert.equal((await d.next('alert')).alert.hour_start, hour);
  await d.close();
});
