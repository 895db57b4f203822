'use strict';
// HTTPS and WSS (issue 7): with TLS_CERT and TLS_KEY the API and the dashboard are served
// over HTTPS and the WebSocket over WSS with the same certificate, made here exactly as
// `make certs` makes it (tools/certs.sh). Every client verifies the certificate against
// the development CA: nothing here is "insecure". Checked: the smoke path (login, device
// post, alert over WSS), HSTS, the wss:// URL in /api/v1/config, TLS 1.2 and 1.3 only on
// both ports, plain HTTP to a TLS port failing cleanly, and clients refusing a server
// they cannot trust (unknown CA, another name, an expired certificate).
const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');
const tls = require('node:tls');
const fs = require('node:fs');
const h = require('./lib/harness');
const certs = require('./lib/certs');
const hs = require('./lib/https');
const wsc = require('./lib/wsclient');

const { describe, before, after } = test;

const HOUR = 3600 * 1000;
// A past hour, so no reading is "in the future"; one fresh hour per alert.
const BASE_HOUR = Math.floor(Date.now() / HOUR) * HOUR - 1000 * HOUR;
let nextHour = 0;
const freshHour = () => BASE_HOUR + (nextHour++) * HOUR;
// A failure must show within this long: "fails cleanly" means no hang.
const CLEAN_FAILURE_MS = 5000;
// HSTS must be meant: at least 180 days.
const MIN_HSTS_SECONDS = 180 * 24 * 3600;

const ctx = {};

before(async () => {
  const dir = certs.tempDir('wattline-tls-');
  ctx.dev = certs.makeDevCerts(path.join(dir, 'dev'));
  ctx.other = certs.makeCa(path.join(dir, 'other'), 'Unrelated CA');
  ctx.pg = await h.startPostgres();
  ctx.server = await h.startServer({ databaseUrl: ctx.pg.url,
    env: { TLS_CERT: ctx.dev.cert, TLS_KEY: ctx.dev.key } });
  await ctx.server.waitReady();
  await hs.waitForHandshake(ctx.server.wsPort, { ca: ctx.dev.ca });
  ctx.client = hs.client(ctx.server.baseUrl, { ca: ctx.dev.ca });
  ctx.api = ctx.client.api;
  const admin = await h.createUser(ctx.server, { role: 'admin' });
  const tokens = await hs.login(ctx.api, admin.email, admin.password);
  ctx.admin = { ...admin, token: tokens.access_token };
});

after(async () => {
  ctx.client?.close();
  try {
    if (ctx.server) await ctx.server.stop();
  } finally {
    if (ctx.pg) await ctx.pg.destroy();
  }
});

function assertHsts(res, what) {
  const value = res.headers['strict-transport-security'];
  assert.ok(value, `${what}: no Strict-Transport-Security header`);
  const maxAge = /(?:^|;)\s*max-age=(\d+)/i.exec(value);
  assert.ok(maxAge, `${what}: Strict-Transport-Security without max-age: ${value}`);
  assert.ok(Number(maxAge[1]) >= MIN_HSTS_SECONDS, `${what}: max-age too short: ${value}`);
}

// Resolves to the error a promise rejects with; fails the test if it resolves.
async function rejection(promise, what) {
  let value;
  try {
    value = await promise;
  } catch (err) {
    return err;
  }
  return assert.fail(`${what}: expected a failure, got ${JSON.stringify(value?.status ?? value)}`);
}

