'use strict';
// Commands to devices (issue 16): the owners' routes, the device's long-poll and
// answer, every transition of the state machine and its guards, the per-device cap,
// redelivery after COMMAND_LOCK_S, expiry (read-time and the sweep), live status on
// the users' WebSocket, the device WebSocket, and the over-limit automation. The
// races across two instances are in commands-multi.test.js.
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');
const wsc = require('./lib/wsclient');

const { before, describe } = test;
// A short lock so that redelivery is testable in seconds.
const ctx = h.suite({ server: { env: { COMMAND_LOCK_S: '1' } } });

function assertProblem(res, status, code, field) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers.get('content-type'), /^application\/problem\+json/);
  if (code) assert.equal(res.json.code, code, res.text);
  if (field !== undefined) assert.equal(res.json.field, field, res.text);
}

let alice;
let bob;

async function users() {
  if (alice) return;
  const mk = async () => {
    const account = await h.createUser(ctx.server, { role: 'client' });
    const tokens = await h.login(ctx.server, account.email, account.password);
    return { id: tokens.user.id, token: tokens.access_token };
  };
  alice = await mk();
  bob = await mk();
}

async function newDevice(owner = alice, extra = {}) {
  const res = await ctx.api('POST', '/api/v1/devices', { token: ctx.admin.token,
    body: { name: 'cmd', max_hourly_kwh: 1, reading_type: 'interval', owner_id: owner.id, ...extra } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

function send(device, body, token = alice.token) {
  return ctx.api('POST', `/api/v1/devices/${device.id}/commands`, { token, body });
}

function poll(device, wait = 0) {
  return ctx.api('GET', `/api/v1/device/commands?wait=${wait}`, { token: device.token });
}

// The next {"type":"command"} about command id (others' changes may come between).
async function nextAbout(ws, id, timeout = 5000) {
  const end = Date.now() + timeout;
  for (;;) {
    const msg = await ws.next('command', Math.max(1, end - Date.now()));
    if (msg.command.id === id) return msg;
  }
}

function answer(device, id, body) {
  return ctx.api('POST', `/api/v1/device/commands/${id}/result`, { token: device.token, body });
}

describe('creating and reading', () => {
  before(users);

  test('an owner creates a command: 201, Location, the contract fields', async () => {
    const d = await newDevice();
    const res = await send(d, { name: 'relay', params: { state: 'off' } });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.headers.get('location'), `/api/v1/commands/${res.json.id}`);
    const c = res.json;
    assert.deepEqual(Object.keys(c).sort(), ['alert_id', 'attempts', 'completed_at', 'created_at',
      'created_by', 'device_id', 'error', 'expires_at', 'id', 'name', 'params', 'result', 'sent_at',
      'status'].sort());
    assert.equal(c.status, 'queued');
    assert.equal(c.attempts, 0);
    assert.equal(c.created_by, alice.id);
    assert.equal(c.alert_id, null);
    assert.deepEqual(c.params, { state: 'off' });
    const ttl = (Date.parse(c.expires_at) - Date.parse(c.created_at)) / 1000;
    assert.ok(Math.abs(ttl - 3600) <= 1, `default ttl ${ttl}`);
    const got = await ctx.api('GET', `/api/v1/commands/${c.id}`, { token: alice.token });
    assert.equal(got.status, 200);
    assert.deepEqual(got.json, c);
    const admin = await ctx.api('GET', `/api/v1/commands/${c.id}`, { token: ctx.admin.token });
    assert.equal(admin.status, 200);
  });

  test('params default to {}, ttl_s is taken', async () => {
    const d = await newDevice();
    const res = await send(d, { name: 'ping', ttl_s: 10 });
    assert.equal(res.status, 201, res.text);
    assert.deepEqual(res.json.params, {});
    const ttl = (Date.parse(res.json.expires_at) - Date.parse(res.json.created_at)) / 1000;
    assert.ok(Math.abs(ttl - 10) <= 1);
  });

  test('bad input is 422 naming the field; unknown members are refused', async () => {
    const d = await newDevice();
    for (const [body, field] of [
      [{}, 'name'], [{ name: '' }, 'name'], [{ name: 'A' }, 'name'], [{ name: 'x'.repeat(65) }, 'name'],
      [{ name: 'a b' }, 'name'], [{ name: 7 }, 'name'], [{ name: 'ok', params: [] }, 'params'],
      [{ name: 'ok', params: 'x' }, 'params'], [{ name: 'ok', params: { s: 'x'.repeat(8200) } }, 'params'],
      [{ name: 'ok', ttl_s: 9 }, 'ttl_s'], [{ name: 'ok', ttl_s: 172801 }, 'ttl_s'],
      [{ name: 'ok', ttl_s: 10.5 }, 'ttl_s'], [{ name: 'ok', ttl_s: '60' }, 'ttl_s'],
    ]) {
      assertProblem(await send(d, body), 422, 'invalid_field', field);
    }
    assertProblem(await send(d, { name: 'ok', extra: 1 }), 422, 'unknown_field', 'extra');
    const edges = await send(d, { name: 'a.b-c_9', ttl_s: 172800 });
    assert.equal(edges.status, 201, edges.text);
    assert.equal((await send(d, { name: 'x'.repeat(64) })).status, 201);
  });

  test('another user\'s device or command is 404; a device token on user routes is 401', async () => {
    const d = await newDevice();
    const c = (await send(d, { name: 'relay' })).json;
    assertProblem(await send(d, { name: 'relay' }, bob.token), 404, 'not_found');
    assertProblem(await ctx.api('GET', `/api/v1/devices/${d.id}/commands`, { token: bob.token }), 404);
    assertProblem(await ctx.api('GET', `/api/v1/commands/${c.id}`, { token: bob.token }), 404);
    assertProblem(await ctx.api('POST', `/api/v1/commands/${c.id}/cancel`, { token: bob.token }), 404);
    const asDevice = await ctx.api('GET', `/api/v1/commands/${c.id}`, { token: d.token });
    assertProblem(asDevice, 401);
    assert.equal(asDevice.headers.get('www-authenticate'), 'Bearer');
    assertProblem(await send(d, { name: 'relay' }, d.token), 401);
  });

  test('a user token on the device routes is 401 with WWW-Authenticate: Bearer', async () => {
    const d = await newDevice();
    const c = (await send(d, { name: 'relay' })).json;
    const res = await ctx.api('GET', '/api/v1/device/commands?wait=0', { token: alice.token });
    assertProblem(res, 401);
    assert.equal(res.headers.get('www-authenticate'), 'Bearer');
    const res2 = await ctx.api('POST', `/api/v1/device/commands/${c.id}/result`,
      { token: ctx.admin.token, body: { status: 'succeeded' } });
    assertProblem(res2, 401);
    assert.equal(res2.headers.get('www-authenticate'), 'Bearer');
    assertProblem(await ctx.api('GET', '/api/v1/device/commands'), 401);
  });

  test('the list: newest first, paginated, ?status= filters', async () => {
    const d = await newDevice();
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await send(d, { name: `n${i}` })).json.id);
    await ctx.api('POST', `/api/v1/commands/${ids[1]}/cancel`, { token: alice.token });
    const page = await ctx.api('GET', `/api/v1/devices/${d.id}/commands?limit=3`, { token: alice.token });
    assert.equal(page.status, 200, page.text);
    assert.deepEqual(page.json.items.map((c) => c.id), [ids[4], ids[3], ids[2]]);
    assert.ok(page.json.next_cursor);
    const rest = await ctx.api('GET',
      `/api/v1/devices/${d.id}/commands?limit=3&cursor=${encodeURIComponent(page.json.next_cursor)}`,
      { token: alice.token });
    assert.deepEqual(rest.json.items.map((c) => c.id), [ids[1], ids[0]]);
    assert.equal(rest.json.next_cursor, null);
    const canceled = await ctx.api('GET', `/api/v1/devices/${d.id}/commands?status=canceled`,
      { token: ctx.admin.token });
    assert.deepEqual(canceled.json.items.map((c) => c.id), [ids[1]]);
    assertProblem(await ctx.api('GET', `/api/v1/devices/${d.id}/commands?status=done`,
      { token: alice.token }), 400, 'invalid_query', 'status');
    assertProblem(await ctx.api('GET', `/api/v1/devices/${d.id}/commands?cursor=zz`,
      { token: alice.token }), 400, 'invalid_cursor');
  });

  test('at most 50 unfinished commands per device: 409 queue_full, even when raced', async () => {
    const d = await newDevice();
    const all = await Promise.all(Array.from({ length: 60 }, (_, i) => send(d, { name: `c${i}` })));
    const created = all.filter((r) => r.status === 201);
    const full = all.filter((r) => r.status === 409);
    assert.equal(created.length, 50);
    assert.equal(full.length, 10);
    assertProblem(full[0], 409, 'queue_full');
    // A final one frees a place.
    const cancel = await ctx.api('POST', `/api/v1/commands/${created[0].json.id}/cancel`,
      { token: alice.token });
    assert.equal(cancel.status, 200, cancel.text);
    assert.equal((await send(d, { name: 'again' })).status, 201);
    assertProblem(await send(d, { name: 'again' }), 409, 'queue_full');
  });
});

