'use strict';
// A device's serial (the meter's own identifier): set at creation and changed
// only by admins, checked (1-64 of A-Za-z0-9_-, not all digits), unique (409
// serial_taken), cleared with null, and shown on every rendering of a device.
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const { before, describe } = test;
const ctx = h.suite();

function assertProblem(res, status, code, field) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers.get('content-type'), /^application\/problem\+json/);
  if (code) assert.equal(res.json.code, code, res.text);
  if (field !== undefined) assert.equal(res.json.field, field, res.text);
}

let seq = 0;
// A serial no other test of this file uses.
function uniqueSerial(prefix = 'SN') {
  seq += 1;
  return `${prefix}-${process.pid}-${seq}`;
}

function create(body, token = ctx.admin.token) {
  return ctx.api('POST', '/api/v1/devices', { token, body: { name: 'Meter', max_hourly_kwh: 5, ...body } });
}

function patch(id, body, token = ctx.admin.token) {
  return ctx.api('PATCH', `/api/v1/devices/${id}`, { token, body });
}

let alice;

// A client, made by the first group's before hook (a root-level hook would
// race the suite's own server start).
async function client() {
  if (!alice) {
    const account = await h.createUser(ctx.server, { role: 'client' });
    const tokens = await h.login(ctx.server, account.email, account.password);
    alice = { id: tokens.user.id, token: tokens.access_token };
  }
}

describe('serial on create', () => {
  before(client);

  test('an admin sets it; every rendering shows it; the column holds it', async () => {
    const serial = uniqueSerial('EM');
    const res = await create({ serial, owner_id: alice.id });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.serial, serial);
    const id = res.json.id;
    assert.equal(ctx.pg.scalar(`select serial from devices where id = ${id}`), serial);
    const got = await ctx.api('GET', `/api/v1/devices/${id}`, { token: alice.token });
    assert.equal(got.json.serial, serial);
    const list = await ctx.api('GET', '/api/v1/devices?limit=1000', { token: ctx.admin.token });
    assert.equal(list.json.items.find((d) => d.id === id).serial, serial);
  });

  test('left out or null: no serial (null), and many devices may have none', async () => {
    const a = await create({});
    const b = await create({ serial: null });
    assert.equal(a.status, 201, a.text);
    assert.equal(b.status, 201, b.text);
    assert.equal(a.json.serial, null);
    assert.equal(b.json.serial, null);
    assert.equal(ctx.pg.scalar(`select serial is null from devices where id = ${b.json.id}`), true);
  });

  test('the edges of the rules are accepted', async () => {
    for (const serial of ['a', 'x'.repeat(64), '_', '-', '0a', '123-', 'A_b-9', '7e3']) {
      const res = await create({ serial: serial === 'x'.repeat(64) ? serial : `${serial}${seq++}z` });
      assert.equal(res.status, 201, `${serial}: ${res.text}`);
    }
    const one = await create({ serial: 'Q' });
    assert.equal(one.status, 201, one.text);
    assert.equal(one.json.serial, 'Q');
  });

  test('an invalid serial is 422 invalid_field naming serial; nothing is stored', async () => {
    const before = Number(ctx.pg.scalar('select count(*) from devices'));
    for (const serial of ['', '123', '0', 'x'.repeat(65), 'a.b', 'a/b', 'a:b', 'a b', 'ă', 'a+b',
      'tab\t', 'nul\u0000x', 42, true, {}, ['a']]) {
      assertProblem(await create({ serial }), 422, 'invalid_field', 'serial');
    }
    assert.equal(Number(ctx.pg.scalar('select count(*) from devices')), before);
  });

  test('a serial another device has is 409 serial_taken; case matters', async () => {
    const serial = uniqueSerial('Dup');
    assert.equal((await create({ serial })).status, 201);
    assertProblem(await create({ serial }), 409, 'serial_taken', 'serial');
    const lower = await create({ serial: serial.toLowerCase() });
    assert.equal(lower.status, 201, lower.text);
  });

  test('clients cannot create devices at all', async () => {
    assertProblem(await create({ serial: uniqueSerial() }, alice.token), 403, 'forbidden');
  });
});

describe('serial on PATCH', () => {
  let dev;
  let other;

  before(async () => {
    await client();
    dev = (await create({ name: 'Alice meter', owner_id: alice.id })).json;
    other = (await create({ name: 'Other', serial: uniqueSerial('Other') })).json;
  });

  test('an admin sets, changes and clears it (null)', async () => {
    const first = uniqueSerial('P');
    let res = await patch(dev.id, { serial: first });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.serial, first);
    const second = uniqueSerial('P');
    res = await patch(dev.id, { serial: second, name: 'Alice meter 2' });
    assert.equal(res.json.serial, second);
    assert.equal(res.json.name, 'Alice meter 2');
    // A PATCH without serial leaves it.
    res = await patch(dev.id, { description: 'kept' });
    assert.equal(res.json.serial, second);
    res = await patch(dev.id, { serial: null });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.serial, null);
    assert.equal(ctx.pg.scalar(`select serial is null from devices where id = ${dev.id}`), true);
    // The freed serial can be taken again.
    res = await patch(dev.id, { serial: second });
    assert.equal(res.json.serial, second);
  });

  test('the owner may not touch it: 403 forbidden_field, nothing changes', async () => {
    const before = (await ctx.api('GET', `/api/v1/devices/${dev.id}`, { token: alice.token })).json;
    for (const body of [{ serial: uniqueSerial() }, { serial: null }, { name: 'x', serial: before.serial }]) {
      assertProblem(await patch(dev.id, body, alice.token), 403, 'forbidden_field', 'serial');
    }
    const after = (await ctx.api('GET', `/api/v1/devices/${dev.id}`, { token: alice.token })).json;
    assert.deepEqual(after, before);
  });

  test('another device\'s serial is 409 serial_taken; invalid is 422; nothing changes', async () => {
    const before = (await ctx.api('GET', `/api/v1/devices/${dev.id}`, { token: ctx.admin.token })).json;
    assertProblem(await patch(dev.id, { serial: other.serial }), 409, 'serial_taken', 'serial');
    for (const serial of ['', '999', 'a.b', 'x'.repeat(65), 7]) {
      assertProblem(await patch(dev.id, { serial }), 422, 'invalid_field', 'serial');
    }
    const after = (await ctx.api('GET', `/api/v1/devices/${dev.id}`, { token: ctx.admin.token })).json;
    assert.deepEqual(after, before);
    // Setting a device's own serial again is no conflict.
    const same = await patch(other.id, { serial: other.serial });
    assert.equal(same.status, 200, same.text);
  });
});
