'use strict';
// Notifications beyond the open tab: preferences, signed webhooks through the durable
// outbox (a real receiver: a Node HTTP server on loopback), forecasts, device status.
// Two instances share one database (WEBHOOK_ALLOW_PRIVATE=1 so that they may call the
// loopback receiver, and a short retry schedule); a third runs with the defaults to show
// that private addresses are refused.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const http = require('node:http');
const h = require('./lib/harness');
const wsc = require('./lib/wsclient');

const { before, after } = test;

const HOUR = 3600 * 1000;
const iso = (ms) => new Date(ms).toISOString();

// A receiver: records every request; rx.plan[path] (a queue of functions) decides how to
// answer the next requests to that path, a plain 200 when it is empty.
function startReceiver() {
  const rx = { got: [], plan: {} };
  rx.answer = (path, fn) => (rx.plan[path] ??= []).push(fn);
  rx.server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const entry = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(), url: req.url };
      rx.got.push(entry);
      const answer = rx.plan[req.url]?.shift();
      if (answer) answer(res, entry);
      else res.writeHead(200).end('ok');
    });
  });
  return new Promise((resolve) => rx.server.listen(0, '127.0.0.1', () => {
    rx.url = (path = '/hook') => `http://127.0.0.1:${rx.server.address().port}${path}`;
    resolve(rx);
  }));
}

// The receiver's side of a signature check, as README shows it.
function verify(secret, headers, body) {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(headers['wattline-signature'] ?? '');
  if (!m) return false;
  const want = crypto.createHmac('sha256', secret).update(`${m[1]}.${body}`).digest('hex');
  return crypto.timingSafeEqual(Buffer.from(want), Buffer.from(m[2]));
}

let pg, one, two, strict, rx, admin, alice, bob;

async function account(server) {
  const acc = await h.createUser(server, { role: 'client' });
  const tokens = await h.login(server, acc.email, acc.password);
  return { id: tokens.user.id, token: tokens.access_token };
}

