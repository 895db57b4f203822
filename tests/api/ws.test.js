'use strict';
// The WebSocket channel (/ws): authentication, alerts to the owner's sessions only,
// replay after a reconnect, live usage subscriptions, token expiry and re-auth,
// and the limits (frame size, session caps, floods, clients that never read).
// Everything goes through the real path: users and devices made through the API,
// readings posted with the device token, alerts raised by ingestion.
const test = require('node:test');
const assert = require('node:assert/strict');
const jwt = require('jsonwebtoken');
const h = require('./lib/harness');
const wsc = require('./lib/wsclient');

const { describe, before, after } = test;
const ctx = h.suite();

const HOUR = 3600 * 1000;
// Hours far enough in the past that no reading is "in the future"; each alert test
// takes fresh hours so every reading raises exactly one new alert.
// Inside MAX_READING_AGE_DAYS (1,100 days = 26,400 hours) with room for the
// hours the tests count forward from it.
const BASE_HOUR = Math.floor(Date.now() / HOUR) * HOUR - 24000 * HOUR;
let nextHour = 0;
const freshHour = () => BASE_HOUR + (nextHour++) * HOUR;
const iso = (ms) => new Date(ms).toISOString();
// How long "nothing arrives" is watched for: well above the alert latency (ms).
const QUIET_MS = 1500;

async function newUser(role = 'client') {
  const account = await h.createUser(ctx.server, { role });
  const tokens = await h.login(ctx.server, account.email, account.password);
  return { ...account, id: tokens.user.id, token: tokens.access_token,
    refreshToken: tokens.refresh_token };
}

