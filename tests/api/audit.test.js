'use strict';
// The audit log: an entry for every admin change and every login, written in the change's
// transaction (a change that fails leaves none), GET /api/v1/audit with its filters and
// pagination, and the append-only table: the serving role the server runs as may not
// UPDATE, DELETE or TRUNCATE it, and the owner is refused by the trigger.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const h = require('./lib/harness');

const ctx = h.suite();
const ENTRY_KEYS = ['action', 'actor_id', 'at', 'changes', 'client_addr', 'id', 'request_id',
  'target_id', 'target_type'];
let seq = 0;

// A request with a request id of our own, so that its entry can be told apart.
async function call(method, path, { token = ctx.admin.token, body } = {}) {
  const requestId = `audit-test-${++seq}`;
  const res = await ctx.api(method, path, { token, body, headers: { 'x-request-id': requestId } });
  return { res, requestId };
}

async function list(query = '', token = ctx.admin.token) {
  const res = await ctx.api('GET', `/api/v1/audit${query}`, { token });
  assert.equal(res.status, 200, res.text);
  return res.json;
}

// The one entry of that request; every field checked against what is expected.
async function entryOf(requestId, want) {
  const page = await list('?limit=1000');
  const mine = page.items.filter((e) => e.request_id === requestId);
  assert.equal(mine.length, 1, `one entry for ${requestId}: ${JSON.stringify(mine)}`);
  const e = mine[0];
  assert.deepEqual(Object.keys(e).sort(), ENTRY_KEYS);
  assert.equal(typeof e.id, 'number');
  assert.match(e.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  assert.ok(Math.abs(Date.parse(e.at) - Date.now()) < 60000, e.at);
  assert.equal(e.client_addr, '127.0.0.1');
  for (const [k, v] of Object.entries(want)) assert.deepEqual(e[k], v, `${k} of ${requestId}`);
  return e;
}

// No secret in any shape: no such member, and not the value either.
function assertNoSecrets(entry, ...values) {
  const text = JSON.stringify(entry.changes);
  for (const key of ['password', 'password_hash', 'token', 'token_hash', 'secret',
    'current_password']) {
    assert.ok(!(key in entry.changes), `changes holds ${key}: ${text}`);
  }
  for (const v of values) assert.ok(!JSON.stringify(entry).includes(v), `entry holds ${v}`);
}

async function newDevice(body = {}) {
  const { res } = await call('POST', '/api/v1/devices', {
    body: { name: `dev-${++seq}`, max_hourly_kwh: 2, ...body } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

// psql as the given URL's role; {ok, err}.
function sqlAs(url, sql) {
  const r = spawnSync('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', url],
    { input: sql, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { ok: r.status === 0, out: r.stdout.trim(), err: r.stderr.trim() };
}

test('logins: a success names the user, a failure names no actor, neither holds the password',
  async () => {
    const password = ctx.admin.password;
    const good = await call('POST', '/api/v1/auth/login', { token: null,
      body: { email: ctx.admin.email, password } });
    assert.equal(good.res.status, 200);
    const ok = await entryOf(good.requestId, { actor_id: ctx.admin.user.id,
      action: 'login.success', target_type: 'user', target_id: ctx.admin.user.id,
      request_id: good.requestId, changes: { email: ctx.admin.email } });
    assertNoSecrets(ok, password, good.res.json.access_token, good.res.json.refresh_token);

    const wrong = await call('POST', '/api/v1/auth/login', { token: null,
      body: { email: ctx.admin.email, password: 'not-the-password-1' } });
    assert.equal(wrong.res.status, 401);
    const failed = await entryOf(wrong.requestId, { actor_id: null, action: 'login.failure',
      target_type: 'user', target_id: ctx.admin.user.id, changes: { email: ctx.admin.email } });
    assertNoSecrets(failed, 'not-the-password-1');

    const unknown = await call('POST', '/api/v1/auth/login', { token: null,
      body: { email: 'nobody@example.test', password: 'whatever-it-is' } });
    assert.equal(unknown.res.status, 401);
    await entryOf(unknown.requestId, { actor_id: null, action: 'login.failure',
      target_type: 'user', target_id: null, changes: { email: 'nobody@example.test' } });

    // A failure names no actor even when the request carried someone's token.
    const carried = await call('POST', '/api/v1/auth/login', {
      body: { email: ctx.admin.email, password: 'not-the-password-2' } });
    assert.equal(carried.res.status, 401);
    await entryOf(carried.requestId, { actor_id: null, action: 'login.failure' });

    // A body the route refuses is no login attempt.
    const bad = await call('POST', '/api/v1/auth/login', { token: null, body: { email: 'x' } });
    assert.equal(bad.res.status, 422);
    const page = await list('?limit=1000');
    assert.ok(!page.items.some((e) => e.request_id === bad.requestId));
  });

test('users: create, update and delete each leave one entry; a refused change leaves none',
  async () => {
    const admin = ctx.admin.user.id;
    const password = 'first-password-1';
    const created = await call('POST', '/api/v1/users', {
      body: { email: 'carol@example.test', name: 'Carol', password, role: 'client' } });
    assert.equal(created.res.status, 201);
    const id = created.res.json.id;
    const e1 = await entryOf(created.requestId, { actor_id: admin, action: 'user.create',
      target_type: 'user', target_id: id, request_id: created.requestId,
      changes: { email: 'carol@example.test', name: 'Carol', role: 'client' } });
    assertNoSecrets(e1, password);

    const patched = await call('PATCH', `/api/v1/users/${id}`, {
      body: { name: 'Carol B', password: 'second-password-2' } });
    assert.equal(patched.res.status, 200);
    const e2 = await entryOf(patched.requestId, { actor_id: admin, action: 'user.update',
      target_type: 'user', target_id: id, changes: { name: 'Carol B', password_changed: true } });
    assertNoSecrets(e2, 'second-password-2');

    // Rolled back: a duplicate email (409), a missing user (404), an invalid body (422).
    const dup = await call('POST', '/api/v1/users', {
      body: { email: 'CAROL@example.test', name: 'Other', password, role: 'client' } });
    assert.equal(dup.res.status, 409);
    const missing = await call('PATCH', '/api/v1/users/999999', { body: { name: 'x' } });
    assert.equal(missing.res.status, 404);
    const invalid = await call('PATCH', `/api/v1/users/${id}`, { body: { role: 'king' } });
    assert.equal(invalid.res.status, 422);
    const page = await list('?limit=1000');
    for (const r of [dup, missing, invalid]) {
      assert.ok(!page.items.some((e) => e.request_id === r.requestId), r.requestId);
    }

    const deleted = await call('DELETE', `/api/v1/users/${id}`);
    assert.equal(deleted.res.status, 204);
    await entryOf(deleted.requestId, { actor_id: admin, action: 'user.delete',
      target_type: 'user', target_id: id, changes: {} });
    // The entries outlive the user they name.
    const left = await list(`?target_type=user&target_id=${id}`);
    assert.deepEqual(left.items.map((e) => e.action),
      ['user.delete', 'user.update', 'user.create']);
  });

test('devices: create, update, token rotation and delete; no token in any entry', async () => {
  const admin = ctx.admin.user.id;
  const created = await call('POST', '/api/v1/devices', {
    body: { name: 'meter-a', max_hourly_kwh: 3.5, serial: 'AUD-1' } });
  assert.equal(created.res.status, 201);
  const id = created.res.json.id;
  const e1 = await entryOf(created.requestId, { actor_id: admin, action: 'device.create',
    target_type: 'device', target_id: id,
    changes: { name: 'meter-a', max_hourly_kwh: 3.5, serial: 'AUD-1' } });
  assertNoSecrets(e1, created.res.json.token);

  const taken = await call('POST', '/api/v1/devices', {
    body: { name: 'meter-b', max_hourly_kwh: 1, serial: 'AUD-1' } });
  assert.equal(taken.res.status, 409);

  const patched = await call('PATCH', `/api/v1/devices/${id}`, {
    body: { description: 'basement', owner_id: ctx.admin.user.id } });
  assert.equal(patched.res.status, 200);
  await entryOf(patched.requestId, { actor_id: admin, action: 'device.update',
    target_type: 'device', target_id: id,
    changes: { description: 'basement', owner_id: ctx.admin.user.id } });

  const rotated = await call('POST', `/api/v1/devices/${id}/token`);
  assert.equal(rotated.res.status, 200);
  const e3 = await entryOf(rotated.requestId, { actor_id: admin, action: 'device.rotate_token',
    target_type: 'device', target_id: id, changes: {} });
  assertNoSecrets(e3, rotated.res.json.token);

  const deleted = await call('DELETE', `/api/v1/devices/${id}`);
  assert.equal(deleted.res.status, 204);
  await entryOf(deleted.requestId, { actor_id: admin, action: 'device.delete',
    target_type: 'device', target_id: id, changes: {} });
  const gone = await call('DELETE', `/api/v1/devices/${id}`);
  assert.equal(gone.res.status, 404);

  const page = await list('?limit=1000');
  for (const r of [taken, gone]) {
    assert.ok(!page.items.some((e) => e.request_id === r.requestId), r.requestId);
  }
});

test('commands: create and cancel; cancelling a final command leaves no entry', async () => {
  const admin = ctx.admin.user.id;
  const device = await newDevice();
  const created = await call('POST', `/api/v1/devices/${device.id}/commands`, {
    body: { name: 'relay', params: { state: 'off' }, ttl_s: 60 } });
  assert.equal(created.res.status, 201);
  const id = created.res.json.id;
  await entryOf(created.requestId, { actor_id: admin, action: 'command.create',
    target_type: 'command', target_id: id,
    changes: { name: 'relay', params: { state: 'off' }, ttl_s: 60 } });

  const canceled = await call('POST', `/api/v1/commands/${id}/cancel`);
  assert.equal(canceled.res.status, 200);
  await entryOf(canceled.requestId, { actor_id: admin, action: 'command.cancel',
    target_type: 'command', target_id: id, changes: { status: 'canceled' } });

  const again = await call('POST', `/api/v1/commands/${id}/cancel`);
  assert.equal(again.res.status, 409);
  const page = await list('?limit=1000');
  assert.ok(!page.items.some((e) => e.request_id === again.requestId));
});

test('filters: actor, action, target, time range; pages newest first without overlap',
  async () => {
    const all = (await list('?limit=1000')).items;
    assert.ok(all.length >= 10, `${all.length} entries`);
    for (let i = 1; i < all.length; i++) assert.ok(all[i - 1].id > all[i].id, 'newest first');

    const byAction = (await list('?action=login.failure')).items;
    assert.ok(byAction.length >= 2);
    assert.ok(byAction.every((e) => e.action === 'login.failure'));
    assert.deepEqual(byAction.map((e) => e.id), all.filter((e) => e.action === 'login.failure')
      .map((e) => e.id));

    const byActor = (await list(`?actor_id=${ctx.admin.user.id}`)).items;
    assert.deepEqual(byActor.map((e) => e.id),
      all.filter((e) => e.actor_id === ctx.admin.user.id).map((e) => e.id));

    const devices = (await list('?target_type=device')).items;
    assert.ok(devices.length >= 4 && devices.every((e) => e.target_type === 'device'));
    const one = devices[0];
    const byTarget = (await list(`?target_type=device&target_id=${one.target_id}`)).items;
    assert.ok(byTarget.every((e) => e.target_id === one.target_id));
    assert.ok(byTarget.some((e) => e.id === one.id));

    // from inclusive, to exclusive, on the entry's own time.
    const mid = all[Math.floor(all.length / 2)];
    const from = (await list(`?from=${encodeURIComponent(mid.at)}&limit=1000`)).items;
    assert.ok(from.every((e) => Date.parse(e.at) >= Date.parse(mid.at)));
    assert.ok(from.some((e) => e.id === mid.id));
    const to = (await list(`?to=${encodeURIComponent(mid.at)}&limit=1000`)).items;
    assert.ok(to.every((e) => Date.parse(e.at) < Date.parse(mid.at)));
    assert.equal(from.length + to.length, all.length);
    const future = (await list('?from=2100-01-01T00:00:00%2B02:00')).items;
    assert.deepEqual(future, []);

    // Pages of 3 walk the whole log exactly once.
    const seen = [];
    let cursor = null;
    do {
      const page = await list(`?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.ok(page.items.length <= 3);
      seen.push(...page.items.map((e) => e.id));
      cursor = page.next_cursor;
    } while (cursor);
    assert.deepEqual(seen, all.map((e) => e.id));
  });

test('bad filters are 400 naming the parameter', async () => {
  const cases = [
    ['actor_id=abc', 'actor_id'], ['actor_id=0', 'actor_id'], ['target_id=-3', 'target_id'],
    ['action=user.rename', 'action'], ['target_type=alert', 'target_type'],
    ['from=yesterday', 'from'], ['to=2026-13-01T00:00:00Z', 'to'], ['limit=0', 'limit'],
    ['cursor=not-a-cursor', 'cursor'],
  ];
  for (const [query, field] of cases) {
    const res = await ctx.api('GET', `/api/v1/audit?${query}`, { token: ctx.admin.token });
    assert.equal(res.status, 400, query);
    assert.match(res.headers.get('content-type'), /^application\/problem\+json/);
    assert.equal(res.json.field, field, query);
    assert.match(res.json.code, /^invalid_(query|cursor)$/, query);
  }
});

test('admins only: 401 without a token, 403 for a client', async () => {
  const anon = await ctx.api('GET', '/api/v1/audit');
  assert.equal(anon.status, 401);
  const client = await h.createUser(ctx.server, { role: 'client' });
  const tokens = await h.login(ctx.server, client.email, client.password);
  const res = await ctx.api('GET', '/api/v1/audit', { token: tokens.access_token });
  assert.equal(res.status, 403);
  // The client's own change (a command on its device) is recorded with it as the actor.
  const device = await newDevice({ owner_id: tokens.user.id });
  const made = await ctx.api('POST', `/api/v1/devices/${device.id}/commands`,
    { token: tokens.access_token, body: { name: 'ping' } });
  assert.equal(made.status, 201);
  const mine = (await list(`?actor_id=${tokens.user.id}&action=command.create`)).items;
  assert.equal(mine.length, 1);
  assert.equal(mine[0].target_id, made.json.id);
});

test('append-only: the serving role may not rewrite history, and the trigger stops the owner',
  async () => {
    const app = ctx.server.appDatabaseUrl;
    assert.notEqual(app, ctx.server.databaseUrl);
    assert.match(app, new RegExp(`//${h.PG_APP_ROLE}@`));
    // The server really serves as that role.
    const who = sqlAs(ctx.server.databaseUrl,
      "select count(*) from pg_stat_activity where usename = 'wattline_app'" +
      " and application_name = 'wattline'");
    assert.ok(who.ok && Number(who.out) > 0, who.err || who.out);

    assert.ok(sqlAs(app, 'select count(*) from audit_log').ok);
    for (const sql of ["update audit_log set action = 'user.create'", 'delete from audit_log',
      'truncate audit_log']) {
      const r = sqlAs(app, sql);
      assert.equal(r.ok, false, sql);
      assert.match(r.err, /permission denied for table audit_log/, sql);
    }
    // Nor may it record a migration or create anything.
    const mig = sqlAs(app, 'delete from schema_migrations');
    assert.match(mig.err, /permission denied/);
    const create = sqlAs(app, 'create table sneaky (id int)');
    assert.match(create.err, /permission denied/);

    for (const sql of ["update audit_log set action = 'user.create'", 'delete from audit_log',
      'truncate audit_log']) {
      const r = sqlAs(ctx.server.databaseUrl, sql);
      assert.equal(r.ok, false, sql);
      assert.match(r.err, /audit_log is append-only/, sql);
    }
    const count = sqlAs(ctx.server.databaseUrl, 'select count(*) from audit_log');
    assert.ok(Number(count.out) >= 10);
  });

test('the partitions of readings are made for the serving role without CREATE', async () => {
  // Ingestion calls readings_ensure_partitions as the serving role: it runs as its owner.
  const r = sqlAs(ctx.server.appDatabaseUrl,
    "select readings_ensure_partitions('2031-01-01'::date, 1)");
  assert.ok(r.ok, r.err);
  assert.equal(r.out, '1');
  const insert = sqlAs(ctx.server.appDatabaseUrl,
    `insert into readings (device_id, ts, value) select id, '2031-01-05T00:00:00Z', 1
     from devices limit 1`);
  assert.ok(insert.ok, insert.err);
});

test('a single-role setup (an owner without CREATEROLE) still migrates and serves', async () => {
  const pg = await h.startPostgres();
  try {
    // A cluster where no one made the serving roles: the owner may not create them.
    pg.psql(`drop role ${h.PG_APP_ROLE}; drop role wattline_server;
      create role solo login; create database solo_db owner solo;`, { database: 'postgres' });
    const url = pg.urlFor('solo_db').replace('//wattline@', '//solo@');
    const migrated = await h.cli(['migrate'], { databaseUrl: url });
    assert.equal(migrated.code, 0, migrated.stderr);
    assert.equal(pg.scalar("select count(*)::int from pg_roles where rolname = 'wattline_server'"),
      0);
    const server = await h.startServer({ databaseUrl: url });
    try {
      await server.waitReady();
      assert.equal(server.appDatabaseUrl, url, 'no serving role to switch to');
      const account = await h.createUser(server, { role: 'admin' });
      const tokens = await h.login(server, account.email, account.password);
      const res = await h.api(server, 'GET', '/api/v1/audit?action=login.success',
        { token: tokens.access_token });
      assert.equal(res.status, 200);
      assert.equal(res.json.items.length, 1);
      // The trigger guards the log even for the owner it serves as.
      const r = sqlAs(url, 'delete from audit_log');
      assert.match(r.err, /append-only/);
    } finally {
      await server.stop();
    }
  } finally {
    await pg.destroy();
  }
});
