'use strict';
// Devices that post too much or with the wrong token (issue 14):
//   - DEVICE_RATE_PER_MIN: past its bucket a device gets 429 rate_limited with Retry-After,
//     nothing of that request is stored, other devices are unaffected;
//   - the simulator, bursting past the limit, drains its spool through the 429s and every
//     reading ends up stored exactly once;
//   - a wrong device token costs one database look-up, then none for a minute
//     (wattline_authn_lookups_total{kind="device"} on /metrics), while a token created or
//     rotated meanwhile works at once.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');

// 5 a second, 300 at once: high enough for the ASan server to outrun it in a burst, low
// enough that the burst is a few seconds.
const RATE_PER_MIN = 300;
const ctx = h.suite({ server: { env: { DEVICE_RATE_PER_MIN: RATE_PER_MIN } } });

const SIM_BIN = process.env.WATTLINE_SIM_BIN || path.join(h.REPO_ROOT, 'bin', 'wattline-sim');
const MIN = 60 * 1000;
const DAY = 24 * 60 * MIN;
const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wattline-devabuse-test-'));
test.after(() => fs.rmSync(workDir, { recursive: true, force: true }));

function pastMidnight(daysAgo) {
  const now = new Date();
  return Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) - daysAgo * DAY;
}

let serial = 0;
async function createDevice(type = 'interval') {
  const res = await ctx.api('POST', '/api/v1/devices', { token: ctx.admin.token,
    body: { name: `abusive meter ${++serial}`, max_hourly_kwh: 1000, reading_type: type } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

function post(token, body) {
  return ctx.api('POST', '/api/v1/measurements', { token, body });
}

async function storedCount(deviceId) {
  return Number(await ctx.pg.scalar(
    `SELECT count(*) FROM readings WHERE device_id = ${Number(deviceId)}`));
}

// A counter of /metrics, by its full name with labels.
async function metric(name) {
  const res = await ctx.api('GET', '/metrics');
  assert.equal(res.status, 200, res.text);
  const line = res.text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `${name} is missing from /metrics`);
  return Number(line.slice(name.length + 1));
}
const deviceLookups = () => metric('wattline_authn_lookups_total{kind="device"}');

test('past DEVICE_RATE_PER_MIN a device gets 429 with Retry-After; nothing stored; others unaffected', async () => {
  // A second instance with a slow bucket (one token every 2 s), so that the limit is
  // reached in a few requests and nothing refills it unnoticed.
  const perMin = 30;
  const slow = await h.startServer({ databaseUrl: ctx.pg.url,
    env: { DEVICE_RATE_PER_MIN: perMin, JWT_SECRET: ctx.server.jwtSecret } });
  try {
    const greedy = await createDevice();
    const other = await createDevice();
    const to = (server, device, ts) => h.api(server, 'POST', '/api/v1/measurements',
      { token: device.token, body: { ts: iso(ts), kwh: 0.1 } });
    const t0 = pastMidnight(1);
    const started = Date.now();
    let accepted = 0;
    let refused = null;
    // One reading per request, each at its own minute, until the first refusal.
    for (let i = 0; i < perMin * 2 && !refused; i++) {
      const res = await to(slow, greedy, t0 + i * MIN);
      if (res.status === 200) accepted++;
      else refused = { res, ts: t0 + i * MIN };
    }
    const elapsedS = (Date.now() - started) / 1000;
    assert.ok(refused, `no 429 in ${perMin * 2} requests`);
    const { res } = refused;
    assert.equal(res.status, 429, res.text);
    assert.equal(res.json.code, 'rate_limited');
    assert.match(res.headers.get('content-type'), /^application\/problem\+json/);
    const retryAfter = Number(res.headers.get('retry-after'));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60 / perMin,
      `Retry-After ${res.headers.get('retry-after')}: the next token is at most 2 s away`);
    // The whole bucket (a minute's worth), plus what it gained meanwhile: never more.
    assert.ok(accepted >= perMin, `only ${accepted} accepted`);
    assert.ok(accepted <= perMin + Math.ceil(elapsedS * perMin / 60),
      `${accepted} accepted in ${elapsedS} s`);

    // Nothing of the refused request was stored.
    assert.equal(await storedCount(greedy.id), accepted);
    assert.equal(Number(await ctx.pg.scalar(`SELECT count(*) FROM readings
      WHERE device_id = ${Number(greedy.id)} AND ts = '${iso(refused.ts)}'`)), 0);

    // Another device posts at once; the limit is per instance, so the greedy device
    // still may post to the other one.
    assert.equal((await to(slow, other, t0)).status, 200);
    assert.equal((await to(ctx.server, greedy, refused.ts)).status, 200);

    // After Retry-After it may post here again, and the refusal was counted.
    await h.sleep(retryAfter * 1000);
    const again = await to(slow, greedy, refused.ts + MIN);
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.json, { accepted: 1, duplicates: 0 });
    const metrics = await h.api(slow, 'GET', '/metrics');
    assert.match(metrics.text, /^wattline_ingest_rate_limited_total [1-9]/m);
  } finally {
    await slow.stop();
  }
});