let serial = 0;
async function newDevice(owner, { limit = 1 } = {}) {
  const res = await ctx.api('POST', '/api/v1/devices', { token: ctx.admin.token,
    body: { name: `ws meter ${++serial}`, max_hourly_kwh: limit, reading_type: 'interval',
      owner_id: owner ? owner.id : null } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

async function post(device, readings) {
  const res = await ctx.api('POST', '/api/v1/measurements', { token: device.token,
    body: { measurements: readings.map(([ts, kwh]) => ({ ts: iso(ts), kwh })) } });
  assert.equal(res.status, 200, res.text);
  return res.json;
}

// Posts one reading over the limit in a fresh hour: exactly one alert.
async function raiseAlert(device) {
  const hour = freshHour();
  await post(device, [[hour + 60 * 1000, 5]]);
  return hour;
}

function session(token, options) {
  return wsc.session(ctx.server.wsUrl, token, options);
}

// An access token signed here with the server's secret, for expiry tests.
function signToken(user, { ttl = 60, typ = 'access', secret = ctx.server.jwtSecret } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return jwt.sign({ sub: String(user.id), role: user.role, iat: now, exp: now + ttl,
    jti: `t-${Math.random()}`, iss: 'wattline', typ }, secret, { algorithm: 'HS256' });
}

describe('alerts', () => {
  let alice, bob, aliceDevice, bobDevice;
  before(async () => {
    alice = await newUser();
    bob = await newUser();
    aliceDevice = await newDevice(alice);
    bobDevice = await newDevice(bob);
  });

  test('every session of the owner gets the alert, and nobody else does', async () => {
    const a1 = await session(alice.token);
    const a2 = await session(alice.token);
    const b = await session(bob.token);
    assert.deepEqual(a1.ready, { type: 'ready', user_id: alice.id });
    const hour = await raiseAlert(aliceDevice);
    for (const c of [a1, a2]) {
      const msg = await c.next('alert');
      assert.equal(msg.alert.device_id, aliceDevice.id);
      assert.equal(msg.alert.owner_id, alice.id);
      assert.equal(msg.alert.hour_start, iso(hour).replace('.000Z', 'Z'));
      assert.equal(msg.alert.hour_kwh, 5);
      assert.equal(msg.alert.max_hourly_kwh, 1);
      assert.equal(typeof msg.alert.id, 'number');
    }
    await h.sleep(QUIET_MS);
    assert.equal(b.received('alert').length, 0, 'bob must not see alice\'s alert');
    assert.equal(a1.received('alert').length, 1, 'one alert, once');
    assert.equal(a2.received('alert').length, 1, 'one alert, once');
    // And the other way round.
    await raiseAlert(bobDevice);
    assert.equal((await b.next('alert')).alert.device_id, bobDevice.id);
    await h.sleep(QUIET_MS);
    assert.equal(a1.received('alert').length, 1);
    await Promise.all([a1.close(), a2.close(), b.close()]);
  });

  test('an admin is not sent other users\' alerts', async () => {
    const admin = await session(ctx.admin.token);
    await raiseAlert(aliceDevice);
    await h.sleep(QUIET_MS);
    assert.equal(admin.received('alert').length, 0);
    await admin.close();
  });

  test('a reconnecting client gets what it missed, in order, before live alerts', async () => {
    const first = await session(alice.token);
    await raiseAlert(aliceDevice);
    const seen = (await first.next('alert')).alert.id;
    await first.close();

    const missedHours = [await raiseAlert(aliceDevice), await raiseAlert(aliceDevice)];
    const again = await session(alice.token, { since: seen });
    const replayed = [await again.next('alert'), await again.next('alert')];
    assert.deepEqual(replayed.map((m) => m.alert.hour_start),
      missedHours.map((t) => iso(t).replace('.000Z', 'Z')));
    assert.ok(replayed[0].alert.id > seen && replayed[1].alert.id > replayed[0].alert.id);

    const liveHour = await raiseAlert(aliceDevice);
    const live = await again.next('alert');
    assert.equal(live.alert.hour_start, iso(liveHour).replace('.000Z', 'Z'));
    await h.sleep(QUIET_MS);
    assert.deepEqual(again.received('alert').map((m) => m.alert.id),
      [replayed[0].alert.id, replayed[1].alert.id, live.alert.id], 'exactly those, once each');
    await again.close();
  });

  test('without since_alert_id only live alerts follow', async () => {
    // The alert is delivered to a session that is already open before the
    // session under test opens: its notification has then been handled, so
    // anything the new session gets would be a replay.
    const watcher = await session(alice.token);
    await raiseAlert(aliceDevice);
    await watcher.next('alert');
    await watcher.close();
    const c = await session(alice.token);
    await h.sleep(QUIET_MS);
    assert.equal(c.received('alert').length, 0);
    await c.close();
  });

  test('a device without an owner notifies nobody', async () => {
    const orphan = await newDevice(null);
    const a = await session(alice.token);
    const admin = await session(ctx.admin.token);
    await raiseAlert(orphan);
    await h.sleep(QUIET_MS);
    assert.equal(a.received('alert').length + admin.received('alert').length, 0);
    await Promise.all([a.close(), admin.close()]);
  });

  test('after an owner change the old owner gets no more alerts, the new one does', async () => {
    const device = await newDevice(alice);
    const a = await session(alice.token);
    const b = await session(bob.token);
    const res = await ctx.api('PATCH', `/api/v1/devices/${device.id}`, { token: ctx.admin.token,
      body: { owner_id: bob.id } });
    assert.equal(res.status, 200, res.text);
    await raiseAlert(device);
    assert.equal((await b.next('alert')).alert.device_id, device.id);
    await h.sleep(QUIET_MS);
    assert.equal(a.received('alert').length, 0);
    await Promise.all([a.close(), b.close()]);
  });
});

describe('authentication', () => {
  let carol;
  before(async () => { carol = await newUser(); });

  async function expectRejected(send) {
    const c = await wsc.open(ctx.server.wsUrl);
    if (send !== undefined) c.send(send);
    assert.equal(await c.closedWithin(3000), 4401);
    assert.equal(c.received('ready').length, 0);
  }

  test('a bad, expired, refresh or garbage token closes with 4401', async () => {
    await expectRejected({ type: 'auth', token: 'garbage' });
    await expectRejected({ type: 'auth', token: carol.refreshToken });
    await expectRejected({ type: 'auth', token: signToken(carol, { ttl: -10 }) });
    await expectRejected({ type: 'auth', token: signToken(carol, { ttl: -300 }) });
    await expectRejected({ type: 'auth', token: signToken(carol, { typ: 'refresh' }) });
    await expectRejected({ type: 'auth', token: signToken(carol, { secret: 'x'.repeat(48) }) });
    await expectRejected({ type: 'auth' });
    await expectRejected({ type: 'auth', token: carol.token, since_alert_id: 'yesterday' });
  });

  test('a first message that is not auth closes with 4401', async () => {
    await expectRejected({ type: 'subscribe', device_id: 1 });
    await expectRejected('not json');
  });

  test('no auth within 10 seconds closes with 4401', async () => {
    const c = await wsc.open(ctx.server.wsUrl);
    const opened = Date.now();
    assert.equal(await c.closedWithin(13000), 4401);
    assert.ok(Date.now() - opened >= 9500, 'not before the 10 s are up');
  });

  test('the session closes with 4401 when the token expires', async () => {
    const c = await session(signToken(carol, { ttl: 3 }));
    const code = await c.closedWithin(6000);
    assert.equal(code, 4401);
  });

  test('a fresh token before expiry keeps the session', async () => {
    const device = await newDevice(carol);
    const c = await session(signToken(carol, { ttl: 3 }));
    await h.sleep(1000);
    c.send({ type: 'auth', token: signToken(carol, { ttl: 120 }) });
    await h.sleep(4000);
    assert.ok(c.isOpen, 'still open after the first token expired');
    await raiseAlert(device);
    assert.equal((await c.next('alert')).alert.device_id, device.id);
    assert.equal(c.received('ready').length, 1);
    await c.close();
  });

  test('a re-auth with a bad token closes the session', async () => {
    const c = await session(carol.token);
    c.send({ type: 'auth', token: 'garbage' });
    assert.equal(await c.closedWithin(3000), 4401);
  });

  test('a deleted user\'s sessions close', async () => {
    const doomed = await newUser();
    const c = await session(doomed.token);
    const res = await ctx.api('DELETE', `/api/v1/users/${doomed.id}`, { token: ctx.admin.token });
    assert.equal(res.status, 204, res.text);
    assert.equal(await c.closedWithin(5000), 4401);
  });

  test('only /ws upgrades', async () => {
    const url = ctx.server.wsUrl.replace(/\/ws$/, '/other');
    await assert.rejects(wsc.open(url));
  });
});

describe('usage subscriptions', () => {
  let dave, erin, daveDevice, erinDevice;
  before(async () => {
    dave = await newUser();
    erin = await newUser();
    daveDevice = await newDevice(dave, { limit: 1e9 });
    erinDevice = await newDevice(erin, { limit: 1e9 });
  });

  test('usage of an own device; not_found for another\'s', async () => {
    const c = await session(dave.token);
    c.send({ type: 'subscribe', device_id: erinDevice.id });
    const err = await c.next('error');
    assert.equal(err.code, 'not_found');
    c.send({ type: 'subscribe', device_id: 987654321 });
    assert.equal((await c.next('error')).code, 'not_found');

    c.send({ type: 'subscribe', device_id: daveDevice.id });
    await h.sleep(200);
    const hour = freshHour();
    await post(daveDevice, [[hour + 10 * 60 * 1000, 0.5], [hour + 20 * 60 * 1000, 0.25]]);
    const usage = await c.next('usage');
    assert.deepEqual(usage, { type: 'usage', device_id: daveDevice.id,
      hour_start: iso(hour).replace('.000Z', 'Z'), hour_kwh: 0.75,
      last_ts: iso(hour + 20 * 60 * 1000).replace('.000Z', 'Z') });
    // Erin's readings never reach dave.
    await post(erinDevice, [[freshHour(), 1]]);
    await h.sleep(QUIET_MS);
    assert.ok(c.received('usage').every((m) => m.device_id === daveDevice.id));
    await c.close();
  });

  test('an admin may subscribe to any device', async () => {
    const admin = await session(ctx.admin.token);
    admin.send({ type: 'subscribe', device_id: erinDevice.id });
    await h.sleep(200);
    await post(erinDevice, [[freshHour(), 2]]);
    assert.equal((await admin.next('usage')).device_id, erinDevice.id);
    await admin.close();
  });

  test('a burst of readings is coalesced to at most one message per second', async () => {
    const c = await session(dave.token);
    c.send({ type: 'subscribe', device_id: daveDevice.id });
    await h.sleep(200);
    const hour = freshHour();
    const started = Date.now();
    let last = 0;
    for (let i = 0; i < 25; i++) {
      last = hour + (i + 1) * 60 * 1000;
      await post(daveDevice, [[last, 0.1]]);
      await h.sleep(40);
    }
    const elapsed = (Date.now() - started) / 1000;
    await h.sleep(1500); // the trailing message of the burst
    const usages = c.received('usage');
    assert.ok(usages.length >= 2, `got ${usages.length}`);
    assert.ok(usages.length <= Math.ceil(elapsed) + 2, `${usages.length} messages in ${elapsed} s`);
    const final = usages[usages.length - 1];
    assert.equal(final.last_ts, iso(last).replace('.000Z', 'Z'), 'the newest reading wins');
    assert.ok(Math.abs(final.hour_kwh - 2.5) < 1e-9, `hour_kwh ${final.hour_kwh}`);
    await c.close();
  });

  test('unsubscribe stops the stream', async () => {
    const c = await session(dave.token);
    c.send({ type: 'subscribe', device_id: daveDevice.id });
    await h.sleep(200);
    await post(daveDevice, [[freshHour(), 0.1]]);
    await c.next('usage');
    c.send({ type: 'unsubscribe', device_id: daveDevice.id });
    await h.sleep(1200);
    const before = c.received('usage').length;
    await post(daveDevice, [[freshHour(), 0.1]]);
    await h.sleep(QUIET_MS);
    assert.equal(c.received('usage').length, before);
    await c.close();
  });

  test('when a device changes owner the old owner\'s usage stops at once', async () => {
    const device = await newDevice(dave, { limit: 1e9 });
    const c = await session(dave.token);
    c.send({ type: 'subscribe', device_id: device.id });
    await h.sleep(200);
    await post(device, [[freshHour(), 0.1]]);
    await c.next('usage');
    const res = await ctx.api('PATCH', `/api/v1/devices/${device.id}`, { token: ctx.admin.token,
      body: { owner_id: erin.id } });
    assert.equal(res.status, 200, res.text);
    await h.sleep(1100); // past the coalescing window
    const before = c.received('usage').length;
    await post(device, [[freshHour(), 0.1]]);
    await h.sleep(QUIET_MS);
    assert.equal(c.received('usage').length, before, 'no usage after the owner change');
    await c.close();
  });

  test('malformed and unknown messages get an error and keep the session', async () => {
    const c = await session(dave.token);
    c.send({ type: 'teleport' });
    assert.equal((await c.next('error')).code, 'unknown_type');
    c.send('{"type":');
    assert.equal((await c.next('error')).code, 'malformed');
    c.send({ type: 'subscribe', device_id: 'seven' });
    const err = await c.next('error');
    assert.equal(err.code, 'invalid_field');
    assert.equal(err.field, 'device_id');
    assert.ok(c.isOpen);
    await c.close();
  });
});

describe('limits', () => {
  test('a message over 64 KiB closes with 1009; 64 KiB itself is fine', async () => {
    const frank = await newUser();
    const ok = await session(frank.token);
    ok.send(JSON.stringify({ type: 'noop', pad: 'x'.repeat(65536 - 28) }));
    assert.equal((await ok.next('error')).code, 'unknown_type');
    const c = await session(frank.token);
    c.send(JSON.stringify({ type: 'subscribe', pad: 'x'.repeat(65536) }));
    assert.equal(await c.closedWithin(3000), 1009);
    // Far over: the close still gets through while the rest is in flight.
    const big = await session(frank.token);
    big.send('x'.repeat(4 * 1024 * 1024));
    assert.equal(await big.closedWithin(5000), 1009);
    // And split into fragments.
    const frag = await session(frank.token);
    for (let i = 0; i < 5; i++) frag.ws.send('y'.repeat(20000), { fin: i === 4 });
    assert.equal(await frag.closedWithin(3000), 1009);
    assert.ok(ok.isOpen);
    await ok.close();
  });

  test('a flood closes with 1008', async () => {
    const gina = await newUser();
    const c = await session(gina.token);
    for (let i = 0; i < 300; i++) c.send({ type: 'unsubscribe', device_id: 1 });
    assert.equal(await c.closedWithin(3000), 1008);
  });

  test('a client that never reads is dropped; others and its replay lose nothing', async () => {
    const hank = await newUser();
    const device = await newDevice(hank);
    const reader = await session(hank.token);
    const stuck = await session(hank.token);
    stuck.ws._socket.pause(); // stops reading: the kernel buffers fill, then our queue
    // 2 x 10,000 alerts (one per hour) in two requests.
    const count = 20000;
    const first = freshHour();
    nextHour += count;
    for (let part = 0; part < 2; part++) {
      const readings = [];
      for (let i = 0; i < count / 2; i++) readings.push([first + (part * count / 2 + i) * HOUR, 5]);
      await post(device, readings);
    }
    await h.waitFor(() => reader.received('alert').length === count, { timeout: 30000,
      message: `reader got ${count} alerts` });
    const ids = reader.received('alert').map((m) => m.alert.id);
    assert.deepEqual(ids, [...ids].sort((x, y) => x - y), 'in id order');
    await h.waitFor(async () => {
      const m = await ctx.api('GET', '/metrics');
      return /wattline_ws_sessions_closed_total\{reason="slow_consumer"\} [1-9]/.test(m.text);
    }, { timeout: 45000, message: 'a slow_consumer close' });
    stuck.terminate();
    // Reconnecting from before the burst replays all of it, in order, paced by the reader.
    const again = await session(hank.token, { since: ids[0] - 1 });
    await h.waitFor(() => again.received('alert').length === count, { timeout: 60000,
      message: 'replay of every alert' });
    assert.deepEqual(again.received('alert').map((m) => m.alert.id), ids);
    await Promise.all([reader.close(), again.close()]);
  });

  describe('session caps', () => {
    let server;
    before(async () => {
      server = await h.startServer({ databaseUrl: ctx.pg.url, env: {
        WS_MAX_SESSIONS: 3, WS_MAX_SESSIONS_PER_USER: 2, JWT_SECRET: ctx.server.jwtSecret } });
    });
    after(async () => { if (server) await server.stop(); });

    test('a user over ws_max_sessions_per_user is closed with 4429', async () => {
      const ivy = await newUser();
      const a = await wsc.session(server.wsUrl, ivy.token);
      const b = await wsc.session(server.wsUrl, ivy.token);
      const c = await wsc.open(server.wsUrl);
      c.send({ type: 'auth', token: ivy.token });
      assert.equal(await c.closedWithin(3000), 4429);
      await a.close();
      const d = await wsc.session(server.wsUrl, ivy.token); // room again
      await Promise.all([b.close(), d.close()]);
    });

    test('past ws_max_sessions new connections are closed with 1013', async () => {
      const open = [await wsc.open(server.wsUrl), await wsc.open(server.wsUrl),
        await wsc.open(server.wsUrl)];
      const extra = await wsc.open(server.wsUrl);
      assert.equal(await extra.closedWithin(3000), 1013);
      await Promise.all(open.map((c) => c.close()));
      await h.sleep(200);
      const metrics = await h.api(server, 'GET', '/metrics');
      assert.match(metrics.text, /wattline_ws_sessions_closed_total\{reason="session_cap"\} 1/);
      assert.match(metrics.text, /wattline_ws_sessions_closed_total\{reason="user_cap"\} 1/);
    });
  });
});

test('metrics report open sessions and delivered alerts', async () => {
  const kim = await newUser();
  const device = await newDevice(kim);
  const c = await session(kim.token);
  await raiseAlert(device);
  await c.next('alert');
  const m = await ctx.api('GET', '/metrics');
  assert.match(m.text, /wattline_ws_sessions_open [1-9]/);
  assert.match(m.text, /wattline_ws_alerts_delivered_total [1-9]/);
  assert.match(m.text, /wattline_ws_messages_dropped_total \d+/);
  assert.match(m.text, /wattline_ws_sessions_closed_total\{reason="auth_failed"\} [1-9]/);
  await c.close();
});
