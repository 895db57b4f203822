'use strict';
// The HTTP core: error shapes, request ids, static files, readiness,
// PostgreSQL going away and coming back.
const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const h = require('./lib/harness');

const ctx = h.suite();

function assertProblem(res, status, code) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers.get('content-type'), /^application\/problem\+json/);
  assert.equal(res.json.status, status);
  assert.equal(res.json.type, 'about:blank');
  assert.equal(typeof res.json.title, 'string');
  assert.equal(typeof res.json.detail, 'string');
  if (code) assert.equal(res.json.code, code);
  assert.ok(res.headers.get('x-request-id'));
}

// Sends raw bytes and resolves with everything the server answers until it
// closes or `until` matches.
function rawRequest(port, bytes, { until = /\r\n\r\n[\s\S]*\}/, timeout = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no answer: ${got}`)); },
      timeout);
    sock.on('data', (d) => {
      got += d.toString('latin1');
      if (until.test(got)) { clearTimeout(timer); sock.destroy(); resolve(got); }
    });
    sock.on('close', () => { clearTimeout(timer); resolve(got); });
    sock.on('error', () => {});
    sock.write(bytes);
  });
}

test('unknown API paths are 404 problems; wrong methods 405 with Allow', async () => {
  assertProblem(await ctx.api('GET', '/api/v1/nope'), 404, 'not_found');
  assertProblem(await ctx.api('POST', '/api/v1/nope/deeper'), 404, 'not_found');
  const res = await ctx.api('DELETE', '/api/v1/alerts');
  assertProblem(res, 405, 'method_not_allowed');
  assert.equal(res.headers.get('allow'), 'GET, HEAD');
  const put = await ctx.api('PUT', '/healthz');
  assertProblem(put, 405);
  assert.equal(put.headers.get('allow'), 'GET, HEAD');
});

test('JSON bodies: wrong type 415, malformed 400 with position, duplicates and depth 400',
  async () => {
    const url = `${ctx.server.baseUrl}/api/v1/auth/login`;
    let res = await fetch(url, { method: 'POST', body: '{"email":"a"}',
      headers: { 'content-type': 'text/plain' } });
    assert.equal(res.status, 415);
    assert.equal((await res.json()).code, 'unsupported_media_type');

    res = await fetch(url, { method: 'POST', body: '{"email": "a",',
      headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 400);
    const malformed = await res.json();
    assert.equal(malformed.code, 'malformed_json');
    assert.match(malformed.detail, /line 1 column \d+/);

    res = await fetch(url, { method: 'POST', body: '{"email":"a","email":"b"}',
      headers: { 'content-type': 'application/json; charset=utf-8' } });
    assert.equal(res.status, 400);

    const deep = '['.repeat(40) + ']'.repeat(40);
    res = await fetch(url, { method: 'POST', body: deep,
      headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 400);
    assert.match((await res.json()).detail, /deeper than 32/);

    res = await fetch(url, { method: 'POST', body: '{"n": 1e400}',
      headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 400);
  });

test('an announced 2 MiB body is refused with 413 before it is sent', async () => {
  const head = 'POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n' +
    'Content-Type: application/json\r\nContent-Length: 2097152\r\n\r\n{"a":';
  // Only the head and 5 bytes are ever sent: the answer must come anyway.
  const answer = await rawRequest(ctx.server.httpPort, head);
  assert.match(answer, /^HTTP\/1\.1 413 /);
  assert.match(answer, /application\/problem\+json/);
  assert.match(answer, /"code":"body_too_large"/);
});

test('a chunked body over the cap is 413 too', async () => {
  const chunk = 'x'.repeat(64 * 1024);
  const chunks = Array.from({ length: 70 }, () => `${chunk.length.toString(16)}\r\n${chunk}\r\n`);
  const req = 'POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
    'Transfer-Encoding: chunked\r\n\r\n' + chunks.join('') + '0\r\n\r\n';
  const answer = await rawRequest(ctx.server.httpPort, req);
  assert.match(answer, /^HTTP\/1\.1 413 /);
});

test('every response carries a request id; a sane client id is echoed', async () => {
  const a = await ctx.api('GET', '/healthz');
  const b = await ctx.api('GET', '/healthz');
  assert.match(a.headers.get('x-request-id'), /^[0-9a-f]{16}$/);
  assert.notEqual(a.headers.get('x-request-id'), b.headers.get('x-request-id'));
  const echoed = await ctx.api('GET', '/api/v1/nope', { headers: { 'x-request-id': 'abc-123' } });
  assert.equal(echoed.headers.get('x-request-id'), 'abc-123');
  const hostile = await ctx.api('GET', '/healthz', { headers: { 'x-request-id': 'a b<script>' } });
  assert.notEqual(hostile.headers.get('x-request-id'), 'a b<script>');
  // The id is in the server's log line for the request.
  await h.waitFor(() => ctx.server.logs().some((l) => l.request_id === 'abc-123' &&
    l.status === 404 && l.method === 'GET'));
});

test('static files: types, caching, security headers, no way out of the web root', async () => {
  const index = await fetch(`${ctx.server.baseUrl}/`);
  assert.equal(index.status, 200);
  assert.match(index.headers.get('content-type'), /^text\/html/);
  assert.match(index.headers.get('content-security-policy'), /default-src 'self'/);
  assert.match(index.headers.get('content-security-policy'), /connect-src 'self' ws:\/\//);
  assert.equal(index.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(index.headers.get('x-frame-options'), 'DENY');
  assert.ok(index.headers.get('referrer-policy'));
  const etag = index.headers.get('etag');
  assert.ok(etag);
  const again = await fetch(`${ctx.server.baseUrl}/index.html`, { headers: { 'if-none-match': etag } });
  assert.equal(again.status, 304);

  for (const p of ['/../../../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/..%2f..%2fetc%2fpasswd',
    '/js/..%2f..%2f..%2fetc/passwd', '/%2e%2e%5c%2e%2e%5cetc%5cpasswd', '/.%2e/.%2e/etc/passwd']) {
    // fetch would normalise dots; raw bytes reach the server as written.
    const answer = await rawRequest(ctx.server.httpPort,
      `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, { until: /\r\n\r\n.*\}/s });
    assert.match(answer, /^HTTP\/1\.1 (404|400) /, `${p}: ${answer.slice(0, 80)}`);
    assert.doesNotMatch(answer, /root:/);
  }
  const post = await ctx.api('POST', '/index.html');
  assert.equal(post.status, 405);
});

