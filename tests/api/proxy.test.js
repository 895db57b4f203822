'use strict';
// The client address behind trusted proxies, and what depends on it: the log line, the
// per-address login throttle, METRICS_ALLOW and the WebSocket per-address quota.
//
// The "proxy" here is the test itself on 127.0.0.1 (TRUSTED_PROXIES=127.0.0.1) sending
// X-Forwarded-For; a client that is not trusted binds another loopback address
// (localAddress 127.0.0.9): the whole of 127.0.0.0/8 reaches a server on 127.0.0.1.
const { describe, test } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const h = require('./lib/harness');
const wsc = require('./lib/wsclient');

const LOGIN = '/api/v1/auth/login';
// auth/throttle.c's THROTTLE_ADDRESS: after this many failures the address is slowed.
const ADDRESS_FAILURES = 50;

const ctx = h.suite({ server: { env: { TRUSTED_PROXIES: '127.0.0.1, ::1' } } });

// One request through node:http (fetch cannot bind a source address), from localAddress,
// with the given headers. Resolves to {status, headers, json, ms}.
function request(server, method, urlPath, { body, headers = {}, localAddress } = {}) {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const sendHeaders = { ...headers };
  if (payload !== undefined) sendHeaders['content-type'] = 'application/json';
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: server.httpPort, method, path: urlPath,
      headers: sendHeaders, localAddress, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let json = null;
        try {
          json = JSON.parse(text);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode, headers: res.headers, json, text, ms: Date.now() - started });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

function loginAs(server, forwardedFor, email, password, options = {}) {
  const headers = forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor };
  return request(server, 'POST', LOGIN, { body: { email, password }, headers, ...options });
}

// The request log line of the request with this id.
async function logLineOf(server, requestId) {
  return server.waitForLog((l) => l.request_id === requestId && l.client !== undefined);
}

describe('the client address', () => {
  test('behind a trusted proxy: the nearest untrusted address in X-Forwarded-For', async () => {
    const cases = [
      ['203.0.113.5', '203.0.113.5'],
      ['6.6.6.6, 203.0.113.6', '203.0.113.6'], // the left is the client's own word
      ['203.0.113.7, 127.0.0.1', '203.0.113.7'], // a trusted hop is skipped
      ['::ffff:203.0.113.8', '203.0.113.8'],
      ['2001:db8::9', '2001:db8::9'],
      [undefined, '127.0.0.1'], // no header: the proxy itself
      ['unknown', 'unknown'],
      ['203.0.113.10:4711', 'unknown'],
      ['203.0.113.11, ', 'unknown'],
      ['x'.repeat(4000), 'unknown'],
    ];
    for (const [i, [xff, expected]] of cases.entries()) {
      const rid = `proxy-addr-${i}`;
      const headers = { 'x-request-id': rid };
      if (xff !== undefined) headers['x-forwarded-for'] = xff;
      const res = await request(ctx.server, 'GET', '/healthz', { headers });
      assert.equal(res.status, 200);
      assert.equal((await logLineOf(ctx.server, rid)).client, expected, `X-Forwarded-For: ${xff}`);
    }
  });

  test('an untrusted peer is the client, whatever X-Forwarded-For says', async () => {
    const res = await request(ctx.server, 'GET', '/healthz', { localAddress: '127.0.0.9',
      headers: { 'x-request-id': 'proxy-untrusted', 'x-forwarded-for': '203.0.113.5' } });
    assert.equal(res.status, 200);
    assert.equal((await logLineOf(ctx.server, 'proxy-untrusted')).client, '127.0.0.9');
  });

  test('without TRUSTED_PROXIES, X-Forwarded-For is ignored', async (t) => {
    const server = await h.startServer({ databaseUrl: ctx.pg.url });
    t.after(() => server.stop());
    await request(server, 'GET', '/healthz',
      { headers: { 'x-request-id': 'proxy-none', 'x-forwarded-for': '203.0.113.5' } });
    assert.equal((await logLineOf(server, 'proxy-none')).client, '127.0.0.1');
    // A forged header does not get a remote client into /metrics either way round.
    const metrics = await request(server, 'GET', '/metrics',
      { headers: { 'x-forwarded-for': '203.0.113.5' } });
    assert.equal(metrics.status, 200);
  });
});