describe('delivery and answers', () => {
  before(users);

  test('a poll delivers the queued commands oldest first, each becomes sent', async () => {
    const d = await newDevice();
    const a = (await send(d, { name: 'relay', params: { state: 'off' } })).json;
    const b = (await send(d, { name: 'interval', params: { seconds: 5 } })).json;
    const res = await poll(d, 0);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.items.map((c) => c.id), [a.id, b.id]);
    for (const c of res.json.items) {
      assert.equal(c.status, 'sent');
      assert.equal(c.attempts, 1);
      assert.ok(c.sent_at);
    }
    // Locked: not delivered again before COMMAND_LOCK_S.
    assert.deepEqual((await poll(d, 0)).json.items, []);
  });

  test('wait: 0 answers at once; not a whole number is 400; over 60 counts as 60', async () => {
    const d = await newDevice();
    const t0 = Date.now();
    const res = await poll(d, 0);
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { items: [] });
    assert.ok(Date.now() - t0 < 1000);
    for (const w of ['-1', '1.5', 'x', '', '1e2']) {
      assertProblem(await ctx.api('GET', `/api/v1/device/commands?wait=${w}`, { token: d.token }),
        400, 'invalid_query', 'wait');
    }
    // Over 60: accepted (a command makes it return at once).
    await send(d, { name: 'go' });
    const big = await poll(d, 999999);
    assert.equal(big.status, 200);
    assert.equal(big.json.items.length, 1);
  });

  test('HEAD hands nothing over', async () => {
    const d = await newDevice();
    const c = (await send(d, { name: 'relay' })).json;
    const head = await ctx.api('HEAD', '/api/v1/device/commands?wait=0', { token: d.token });
    assert.equal(head.status, 200);
    const got = await poll(d, 0);
    assert.deepEqual(got.json.items.map((x) => x.id), [c.id]);
    assert.equal(got.json.items[0].attempts, 1);
  });

  test('a long-poll waits the time asked with nothing, and returns within ms of a creation',
    async () => {
      const d = await newDevice();
      let t0 = Date.now();
      const empty = await poll(d, 1);
      const waited = Date.now() - t0;
      assert.deepEqual(empty.json.items, []);
      assert.ok(waited >= 950 && waited < 3000, `waited ${waited} ms`);

      t0 = Date.now();
      const pending = poll(d, 20);
      await h.sleep(300);
      const created = (await send(d, { name: 'relay' })).json;
      const got = await pending;
      const took = Date.now() - t0;
      assert.equal(got.status, 200);
      assert.deepEqual(got.json.items.map((c) => c.id), [created.id]);
      assert.ok(took < 2000, `took ${took} ms`);
    });

  test('a sent command not answered within COMMAND_LOCK_S is delivered again', async () => {
    const d = await newDevice();
    const c = (await send(d, { name: 'relay' })).json;
    assert.equal((await poll(d, 0)).json.items[0].attempts, 1);
    assert.deepEqual((await poll(d, 0)).json.items, []);
    await h.sleep(1200);
    const again = await poll(d, 0);
    assert.deepEqual(again.json.items.map((x) => x.id), [c.id]);
    assert.equal(again.json.items[0].attempts, 2);
    assert.equal(again.json.items[0].status, 'sent');
  });

  test('an answer is stored; the same answer is 200 unchanged; another is 409', async () => {
    const d = await newDevice();
    const c = (await send(d, { name: 'relay' })).json;
    await poll(d, 0);
    const ok = await answer(d, c.id, { status: 'succeeded', result: { state: 'off' } });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.status, 'succeeded');
    assert.deepEqual(ok.json.result, { state: 'off' });
    assert.ok(ok.json.completed_at);
    const same = await answer(d, c.id, { status: 'succeeded', result: { state: 'off' } });
    assert.equal(same.status, 200, same.text);
    assert.deepEqual(same.json, ok.json);
    assertProblem(await answer(d, c.id, { status: 'failed', error: 'no' }), 409, 'already_final');
    assertProblem(await answer(d, c.id, { status: 'succeeded' }), 409, 'already_final');
    // Never delivered again, never back to sent.
    await h.sleep(1200);
    assert.deepEqual((await poll(d, 0)).json.items, []);
    assert.equal(ctx.pg.scalar(`select status from commands where id = ${c.id}`), 'succeeded');
  });

  test('failed with an error; an unsent (queued) command may be answered too', async () => {
    const d = await newDevice();
    const c = (await send(d, { name: 'dance' })).json;
    const res = await answer(d, c.id, { status: 'failed', error: 'unknown command' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.status, 'failed');
    assert.equal(res.json.error, 'unknown command');
    assert.equal(res.json.result, null);
  });

  test('bad answers are 422; another device\'s command is 404', async () => {
    const d = await newDevice();
    const other = await newDevice(bob);
    const c = (await send(d, { name: 'relay' })).json;
    for (const [body, field] of [[{}, 'status'], [{ status: 'sent' }, 'status'],
      [{ status: 'succeeded', result: 3 }, 'result'], [{ status: 'failed', error: 5 }, 'error']]) {
      assertProblem(await answer(d, c.id, body), 422, 'invalid_field', field);
    }
    assertProblem(await answer(d, c.id, { status: 'succeeded', x: 1 }), 422, 'unknown_field', 'x');
    assertProblem(await answer(other, c.id, { status: 'succeeded' }), 404, 'not_found');
    assertProblem(await answer(d, 999999999, { status: 'succeeded' }), 404, 'not_found');
    assert.equal((await ctx.api('GET', `/api/v1/commands/${c.id}`, { token: alice.token })).json.status,
      'queued');
  });

  test('cancel: 200 canceled, never delivered; again is 409; an answer after it is 409', async () => {
    const d = await newDevice();
    const c = (await send(d, { name: 'relay' })).json;
    await poll(d, 0);
    const res = await ctx.api('POST', `/api/v1/commands/${c.id}/cancel`, { token: alice.token });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.status, 'canceled');
    assert.ok(res.json.completed_at);
    assertProblem(await ctx.api('POST', `/api/v1/commands/${c.id}/cancel`, { token: ctx.admin.token }),
      409, 'already_final');
    assertProblem(await answer(d, c.id, { status: 'succeeded' }), 409, 'already_final');
    await h.sleep(1200);
    assert.deepEqual((await poll(d, 0)).json.items, []);
  });

  test('cancel vs answer at the same moment: exactly one wins', async () => {
    const d = await newDevice();
    for (let i = 0; i < 5; i++) {
      const c = (await send(d, { name: 'race' })).json;
      await poll(d, 0);
      const [cancel, ans] = await Promise.all([
        ctx.api('POST', `/api/v1/commands/${c.id}/cancel`, { token: alice.token }),
        answer(d, c.id, { status: 'succeeded' }),
      ]);
      const wins = [cancel.status, ans.status].filter((s) => s === 200).length;
      assert.equal(wins, 1, `${cancel.text} / ${ans.text}`);
      const final = ctx.pg.scalar(`select status from commands where id = ${c.id}`);
      assert.equal(final, cancel.status === 200 ? 'canceled' : 'succeeded');
    }
  });
});