describe('HTTPS', () => {
  test('the API, the dashboard and errors are served over HTTPS with HSTS', async () => {
    const config = await ctx.api('GET', '/api/v1/config');
    assert.equal(config.status, 200, config.text);
    assertHsts(config, 'GET /api/v1/config');

    const dashboard = await ctx.api('GET', '/');
    assert.equal(dashboard.status, 200);
    assert.match(dashboard.headers['content-type'], /^text\/html/);
    assert.match(dashboard.text, /<html/i);
    assertHsts(dashboard, 'GET /');

    const missing = await ctx.api('GET', '/api/v1/no-such-thing');
    assert.equal(missing.status, 404);
    assertHsts(missing, 'a 404');

    const unauthorized = await ctx.api('GET', '/api/v1/me');
    assert.equal(unauthorized.status, 401);
    assertHsts(unauthorized, 'a 401');
  });

  test('/api/v1/config names the wss:// URL of the same host', async () => {
    const res = await ctx.api('GET', '/api/v1/config');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.ws_url, `wss://127.0.0.1:${ctx.server.wsPort}/ws`);
    assert.equal(res.json.ws_url, ctx.server.wsUrl);
  });

  test('login, device post and the alert pushed over WSS, all verified against the CA', async () => {
    const password = `Pw-${Date.now()}-tls-x9`;
    const created = await ctx.api('POST', '/api/v1/users', { token: ctx.admin.token,
      body: { email: 'owner@tls.example.test', name: 'TLS owner', password, role: 'client' } });
    assert.equal(created.status, 201, created.text);
    const owner = await hs.login(ctx.api, 'owner@tls.example.test', password);
    assert.equal(owner.user.id, created.json.id);

    const device = await ctx.api('POST', '/api/v1/devices', { token: ctx.admin.token,
      body: { name: 'tls meter', max_hourly_kwh: 1, reading_type: 'interval',
        owner_id: owner.user.id } });
    assert.equal(device.status, 201, device.text);
    assert.ok(device.json.token, 'the device token is shown at creation');

    const session = await hs.wsSession(ctx.server.wsUrl, owner.access_token, { ca: ctx.dev.ca });
    try {
      assert.deepEqual(session.ready, { type: 'ready', user_id: owner.user.id });
      const hour = freshHour();
      const posted = await ctx.api('POST', '/api/v1/measurements', { token: device.json.token,
        body: { measurements: [
          { ts: new Date(hour + 5 * 60 * 1000).toISOString(), kwh: 0.75 },
          { ts: new Date(hour + 10 * 60 * 1000).toISOString(), kwh: 0.5 },
        ] } });
      assert.equal(posted.status, 200, posted.text);
      assert.deepEqual(posted.json, { accepted: 2, duplicates: 0 });

      const { alert } = await session.next('alert');
      assert.equal(alert.device_id, device.json.id);
      assert.equal(alert.owner_id, owner.user.id);
      assert.equal(Date.parse(alert.hour_start), hour);
      assert.equal(alert.hour_kwh, 1.25);

      const listed = await ctx.api('GET', `/api/v1/alerts?device_id=${device.json.id}`,
        { token: owner.access_token });
      assert.equal(listed.status, 200, listed.text);
      assert.deepEqual(listed.json.items.map((a) => a.id), [alert.id]);
    } finally {
      await session.close();
    }
  });
});

describe('protocol versions', () => {
  test('the test client really offers TLS 1.0 and 1.1 (control, against a local server)',
    async () => {
      const server = tls.createServer({ cert: fs.readFileSync(ctx.dev.cert),
        key: fs.readFileSync(ctx.dev.key), minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' },
      (socket) => socket.end());
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = server.address();
        for (const version of ['TLSv1', 'TLSv1.1']) {
          assert.equal(await hs.handshake({ port, ca: ctx.dev.ca, version }), version);
        }
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    });

  for (const [portName, label] of [['httpPort', 'HTTPS'], ['wsPort', 'WSS']]) {
    test(`${label} port: TLS 1.2 and 1.3 are accepted, TLS 1.0 and 1.1 refused`, async () => {
      const port = ctx.server[portName];
      for (const version of ['TLSv1.2', 'TLSv1.3']) {
        assert.equal(await hs.handshake({ port, ca: ctx.dev.ca, version }), version);
      }
      for (const version of ['TLSv1', 'TLSv1.1']) {
        const started = Date.now();
        const err = await rejection(hs.handshake({ port, ca: ctx.dev.ca, version,
          timeout: CLEAN_FAILURE_MS }), `${label} with ${version}`);
        assert.notEqual(err.code, 'ETIMEDOUT', `${label} with ${version} hung`);
        assert.ok(Date.now() - started < CLEAN_FAILURE_MS);
      }
      // Still serving after the refused handshakes.
      assert.equal(await hs.handshake({ port, ca: ctx.dev.ca }), 'TLSv1.3');
    });
  }
});

// A plain-text request to a TLS port: an error or a non-200 answer, quickly.
function plainHttpGet(port) {
  return new Promise((resolve) => {
    const started = Date.now();
    const req = http.get({ host: '127.0.0.1', port, path: '/healthz', agent: false,
      timeout: CLEAN_FAILURE_MS }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: Date.now() - started }));
      res.on('error', (err) => resolve({ error: err.code || err.message, ms: Date.now() - started }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (err) => resolve({ error: err.code || err.message, ms: Date.now() - started }));
  });
}