test('the simulator bursting past the limit drains its spool: every reading stored exactly once', async () => {
  assert.ok(fs.existsSync(SIM_BIN), `${SIM_BIN} is missing (make bin/wattline-sim)`);
  const device = await createDevice('cumulative');
  const count = RATE_PER_MIN + 40;
  const from = pastMidnight(2);
  // One reading a minute, one reading a request, as fast as the server takes them.
  const options = ['--profile', 'household', '--seed', '21', '--interval', '1m',
    '--backfill', `${iso(from)}..${iso(from + count * MIN)}`];
  const printed = spawnSync(SIM_BIN, [...options, '--print', 'csv'], { encoding: 'utf8' });
  assert.equal(printed.status, 0, printed.stderr);
  const source = printed.stdout.trim().split('\n').slice(1).map((line) => {
    const [ts, value] = line.split(',');
    return { ts: Date.parse(ts), value: Number(value) };
  });
  assert.equal(source.length, count);

  const limitedBefore = await metric('wattline_ingest_rate_limited_total');
  const proc = spawn(SIM_BIN, [...options, '--batch', '1', '--url', ctx.server.baseUrl,
    '--spool', path.join(workDir, 'burst.spool'), '--quiet'],
  { env: { ...process.env, WATTLINE_DEVICE_TOKEN: device.token }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (c) => { stdout += c; });
  proc.stderr.setEncoding('utf8').on('data', (c) => { stderr += c; });
  const timer = setTimeout(() => proc.kill('SIGKILL'), 90000);
  const code = await new Promise((resolve) => proc.once('close', resolve));
  clearTimeout(timer);
  assert.equal(code, 0, stdout + stderr);
  const summary = /sent (\d+), acknowledged (\d+) \(duplicates (\d+)\), pending 0, retries (\d+)/
    .exec(stdout);
  assert.ok(summary, stdout);
  assert.equal(Number(summary[2]), count, stdout);
  assert.ok(Number(summary[4]) > 0, `the burst met the limit: ${stdout}`);
  assert.ok(await metric('wattline_ingest_rate_limited_total') > limitedBefore);

  // Exactly the source's readings, each once.
  const stored = await ctx.pg.rows(`SELECT (extract(epoch FROM ts) * 1000)::bigint AS ms,
    value FROM readings WHERE device_id = ${Number(device.id)} ORDER BY ts`);
  assert.equal(stored.length, count, 'number of stored readings');
  stored.forEach((row, i) => {
    assert.equal(Number(row.ms), source[i].ts, `reading ${i} time`);
    assert.ok(Math.abs(Number(row.value) - source[i].value) <= 1e-6 * Math.max(1, source[i].value),
      `reading ${i} value ${row.value} != ${source[i].value}`);
  });
});

test('a wrong device token costs one database look-up, then none for a minute', async () => {
  const bad = crypto.randomBytes(32).toString('base64url');
  const before = await deviceLookups();
  const first = await post(bad, { kwh: 0.1 });
  assert.equal(first.status, 401, first.text);
  const afterFirst = await deviceLookups();
  assert.equal(afterFirst - before, 1, 'the first sight of the token is looked up');
  for (let i = 0; i < 100; i++) {
    const res = await post(bad, { kwh: 0.1 });
    assert.equal(res.status, 401, res.text);
  }
  assert.equal(await deviceLookups(), afterFirst, '100 repeats cost no database work');
});

test('a token created or rotated while wrong tokens are cached works at once; the old one stops', async () => {
  // Flood the negative cache a little first.
  for (let i = 0; i < 20; i++) {
    assert.equal((await post(crypto.randomBytes(32).toString('base64url'), { kwh: 0.1 })).status, 401);
  }
  const device = await createDevice();
  const t0 = pastMidnight(3);
  const created = await post(device.token, { ts: iso(t0), kwh: 0.1 });
  assert.equal(created.status, 200, created.text);

  const rotated = await ctx.api('POST', `/api/v1/devices/${device.id}/token`, { token: ctx.admin.token });
  assert.equal(rotated.status, 200, rotated.text);
  const old = await post(device.token, { ts: iso(t0 + MIN), kwh: 0.1 });
  assert.equal(old.status, 401, 'the old token stops at once on this instance');
  const fresh = await post(rotated.json.token, { ts: iso(t0 + MIN), kwh: 0.1 });
  assert.equal(fresh.status, 200, fresh.text);

  // The old token is now a wrong one like any other: no more look-ups for it.
  const lookups = await deviceLookups();
  for (let i = 0; i < 20; i++) assert.equal((await post(device.token, { kwh: 0.1 })).status, 401);
  assert.equal(await deviceLookups(), lookups);
  assert.equal(await storedCount(device.id), 2);
});