describe('expiry', () => {
  before(users);

  test('past expires_at: reads expired, never delivered, an answer is 409; the sweep stores it',
    async () => {
      const d = await newDevice();
      const c = (await send(d, { name: 'late', ttl_s: 10 })).json;
      // Pretend the ten seconds passed (the sweep looks at expires_at only).
      ctx.pg.psql(`update commands set expires_at = now() - interval '1 second' where id = ${c.id}`);
      const got = await ctx.api('GET', `/api/v1/commands/${c.id}`, { token: alice.token });
      assert.equal(got.json.status, 'expired');
      assert.deepEqual((await poll(d, 0)).json.items, []);
      assertProblem(await answer(d, c.id, { status: 'succeeded' }), 409, 'already_final');
      assertProblem(await ctx.api('POST', `/api/v1/commands/${c.id}/cancel`, { token: alice.token }),
        409, 'already_final');
      await h.waitFor(() => ctx.pg.scalar(`select status from commands where id = ${c.id}`) === 'expired',
        { timeout: 6000, message: 'the sweep stores expired' });
    });

  test('a real ttl_s of 10: expired about 10 s later, announced on the WebSocket', async () => {
    const d = await newDevice();
    const ws = await wsc.session(ctx.server.wsUrl, alice.token);
    const c = (await send(d, { name: 'slow', ttl_s: 10 })).json;
    const first = await nextAbout(ws, c.id);
    assert.equal(first.command.status, 'queued');
    const expired = await nextAbout(ws, c.id, 16000);
    assert.equal(expired.command.id, c.id);
    assert.equal(expired.command.status, 'expired');
    assert.equal(ctx.pg.scalar(`select status from commands where id = ${c.id}`), 'expired');
    await ws.close();
  });
});

