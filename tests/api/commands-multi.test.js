'use strict';
// Commands across two Wattline instances on one database (issue 16): a long-poll on
// one instance wakes within milliseconds of a creation on the other; polls for the
// same device on both instances never both get a command within one lock period;
// device WebSocket sessions and users' sessions on one instance hear of what the
// other did; and an answer after expiry is refused.
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');
const wsc = require('./lib/wsclient');

const { before, after } = test;

let pg, one, two, admin, alice;

before(async () => {
  pg = await h.startPostgres();
  // A lock long enough that no redelivery happens during a test's polls.
  one = await h.startServer({ databaseUrl: pg.url, env: { COMMAND_LOCK_S: '30' } });
  two = await h.startServer({ databaseUrl: pg.url,
    env: { JWT_SECRET: one.jwtSecret, COMMAND_LOCK_S: '30', NO_MIGRATE: 'true' } });
  const adminAccount = await h.createUser(one, { role: 'admin' });
  admin = (await h.login(one, adminAccount.email, adminAccount.password)).access_token;
  const account = await h.createUser(one, { role: 'client' });
  const tokens = await h.login(one, account.email, account.password);
  alice = { id: tokens.user.id, token: tokens.access_token };
});

after(async () => {
  try {
    if (one) await one.stop();
    if (two) await two.stop();
  } finally {
    if (pg) await pg.destroy();
  }
});

async function newDevice() {
  const res = await h.api(one, 'POST', '/api/v1/devices', { token: admin,
    body: { name: 'multi', max_hourly_kwh: 1, reading_type: 'interval', owner_id: alice.id } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

function send(server, device, body) {
  return h.api(server, 'POST', `/api/v1/devices/${device.id}/commands`, { token: alice.token, body });
}

function poll(server, device, wait) {
  return h.api(server, 'GET', `/api/v1/device/commands?wait=${wait}`, { token: device.token });
}

test('a long-poll on instance 2 returns within ms of a creation on instance 1', async () => {
  const d = await newDevice();
  for (let i = 0; i < 3; i++) {
    const pending = poll(two, d, 30);
    await h.sleep(300);
    const t0 = Date.now();
    const created = (await send(one, d, { name: 'relay', params: { state: 'off' } })).json;
    const got = await pending;
    const took = Date.now() - t0;
    assert.equal(got.status, 200, got.text);
    assert.deepEqual(got.json.items.map((c) => c.id), [created.id]);
    assert.ok(took < 1000, `the poll answered ${took} ms after the creation`);
  }
});

test('polls for one device on both instances: each command goes to exactly one of them',
  async () => {
    const d = await newDevice();
    // Several waiting polls on each instance, then commands created on both.
    const polls = [];
    for (let i = 0; i < 3; i++) polls.push(poll(one, d, 4), poll(two, d, 4));
    await h.sleep(300);
    const created = [];
    for (let i = 0; i < 4; i++) {
      created.push((await send(i % 2 ? two : one, d, { name: `c${i}` })).json.id);
    }
    const answers = await Promise.all(polls);
    const delivered = answers.flatMap((r) => r.json.items.map((c) => c.id));
    assert.deepEqual([...delivered].sort((a, b) => a - b), created,
      'each command handed over once, none lost');
    for (const id of created) {
      assert.equal(pg.scalar(`select attempts from commands where id = ${id}`), 1);
    }
    // And nobody gets them again inside the lock.
    assert.deepEqual((await poll(one, d, 0)).json.items, []);
    assert.deepEqual((await poll(two, d, 0)).json.items, []);
  });

test('a poll whose command another poll took keeps waiting until its wait is over', async () => {
  const d = await newDevice();
  const t0 = Date.now();
  const a = poll(one, d, 2);
  const b = poll(two, d, 2);
  await h.sleep(200);
  await send(one, d, { name: 'only' });
  const [ra, rb] = await Promise.all([a, b]);
  const counts = [ra.json.items.length, rb.json.items.length].sort();
  assert.deepEqual(counts, [0, 1]);
  assert.ok(Date.now() - t0 >= 1900, 'the empty one answered only after its wait');
});

test('a device session on instance 2 gets a command created on instance 1; its answer shows live',
  async () => {
    const d = await newDevice();
    const device = await wsc.open(two.wsUrl);
    device.send({ type: 'auth', device_token: d.token });
    await device.next('ready');
    const owner = await wsc.session(one.wsUrl, alice.token);
    const c = (await send(one, d, { name: 'relay', params: { state: 'on' } })).json;
    const pushed = await device.next('command');
    assert.equal(pushed.command.id, c.id);
    device.send({ type: 'command_result', id: c.id, status: 'succeeded' });
    assert.equal((await device.next('command_ack')).command_status, 'succeeded');
    const statuses = [];
    await h.waitFor(() => {
      const mine = owner.received('command').filter((m) => m.command.id === c.id);
      statuses.splice(0, statuses.length, ...mine.map((m) => m.command.status));
      return statuses.includes('succeeded');
    }, { message: 'the owner sees succeeded' });
    assert.deepEqual(statuses, ['queued', 'sent', 'succeeded']);
    // The HTTP poll finds nothing: the socket had it.
    assert.deepEqual((await poll(one, d, 0)).json.items, []);
    await Promise.all([device.close(), owner.close()]);
  });

test('an answer after expiry is 409 already_final on either instance', async () => {
  const d = await newDevice();
  const c = (await send(one, d, { name: 'late', ttl_s: 10 })).json;
  assert.equal((await poll(two, d, 0)).json.items.length, 1);
  pg.psql(`update commands set expires_at = now() - interval '1 millisecond' where id = ${c.id}`);
  for (const server of [one, two]) {
    const res = await h.api(server, 'POST', `/api/v1/device/commands/${c.id}/result`,
      { token: d.token, body: { status: 'succeeded' } });
    assert.equal(res.status, 409, res.text);
    assert.equal(res.json.code, 'already_final');
  }
  const got = await h.api(two, 'GET', `/api/v1/commands/${c.id}`, { token: alice.token });
  assert.equal(got.json.status, 'expired');
  assert.equal(got.json.result, null);
});
