'use strict';
// The Devices API: create (token shown once, stored as a hash), list with
// pagination, read, update (owner vs admin fields), assign, token rotation,
// delete, and "not yours is 404" for clients.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { spawn } = require('node:child_process');
const h = require('./lib/harness');

const { before, describe } = test;
const ctx = h.suite();

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

function assertProblem(res, status, code, field) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers.get('content-type'), /^application\/problem\+json/);
  if (code) assert.equal(res.json.code, code, res.text);
  if (field !== undefined) assert.equal(res.json.field, field, res.text);
}

// A client account, logged in: {id, token, ...}.
async function newClient() {
  const account = await h.createUser(ctx.server, { role: 'client' });
  const tokens = await h.login(ctx.server, account.email, account.password);
  return { ...account, id: tokens.user.id, token: tokens.access_token };
}

async function createDevice(body, token = ctx.admin.token) {
  const res = await ctx.api('POST', '/api/v1/devices', {
    token, body: { name: 'Meter', max_hourly_kwh: 5, ...body } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

function sha256Hex(text) {
  return crypto.createHash('sha256').update(text).digest('hex');
}

function ingest(deviceToken, body) {
  return ctx.api('POST', '/api/v1/measurements', { token: deviceToken, body });
}

let alice;
let bob;

// Two clients shared by every group; made by the first group's before hook
// (root-level hooks would race the suite's own server start).
async function clients() {
  if (!alice) {
    alice = await newClient();
    bob = await newClient();
  }
}

describe('POST /api/v1/devices', () => {
  before(clients);

  test('creates a device: 201, Location, every member, the token once', async () => {
    const res = await ctx.api('POST', '/api/v1/devices', { token: ctx.admin.token, body: {
      name: 'Kitchen', description: 'under the sink', address: 'Str. Lunga 1', max_hourly_kwh: 2.5,
      reading_type: 'interval', owner_id: alice.id } });
    assert.equal(res.status, 201, res.text);
    const d = res.json;
    assert.equal(res.headers.get('location'), `/api/v1/devices/${d.id}`);
    assert.deepEqual(Object.keys(d).sort(), ['address', 'created_at', 'description', 'id',
      'last_seen_at', 'max_hourly_kwh', 'name', 'offline_after_s', 'over_limit_command', 'owner_id',
      'reading_type', 'serial', 'status', 'token']);
    assert.equal(d.offline_after_s, null);
    assert.equal(d.status, null);
    assert.equal(typeof d.id, 'number');
    assert.equal(d.name, 'Kitchen');
    assert.equal(d.description, 'under the sink');
    assert.equal(d.address, 'Str. Lunga 1');
    assert.equal(d.max_hourly_kwh, 2.5);
    assert.equal(d.reading_type, 'interval');
    assert.equal(d.owner_id, alice.id);
    assert.match(d.created_at, RFC3339);
    assert.equal(d.last_seen_at, null);
    assert.match(d.token, /^[A-Za-z0-9_-]{43}$/);

    // Stored only as its SHA-256; never shown again.
    const row = ctx.pg.row(`select token_hash from devices where id = ${d.id}`);
    assert.equal(row.token_hash, sha256Hex(d.token));
    const again = await ctx.api('GET', `/api/v1/devices/${d.id}`, { token: ctx.admin.token });
    assert.equal(again.status, 200);
    assert.equal(again.json.token, undefined);
    const { token, ...rest } = d;
    assert.deepEqual(again.json, rest);
  });

  test('defaults: cumulative, unassigned, empty description and address', async () => {
    const d = await createDevice({ name: 'Plain', max_hourly_kwh: 1 });
    assert.equal(d.reading_type, 'cumulative');
    assert.equal(d.owner_id, null);
    assert.equal(d.description, '');
    assert.equal(d.address, '');
    assert.equal(d.serial, null);
  });

  test('every invalid or unknown member is 422 naming the field', async () => {
    const cases = [
      [{ max_hourly_kwh: 1 }, 'name'],
      [{ name: '', max_hourly_kwh: 1 }, 'name'],
      [{ name: 'x'.repeat(201), max_hourly_kwh: 1 }, 'name'],
      [{ name: 'tab\there', max_hourly_kwh: 1 }, 'name'],
      [{ name: 42, max_hourly_kwh: 1 }, 'name'],
      [{ name: 'n' }, 'max_hourly_kwh'],
      [{ name: 'n', max_hourly_kwh: 0 }, 'max_hourly_kwh'],
      [{ name: 'n', max_hourly_kwh: -3 }, 'max_hourly_kwh'],
      [{ name: 'n', max_hourly_kwh: '5' }, 'max_hourly_kwh'],
      [{ name: 'n', max_hourly_kwh: 1, description: 'd'.repeat(2001) }, 'description'],
      [{ name: 'n', max_hourly_kwh: 1, address: 'a'.repeat(501) }, 'address'],
      [{ name: 'n', max_hourly_kwh: 1, reading_type: 'hourly' }, 'reading_type'],
      [{ name: 'n', max_hourly_kwh: 1, owner_id: 0 }, 'owner_id'],
      [{ name: 'n', max_hourly_kwh: 1, owner_id: 'alice' }, 'owner_id'],
      [{ name: 'n', max_hourly_kwh: 1, owner_id: 987654 }, 'owner_id'],
      [{ name: 'n', max_hourly_kwh: 1, colour: 'red' }, 'colour'],
    ];
    for (const [body, field] of cases) {
      const res = await ctx.api('POST', '/api/v1/devices', { token: ctx.admin.token, body });
      assertProblem(res, 422, undefined, field);
    }
    // The limits are inclusive, in bytes (2 bytes per 'ă').
    const edge = await createDevice({ name: 'ă'.repeat(100), description: 'd'.repeat(2000),
      address: 'a'.repeat(500), max_hourly_kwh: 1e-9 });
    assert.equal(edge.name, 'ă'.repeat(100));
    assertProblem(await ctx.api('POST', '/api/v1/devices', { token: ctx.admin.token,
      body: { name: 'ă'.repeat(101), max_hourly_kwh: 1 } }), 422, 'invalid_field', 'name');
  });

  test('only admins create devices', async () => {
    const res = await ctx.api('POST', '/api/v1/devices', { token: alice.token,
      body: { name: 'Mine', max_hourly_kwh: 1 } });
    assertProblem(res, 403);
    assertProblem(await ctx.api('POST', '/api/v1/devices', { body: { name: 'x', max_hourly_kwh: 1 } }),
      401);
  });
});

describe('GET /api/v1/devices', () => {
  let carol;
  const carolDevices = [];

  before(async () => {
    await clients();
    carol = await newClient();
    for (let i = 0; i < 5; i++) carolDevices.push(await createDevice({ name: `c${i}`, owner_id: carol.id }));
  });

  test('pages through every device with limit and an opaque cursor', async () => {
    const seen = [];
    let cursor = null;
    let pages = 0;
    do {
      const query = `?owner_id=${carol.id}&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const res = await ctx.api('GET', `/api/v1/devices${query}`, { token: ctx.admin.token });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(Object.keys(res.json).sort(), ['items', 'next_cursor']);
      assert.ok(res.json.items.length <= 2);
      seen.push(...res.json.items.map((d) => d.id));
      cursor = res.json.next_cursor;
      pages++;
    } while (cursor !== null);
    assert.equal(pages, 3);
    assert.deepEqual(seen, carolDevices.map((d) => d.id));
  });

  test('an admin sees every device, in id order, 50 by default', async () => {
    const res = await ctx.api('GET', '/api/v1/devices', { token: ctx.admin.token });
    assert.equal(res.status, 200);
    const ids = res.json.items.map((d) => d.id);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b));
    assert.ok(ids.length >= 5 && ids.length <= 50);
    const total = Number(ctx.pg.scalar('select count(*) from devices'));
    assert.equal(res.json.next_cursor === null, total <= 50);
  });

  test('a client sees exactly its own devices, whatever owner_id it asks for', async () => {
    const mine = await ctx.api('GET', '/api/v1/devices', { token: carol.token });
    assert.deepEqual(mine.json.items.map((d) => d.id), carolDevices.map((d) => d.id));
    const own = await ctx.api('GET', `/api/v1/devices?owner_id=${carol.id}`, { token: carol.token });
    assert.equal(own.json.items.length, 5);
    const other = await ctx.api('GET', `/api/v1/devices?owner_id=${alice.id}`, { token: carol.token });
    assert.equal(other.status, 200);
    assert.deepEqual(other.json, { items: [], next_cursor: null });
    const none = await ctx.api('GET', '/api/v1/devices', { token: bob.token });
    assert.deepEqual(none.json, { items: [], next_cursor: null });
  });

  test('malformed cursors, limits and owner ids are 400', async () => {
    const bad = ['', 'abc', '!!!!', 'ZDE', 'ZDE=', 'ZDAx', ' ZDE', 'cjE', 'x'.repeat(100)];
    // 'ZDE' is this list's own encoding of id 1; '=' padding, leading zeros ('d01')
    // and another list's kind ('r1') are refused like garbage.
    const good = await ctx.api('GET', '/api/v1/devices?limit=1&cursor=ZDE', { token: ctx.admin.token });
    assert.equal(good.status, 200, good.text);
    for (const cursor of bad.filter((c) => c !== 'ZDE')) {
      const res = await ctx.api('GET', `/api/v1/devices?cursor=${encodeURIComponent(cursor)}`,
        { token: ctx.admin.token });
      assertProblem(res, 400, 'invalid_cursor', 'cursor');
    }
    for (const limit of ['0', '1001', 'ten', '-1']) {
      assertProblem(await ctx.api('GET', `/api/v1/devices?limit=${limit}`, { token: ctx.admin.token }),
        400, 'invalid_query', 'limit');
    }
    for (const owner of ['0', 'x', '-2', '1.5']) {
      assertProblem(await ctx.api('GET', `/api/v1/devices?owner_id=${owner}`, { token: ctx.admin.token }),
        400, 'invalid_query', 'owner_id');
    }
    assertProblem(await ctx.api('GET', '/api/v1/devices'), 401);
  });
});

describe('GET and PATCH /api/v1/devices/{id}', () => {
  let dev;
  let foreign;

  before(async () => {
    await clients();
    dev = await createDevice({ name: 'Alice meter', owner_id: alice.id, address: 'A st.' });
    foreign = await createDevice({ name: 'Bob meter', owner_id: bob.id });
  });

  test('an owner reads its device; another client gets 404 as for a missing one', async () => {
    const own = await ctx.api('GET', `/api/v1/devices/${dev.id}`, { token: alice.token });
    assert.equal(own.status, 200);
    assert.equal(own.json.name, 'Alice meter');
    assertProblem(await ctx.api('GET', `/api/v1/devices/${foreign.id}`, { token: alice.token }),
      404, 'not_found');
    assertProblem(await ctx.api('GET', '/api/v1/devices/999999', { token: alice.token }), 404,
      'not_found');
    assertProblem(await ctx.api('GET', '/api/v1/devices/abc', { token: ctx.admin.token }), 404);
    assertProblem(await ctx.api('GET', '/api/v1/devices/0', { token: ctx.admin.token }), 404);
  });

  test('an owner changes name, description and limit', async () => {
    const res = await ctx.api('PATCH', `/api/v1/devices/${dev.id}`, { token: alice.token,
      body: { name: 'Renamed', description: 'new words', max_hourly_kwh: 7.25 } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.name, 'Renamed');
    assert.equal(res.json.description, 'new words');
    assert.equal(res.json.max_hourly_kwh, 7.25);
    assert.equal(res.json.address, 'A st.');
    assert.equal(res.json.owner_id, alice.id);
    const partial = await ctx.api('PATCH', `/api/v1/devices/${dev.id}`, { token: alice.token,
      body: { description: '' } });
    assert.equal(partial.json.name, 'Renamed');
    assert.equal(partial.json.description, '');
    const empty = await ctx.api('PATCH', `/api/v1/devices/${dev.id}`, { token: alice.token, body: {} });
    assert.equal(empty.status, 200);
    assert.equal(empty.json.max_hourly_kwh, 7.25);
  });

  test('an owner sending address or owner_id gets 403 forbidden_field; nothing changes', async () => {
    for (const [body, field] of [[{ address: 'B st.' }, 'address'], [{ owner_id: bob.id }, 'owner_id'],
      [{ name: 'ok', owner_id: null }, 'owner_id']]) {
      const res = await ctx.api('PATCH', `/api/v1/devices/${dev.id}`, { token: alice.token, body });
      assertProblem(res, 403, 'forbidden_field', field);
    }
    const now = await ctx.api('GET', `/api/v1/devices/${dev.id}`, { token: ctx.admin.token });
    assert.equal(now.json.address, 'A st.');
    assert.equal(now.json.owner_id, alice.id);
    assert.notEqual(now.json.name, 'ok');
  });

  test('reading_type is immutable (422), for admins too; bad values are 422', async () => {
    for (const token of [alice.token, ctx.admin.token]) {
      assertProblem(await ctx.api('PATCH', `/api/v1/devices/${dev.id}`, { token,
        body: { reading_type: 'interval' } }), 422, 'immutable_field', 'reading_type');
    }
    assertProblem(await ctx.api('PATCH', `/api/v1/devices/${dev.id}`, { token: alice.token,
      body: { max_hourly_kwh: 0 } }), 422, 'invalid_field', 'max_hourly_kwh');
    assertProblem(await ctx.api('PATCH', `/api/v1/devices/${dev.id}`, { token: alice.token,
      body: { name: null } }), 422, 'invalid_field', 'name');
    assertProblem(await ctx.api('PATCH', `/api/v1/devices/${dev.id}`, { token: alice.token,
      body: { token: 'x' } }), 422, 'unknown_field', 'token');
    assertProblem(await ctx.api('PATCH', `/api/v1/devices/${dev.id}`, { token: alice.token,
      body: [1] }), 422);
  });

  test('anything on another client\'s device is 404, before any other check', async () => {
    for (const body of [{ name: 'mine now' }, { address: 'x' }, { owner_id: alice.id },
      { reading_type: 'interval' }, { bogus: 1 }]) {
      assertProblem(await ctx.api('PATCH', `/api/v1/devices/${foreign.id}`, { token: alice.token,
        body }), 404, 'not_found');
    }
    assertProblem(await ctx.api('PATCH', '/api/v1/devices/999999', { token: ctx.admin.token,
      body: { name: 'x' } }), 404, 'not_found');
    const still = await ctx.api('GET', `/api/v1/devices/${foreign.id}`, { token: bob.token });
    assert.equal(still.json.name, 'Bob meter');
  });

  test('an admin assigns, reassigns and unassigns; an unknown user is 422', async () => {
    const d = await createDevice({ name: 'Roaming' });
    let res = await ctx.api('PATCH', `/api/v1/devices/${d.id}`, { token: ctx.admin.token,
      body: { owner_id: alice.id, address: 'Moved' } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.owner_id, alice.id);
    assert.equal(res.json.address, 'Moved');
    assert.equal((await ctx.api('GET', `/api/v1/devices/${d.id}`, { token: alice.token })).status, 200);

    res = await ctx.api('PATCH', `/api/v1/devices/${d.id}`, { token: ctx.admin.token,
      body: { owner_id: bob.id } });
    assert.equal(res.json.owner_id, bob.id);
    assertProblem(await ctx.api('GET', `/api/v1/devices/${d.id}`, { token: alice.token }), 404);

    assertProblem(await ctx.api('PATCH', `/api/v1/devices/${d.id}`, { token: ctx.admin.token,
      body: { owner_id: 987654 } }), 422, 'invalid_field', 'owner_id');
    assert.equal((await ctx.api('GET', `/api/v1/devices/${d.id}`, { token: ctx.admin.token }))
      .json.owner_id, bob.id);

    res = await ctx.api('PATCH', `/api/v1/devices/${d.id}`, { token: ctx.admin.token,
      body: { owner_id: null } });
    assert.equal(res.status, 200);
    assert.equal(res.json.owner_id, null);
    assertProblem(await ctx.api('GET', `/api/v1/devices/${d.id}`, { token: bob.token }), 404);
  });
});

// Listens on the events channel with psql for `ms` and resolves to the payloads
// received; `ready` resolves once the LISTEN is in place.
function listenEvents(ms) {
  const child = spawn('psql', ['-X', '-q', '-d', ctx.pg.url], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stdin.write(`LISTEN wattline_events;\nSELECT 'listening';\nSELECT pg_sleep(${ms / 1000});\n`);
  child.stdin.end();
  const ready = h.waitFor(() => out.includes('listening'), { timeout: 5000 });
  const done = new Promise((resolve) => child.on('close', () => {
    const payloads = [...out.matchAll(/Asynchronous notification "wattline_events" with payload "(.*)" received/g)]
      .map((m) => JSON.parse(m[1]));
    resolve(payloads);
  }));
  return { ready, done };
}

describe('owner changes and deletions are announced', () => {
  before(clients);

  test('a devices_changed event for an owner change and a delete, none for a rename', async () => {
    const d = await createDevice({ name: 'Announced', owner_id: alice.id });
    const listener = listenEvents(1500);
    await listener.ready;
    assert.equal((await ctx.api('PATCH', `/api/v1/devices/${d.id}`, { token: ctx.admin.token,
      body: { name: 'Quiet rename' } })).status, 200);
    assert.equal((await ctx.api('PATCH', `/api/v1/devices/${d.id}`, { token: ctx.admin.token,
      body: { owner_id: alice.id } })).status, 200); // same owner: no change
    assert.equal((await ctx.api('PATCH', `/api/v1/devices/${d.id}`, { token: ctx.admin.token,
      body: { owner_id: bob.id } })).status, 200);
    assert.equal((await ctx.api('DELETE', `/api/v1/devices/${d.id}`, { token: ctx.admin.token }))
      .status, 204);
    const payloads = await listener.done;
    const mentions = payloads.filter((p) => (p.devices_changed || []).includes(d.id));
    assert.equal(mentions.length, 2, JSON.stringify(payloads));
  });
});

describe('token rotation and deletion', () => {
  before(clients);

  test('a rotated token stops working at once; the new one works', async () => {
    const d = await createDevice({ name: 'Rotating', reading_type: 'interval' });
    const first = await ingest(d.token, { ts: '2026-01-05T10:00:00Z', kwh: 0.1 });
    assert.equal(first.status, 200, first.text); // and now it is cached

    const res = await ctx.api('POST', `/api/v1/devices/${d.id}/token`, { token: ctx.admin.token });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(Object.keys(res.json), ['token']);
    assert.match(res.json.token, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(res.json.token, d.token);
    assert.equal(ctx.pg.scalar(`select token_hash from devices where id = ${d.id}`),
      sha256Hex(res.json.token));

    assertProblem(await ingest(d.token, { ts: '2026-01-05T10:01:00Z', kwh: 0.1 }), 401);
    assert.equal((await ingest(res.json.token, { ts: '2026-01-05T10:02:00Z', kwh: 0.1 })).status, 200);
  });

  test('rotation and deletion are admin routes (403 for clients) and 404 when missing', async () => {
    const d = await createDevice({ name: 'Alice own', owner_id: alice.id });
    assertProblem(await ctx.api('POST', `/api/v1/devices/${d.id}/token`, { token: alice.token }), 403);
    assertProblem(await ctx.api('DELETE', `/api/v1/devices/${d.id}`, { token: alice.token }), 403);
    assertProblem(await ctx.api('POST', '/api/v1/devices/999999/token', { token: ctx.admin.token }),
      404, 'not_found');
    assertProblem(await ctx.api('DELETE', '/api/v1/devices/999999', { token: ctx.admin.token }), 404,
      'not_found');
    assert.equal((await ctx.api('GET', `/api/v1/devices/${d.id}`, { token: alice.token })).status, 200);
  });

  test('delete: 204, gone with its readings, hours and alerts; its token stops working', async () => {
    const d = await createDevice({ name: 'Doomed', reading_type: 'interval', max_hourly_kwh: 1,
      owner_id: alice.id });
    assert.equal((await ingest(d.token, { measurements: [
      { ts: '2026-01-06T10:00:00Z', kwh: 0.8 }, { ts: '2026-01-06T10:30:00Z', kwh: 0.8 }] })).status, 200);
    await h.waitFor(() => Number(ctx.pg.scalar(`select count(*) from alerts where device_id = ${d.id}`)) === 1,
      { message: 'the alert for 1.6 kWh > 1 kWh' });
    assert.equal(Number(ctx.pg.scalar(`select count(*) from readings where device_id = ${d.id}`)), 2);

    const res = await ctx.api('DELETE', `/api/v1/devices/${d.id}`, { token: ctx.admin.token });
    assert.equal(res.status, 204);
    assert.equal(res.text, '');
    assertProblem(await ctx.api('GET', `/api/v1/devices/${d.id}`, { token: ctx.admin.token }), 404);
    assertProblem(await ctx.api('DELETE', `/api/v1/devices/${d.id}`, { token: ctx.admin.token }), 404);
    for (const table of ['readings', 'device_hours', 'alerts']) {
      assert.equal(Number(ctx.pg.scalar(`select count(*) from ${table} where device_id = ${d.id}`)), 0,
        table);
    }
    assertProblem(await ingest(d.token, { ts: '2026-01-06T11:00:00Z', kwh: 0.1 }), 401);
  });
});