describe('live status for users', () => {
  before(users);

  test('the owner and admins see every transition; others see nothing', async () => {
    const d = await newDevice();
    const mine = await wsc.session(ctx.server.wsUrl, alice.token);
    const admin = await wsc.session(ctx.server.wsUrl, ctx.admin.token);
    const other = await wsc.session(ctx.server.wsUrl, bob.token);
    const c = (await send(d, { name: 'relay' })).json;
    await poll(d, 0);
    await answer(d, c.id, { status: 'succeeded' });
    for (const s of [mine, admin]) {
      const seen = [];
      for (let i = 0; i < 3; i++) seen.push((await nextAbout(s, c.id)).command);
      assert.deepEqual(seen.map((x) => x.status), ['queued', 'sent', 'succeeded']);
      assert.ok(seen.every((x) => x.id === c.id));
    }
    await h.sleep(500);
    assert.equal(other.received('command').length, 0);
    await Promise.all([mine.close(), admin.close(), other.close()]);
  });
});

describe('device WebSocket', () => {
  before(users);

  test('auth with device_token: ready with device_id, queued commands at once, new ones live',
    async () => {
      const d = await newDevice();
      const early = (await send(d, { name: 'relay', params: { state: 'off' } })).json;
      const s = await wsc.open(ctx.server.wsUrl);
      s.send({ type: 'auth', device_token: d.token });
      const ready = await s.next('ready');
      assert.deepEqual(ready, { type: 'ready', device_id: d.id });
      const first = await s.next('command');
      assert.equal(first.command.id, early.id);
      assert.equal(first.command.status, 'sent');
      const later = (await send(d, { name: 'interval', params: { seconds: 9 } })).json;
      const second = await s.next('command');
      assert.equal(second.command.id, later.id);
      s.send({ type: 'command_result', id: later.id, status: 'succeeded', result: { seconds: 9 } });
      const ack = await s.next('command_ack');
      assert.deepEqual(ack, { type: 'command_ack', id: later.id, command_status: 'succeeded' });
      // The same answer again: acked, unchanged; another: an error.
      s.send({ type: 'command_result', id: later.id, status: 'succeeded', result: { seconds: 9 } });
      assert.equal((await s.next('command_ack')).command_status, 'succeeded');
      s.send({ type: 'command_result', id: later.id, status: 'failed' });
      assert.equal((await s.next('error')).code, 'already_final');
      // Nothing for users reaches it: an alert of its own device, say.
      const alertRes = await ctx.api('POST', '/api/v1/measurements', { token: d.token,
        body: { kwh: 5 } });
      assert.equal(alertRes.status, 200, alertRes.text);
      s.send({ type: 'subscribe', device_id: d.id });
      assert.equal((await s.next('error')).code, 'unknown_type');
      await h.sleep(500);
      const types = new Set(s.messages.map((m) => m.type));
      for (const t of types) assert.ok(['ready', 'command', 'command_ack', 'error'].includes(t), t);
      await s.close();
    });

  test('a sent command not answered is pushed again after COMMAND_LOCK_S', async () => {
    const d = await newDevice();
    const s = await wsc.open(ctx.server.wsUrl);
    s.send({ type: 'auth', device_token: d.token });
    await s.next('ready');
    const c = (await send(d, { name: 'relay' })).json;
    assert.equal((await s.next('command')).command.attempts, 1);
    const again = await s.next('command', 5000);
    assert.equal(again.command.id, c.id);
    assert.equal(again.command.attempts, 2);
    await s.close();
  });

  test('a bad device_token closes with 4401; a user token is not a device token', async () => {
    const s = await wsc.open(ctx.server.wsUrl);
    s.send({ type: 'auth', device_token: 'nope' });
    assert.equal(await s.closedWithin(5000), 4401);
    const t = await wsc.open(ctx.server.wsUrl);
    t.send({ type: 'auth', device_token: alice.token });
    assert.equal(await t.closedWithin(5000), 4401);
    // ... and a device token is not a user's token.
    const d = await newDevice();
    const u = await wsc.open(ctx.server.wsUrl);
    u.send({ type: 'auth', token: d.token });
    assert.equal(await u.closedWithin(5000), 4401);
  });

  test('deleting the device closes its session with 4401', async () => {
    const d = await newDevice();
    const s = await wsc.open(ctx.server.wsUrl);
    s.send({ type: 'auth', device_token: d.token });
    await s.next('ready');
    const del = await ctx.api('DELETE', `/api/v1/devices/${d.id}`, { token: ctx.admin.token });
    assert.equal(del.status, 204);
    assert.equal(await s.closedWithin(5000), 4401);
    const again = await wsc.open(ctx.server.wsUrl);
    again.send({ type: 'auth', device_token: d.token });
    assert.equal(await again.closedWithin(5000), 4401);
  });

  test('rotating the token closes the session with 4401; the new token works', async () => {
    const d = await newDevice();
    const s = await wsc.open(ctx.server.wsUrl);
    s.send({ type: 'auth', device_token: d.token });
    await s.next('ready');
    const rotated = await ctx.api('POST', `/api/v1/devices/${d.id}/token`, { token: ctx.admin.token });
    assert.equal(rotated.status, 200);
    assert.equal(await s.closedWithin(5000), 4401);
    const fresh = await wsc.open(ctx.server.wsUrl);
    fresh.send({ type: 'auth', device_token: rotated.json.token });
    assert.deepEqual(await fresh.next('ready'), { type: 'ready', device_id: d.id });
    await fresh.close();
  });

  test('another device\'s command over the socket: an error, nothing changes', async () => {
    const d = await newDevice();
    const other = await newDevice(bob);
    const c = (await send(d, { name: 'relay' })).json;
    const s = await wsc.open(ctx.server.wsUrl);
    s.send({ type: 'auth', device_token: other.token });
    await s.next('ready');
    s.send({ type: 'command_result', id: c.id, status: 'succeeded' });
    assert.equal((await s.next('error')).code, 'not_found');
    s.send({ type: 'command_result', id: c.id, status: 'maybe' });
    assert.equal((await s.next('error')).code, 'invalid_field');
    assert.equal(ctx.pg.scalar(`select status from commands where id = ${c.id}`), 'queued');
    await s.close();
  });
});