describe('the per-address login throttle', () => {
  test('failures from one address slow only that address, at once; another logs in', async (t) => {
    const server = await h.startServer({ databaseUrl: ctx.pg.url,
      env: { TRUSTED_PROXIES: '127.0.0.1' } });
    t.after(() => server.stop());
    const user = await h.createUser(server, {});
    const A = '198.51.100.1';
    const B = '198.51.100.2';
    // Password spraying from A: two guesses per account, so no account is locked.
    let failures = 0;
    for (let i = 0; failures < ADDRESS_FAILURES; i++) {
      const batch = await Promise.all(Array.from({ length: 4 }, (_, j) => loginAs(server, A,
        `spray-${(4 * i + j) >> 1}@example.test`, `Summer2026-${j & 1}`)));
      for (const res of batch) {
        assert.ok([401, 503].includes(res.status), `${res.status} ${res.text}`);
        if (res.status === 401) failures++;
      }
    }
    // A is now slowed: 429 with a short Retry-After, answered at once (no hash, no queue),
    // even with the right password.
    const slowed = await loginAs(server, A, user.email, user.password);
    assert.equal(slowed.status, 429, slowed.text);
    assert.equal(slowed.json.code, 'too_many_attempts');
    const retryAfter = Number(slowed.headers['retry-after']);
    assert.ok(retryAfter >= 1 && retryAfter <= 30, `Retry-After ${retryAfter}`);
    assert.ok(slowed.ms < 1000, `the 429 took ${slowed.ms} ms`);

    // B, through the same proxy, logs in with its password; and so does a client whose
    // address is unknown (its own bucket).
    const fromB = await loginAs(server, B, user.email, user.password);
    assert.equal(fromB.status, 200, fromB.text);
    assert.equal((await loginAs(server, 'unknown', user.email, user.password)).status, 200);
    // Many 429s for A meanwhile do not change that.
    const burst = await Promise.all(Array.from({ length: 20 },
      () => loginAs(server, A, user.email, 'wrong')));
    assert.ok(burst.every((res) => res.status === 429));
    assert.equal((await loginAs(server, B, user.email, user.password)).status, 200);
  });

  test('every client of unknown address shares one bucket', async (t) => {
    const server = await h.startServer({ databaseUrl: ctx.pg.url,
      env: { TRUSTED_PROXIES: '127.0.0.1' } });
    t.after(() => server.stop());
    const user = await h.createUser(server, {});
    const junk = ['unknown', '_hidden', '198.51.100.1:80', '[2001:db8::1]', ''];
    let failures = 0;
    for (let i = 0; failures < ADDRESS_FAILURES; i++) {
      const batch = await Promise.all(Array.from({ length: 4 }, (_, j) => loginAs(server,
        junk[(4 * i + j) % junk.length], `spray-${(4 * i + j) >> 1}@example.test`, `x-${j & 1}`)));
      for (const res of batch) if (res.status === 401) failures++;
    }
    assert.equal((await loginAs(server, 'garbage', user.email, user.password)).status, 429);
    assert.equal((await loginAs(server, '198.51.100.3', user.email, user.password)).status, 200);
  });
});

describe('METRICS_ALLOW', () => {
  test('default: loopback only; a forwarded client is judged by its own address', async () => {
    assert.equal((await request(ctx.server, 'GET', '/metrics')).status, 200);
    const remote = await request(ctx.server, 'GET', '/metrics',
      { headers: { 'x-forwarded-for': '203.0.113.5' } });
    assert.equal(remote.status, 404);
    assert.equal(remote.json.code, 'not_found');
    const unknown = await request(ctx.server, 'GET', '/metrics',
      { headers: { 'x-forwarded-for': 'unknown' } });
    assert.equal(unknown.status, 404);
  });

  test('a range that excludes 127.0.0.1: 404, as for a path that does not exist', async (t) => {
    const server = await h.startServer({ databaseUrl: ctx.pg.url,
      env: { METRICS_ALLOW: '10.0.0.0/8, 127.0.0.2', TRUSTED_PROXIES: '127.0.0.1' } });
    t.after(() => server.stop());
    const res = await h.api(server, 'GET', '/metrics');
    assert.equal(res.status, 404);
    const none = await h.api(server, 'GET', '/api/v1/no-such-thing');
    assert.equal(res.json.code, none.json.code);
    assert.equal((await request(server, 'GET', '/metrics', { localAddress: '127.0.0.2' })).status,
      200);
    assert.equal((await request(server, 'GET', '/metrics',
      { headers: { 'x-forwarded-for': '10.20.30.40' } })).status, 200);
  });

  test('a bad TRUSTED_PROXIES or METRICS_ALLOW stops the start with one line', async () => {
    for (const env of [{ TRUSTED_PROXIES: 'nginx' }, { METRICS_ALLOW: '10.0.0.0/33' }]) {
      const res = await h.cli(['serve'], { databaseUrl: ctx.pg.url,
        env: { ...env, JWT_SECRET: 'x'.repeat(32) } });
      assert.equal(res.code, 2, res.stderr);
      assert.match(res.stderr, new RegExp(Object.keys(env)[0]));
    }
  });
});

describe('the WebSocket quota per client address', () => {
  test('behind a trusted proxy each forwarded client has its own quota', async (t) => {
    const server = await h.startServer({ databaseUrl: ctx.pg.url,
      env: { TRUSTED_PROXIES: '127.0.0.1', WS_MAX_UNAUTH_PER_ADDR: 2 } });
    t.after(() => server.stop());
    const via = (address) => ({ headers: { 'x-forwarded-for': address } });
    const sockets = [];
    for (let i = 0; i < 2; i++) sockets.push(await wsc.open(server.wsUrl, via('198.51.100.1')));
    const extra = await wsc.open(server.wsUrl, via('198.51.100.1'));
    assert.equal(await extra.closedWithin(3000), 1013);
    const other = await wsc.open(server.wsUrl, via('198.51.100.2'));
    await h.sleep(300);
    assert.ok(other.isOpen, `${other.closeCode} ${other.closeReason}`);
    sockets.push(other);
    // Unknown clients share one quota.
    for (let i = 0; i < 2; i++) sockets.push(await wsc.open(server.wsUrl, via('unknown')));
    const junk = await wsc.open(server.wsUrl, via('198.51.100.3:80'));
    assert.equal(await junk.closedWithin(3000), 1013);
    await Promise.all(sockets.map((c) => c.close()));
  });
});
