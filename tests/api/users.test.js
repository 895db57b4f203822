'use strict';
// Black-box tests of /api/v1/me and /api/v1/users: the caller's own account, user
// administration, and who may call what.

const assert = require('node:assert/strict');
const { describe, test } = require('node:test');

const h = require('./lib/harness');

const ctx = h.suite();

function assertProblem(res, status, code, field) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers.get('content-type'), /^application\/problem\+json/);
  if (code) assert.equal(res.json.code, code, res.text);
  if (field) assert.equal(res.json.field, field, res.text);
}

function assertUser(user, expected = {}) {
  assert.deepEqual(Object.keys(user).sort(), ['created_at', 'email', 'id', 'name', 'role']);
  assert.equal(typeof user.id, 'number');
  assert.match(user.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  for (const [key, value] of Object.entries(expected)) assert.equal(user[key], value, key);
}

let tagCounter = 0;
function uniqueEmail(prefix = 'user') {
  tagCounter++;
  return `${prefix}-${process.pid}-${tagCounter}@example.test`;
}

// A client account created through the CLI and logged in: {email, password, id, token,
// refreshToken}.
async function newClient(options = {}) {
  const account = await h.createUser(ctx.server, { email: uniqueEmail(), role: 'client',
    ...options });
  const session = await h.login(ctx.server, account.email, account.password);
  return { ...account, id: session.user.id, token: session.access_token,
    refreshToken: session.refresh_token };
}

function adminApi(method, path, body) {
  return ctx.api(method, path, { token: ctx.admin.token, body });
}

async function createViaApi(fields = {}) {
  const body = { email: uniqueEmail('api'), name: 'Api User', password: 'long-enough-pw',
    role: 'client', ...fields };
  const res = await adminApi('POST', '/api/v1/users', body);
  assert.equal(res.status, 201, res.text);
  return { ...res.json, password: body.password };
}

describe('authorization', () => {
  const ADMIN_ROUTES = [
    ['GET', '/api/v1/users'],
    ['POST', '/api/v1/users', { email: 'x@example.test', name: 'X', password: 'long-enough-pw',
      role: 'admin' }],
    ['GET', '/api/v1/users/1'],
    ['PATCH', '/api/v1/users/1', { role: 'client' }],
    ['DELETE', '/api/v1/users/1'],
  ];

  test('every admin route with a client token is 403 and changes nothing', async () => {
    const client = await newClient();
    const before = ctx.pg.scalar('SELECT count(*) FROM users');
    for (const [method, path, body] of ADMIN_ROUTES) {
      const res = await ctx.api(method, path, { token: client.token, body });
      assertProblem(res, 403, 'forbidden');
      assert.doesNotMatch(res.text, /admin@example\.test/);
    }
    assert.equal(ctx.pg.scalar('SELECT count(*) FROM users'), before);
    assert.equal(ctx.pg.scalar("SELECT role FROM users WHERE id = 1"), 'admin');
  });

  test('every user route without a token, or with a bad one, is 401', async () => {
    const routes = [...ADMIN_ROUTES, ['GET', '/api/v1/me'], ['PATCH', '/api/v1/me', { name: 'N' }]];
    for (const [method, path, body] of routes) {
      for (const token of [undefined, 'not-a-jwt']) {
        const res = await ctx.api(method, path, { token, body });
        assertProblem(res, 401);
        assert.equal(res.headers.get('www-authenticate'), 'Bearer');
      }
    }
    const basic = await ctx.api('GET', '/api/v1/me',
      { headers: { authorization: 'Basic YWRtaW46YWRtaW4=' } });
    assertProblem(basic, 401);
  });

  test('user A can neither read nor change user B', async () => {
    const a = await newClient();
    const b = await newClient();
    assertProblem(await ctx.api('GET', `/api/v1/users/${b.id}`, { token: a.token }), 403);
    assertProblem(await ctx.api('PATCH', `/api/v1/users/${b.id}`,
      { token: a.token, body: { name: 'Hijacked' } }), 403);
    assertProblem(await ctx.api('DELETE', `/api/v1/users/${b.id}`, { token: a.token }), 403);
    const meA = await ctx.api('GET', '/api/v1/me', { token: a.token });
    assert.equal(meA.json.id, a.id);
    // /me has no id to point elsewhere: an id in the body is an unknown member.
    assertProblem(await ctx.api('PATCH', '/api/v1/me',
      { token: a.token, body: { id: b.id, name: 'Hijacked' } }), 422, 'unknown_field');
    const stored = await adminApi('GET', `/api/v1/users/${b.id}`);
    assert.equal(stored.json.name, b.name);
  });

  test('wrong methods are 405 with Allow', async () => {
    const res = await ctx.api('PUT', '/api/v1/me', { token: ctx.admin.token, body: {} });
    assert.equal(res.status, 405);
    assert.match(res.headers.get('allow'), /GET/);
    assert.match(res.headers.get('allow'), /PATCH/);
  });
});

describe('/me', () => {
  test('GET answers the caller, without a password hash', async () => {
    const client = await newClient({ name: 'Client Me' });
    const res = await ctx.api('GET', '/api/v1/me', { token: client.token });
    assert.equal(res.status, 200);
    assertUser(res.json, { id: client.id, email: client.email, name: 'Client Me', role: 'client' });
    assert.doesNotMatch(res.text, /scrypt|password/);
  });

  test('PATCH changes the name', async () => {
    const client = await newClient();
    const res = await ctx.api('PATCH', '/api/v1/me', { token: client.token,
      body: { name: 'Renamed Ünïcödé' } });
    assert.equal(res.status, 200, res.text);
    assertUser(res.json, { id: client.id, name: 'Renamed Ünïcödé', email: client.email });
    assert.equal((await ctx.api('GET', '/api/v1/me', { token: client.token })).json.name,
      'Renamed Ünïcödé');
  });

  test('PATCH with email or role is 403 forbidden_field and changes nothing', async () => {
    const client = await newClient();
    for (const body of [{ role: 'admin' }, { email: uniqueEmail() }, { name: 'X', role: 'client' }]) {
      const res = await ctx.api('PATCH', '/api/v1/me', { token: client.token, body });
      assertProblem(res, 403, 'forbidden_field', Object.keys(body).find((k) => k !== 'name'));
    }
    const me = await ctx.api('GET', '/api/v1/me', { token: client.token });
    assertUser(me.json, { role: 'client', email: client.email, name: client.name });
  });

  test('PATCH with invalid members is 422', async () => {
    const client = await newClient();
    const cases = [
      [{ nickname: 'x' }, 'unknown_field', 'nickname'],
      [{ name: '' }, 'invalid_field', 'name'],
      [{ name: 'x'.repeat(201) }, 'invalid_field', 'name'],
      [{ name: 'tab\there' }, 'invalid_field', 'name'],
      [{ name: 7 }, 'invalid_field', 'name'],
      [{ password: 'new-password-1' }, 'missing_field', 'current_password'],
      [{ password: 'short', current_password: client.password }, 'invalid_field', 'password'],
      [{ current_password: client.password }, 'invalid_field', 'current_password'],
    ];
    for (const [body, code, field] of cases) {
      assertProblem(await ctx.api('PATCH', '/api/v1/me', { token: client.token, body }), 422,
        code, field);
    }
    assertProblem(await ctx.api('PATCH', '/api/v1/me', { token: client.token, body: [] }), 422);
  });

  test('a password change needs the current password and ends other logins', async () => {
    const client = await newClient();
    const wrong = await ctx.api('PATCH', '/api/v1/me', { token: client.token,
      body: { password: 'brand-new-password', current_password: 'not-my-password' } });
    assertProblem(wrong, 403, 'invalid_current_password', 'current_password');
    await h.login(ctx.server, client.email, client.password); // unchanged

    const res = await ctx.api('PATCH', '/api/v1/me', { token: client.token,
      body: { password: 'brand-new-password', current_password: client.password,
        name: 'New Name' } });
    assert.equal(res.status, 200, res.text);
    assertUser(res.json, { name: 'New Name' });

    const old = await ctx.api('POST', '/api/v1/auth/login',
      { body: { email: client.email, password: client.password } });
    assertProblem(old, 401, 'invalid_credentials');
    await h.login(ctx.server, client.email, 'brand-new-password');
    const refreshed = await ctx.api('POST', '/api/v1/auth/refresh',
      { body: { refresh_token: client.refreshToken } });
    assertProblem(refreshed, 401, 'invalid_refresh_token');
    ctx.pg.psql('DELETE FROM login_failures');
  });

  test('guessing the current password is throttled like a login', async () => {
    const client = await newClient();
    const patch = (current) => ctx.api('PATCH', '/api/v1/me', { token: client.token,
      body: { password: 'brand-new-password', current_password: current } });
    for (let i = 0; i < 10; i++) assertProblem(await patch(`guess-${i}-xxxxx`), 403);
    const locked = await patch(client.password);
    assertProblem(locked, 429, 'too_many_attempts');
    assert.ok(Number(locked.headers.get('retry-after')) > 0);
    ctx.pg.psql('DELETE FROM login_failures');
  });
});

describe('/users', () => {
  test('POST creates a user: 201, Location, and it can log in', async () => {
    const email = uniqueEmail('created');
    const res = await adminApi('POST', '/api/v1/users',
      { email, name: 'Created One', password: 'ten-chars!', role: 'client' });
    assert.equal(res.status, 201, res.text);
    assertUser(res.json, { email, name: 'Created One', role: 'client' });
    assert.equal(res.headers.get('location'), `/api/v1/users/${res.json.id}`);
    assert.doesNotMatch(res.text, /scrypt|password/);
    const got = await adminApi('GET', res.headers.get('location'));
    assert.deepEqual(got.json, res.json);
    const session = await h.login(ctx.server, email, 'ten-chars!');
    assert.equal(session.user.id, res.json.id);
  });

  test('POST with an email taken in any case is 409 email_taken', async () => {
    const user = await createViaApi();
    const res = await adminApi('POST', '/api/v1/users', { email: user.email.toUpperCase(),
      name: 'Dup', password: 'long-enough-pw', role: 'client' });
    assertProblem(res, 409, 'email_taken', 'email');
  });

  test('POST validates every member', async () => {
    const good = { email: uniqueEmail('v'), name: 'Valid', password: 'long-enough-pw',
      role: 'client' };
    const cases = [
      [{ ...good, email: 'no-at-sign' }, 'email'],
      [{ ...good, email: 'a@b' }, 'email'],
      [{ ...good, email: 'two@@example.test' }, 'email'],
      [{ ...good, email: 'spa ce@example.test' }, 'email'],
      [{ ...good, email: `${'x'.repeat(250)}@example.test` }, 'email'],
      [{ ...good, name: '' }, 'name'],
      [{ ...good, name: 'n'.repeat(201) }, 'name'],
      [{ ...good, password: 'nine-char' }, 'password'],
      [{ ...good, password: 'p'.repeat(1025) }, 'password'],
      [{ ...good, role: 'superuser' }, 'role'],
      [{ ...good, role: 1 }, 'role'],
      [{ ...good, extra: true }, 'extra'],
    ];
    for (const [body, field] of cases) {
      assertProblem(await adminApi('POST', '/api/v1/users', body), 422, null, field);
    }
    for (const missing of ['email', 'name', 'password', 'role']) {
      const body = { ...good };
      delete body[missing];
      assertProblem(await adminApi('POST', '/api/v1/users', body), 422, 'missing_field', missing);
    }
    // Exactly 10 and 1024 bytes are fine.
    await createViaApi({ password: 'p'.repeat(10) });
    await createViaApi({ password: 'p'.repeat(1024) });
    assert.equal(ctx.pg.scalar(`SELECT count(*) FROM users WHERE email = '${good.email}'`), 0);
  });

  test('GET /users/{id}: 404 for a missing or malformed id', async () => {
    for (const id of ['999999', '0', 'abc', '-1', '99999999999999999999']) {
      assertProblem(await adminApi('GET', `/api/v1/users/${id}`), 404, 'not_found');
      assertProblem(await adminApi('PATCH', `/api/v1/users/${id}`, { name: 'x' }), 404);
      assertProblem(await adminApi('DELETE', `/api/v1/users/${id}`), 404);
    }
  });

  test('GET /users pages through every user by id with an opaque cursor', async () => {
    for (let i = 0; i < 5; i++) await createViaApi();
    const all = await adminApi('GET', '/api/v1/users?limit=1000');
    assert.equal(all.status, 200);
    assert.equal(all.json.next_cursor, null);
    const total = Number(ctx.pg.scalar('SELECT count(*) FROM users'));
    assert.equal(all.json.items.length, total);
    all.json.items.forEach((u) => assertUser(u));

    const seen = [];
    let cursor = null;
    let pages = 0;
    do {
      const qs = cursor ? `limit=2&cursor=${encodeURIComponent(cursor)}` : 'limit=2';
      const page = await adminApi('GET', `/api/v1/users?${qs}`);
      assert.equal(page.status, 200, page.text);
      assert.deepEqual(Object.keys(page.json).sort(), ['items', 'next_cursor']);
      assert.ok(page.json.items.length <= 2);
      seen.push(...page.json.items.map((u) => u.id));
      cursor = page.json.next_cursor;
      if (cursor !== null) assert.match(cursor, /^[A-Za-z0-9_-]+$/);
      pages++;
    } while (cursor !== null && pages < 100);
    assert.deepEqual(seen, all.json.items.map((u) => u.id));
    assert.deepEqual(seen, [...seen].sort((a, b) => a - b));
  });

  test('GET /users rejects a bad limit or cursor with 400', async () => {
    for (const qs of ['limit=0', 'limit=1001', 'limit=x', 'cursor=%25%25', 'cursor=not-ours!',
      'cursor=MA', 'cursor=MDE', `q=${'q'.repeat(801)}`]) {
      assertProblem(await adminApi('GET', `/api/v1/users?${qs}`), 400, 'invalid_query');
    }
  });

  test('GET /users?q= matches email or name, any case, wildcards literally', async () => {
    const tag = `Zq${process.pid}`;
    const byName = await createViaApi({ name: `Name ${tag} Smith` });
    const byEmail = await createViaApi({ email: `${tag.toLowerCase()}.mail@example.test` });
    const percent = await createViaApi({ name: `${tag} 100% sure` });
    const underscore = await createViaApi({ name: `${tag} a_b` });
    const search = async (q) => {
      const res = await adminApi('GET', `/api/v1/users?q=${encodeURIComponent(q)}`);
      assert.equal(res.status, 200, res.text);
      return res.json.items.map((u) => u.id).sort((a, b) => a - b);
    };
    const ids = (...users) => users.map((u) => u.id).sort((a, b) => a - b);
    assert.deepEqual(await search(tag.toUpperCase()), ids(byName, byEmail, percent, underscore));
    assert.deepEqual(await search(`${tag.toLowerCase()}.MAIL`), ids(byEmail));
    assert.deepEqual(await search(`${tag} 100%`), ids(percent));
    assert.deepEqual(await search('%'), ids(percent));
    assert.deepEqual(await search(`${tag} a_b`), ids(underscore));
    assert.deepEqual(await search(`${tag} a%b`), []);
    assert.deepEqual(await search(`${tag}_`), []);
    assert.deepEqual(await search('\\'), []);
    assert.deepEqual(await search('nobody-matches-this'), []);
  });

  test('PATCH changes email, name, password and role', async () => {
    const user = await createViaApi();
    const email = uniqueEmail('changed');
    const res = await adminApi('PATCH', `/api/v1/users/${user.id}`,
      { email, name: 'Changed', password: 'another-password', role: 'admin' });
    assert.equal(res.status, 200, res.text);
    assertUser(res.json, { id: user.id, email, name: 'Changed', role: 'admin',
      created_at: user.created_at });
    const session = await h.login(ctx.server, email, 'another-password');
    assert.equal(session.user.role, 'admin');
    const unchanged = await adminApi('PATCH', `/api/v1/users/${user.id}`, {});
    assert.deepEqual(unchanged.json, res.json);
  });

  test('PATCH: 409 email_taken, 422 invalid members', async () => {
    const a = await createViaApi();
    const b = await createViaApi();
    assertProblem(await adminApi('PATCH', `/api/v1/users/${b.id}`,
      { email: a.email.toUpperCase() }), 409, 'email_taken', 'email');
    const cases = [
      [{ email: 'bad' }, 'email'], [{ name: '' }, 'name'], [{ password: 'short' }, 'password'],
      [{ role: 'root' }, 'role'], [{ id: 5 }, 'id'], [{ password_hash: 'x' }, 'password_hash'],
    ];
    for (const [body, field] of cases) {
      assertProblem(await adminApi('PATCH', `/api/v1/users/${b.id}`, body), 422, null, field);
    }
    // The user's own email in another case is not a conflict.
    const same = await adminApi('PATCH', `/api/v1/users/${b.id}`, { email: b.email.toUpperCase() });
    assert.equal(same.status, 200, same.text);
  });

  test('a demoted admin loses admin routes at once; a promoted client gains them', async () => {
    const admin = await newClient({ role: 'admin' });
    assert.equal((await ctx.api('GET', '/api/v1/users', { token: admin.token })).status, 200);
    assert.equal((await adminApi('PATCH', `/api/v1/users/${admin.id}`, { role: 'client' })).status,
      200);
    // This instance forgets its cached role at once; another would within a second.
    assertProblem(await ctx.api('GET', '/api/v1/users', { token: admin.token }), 403);
    assert.equal((await ctx.api('GET', '/api/v1/me', { token: admin.token })).json.role, 'client');

    const client = await newClient();
    assertProblem(await ctx.api('GET', '/api/v1/users', { token: client.token }), 403);
    await adminApi('PATCH', `/api/v1/users/${client.id}`, { role: 'admin' });
    assert.equal((await ctx.api('GET', '/api/v1/users', { token: client.token })).status, 200);
  });

  test('an admin may demote itself (documented) but not delete itself', async () => {
    const admin = await newClient({ role: 'admin' });
    assertProblem(await ctx.api('DELETE', `/api/v1/users/${admin.id}`, { token: admin.token }),
      409, 'cannot_delete_self');
    assert.equal((await adminApi('GET', `/api/v1/users/${admin.id}`)).status, 200);
    const res = await ctx.api('PATCH', `/api/v1/users/${admin.id}`,
      { token: admin.token, body: { role: 'client' } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.role, 'client');
  });

  test('DELETE: 204; the token dies within 2 s; devices are kept, unassigned', async () => {
    const client = await newClient();
    const tokenHash = `${client.id}`.padStart(64, 'f');
    ctx.pg.psql(`INSERT INTO devices (name, max_hourly_kwh, owner_id, token_hash)
      VALUES ('meter', 5, ${client.id}, '${tokenHash}')`);
    const device = ctx.pg.scalar(`SELECT id FROM devices WHERE token_hash = '${tokenHash}'`);
    assert.equal((await ctx.api('GET', '/api/v1/me', { token: client.token })).status, 200);

    const res = await adminApi('DELETE', `/api/v1/users/${client.id}`);
    assert.equal(res.status, 204);
    assert.equal(res.text, '');
    const deletedAt = Date.now();
    await h.waitFor(async () => (await ctx.api('GET', '/api/v1/me',
      { token: client.token })).status === 401, { timeout: 2000, message: 'token rejected' });
    assert.ok(Date.now() - deletedAt < 2000);
    assertProblem(await ctx.api('GET', '/api/v1/me', { token: client.token }), 401);

    assertProblem(await adminApi('GET', `/api/v1/users/${client.id}`), 404);
    assertProblem(await adminApi('DELETE', `/api/v1/users/${client.id}`), 404);
    assertProblem(await ctx.api('POST', '/api/v1/auth/refresh',
      { body: { refresh_token: client.refreshToken } }), 401, 'invalid_refresh_token');
    assert.deepEqual(ctx.pg.row(`SELECT id, owner_id FROM devices WHERE id = ${device}`),
      { id: device, owner_id: null });
    assertProblem(await ctx.api('POST', '/api/v1/auth/login',
      { body: { email: client.email, password: client.password } }), 401, 'invalid_credentials');
  });

  test('no answer ever carries a password hash', async () => {
    const user = await createViaApi();
    const answers = [
      await adminApi('GET', '/api/v1/users?limit=1000'),
      await adminApi('GET', `/api/v1/users/${user.id}`),
      await adminApi('PATCH', `/api/v1/users/${user.id}`, { name: 'Hashless' }),
      await ctx.api('GET', '/api/v1/me', { token: ctx.admin.token }),
    ];
    for (const res of answers) {
      assert.equal(res.status, 200);
      assert.doesNotMatch(res.text, /scrypt|password/);
    }
  });
});