describe('plain text to a TLS port', () => {
  test('plain HTTP to the HTTPS port fails cleanly and the server keeps serving', async () => {
    for (let i = 0; i < 3; i++) {
      const result = await plainHttpGet(ctx.server.httpPort);
      assert.notEqual(result.status, 200, 'plain HTTP must not be served');
      assert.notEqual(result.error, 'ETIMEDOUT', `plain HTTP hung: ${JSON.stringify(result)}`);
      assert.ok(result.ms < CLEAN_FAILURE_MS, JSON.stringify(result));
    }
    const health = await ctx.api('GET', '/healthz');
    assert.equal(health.status, 200);
  });

  test('plain ws:// to the WSS port fails cleanly and WSS keeps working', async () => {
    const started = Date.now();
    const err = await rejection(wsc.open(`ws://127.0.0.1:${ctx.server.wsPort}/ws`,
      { handshakeTimeout: CLEAN_FAILURE_MS }), 'ws:// to the WSS port');
    assert.ok(Date.now() - started < CLEAN_FAILURE_MS, `took ${Date.now() - started} ms: ${err.message}`);
    assert.doesNotMatch(err.message, /timed out/i);
    const result = await plainHttpGet(ctx.server.wsPort);
    assert.notEqual(result.status, 101);
    assert.notEqual(result.error, 'ETIMEDOUT', `plain HTTP to the WSS port hung: ${JSON.stringify(result)}`);

    const session = await wsc.open(ctx.server.wsUrl, { ca: ctx.dev.ca });
    session.send({ type: 'auth', token: ctx.admin.token });
    const ready = await session.next('ready');
    assert.equal(ready.type, 'ready');
    await session.close();
  });
});

describe('clients refuse a server they cannot trust', () => {
  const UNKNOWN_ISSUER = ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'];

  test('a client trusting another CA refuses, over HTTPS and WSS', async () => {
    const https = await rejection(hs.request(`${ctx.server.baseUrl}/healthz`, { ca: ctx.other.ca }),
      'HTTPS with another CA');
    assert.ok(UNKNOWN_ISSUER.includes(https.code), `HTTPS: ${https.code} ${https.message}`);
    const wss = await rejection(wsc.open(ctx.server.wsUrl, { ca: ctx.other.ca }), 'WSS with another CA');
    assert.ok(UNKNOWN_ISSUER.includes(wss.code), `WSS: ${wss.code} ${wss.message}`);
  });

  test('a client with only the system trust store refuses the development CA', async () => {
    const https = await rejection(hs.request(`${ctx.server.baseUrl}/healthz`), 'HTTPS, system store');
    assert.ok(UNKNOWN_ISSUER.includes(https.code), `HTTPS: ${https.code} ${https.message}`);
    const wss = await rejection(wsc.open(ctx.server.wsUrl), 'WSS, system store');
    assert.ok(UNKNOWN_ISSUER.includes(wss.code), `WSS: ${wss.code} ${wss.message}`);
  });

  test('a certificate for another name is refused', async () => {
    const https = await rejection(hs.request(`${ctx.server.baseUrl}/healthz`,
      { ca: ctx.dev.ca, servername: 'wattline.example.com' }), 'HTTPS for another name');
    assert.equal(https.code, 'ERR_TLS_CERT_ALTNAME_INVALID', https.message);
    const wss = await rejection(wsc.open(ctx.server.wsUrl,
      { ca: ctx.dev.ca, servername: 'wattline.example.com' }), 'WSS for another name');
    assert.equal(wss.code, 'ERR_TLS_CERT_ALTNAME_INVALID', wss.message);
  });

  test('an expired certificate from the trusted CA is refused, over HTTPS and WSS', async () => {
    const expired = certs.signServerCert(ctx.dev, path.dirname(ctx.dev.dir), 'expired', {
      san: 'DNS:localhost,IP:127.0.0.1', startDate: '20200101000000Z', endDate: '20210101000000Z' });
    const server = await h.startServer({ databaseUrl: ctx.pg.url,
      env: { TLS_CERT: expired.cert, TLS_KEY: expired.key } });
    try {
      // Control: dates aside, the certificate verifies (chain, purpose, name), so the
      // refusals below are about the expiry alone.
      execFileSync('openssl', ['verify', '-no_check_time', '-purpose', 'sslserver',
        '-verify_ip', '127.0.0.1', '-CAfile', ctx.dev.caCert, expired.cert], { stdio: 'pipe' });

      const https = await rejection(hs.request(`${server.baseUrl}/healthz`, { ca: ctx.dev.ca }),
        'HTTPS with an expired certificate');
      assert.equal(https.code, 'CERT_HAS_EXPIRED', https.message);
      await h.waitFor(() => hs.handshake({ port: server.wsPort, ca: ctx.dev.ca }).catch(
        (err) => err.code === 'CERT_HAS_EXPIRED'), { message: 'the WSS listener' });
      const wss = await rejection(wsc.open(server.wsUrl, { ca: ctx.dev.ca }),
        'WSS with an expired certificate');
      assert.equal(wss.code, 'CERT_HAS_EXPIRED', wss.message);
    } finally {
      await server.stop();
    }
  });
});