test('a symlink out of the web root is not followed', async () => {
  const fs = require('node:fs');
  const path = require('node:path');
  const link = path.join(h.REPO_ROOT, 'web', 'test-escape-link');
  fs.rmSync(link, { force: true });
  fs.symlinkSync('/etc/passwd', link);
  try {
    const res = await fetch(`${ctx.server.baseUrl}/test-escape-link`);
    assert.equal(res.status, 404);
  } finally {
    fs.rmSync(link, { force: true });
  }
});

test('operations: healthz, readyz, config, metrics, openapi', async () => {
  assert.equal((await ctx.api('GET', '/healthz')).status, 200);
  assert.equal((await ctx.api('GET', '/readyz')).status, 200);
  const cfg = await ctx.api('GET', '/api/v1/config');
  assert.equal(cfg.json.ws_url, `ws://127.0.0.1:${ctx.server.wsPort}/ws`);
  const metrics = await ctx.api('GET', '/metrics');
  assert.match(metrics.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  assert.match(metrics.text, /wattline_http_requests_total\{route="\/healthz",method="GET",code="200"\} \d+/);
  assert.match(metrics.text, /wattline_http_request_duration_seconds_bucket\{route="\/healthz",method="GET",le="\+Inf"\}/);
  assert.match(metrics.text, /wattline_db_pool_connections\{state="size"\} \d+/);
  assert.match(metrics.text, /wattline_build_info\{version="[^"]+"\} 1/);
  const spec = await ctx.api('GET', '/api/v1/openapi.json');
  assert.equal(spec.status, 200);
  assert.equal(spec.json.openapi.slice(0, 3), '3.1');
});

test('PostgreSQL stopped mid-run: 503 with Retry-After, then recovery without a restart',
  async () => {
    await ctx.pg.stop();
    try {
      for (const path of ['/readyz', '/api/v1/alerts']) {
        const res = await ctx.api('GET', path, { token: ctx.admin.token,
          signal: AbortSignal.timeout(8000) });
        if (path === '/api/v1/alerts') {
          // The token's user lookup may be cached for a second; either way no hang, no 500.
          assert.ok([503].includes(res.status), `${path}: ${res.status} ${res.text}`);
          assert.equal(res.headers.get('retry-after'), '1');
          assert.match(res.headers.get('content-type'), /problem\+json/);
          assert.doesNotMatch(res.text, /SQL|postgres|\/tmp\//i);
        } else {
          assert.equal(res.status, 503);
        }
      }
    } finally {
      await ctx.pg.start();
    }
    await h.waitFor(async () => (await ctx.api('GET', '/readyz')).status === 200,
      { timeout: 15000, message: 'readyz did not recover' });
    await h.waitFor(async () => (await ctx.api('GET', '/api/v1/alerts',
      { token: ctx.admin.token })).status === 200, { timeout: 15000 });
  });

test('PostgreSQL stopped: healthz still answers at once, readyz at once with 503', async () => {
  await ctx.pg.stop();
  try {
    // Whether the caller's role is still cached or not, these wait on workers, not HTTP threads.
    const lookups = Array.from({ length: 8 }, () => ctx.api('GET', '/api/v1/alerts',
      { token: ctx.admin.token, signal: AbortSignal.timeout(8000) }));
    for (let i = 0; i < 5; i++) {
      const started = Date.now();
      const health = await ctx.api('GET', '/healthz', { signal: AbortSignal.timeout(2000) });
      assert.equal(health.status, 200);
      assert.deepEqual(health.json, { status: 'ok' });
      const ready = await ctx.api('GET', '/readyz', { signal: AbortSignal.timeout(2000) });
      assert.equal(ready.status, 503);
      assert.equal(ready.json.code, 'unavailable');
      assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
    }
    for (const res of await Promise.all(lookups)) assert.equal(res.status, 503, res.text);
  } finally {
    await ctx.pg.start();
  }
  await h.waitFor(async () => (await ctx.api('GET', '/readyz')).status === 200,
    { timeout: 15000, message: 'readyz did not recover' });
});

test('readyz is 503 until the schema is migrated', async () => {
  const pg = await h.startPostgres();
  let server;
  try {
    server = await h.startServer({ databaseUrl: pg.url, env: { NO_MIGRATE: '1' } });
    const before = await h.api(server, 'GET', '/readyz');
    assert.equal(before.status, 503);
    assert.equal((await h.api(server, 'GET', '/healthz')).status, 200);
    const migrated = await h.cli(['migrate'], { server });
    assert.equal(migrated.code, 0, migrated.stderr);
    await h.waitFor(async () => (await h.api(server, 'GET', '/readyz')).status === 200);
  } finally {
    if (server) await server.stop();
    await pg.destroy();
  }
});

test('a bad setting stops start-up with one line and status 2', async () => {
  const res = await h.cli(['serve', '--http-port', 'eighty'], { server: ctx.server });
  assert.equal(res.code, 2);
  assert.equal(res.stderr.trim().split('\n').length, 1);
  assert.match(res.stderr, /HTTP_PORT/);
  const noSecret = await h.cli(['serve'], { server: ctx.server, env: { JWT_SECRET: 'short' } });
  assert.equal(noSecret.code, 2);
  assert.match(noSecret.stderr, /32/);
});