async function makeDevice(owner, extra = {}) {
  const res = await h.api(one, 'POST', '/api/v1/devices', { token: admin,
    body: { name: `dev-${crypto.randomBytes(3).toString('hex')}`, max_hourly_kwh: 1,
      reading_type: 'interval', owner_id: owner.id, ...extra } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

async function addHook(user, url, events = ['alert', 'forecast', 'command', 'device_status'],
  server = one) {
  const res = await h.api(server, 'POST', '/api/v1/me/webhooks', { token: user.token,
    body: { url, events } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

async function post(device, body, server = one) {
  const res = await h.api(server, 'POST', '/api/v1/measurements', { token: device.token, body });
  assert.equal(res.status, 200, res.text);
  return res.json;
}

// A fresh past hour for each alert, far from every other test's.
let pastHour = Math.floor(Date.now() / HOUR) * HOUR - 5000 * HOUR;
const nextPastHour = () => (pastHour += HOUR);

const deliveriesFor = (hookUrlPath) => rx.got.filter((g) => g.url === hookUrlPath);

before(async () => {
  rx = await startReceiver();
  pg = await h.startPostgres();
  // Retries 1000 times sooner (10 ms, 60 ms, 300 ms, 1.8 s, 7.2 s, 21.6 s) and a 3 s
  // failure window: what takes a day in production takes seconds here.
  const env = { WEBHOOK_ALLOW_PRIVATE: '1', WEBHOOK_RETRY_DIVISOR: '1000', WEBHOOK_FAIL_WINDOW_S: '3' };
  one = await h.startServer({ databaseUrl: pg.url, env });
  two = await h.startServer({ databaseUrl: pg.url, env: { ...env, JWT_SECRET: one.jwtSecret } });
  const adminAccount = await h.createUser(one, { role: 'admin' });
  admin = (await h.login(one, adminAccount.email, adminAccount.password)).access_token;
  alice = await account(one);
  bob = await account(one);
});

after(async () => {
  try {
    for (const s of [one, two, strict]) if (s) await s.stop();
  } finally {
    if (pg) await pg.destroy();
    if (rx) rx.server.close();
  }
});

test('preferences: defaults, the whole shape stored, bad shapes refused', async () => {
  const user = await account(one);
  let res = await h.api(one, 'GET', '/api/v1/me/notifications', { token: user.token });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, {
    alert: { websocket: true, webhook: true }, forecast: { websocket: true, webhook: false },
    command: { websocket: true, webhook: false }, device_status: { websocket: true, webhook: true },
  });
  const want = {
    alert: { websocket: false, webhook: true }, forecast: { websocket: true, webhook: true },
    command: { websocket: false, webhook: false }, device_status: { websocket: true, webhook: false },
  };
  res = await h.api(one, 'PUT', '/api/v1/me/notifications', { token: user.token, body: want });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, want);
  res = await h.api(two, 'GET', '/api/v1/me/notifications', { token: user.token });
  assert.deepEqual(res.json, want);
  const { command, ...missing } = want;
  res = await h.api(one, 'PUT', '/api/v1/me/notifications', { token: user.token, body: missing });
  assert.equal(res.status, 422, res.text);
  res = await h.api(one, 'PUT', '/api/v1/me/notifications', { token: user.token,
    body: { ...want, alert: { websocket: 'yes', webhook: true } } });
  assert.equal(res.status, 422);
  assert.equal(res.json.field, 'alert.websocket');
  res = await h.api(one, 'PUT', '/api/v1/me/notifications', { token: user.token,
    body: { ...want, sms: { websocket: true, webhook: true } } });
  assert.equal(res.status, 422);
  res = await h.api(one, 'GET', '/api/v1/me/notifications');
  assert.equal(res.status, 401);
});

test('webhooks: private, loopback and link-local URLs refused without WEBHOOK_ALLOW_PRIVATE', async () => {
  // Its sender would refuse the loopback receiver too: it runs only for this test.
  strict = await h.startServer({ databaseUrl: pg.url, env: { JWT_SECRET: one.jwtSecret } });
  const user = await account(strict);
  for (const url of ['http://127.0.0.1:9/x', 'http://[::ffff:127.0.0.1]:9/x', 'http://[::1]/',
    'http://localhost/', 'http://169.254.169.254/latest', 'http://10.1.2.3/', 'http://192.168.0.1/',
    'http://[fe80::1]/', 'http://0.0.0.0/', 'ftp://example.com/', 'http://user:pw@example.com/',
    'https://', 'javascript:alert(1)']) {
    const res = await h.api(strict, 'POST', '/api/v1/me/webhooks', { token: user.token,
      body: { url, events: ['alert'] } });
    assert.equal(res.status, 422, `${url}: ${res.text}`);
    assert.equal(res.json.code, 'invalid_field');
    assert.equal(res.json.field, 'url', url);
  }
  for (const events of [[], ['sms'], 'alert', [1]]) {
    const res = await h.api(strict, 'POST', '/api/v1/me/webhooks', { token: user.token,
      body: { url: 'https://example.com/', events } });
    assert.equal(res.status, 422);
    assert.equal(res.json.field, 'events');
  }
  await strict.stop();
  strict = null;
});

test('webhooks: created with the secret shown once, listed, read, deleted, scoped', async () => {
  const user = await account(one);
  const hook = await addHook(user, rx.url('/crud'), ['alert']);
  assert.match(hook.secret, /^whsec_[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(hook.events, ['alert']);
  assert.equal(hook.active, true);
  let res = await h.api(one, 'GET', `/api/v1/me/webhooks/${hook.id}`, { token: user.token });
  assert.equal(res.status, 200);
  assert.equal(res.json.secret, undefined);
  assert.equal(res.json.url, rx.url('/crud'));
  res = await h.api(one, 'GET', '/api/v1/me/webhooks', { token: user.token });
  assert.deepEqual(res.json.items.map((w) => w.id), [hook.id]);
  assert.equal(res.json.next_cursor, null);
  // Another user's webhook is not found, whatever the method.
  const other = await account(one);
  for (const [method, path] of [['GET', ''], ['DELETE', ''], ['GET', '/deliveries']]) {
    res = await h.api(one, method, `/api/v1/me/webhooks/${hook.id}${path}`, { token: other.token });
    assert.equal(res.status, 404, `${method} ${path}`);
  }
  // The secret is sealed at rest, not stored as such.
  const stored = pg.scalar(`SELECT encode(secret_enc, 'escape') FROM webhooks WHERE id = ${hook.id}`);
  assert.ok(!String(stored).includes(hook.secret));
  res = await h.api(one, 'DELETE', `/api/v1/me/webhooks/${hook.id}`, { token: user.token });
  assert.equal(res.status, 204);
  res = await h.api(one, 'GET', `/api/v1/me/webhooks/${hook.id}`, { token: user.token });
  assert.equal(res.status, 404);
});

test('an alert reaches the owner\'s webhook, signed, and only the owner\'s', async () => {
  const hook = await addHook(alice, rx.url('/alice'));
  const bobHook = await addHook(bob, rx.url('/bob'));
  const device = await makeDevice(alice);
  const hour = nextPastHour();
  await post(device, { ts: iso(hour + 60000), kwh: 5 });
  const got = await h.waitFor(() => deliveriesFor('/alice')[0], { timeout: 5000 });
  const body = JSON.parse(got.body);
  assert.equal(body.type, 'alert');
  assert.equal(body.alert.device_id, device.id);
  assert.equal(body.alert.hour_start, iso(hour).replace('.000Z', 'Z'));
  assert.equal(body.alert.hour_kwh, 5);
  assert.equal(got.headers['content-type'], 'application/json');
  assert.match(got.headers['wattline-event-id'], /^\d+$/);
  assert.ok(verify(hook.secret, got.headers, got.body), 'signature verifies');
  assert.ok(!verify(bobHook.secret, got.headers, got.body));
  const t = Number(/t=(\d+)/.exec(got.headers['wattline-signature'])[1]);
  assert.ok(Math.abs(t - Date.now() / 1000) < 30);
  await h.sleep(500);
  assert.equal(deliveriesFor('/bob').length, 0, 'another user\'s event never reaches bob');
  const res = await h.api(one, 'GET', `/api/v1/me/webhooks/${hook.id}/deliveries`,
    { token: alice.token });
  assert.equal(res.status, 200);
  const [d] = res.json.items;
  assert.equal(d.event, 'alert');
  assert.equal(d.attempt, 1);
  assert.equal(d.status_code, 200);
  assert.equal(d.error, null);
  assert.equal(String(d.event_id), got.headers['wattline-event-id']);
  await h.api(one, 'DELETE', `/api/v1/me/webhooks/${hook.id}`, { token: alice.token });
  await h.api(one, 'DELETE', `/api/v1/me/webhooks/${bobHook.id}`, { token: bob.token });
});

test('commands reach the owner\'s webhook at creation and at each status change, when preferred', async () => {
  const prefs = { alert: { websocket: true, webhook: true }, forecast: { websocket: true, webhook: false },
    command: { websocket: true, webhook: true }, device_status: { websocket: true, webhook: true } };
  const put = await h.api(one, 'PUT', '/api/v1/me/notifications', { token: alice.token, body: prefs });
  assert.equal(put.status, 200, put.text);
  const hook = await addHook(alice, rx.url('/alice-commands'), ['command']);
  const device = await makeDevice(alice);
  try {
    const created = await h.api(one, 'POST', `/api/v1/devices/${device.id}/commands`,
      { token: alice.token, body: { name: 'relay', params: { state: 'off' } } });
    assert.equal(created.status, 201, created.text);
    const cancel = await h.api(one, 'POST', `/api/v1/commands/${created.json.id}/cancel`,
      { token: alice.token });
    assert.equal(cancel.status, 200, cancel.text);
    const got = await h.waitFor(() => {
      const list = deliveriesFor('/alice-commands');
      return list.length >= 2 && list;
    }, { timeout: 10000 });
    const bodies = got.map((g) => JSON.parse(g.body));
    assert.deepEqual(bodies.map((b) => b.type), ['command', 'command']);
    assert.deepEqual(bodies.map((b) => b.command.status).sort(), ['canceled', 'queued']);
    for (const b of bodies) {
      assert.equal(b.command.id, created.json.id);
      assert.equal(b.command.device_id, device.id);
      assert.deepEqual(b.command.params, { state: 'off' });
    }
    assert.equal(bodies.find((b) => b.command.status === 'queued').command.created_at,
      created.json.created_at);
    for (const g of got) assert.ok(verify(hook.secret, g.headers, g.body));
  } finally {
    await h.api(one, 'DELETE', `/api/v1/me/webhooks/${hook.id}`, { token: alice.token });
    prefs.command.webhook = false;
    await h.api(one, 'PUT', '/api/v1/me/notifications', { token: alice.token, body: prefs });
  }
});

test('a 500 is retried with the same event id, attempt 2 succeeds', async () => {
  const user = await account(one);
  const hook = await addHook(user, rx.url('/retry'), ['alert']);
  const device = await makeDevice(user);
  rx.answer('/retry', (res) => res.writeHead(500).end('no'));
  await post(device, { ts: iso(nextPastHour() + 60000), kwh: 5 });
  const [first, second] = await h.waitFor(() => {
    const got = deliveriesFor('/retry');
    return got.length >= 2 && got;
  }, { timeout: 8000 });
  assert.equal(first.headers['wattline-event-id'], second.headers['wattline-event-id']);
  assert.equal(first.body, second.body);
  assert.ok(verify(hook.secret, second.headers, second.body));
  const res = await h.api(one, 'GET', `/api/v1/me/webhooks/${hook.id}/deliveries`,
    { token: user.token });
  const items = res.json.items;
  assert.deepEqual(items.map((d) => [d.attempt, d.status_code]), [[2, 200], [1, 500]]);
  assert.equal(items[1].error, 'HTTP 500');
  await h.sleep(300);
  assert.equal(deliveriesFor('/retry').length, 2, 'no attempt after the success');
});

test('preferences decide: alerts off for webhooks are still stored and listed', async () => {
  const user = await account(one);
  await addHook(user, rx.url('/prefs'), ['alert']);
  const device = await makeDevice(user);
  const prefs = {
    alert: { websocket: true, webhook: false }, forecast: { websocket: true, webhook: false },
    command: { websocket: true, webhook: false }, device_status: { websocket: true, webhook: true },
  };
  let res = await h.api(one, 'PUT', '/api/v1/me/notifications', { token: user.token, body: prefs });
  assert.equal(res.status, 200);
  await post(device, { ts: iso(nextPastHour() + 60000), kwh: 5 });
  await h.sleep(1500);
  assert.equal(deliveriesFor('/prefs').length, 0);
  res = await h.api(one, 'GET', `/api/v1/alerts?device_id=${device.id}`, { token: user.token });
  assert.equal(res.json.items.length, 1, 'the alert is stored and listed');
});

test('no delivery for an event whose transaction rolled back', async () => {
  const user = await account(one);
  await addHook(user, rx.url('/rollback'), ['command']);
  await h.api(one, 'PUT', '/api/v1/me/notifications', { token: user.token, body: {
    alert: { websocket: true, webhook: true }, forecast: { websocket: true, webhook: true },
    command: { websocket: true, webhook: true }, device_status: { websocket: true, webhook: true },
  } });
  const before = pg.scalar('SELECT count(*) FROM webhook_deliveries');
  pg.psql(`BEGIN; SELECT notification_enqueue(${user.id}, 'command', '{"type":"command"}', true);
    ROLLBACK;`);
  assert.equal(pg.scalar('SELECT count(*) FROM webhook_deliveries'), before);
  await h.sleep(1000);
  assert.equal(deliveriesFor('/rollback').length, 0);
  pg.psql(`BEGIN; SELECT notification_enqueue(${user.id}, 'command', '{"type":"command"}', true);
    COMMIT;`);
  const got = await h.waitFor(() => deliveriesFor('/rollback')[0], { timeout: 5000 });
  assert.equal(got.body, '{"type":"command"}');
});

test('a receiver that never answers or answers without end does not hold the sender', async () => {
  // The huge answer: 64 MiB offered, the sender stops reading after 64 KiB.
  let hugeSent = 0;
  rx.answer('/huge', (res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const chunk = Buffer.alloc(1 << 20, 120);
    const pump = () => {
      while (hugeSent < 64 && res.write(chunk)) hugeSent++;
      if (hugeSent < 64) res.once('drain', pump);
      else res.end();
    };
    res.on('error', () => {});
    pump();
  });
  // Kept open: never answers.
  rx.answer('/silent', () => {});
  const hooks = {};
  for (const path of ['/silent', '/huge', '/fine']) {
    const u = await account(one);
    hooks[path] = { user: u, hook: await addHook(u, rx.url(path), ['alert']) };
    const device = await makeDevice(u);
    await post(device, { ts: iso(nextPastHour() + 60000), kwh: 5 });
  }
  const started = Date.now();
  await h.waitFor(() => deliveriesFor('/fine')[0], { timeout: 25000 });
  assert.ok(Date.now() - started < 25000);
  const { user, hook } = hooks['/huge'];
  const res = await h.waitFor(async () => {
    const r = await h.api(one, 'GET', `/api/v1/me/webhooks/${hook.id}/deliveries`, { token: user.token });
    return r.json.items.length > 0 && r;
  }, { timeout: 25000, interval: 250 });
  const [d] = res.json.items;
  assert.equal(d.status_code, 200, JSON.stringify(d));
  assert.ok(hugeSent < 64, `the sender read all ${hugeSent} MiB`);
});

// A session of user's, authenticated on server.
async function session(server, user) {
  const c = await wsc.open(server.wsUrl);
  c.send({ type: 'auth', token: user.token });
  await c.next('ready');
  return c;
}

// Outside the minutes where a forecast can be raised and followed within one hour (the
// reading must be 15 minutes into the current hour, at most 5 minutes ahead of the
// server's clock), the test checks the other side of the rule instead: an hour too young
// for a projection raises none, however far over it points, and a backfill none either.
async function forecastTooYoung() {
  let now = Date.now();
  if (now % HOUR > 50 * 60000) { // wait for the next hour's first seconds
    await h.sleep(HOUR - (now % HOUR) + 1000);
    now = Date.now();
  }
  const hourStart = Math.floor(now / HOUR) * HOUR;
  const user = await account(one);
  const hook = await addHook(user, rx.url('/forecast-young'), ['forecast']);
  await h.api(one, 'PUT', '/api/v1/me/notifications', { token: user.token, body: {
    alert: { websocket: true, webhook: true }, forecast: { websocket: true, webhook: true },
    command: { websocket: true, webhook: false }, device_status: { websocket: true, webhook: true },
  } });
  const device = await makeDevice(user, { max_hourly_kwh: 10 });
  const ws = await session(one, user);
  await post(device, { ts: iso(hourStart - 3 * HOUR + 30 * 60000), kwh: 50 }); // backfill
  // Under the limit so far, 6 times over it once projected: still no forecast.
  await post(device, { ts: iso(now), kwh: 9 });
  assert.ok(now - hourStart < 15 * 60000, 'the hour is younger than 15 minutes');
  await h.sleep(1500);
  assert.equal(deliveriesFor('/forecast-young').length, 0);
  assert.equal(ws.received('forecast').length, 0);
  assert.equal(pg.scalar(`SELECT count(*) FROM forecasts WHERE device_id = ${device.id}`), 0);
  ws.close();
  await h.api(one, 'DELETE', `/api/v1/me/webhooks/${hook.id}`, { token: user.token });
}

test('forecast: once per device-hour in the current hour, never for a backfill or a young hour', async () => {
  const now = Date.now();
  const hourStart = Math.floor(now / HOUR) * HOUR;
  const at = Math.max(now, hourStart + 16 * 60000);
  if (at - now > 4 * 60000 || at - hourStart > 58.5 * 60000) {
    await forecastTooYoung();
    return;
  }
  const user = await account(one);
  const hook = await addHook(user, rx.url('/forecast'), ['forecast']);
  await h.api(one, 'PUT', '/api/v1/me/notifications', { token: user.token, body: {
    alert: { websocket: true, webhook: true }, forecast: { websocket: true, webhook: true },
    command: { websocket: true, webhook: false }, device_status: { websocket: true, webhook: true },
  } });
  const device = await makeDevice(user, { max_hourly_kwh: 10 });
  const wsOne = await session(one, user);
  const wsTwo = await session(two, user);
  // A backfill far over the limit: an alert, no forecast.
  await post(device, { ts: iso(hourStart - 3 * HOUR + 30 * 60000), kwh: 50 });
  // The current hour: under the limit so far (no alert), over it once projected:
  // so_far * 60 / m > 10 for so_far halfway between 10 * m / 60 and 10.
  const minutes = (at - hourStart) / 60000;
  const soFar = Math.round(10 * (1 + minutes / 60) / 2 * 1000) / 1000;
  await post(device, { ts: iso(at), kwh: soFar });
  const got = await h.waitFor(() => deliveriesFor('/forecast')[0], { timeout: 5000 });
  const body = JSON.parse(got.body);
  assert.equal(body.type, 'forecast');
  assert.equal(body.forecast.device_id, device.id);
  assert.equal(body.forecast.device_name, device.name);
  assert.equal(body.forecast.hour_start, iso(hourStart).replace('.000Z', 'Z'));
  assert.equal(body.forecast.hour_kwh_so_far, soFar);
  assert.ok(Math.abs(body.forecast.projected_kwh - soFar * 60 / minutes) < 1e-9);
  assert.equal(body.forecast.max_hourly_kwh, 10);
  assert.ok(verify(hook.secret, got.headers, got.body));
  for (const c of [wsOne, wsTwo]) {
    const msg = await c.next('forecast');
    assert.deepEqual(msg.forecast, body.forecast);
  }
  // More readings in the same hour: no second forecast.
  await post(device, { ts: iso(at + 1000), kwh: 1 }, two);
  await post(device, { ts: iso(at + 2000), kwh: 1 });
  await h.sleep(1500);
  assert.equal(deliveriesFor('/forecast').length, 1);
  assert.equal(wsOne.received('forecast').length, 1);
  assert.equal(pg.scalar(`SELECT count(*) FROM forecasts WHERE device_id = ${device.id}`), 1);
  wsOne.close();
  wsTwo.close();
});

test('device status: offline once and online once, with two instances', async () => {
  const user = await account(one);
  await addHook(user, rx.url('/status'), ['device_status']);
  let res = await h.api(one, 'POST', '/api/v1/devices', { token: admin, body: { name: 'quiet',
    max_hourly_kwh: 100, reading_type: 'interval', owner_id: user.id, offline_after_s: 59 } });
  assert.equal(res.status, 422);
  assert.equal(res.json.field, 'offline_after_s');
  const device = await makeDevice(user, { offline_after_s: 60, max_hourly_kwh: 100 });
  assert.equal(device.offline_after_s, 60);
  assert.equal(device.status, null, 'never seen: no status');
  const wsOne = await session(one, user);
  const wsTwo = await session(two, user);
  await post(device, { kwh: 0.1 });
  res = await h.api(one, 'GET', `/api/v1/devices/${device.id}`, { token: user.token });
  assert.equal(res.json.status, 'online');
  // A minute of silence, without waiting a minute: the deadline moves into the past.
  pg.psql(`UPDATE devices SET offline_due_at = now() - interval '1 second' WHERE id = ${device.id}`);
  const off = await h.waitFor(() => deliveriesFor('/status')[0], { timeout: 12000 });
  const offBody = JSON.parse(off.body);
  assert.equal(offBody.type, 'device_status');
  assert.equal(offBody.status, 'offline');
  assert.equal(offBody.device_id, device.id);
  assert.equal(offBody.device_name, device.name);
  assert.ok(offBody.last_seen_at);
  for (const c of [wsOne, wsTwo]) assert.equal((await c.next('device_status')).status, 'offline');
  res = await h.api(one, 'GET', `/api/v1/devices/${device.id}`, { token: user.token });
  assert.equal(res.json.status, 'offline');
  // Both instances sweep every few seconds: still one event.
  await h.sleep(6000);
  assert.equal(deliveriesFor('/status').length, 1);
  assert.equal(wsOne.received('device_status').length, 1);
  // The next accepted reading: online, once.
  await post(device, { kwh: 0.1 }, two);
  await post(device, { kwh: 0.1 });
  const on = await h.waitFor(() => deliveriesFor('/status')[1], { timeout: 5000 });
  assert.equal(JSON.parse(on.body).status, 'online');
  for (const c of [wsOne, wsTwo]) assert.equal((await c.next('device_status')).status, 'online');
  await h.sleep(1000);
  assert.equal(deliveriesFor('/status').length, 2);
  // The owner may change the setting; null turns the status off.
  res = await h.api(one, 'PATCH', `/api/v1/devices/${device.id}`, { token: user.token,
    body: { offline_after_s: null } });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.offline_after_s, null);
  assert.equal(res.json.status, null);
  wsOne.close();
  wsTwo.close();
});

test('preferences decide: alerts off for sessions never reach the WebSocket', async () => {
  const user = await account(one);
  const device = await makeDevice(user);
  const c = await session(one, user);
  await post(device, { ts: iso(nextPastHour() + 60000), kwh: 5 });
  assert.equal((await c.next('alert')).alert.device_id, device.id);
  const res = await h.api(one, 'PUT', '/api/v1/me/notifications', { token: user.token, body: {
    alert: { websocket: false, webhook: true }, forecast: { websocket: true, webhook: false },
    command: { websocket: true, webhook: false }, device_status: { websocket: true, webhook: true },
  } });
  assert.equal(res.status, 200);
  await post(device, { ts: iso(nextPastHour() + 60000), kwh: 5 });
  await h.sleep(1500);
  assert.equal(c.received('alert').length, 1);
  const list = await h.api(one, 'GET', `/api/v1/alerts?device_id=${device.id}`, { token: user.token });
  assert.equal(list.json.items.length, 2, 'both alerts stored and listed');
  c.close();
});

test('preferences decide: commands off for sessions reach neither the owner\'s WebSocket nor that admin\'s', async () => {
  const user = await account(one);
  const device = await makeDevice(user);
  const mutedAdminAccount = await h.createUser(one, { role: 'admin' });
  const mutedAdmin = { token: (await h.login(one, mutedAdminAccount.email,
    mutedAdminAccount.password)).access_token };
  const off = { alert: { websocket: true, webhook: true }, forecast: { websocket: true, webhook: false },
    command: { websocket: false, webhook: false }, device_status: { websocket: true, webhook: true } };
  for (const who of [user, mutedAdmin]) {
    const res = await h.api(one, 'PUT', '/api/v1/me/notifications', { token: who.token, body: off });
    assert.equal(res.status, 200, res.text);
  }
  const owner = await session(two, user);
  const listening = await session(two, { token: admin });
  const muted = await session(two, mutedAdmin);
  const first = await h.api(one, 'POST', `/api/v1/devices/${device.id}/commands`,
    { token: user.token, body: { name: 'relay', params: { state: 'off' } } });
  assert.equal(first.status, 201, first.text);
  // The admin who kept commands on hears of it: so the others had their chance too.
  assert.equal((await listening.next('command')).command.id, first.json.id);
  await h.sleep(500);
  assert.equal(owner.received('command').length, 0, 'the owner turned commands off');
  assert.equal(muted.received('command').length, 0, 'so did this admin');
  off.command.websocket = true;
  const on = await h.api(one, 'PUT', '/api/v1/me/notifications', { token: user.token, body: off });
  assert.equal(on.status, 200, on.text);
  const cancel = await h.api(one, 'POST', `/api/v1/commands/${first.json.id}/cancel`, { token: user.token });
  assert.equal(cancel.status, 200, cancel.text);
  const heard = await owner.next('command');
  assert.equal(heard.command.id, first.json.id);
  assert.equal(heard.command.status, 'canceled');
  assert.equal(muted.received('command').length, 0);
  for (const c of [owner, listening, muted]) c.close();
});

test('a webhook failing for the whole window turns inactive', async () => {
  const user = await account(one);
  const hook = await addHook(user, rx.url('/failing'), ['alert']);
  for (let i = 0; i < 10; i++) rx.answer('/failing', (res) => res.writeHead(503).end());
  const device = await makeDevice(user);
  await post(device, { ts: iso(nextPastHour() + 60000), kwh: 5 });
  const res = await h.waitFor(async () => {
    const r = await h.api(one, 'GET', `/api/v1/me/webhooks/${hook.id}`, { token: user.token });
    return r.json.active === false && r;
  }, { timeout: 20000, interval: 250 });
  assert.equal(res.json.active, false);
  const attempts = deliveriesFor('/failing').length;
  assert.ok(attempts >= 2, `${attempts} attempts`);
  // Inactive: nothing more is sent, neither retries nor new events.
  await post(device, { ts: iso(nextPastHour() + 60000), kwh: 5 });
  await h.sleep(1500);
  assert.equal(deliveriesFor('/failing').length, attempts);
});

test('two instances share the outbox: every event delivered exactly once', async () => {
  const user = await account(one);
  await addHook(user, rx.url('/burst'), ['alert']);
  const devices = [];
  for (let i = 0; i < 4; i++) devices.push(await makeDevice(user));
  const posts = [];
  for (let i = 0; i < 20; i++) {
    posts.push(post(devices[i % 4], { ts: iso(nextPastHour() + 60000), kwh: 5 }, i % 2 ? two : one));
  }
  await Promise.all(posts);
  await h.waitFor(() => deliveriesFor('/burst').length >= 20, { timeout: 10000 });
  await h.sleep(1000);
  const ids = deliveriesFor('/burst').map((g) => g.headers['wattline-event-id']);
  assert.equal(ids.length, 20);
  assert.equal(new Set(ids).size, 20, 'no event sent twice');
});

// Last: it kills both instances.
test('a delivery survives kill -9 of every instance between attempts', async () => {
  const user = await account(one);
  const hook = await addHook(user, rx.url('/durable'), ['alert']);
  const device = await makeDevice(user);
  // The first attempt fails; the server dies before anyone tries again.
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  rx.answer('/durable', (res) => {
    held.then(() => res.writeHead(500).end());
  });
  await post(device, { ts: iso(nextPastHour() + 60000), kwh: 5 });
  await h.waitFor(() => deliveriesFor('/durable')[0], { timeout: 5000 });
  // The secrets are sealed under a key derived from the JWT secret: the new instance
  // shares it, as every instance of one deployment does.
  const jwtSecret = one.jwtSecret;
  await one.kill();
  await two.kill();
  one = null;
  two = null;
  release();
  const eventId = deliveriesFor('/durable')[0].headers['wattline-event-id'];
  // The claim's lease (100 s) is what a dead sender leaves behind: end it now rather
  // than wait, as time passing would.
  pg.psql(`UPDATE webhook_deliveries SET next_at = now() WHERE state = 'pending'`);
  const three = await h.startServer({ databaseUrl: pg.url, env: {
    WEBHOOK_ALLOW_PRIVATE: '1', WEBHOOK_RETRY_DIVISOR: '1000', JWT_SECRET: jwtSecret } });
  try {
    const again = await h.waitFor(() => deliveriesFor('/durable')[1], { timeout: 10000 });
    assert.equal(again.headers['wattline-event-id'], eventId);
    assert.ok(verify(hook.secret, again.headers, again.body));
  } finally {
    await three.stop();
  }
});