describe('over-limit automation', () => {
  before(users);

  test('over_limit_command on devices: set, shown, validated, cleared', async () => {
    const d = await newDevice(alice, { over_limit_command: { name: 'relay', params: { state: 'off' } } });
    assert.deepEqual(d.over_limit_command, { name: 'relay', params: { state: 'off' } });
    const patched = await ctx.api('PATCH', `/api/v1/devices/${d.id}`, { token: alice.token,
      body: { over_limit_command: { name: 'interval' } } });
    assert.equal(patched.status, 200, patched.text);
    assert.deepEqual(patched.json.over_limit_command, { name: 'interval', params: {} });
    for (const bad of [{ name: 'X' }, { params: {} }, 'relay', { name: 'relay', ttl_s: 60 },
      { name: 'relay', params: [] }]) {
      assertProblem(await ctx.api('PATCH', `/api/v1/devices/${d.id}`, { token: alice.token,
        body: { over_limit_command: bad } }), 422, undefined, undefined);
    }
    const cleared = await ctx.api('PATCH', `/api/v1/devices/${d.id}`, { token: alice.token,
      body: { over_limit_command: null } });
    assert.equal(cleared.json.over_limit_command, null);
    const plain = await newDevice();
    assert.equal(plain.over_limit_command, null);
  });

  test('an alert for a device with over_limit_command queues exactly one command', async () => {
    const d = await newDevice(alice, { over_limit_command: { name: 'relay', params: { state: 'off' } } });
    const ws = await wsc.session(ctx.server.wsUrl, alice.token);
    const res = await ctx.api('POST', '/api/v1/measurements', { token: d.token, body: { kwh: 3 } });
    assert.equal(res.status, 200, res.text);
    const alert = (await ws.next('alert')).alert;
    // The command's notification and the alert's are two: either may come first.
    await h.waitFor(() => ws.received('command').some((m) => m.command.device_id === d.id),
      { message: 'the command, live' });
    const live = ws.received('command').find((m) => m.command.device_id === d.id).command;
    assert.equal(live.alert_id, alert.id);
    assert.equal(live.created_by, null);
    assert.equal(live.name, 'relay');
    assert.deepEqual(live.params, { state: 'off' });
    // More readings in the same hour raise no new alert, so no new command.
    await ctx.api('POST', '/api/v1/measurements', { token: d.token, body: { kwh: 3 } });
    await h.sleep(500);
    const list = await ctx.api('GET', `/api/v1/devices/${d.id}/commands`, { token: alice.token });
    assert.equal(list.json.items.length, 1);
    assert.equal(list.json.items[0].alert_id, alert.id);
    const got = await poll(d, 0);
    assert.deepEqual(got.json.items.map((c) => c.id), [live.id]);
    await ws.close();
  });
});
