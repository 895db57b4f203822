'use strict';
// Black-box tests of /api/v1/auth: login, refresh-token rotation and reuse detection,
// logout, throttling, and access tokens checked against an independent JWT library.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { describe, test } = require('node:test');
const jwt = require('jsonwebtoken');

const h = require('./lib/harness');

const ctx = h.suite();

const LOGIN = '/api/v1/auth/login';
const REFRESH = '/api/v1/auth/refresh';
const LOGOUT = '/api/v1/auth/logout';

function login(body, server = ctx.server) {
  return h.api(server, 'POST', LOGIN, { body });
}

function refresh(token, server = ctx.server) {
  return h.api(server, 'POST', REFRESH, { body: { refresh_token: token } });
}

function me(token, server = ctx.server) {
  return h.api(server, 'GET', '/api/v1/me', { token });
}

function assertProblem(res, status, code) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers.get('content-type'), /^application\/problem\+json/);
  assert.equal(res.json.status, status);
  if (code) assert.equal(res.json.code, code, res.text);
}

function assertUser(user, expected) {
  assert.deepEqual(Object.keys(user).sort(), ['created_at', 'email', 'id', 'name', 'role']);
  assert.equal(typeof user.id, 'number');
  assert.match(user.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  for (const [key, value] of Object.entries(expected)) assert.equal(user[key], value, key);
}

function assertSession(res, expectedUser) {
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(Object.keys(res.json).sort(),
    ['access_token', 'expires_in', 'refresh_token', 'token_type', 'user']);
  assert.equal(res.json.token_type, 'Bearer');
  assert.equal(res.json.expires_in, 900);
  assert.match(res.json.refresh_token, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  assertUser(res.json.user, expectedUser);
  assert.doesNotMatch(res.text, /scrypt|password/i);
}

// A weak (ln=10) hash in the server's stored format, made with Node's own scrypt.
function weakHash(password) {
  const salt = crypto.randomBytes(16);
  const key = crypto.scryptSync(password, salt, 32, { N: 1024, r: 8, p: 1 });
  const b64 = (buf) => buf.toString('base64').replace(/=+$/, '');
  return `$scrypt$ln=10,r=8,p=1$${b64(salt)}$${b64(key)}`;
}

// Checks a stored hash with Node's scrypt, an implementation we did not write.
function nodeVerifies(stored, password) {
  const m = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/.exec(stored);
  assert.ok(m, `unexpected hash format: ${stored}`);
  const [, ln, r, p, salt, key] = m;
  const derived = crypto.scryptSync(password, Buffer.from(salt, 'base64'), 32,
    { N: 2 ** Number(ln), r: Number(r), p: Number(p), maxmem: 512 * 1024 * 1024 });
  return derived.equals(Buffer.from(key, 'base64'));
}

function sqlString(s) {
  return `'${String(s).replace(/'/g, "''")}'`;
}

describe('login', () => {
  test('answers a token pair and the user, for any case of the email', async () => {
    const user = await h.createUser(ctx.server, { email: 'Mixed.Case@Example.test' });
    const res = await login({ email: 'mixed.case@EXAMPLE.TEST', password: user.password });
    assertSession(res, { email: 'Mixed.Case@Example.test', name: user.name, role: 'client' });
    assert.equal((await me(res.json.access_token)).json.id, res.json.user.id);
  });

  test('unknown email and wrong password get the identical 401', async () => {
    const wrong = await login({ email: ctx.admin.email, password: 'not-the-password-1' });
    const unknown = await login({ email: 'nobody-here@example.test', password: 'whatever-123' });
    for (const res of [wrong, unknown]) {
      assertProblem(res, 401, 'invalid_credentials');
      assert.equal(res.headers.get('www-authenticate'), 'Bearer');
    }
    assert.deepEqual(wrong.json, unknown.json);
  });

  test('an unknown email costs the same password work as a wrong password', async () => {
    const time = async (body) => {
      const started = process.hrtime.bigint();
      assert.equal((await login(body)).status, 401);
      return Number(process.hrtime.bigint() - started) / 1e6;
    };
    const wrong = [];
    const unknown = [];
    for (let i = 0; i < 3; i++) {
      wrong.push(await time({ email: ctx.admin.email, password: `wrong-password-${i}` }));
      unknown.push(await time({ email: `ghost-${i}@example.test`, password: 'whatever-123' }));
    }
    const median = (xs) => xs.sort((a, b) => a - b)[1];
    // A skipped hash would answer in a few milliseconds instead of hundreds.
    assert.ok(median(unknown) > median(wrong) * 0.5,
      `unknown ${median(unknown)} ms vs wrong ${median(wrong)} ms`);
    // The failures above must not lock the admin out of later tests.
    ctx.pg.psql('DELETE FROM login_failures');
  });

  test('rejects bodies that are not {email, password} with 4xx, never 200', async () => {
    const cases = [
      [{ email: ctx.admin.email }, 422, 'missing_field'],
      [{ password: ctx.admin.password }, 422, 'missing_field'],
      [{ email: ctx.admin.email, password: ctx.admin.password, remember: true }, 422, 'unknown_field'],
      [{ email: 42, password: ctx.admin.password }, 422, 'invalid_field'],
      [{ email: ctx.admin.email, password: 'x'.repeat(1025) }, 422, 'invalid_field'],
      [[ctx.admin.email, ctx.admin.password], 422, null],
    ];
    for (const [body, status, code] of cases) {
      assertProblem(await login(body), status, code);
    }
    assertProblem(await h.api(ctx.server, 'POST', LOGIN, { body: '{"email": ',
      headers: { 'content-type': 'application/json' } }), 400);
    assertProblem(await h.api(ctx.server, 'POST', LOGIN, { body: 'email=a',
      headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415);
  });

  test('an old, weaker password hash is upgraded at the next login', async () => {
    const email = 'legacy@example.test';
    const password = 'legacy-password-1';
    ctx.pg.psql(`INSERT INTO users (email, name, role, password_hash) VALUES
      (${sqlString(email)}, 'Legacy', 'client', ${sqlString(weakHash(password))})`);
    assertSession(await login({ email, password }), { email, role: 'client' });
    const stored = ctx.pg.scalar(`SELECT password_hash FROM users WHERE email = ${sqlString(email)}`);
    assert.match(stored, /^\$scrypt\$ln=17,r=8,p=1\$/);
    assert.ok(nodeVerifies(stored, password), 'Node verifies the upgraded hash');
    assert.ok(!nodeVerifies(stored, `${password}x`));
    assertSession(await login({ email, password }), { email });
  });
});

describe('access tokens and an independent JWT library', () => {
  const claims = (overrides = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return {
      sub: String(ctx.admin.user.id), role: 'admin', iat: now, exp: now + 300,
      jti: crypto.randomUUID(), iss: 'wattline', typ: 'access', ...overrides,
    };
  };

  test('a token the server issues verifies with jsonwebtoken and the server secret', async () => {
    const res = await login({ email: ctx.admin.email, password: ctx.admin.password });
    const payload = jwt.verify(res.json.access_token, ctx.server.jwtSecret,
      { algorithms: ['HS256'], issuer: 'wattline' });
    assert.equal(payload.sub, String(res.json.user.id));
    assert.equal(payload.role, 'admin');
    assert.equal(payload.typ, 'access');
    assert.equal(payload.exp - payload.iat, 900);
    assert.ok(Math.abs(payload.iat - Date.now() / 1000) < 60);
    assert.equal(typeof payload.jti, 'string');
    assert.ok(payload.jti.length > 0);
    assert.throws(() => jwt.verify(res.json.access_token, 'another-secret-0123456789abcdef0123'),
      /invalid signature/);
  });

  test('a token jsonwebtoken signs with the server secret and our claims is accepted', async () => {
    const token = jwt.sign(claims(), ctx.server.jwtSecret, { algorithm: 'HS256' });
    const res = await me(token);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.id, ctx.admin.user.id);
    assert.equal((await h.api(ctx.server, 'GET', '/api/v1/users', { token })).status, 200);
  });

  test('the same token signed with another secret, or with wrong claims, is 401', async () => {
    const other = crypto.randomBytes(48).toString('hex');
    const now = Math.floor(Date.now() / 1000);
    const bad = [
      jwt.sign(claims(), other, { algorithm: 'HS256' }),
      jwt.sign(claims({ iss: 'someone-else' }), ctx.server.jwtSecret, { algorithm: 'HS256' }),
      jwt.sign(claims({ typ: 'refresh' }), ctx.server.jwtSecret, { algorithm: 'HS256' }),
      jwt.sign(claims({ iat: now - 1000, exp: now - 600 }), ctx.server.jwtSecret,
        { algorithm: 'HS256' }),
      jwt.sign(claims(), ctx.server.jwtSecret, { algorithm: 'HS384' }),
      jwt.sign(claims({ sub: '999999' }), ctx.server.jwtSecret, { algorithm: 'HS256' }),
      jwt.sign(claims(), '', { algorithm: 'none' }),
    ];
    for (const token of bad) {
      const res = await me(token);
      assertProblem(res, 401);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer');
    }
  });

  test('the role in a token does not grant what the stored user lacks', async () => {
    const user = await h.createUser(ctx.server, { role: 'client' });
    const { user: stored } = await h.login(ctx.server, user.email, user.password);
    const forged = jwt.sign(claims({ sub: String(stored.id), role: 'admin' }),
      ctx.server.jwtSecret, { algorithm: 'HS256' });
    assert.equal((await me(forged)).status, 200);
    assertProblem(await h.api(ctx.server, 'GET', '/api/v1/users', { token: forged }), 403);
  });
});

describe('refresh', () => {
  test('answers a new pair; the old refresh token is spent', async () => {
    const first = await h.login(ctx.server, ctx.admin.email, ctx.admin.password);
    const second = await refresh(first.refresh_token);
    assertSession(second, { email: ctx.admin.email, role: 'admin' });
    assert.notEqual(second.json.refresh_token, first.refresh_token);
    assert.equal((await me(second.json.access_token)).status, 200);
    const third = await refresh(second.json.refresh_token);
    assertSession(third, { email: ctx.admin.email });
  });

  test('a spent token presented again revokes the whole login', async () => {
    const first = await h.login(ctx.server, ctx.admin.email, ctx.admin.password);
    const second = await refresh(first.refresh_token);
    assert.equal(second.status, 200);
    assertProblem(await refresh(first.refresh_token), 401, 'invalid_refresh_token');
    // The thief or the client: whoever holds the newest token of that login loses it too.
    assertProblem(await refresh(second.json.refresh_token), 401, 'invalid_refresh_token');
    // Other logins of the same user are untouched.
    const other = await h.login(ctx.server, ctx.admin.email, ctx.admin.password);
    assert.equal((await refresh(other.refresh_token)).status, 200);
  });

  test('of two concurrent refreshes with one token at most one succeeds', async () => {
    for (let round = 0; round < 3; round++) {
      const session = await h.login(ctx.server, ctx.admin.email, ctx.admin.password);
      const results = await Promise.all(Array.from({ length: 4 },
        () => refresh(session.refresh_token)));
      const ok = results.filter((res) => res.status === 200);
      assert.ok(ok.length <= 1, `${ok.length} refreshes succeeded`);
      for (const res of results) assert.ok(res.status === 200 || res.status === 401, res.text);
    }
  });

  test('refresh tokens are stored only as SHA-256 hashes', async () => {
    const session = await h.login(ctx.server, ctx.admin.email, ctx.admin.password);
    const digest = crypto.createHash('sha256').update(session.refresh_token).digest('hex');
    assert.equal(ctx.pg.scalar(`SELECT count(*) FROM refresh_tokens WHERE token_hash = '${digest}'`), 1);
    assert.equal(ctx.pg.scalar(`SELECT count(*) FROM refresh_tokens
      WHERE token_hash = ${sqlString(session.refresh_token)}`), 0);
    const days = ctx.pg.scalar(`SELECT round(extract(epoch FROM expires_at - now()) / 86400)
      FROM refresh_tokens WHERE token_hash = '${digest}'`);
    assert.equal(Number(days), 30);
  });

  test('unknown, expired and malformed refresh tokens', async () => {
    assertProblem(await refresh('A'.repeat(43)), 401, 'invalid_refresh_token');
    assertProblem(await refresh(''), 401, 'invalid_refresh_token');
    const session = await h.login(ctx.server, ctx.admin.email, ctx.admin.password);
    const digest = crypto.createHash('sha256').update(session.refresh_token).digest('hex');
    ctx.pg.psql(`UPDATE refresh_tokens SET expires_at = now() - interval '1 second'
      WHERE token_hash = '${digest}'`);
    assertProblem(await refresh(session.refresh_token), 401, 'invalid_refresh_token');
    assertProblem(await h.api(ctx.server, 'POST', REFRESH, { body: {} }), 422, 'missing_field');
    assertProblem(await h.api(ctx.server, 'POST', REFRESH, { body: { refresh_token: 5 } }), 422);
    assertProblem(await h.api(ctx.server, 'POST', REFRESH,
      { body: { refresh_token: 'x', extra: 1 } }), 422, 'unknown_field');
  });

  test('a refreshed access token carries the role the user has now', async () => {
    const user = await h.createUser(ctx.server, { role: 'client' });
    const session = await h.login(ctx.server, user.email, user.password);
    const patched = await h.api(ctx.server, 'PATCH', `/api/v1/users/${session.user.id}`,
      { token: ctx.admin.token, body: { role: 'admin' } });
    assert.equal(patched.status, 200, patched.text);
    const res = await refresh(session.refresh_token);
    assertSession(res, { role: 'admin' });
    assert.equal(jwt.decode(res.json.access_token).role, 'admin');
  });
});

describe('logout', () => {
  test('204, and that login\'s refresh tokens stop working', async () => {
    const session = await h.login(ctx.server, ctx.admin.email, ctx.admin.password);
    const rotated = await refresh(session.refresh_token);
    const other = await h.login(ctx.server, ctx.admin.email, ctx.admin.password);
    const res = await h.api(ctx.server, 'POST', LOGOUT,
      { body: { refresh_token: rotated.json.refresh_token } });
    assert.equal(res.status, 204);
    assert.equal(res.text, '');
    assertProblem(await refresh(rotated.json.refresh_token), 401, 'invalid_refresh_token');
    assert.equal((await refresh(other.refresh_token)).status, 200, 'another login survives');
  });

  test('an unknown or already revoked token is also 204', async () => {
    const session = await h.login(ctx.server, ctx.admin.email, ctx.admin.password);
    for (const token of [session.refresh_token, session.refresh_token, 'no-such-token']) {
      const res = await h.api(ctx.server, 'POST', LOGOUT, { body: { refresh_token: token } });
      assert.equal(res.status, 204);
    }
    assertProblem(await h.api(ctx.server, 'POST', LOGOUT, { body: {} }), 422, 'missing_field');
  });
});

describe('throttling', () => {
  // Failures are counted per client address too; a server of their own keeps these
  // tests from touching the shared server's count.
  async function ownServer() {
    return h.startServer({ databaseUrl: ctx.pg.url });
  }

  test('after 10 failures for one account: 429 with Retry-After, then recovery', async (t) => {
    const server = await ownServer();
    t.after(() => server.stop());
    const user = await h.createUser(server, {});
    // Concurrent guesses cannot slip past the limit: exactly 10 are checked.
    const guesses = await Promise.all(Array.from({ length: 12 },
      (_, i) => login({ email: user.email, password: `wrong-guess-${i}` }, server)));
    const statuses = guesses.map((res) => res.status).sort();
    assert.deepEqual(statuses, [...Array(10).fill(401), 429, 429]);

    const locked = await login({ email: user.email, password: user.password }, server);
    assertProblem(locked, 429, 'too_many_attempts');
    const retryAfter = Number(locked.headers.get('retry-after'));
    assert.ok(retryAfter > 800 && retryAfter <= 900, `Retry-After ${retryAfter}`);

    // Another account is not affected.
    assert.equal((await login({ email: ctx.admin.email, password: ctx.admin.password },
      server)).status, 200);

    // The lock ends (moved into the past here): the correct password works and
    // the count starts over.
    ctx.pg.psql(`UPDATE login_failures SET locked_until = now() - interval '1 second',
      window_start = now() - interval '20 minutes' WHERE email_key = lower(${sqlString(user.email)})`);
    assertSession(await login({ email: user.email, password: user.password }, server),
      { email: user.email });
    assert.equal(ctx.pg.scalar(`SELECT count(*) FROM login_failures
      WHERE email_key = lower(${sqlString(user.email)})`), 0);
    assertProblem(await login({ email: user.email, password: 'wrong-again-1' }, server), 401);
  });

  test('an unknown email is throttled exactly like a real account', async (t) => {
    const server = await ownServer();
    t.after(() => server.stop());
    const email = 'does-not-exist@example.test';
    for (let i = 0; i < 10; i++) {
      assertProblem(await login({ email, password: `guess-number-${i}` }, server), 401,
        'invalid_credentials');
    }
    const res = await login({ email, password: 'guess-number-10' }, server);
    assertProblem(res, 429, 'too_many_attempts');
    assert.ok(Number(res.headers.get('retry-after')) > 0);
  });

  test('50 concurrent failed logins: all answered, then the address is slowed', async (t) => {
    const server = await ownServer();
    t.after(() => server.stop());
    // Password spraying: one guess, two tries per account, so no account gets near its
    // own limit. Every login may hash at once: the limiter bounds the memory, and a
    // login that finds no free slot in time is 503, not counted.
    const spray = (i) => login({ email: `spray-${i >> 1}@example.test`,
      password: `Summer2026-${i & 1}` }, server);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => spray(i)));
    let failures = 0;
    for (const res of results) {
      assert.ok(res.status === 401 || res.status === 503, `${res.status} ${res.text}`);
      if (res.status === 503) assert.equal(res.headers.get('retry-after'), '1');
      if (res.status === 401) failures++;
    }
    for (let i = 50; failures < 50; i++) {
      const res = await spray(i);
      assert.ok(res.status === 401 || res.status === 503, res.text);
      if (res.status === 401) failures++;
    }
    const res = await login({ email: ctx.admin.email, password: ctx.admin.password }, server);
    assertProblem(res, 429, 'too_many_attempts');
    // Slowed, not locked out for the window: one more try every 30 s at most.
    const retryAfter = Number(res.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 30, `Retry-After ${retryAfter}`);
    assert.equal((await h.api(server, 'GET', '/healthz')).status, 200);
    // Memory, not the database: another server instance still lets the address in.
    assert.equal((await login({ email: ctx.admin.email, password: ctx.admin.password })).status,
      200);
  });
});
