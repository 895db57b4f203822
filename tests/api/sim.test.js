'use strict';
// wattline-sim against a real server: a day at high speed arrives complete and the
// day's chart adds up to the register difference; a server killed mid-run and started
// again loses nothing and duplicates nothing; a revoked token stops the simulator with a
// clear message and exit status 3, keeping the readings for a later run.
//
// The expected readings come from the simulator itself (`--print csv` with the same
// options: the household profile is a pure function of the time and the seed), and the
// expected hourly energy is computed here from those registers.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');

const SIM_BIN = process.env.WATTLINE_SIM_BIN || path.join(h.REPO_ROOT, 'bin', 'wattline-sim');
const MIN = 60 * 1000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const EXIT_REFUSED = 3;

const ctx = h.suite();
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wattline-sim-test-'));
test.after(() => fs.rmSync(workDir, { recursive: true, force: true }));

const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');

// 00:00 UTC `daysAgo` days back: a whole past day, so no reading is in the future.
function pastMidnight(daysAgo) {
  const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(),
    new Date().getUTCDate());
  return today - daysAgo * DAY;
}

let serial = 0;
async function createDevice() {
  const res = await ctx.api('POST', '/api/v1/devices', { token: ctx.admin.token,
    body: { name: `simulated meter ${++serial}`, max_hourly_kwh: 100 } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

// The readings a run with these options sends: [{ts (ms), value}].
function sourceReadings(options) {
  const res = spawnSync(SIM_BIN, [...options, '--print', 'csv'], { encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  const [header, ...lines] = res.stdout.trim().split('\n');
  assert.equal(header, 'ts,meter_kwh');
  return lines.map((line) => {
    const [ts, value] = line.split(',');
    return { ts: Date.parse(ts), value: Number(value) };
  });
}

// Runs the simulator; resolves to {code, signal, stdout, stderr}. Killed after `timeout`.
function runSim(args, { env = {}, timeout = 60000 } = {}) {
  const proc = spawn(SIM_BIN, args, { cwd: workDir, env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk) => { stdout += chunk; });
  proc.stderr.setEncoding('utf8').on('data', (chunk) => { stderr += chunk; });
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeout);
  const done = new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { proc, done };
}

function spoolPath(name) {
  return path.join(workDir, `${name}.spool`);
}

// The stored readings of [from, to) through the CSV export: [{ts (ms), value}].
async function storedReadings(server, deviceId, from, to) {
  const res = await h.api(server, 'GET',
    `/api/v1/devices/${deviceId}/measurements?from=${iso(from)}&to=${iso(to)}`,
    { token: ctx.admin.token, headers: { accept: 'text/csv' } });
  assert.equal(res.status, 200, res.text);
  const [header, ...lines] = res.text.trim().split('\n');
  assert.equal(header, 'ts,meter_kwh');
  return lines.filter((line) => line !== '').map((line) => {
    const [ts, value] = line.split(',');
    return { ts: Date.parse(ts), value: Number(value) };
  });
}

// Hourly energy of cumulative readings, by the contract's rule: each interval's register
// difference spread evenly over its time; nothing before the first reading.
function expectedHours(readings, from, hours) {
  const out = new Array(hours).fill(0);
  for (let i = 1; i < readings.length; i++) {
    const a = readings[i - 1];
    const b = readings[i];
    const energy = b.value >= a.value ? b.value - a.value : b.value;
    for (let t = Math.floor(a.ts / HOUR) * HOUR; t < b.ts; t += HOUR) {
      const overlap = Math.min(b.ts, t + HOUR) - Math.max(a.ts, t);
      const index = (t - from) / HOUR;
      if (overlap > 0 && index >= 0 && index < hours) out[index] += energy * overlap / (b.ts - a.ts);
    }
  }
  return out;
}

function assertClose(actual, expected, what) {
  assert.ok(Math.abs(actual - expected) <= 1e-6 * Math.max(1, Math.abs(expected)),
    `${what}: ${actual} != ${expected}`);
}

function assertSameReadings(stored, source) {
  assert.equal(stored.length, source.length, 'number of stored readings');
  for (let i = 0; i < source.length; i++) {
    assert.equal(stored[i].ts, source[i].ts, `reading ${i} time`);
    assertClose(stored[i].value, source[i].value, `reading ${i} (${iso(source[i].ts)}) value`);
  }
}

test('a day of readings at high speed arrives complete and the day adds up', async () => {
  assert.ok(fs.existsSync(SIM_BIN), `${SIM_BIN} is missing (make bin/wattline-sim)`);
  const device = await createDevice();
  const day = pastMidnight(3);
  // 145 readings: 00:00 of the day to 00:00 of the next, every 10 minutes.
  const options = ['--profile', 'household', '--seed', '11', '--start', iso(day),
    '--count', '145', '--interval', '10m'];
  const source = sourceReadings(options);
  assert.equal(source.length, 145);
  assert.equal(source[144].ts, day + DAY);

  // A day in about two seconds; the token from the environment.
  const run = runSim([...options, '--url', ctx.server.baseUrl, '--speed', '43200',
    '--spool', spoolPath('day'), '--quiet'], { env: { WATTLINE_DEVICE_TOKEN: device.token } });
  const res = await run.done;
  assert.equal(res.code, 0, res.stdout + res.stderr);
  assert.match(res.stdout, /sent 145, acknowledged 145 \(duplicates 0\), pending 0, retries 0/);
  assert.equal(res.stderr, '', 'nothing but the summary with --quiet');

  assertSameReadings(await storedReadings(ctx.server, device.id, day, day + DAY + 1), source);

  const chart = await ctx.api('GET', `/api/v1/devices/${device.id}/consumption?date=${iso(day).slice(0, 10)}`,
    { token: ctx.admin.token });
  assert.equal(chart.status, 200, chart.text);
  assert.equal(chart.json.hours.length, 24);
  // Readings at 00:00 and 24:00 bound the day: its total is the register difference.
  assertClose(chart.json.total_kwh, source[144].value - source[0].value, 'day total');
  const hours = expectedHours(source, day, 24);
  chart.json.hours.forEach((hour, i) => {
    assert.equal(hour.start, iso(day + i * HOUR));
    assertClose(hour.kwh, hours[i], `hour ${hour.start}`);
  });
});

test('a server killed mid-run and restarted: every reading stored exactly once', async () => {
  const device = await createDevice();
  const day = pastMidnight(4);
  const options = ['--profile', 'household', '--seed', '12', '--start', iso(day),
    '--count', '145'];
  const source = sourceReadings(options);
  const tokenFile = path.join(workDir, 'restart.token');
  fs.writeFileSync(tokenFile, `${device.token}\n`, { mode: 0o600 });

  // A day in about eight seconds, so the outage falls in the middle of it.
  const run = runSim([...options, '--url', ctx.server.baseUrl, '--speed', '10800',
    '--token-file', tokenFile, '--spool', spoolPath('restart')]);
  const count = async (server) =>
    (await storedReadings(server, device.id, day, day + DAY + 1)).length;
  const storedBefore = await h.waitFor(async () => {
    const n = await count(ctx.server);
    return n >= 20 ? n : 0;
  }, { timeout: 15000, message: 'first readings stored' });
  const old = ctx.server;
  await old.kill();
  assert.ok(storedBefore < 145, 'the server must die before the run ends');
  await h.sleep(1500); // the simulator keeps measuring into its spool and retrying
  // Same ports (the simulator's --url) and secret (the admin's token stays valid).
  ctx.server = await h.startServer({ databaseUrl: ctx.pg.url,
    env: { HTTP_PORT: old.httpPort, WS_PORT: old.wsPort, JWT_SECRET: old.jwtSecret } });

  const res = await run.done;
  assert.equal(res.code, 0, res.stdout + res.stderr);
  const summary = /sent (\d+), acknowledged (\d+) \(duplicates (\d+)\), pending 0, retries (\d+)/
    .exec(res.stdout);
  assert.ok(summary, res.stdout);
  assert.ok(Number(summary[4]) > 0, `the outage caused retries: ${res.stdout}`);
  assert.ok(Number(summary[2]) >= 145, res.stdout);

  // Exactly the source's readings, each once (a lost answer may have made duplicates
  // on the wire, never in the store), and the hourly figures the source implies.
  assertSameReadings(await storedReadings(ctx.server, device.id, day, day + DAY + 1), source);
  const chart = await ctx.api('GET', `/api/v1/devices/${device.id}/consumption?` +
    `from=${iso(day)}&to=${iso(day + DAY)}&bucket=hour`, { token: ctx.admin.token });
  assert.equal(chart.status, 200, chart.text);
  const hours = expectedHours(source, day, 24);
  assert.equal(chart.json.hours.length, 24);
  chart.json.hours.forEach((hour, i) => assertClose(hour.kwh, hours[i], `hour ${hour.start}`));
  assertClose(chart.json.total_kwh, source[144].value - source[0].value, 'total');
});

test('a revoked token stops the run with a clear message; the spool keeps the readings', async () => {
  const device = await createDevice();
  const rotated = await ctx.api('POST', `/api/v1/devices/${device.id}/token`,
    { token: ctx.admin.token });
  assert.equal(rotated.status, 200, rotated.text);
  const day = pastMidnight(5);
  const sourceOptions = ['--profile', 'household', '--seed', '13', '--start', iso(day),
    '--count', '12'];
  const options = [...sourceOptions, '--url', ctx.server.baseUrl, '--speed', '100000',
    '--spool', spoolPath('revoked')];

  const refused = await runSim([...options, '--token', device.token]).done;
  assert.equal(refused.code, EXIT_REFUSED, refused.stdout + refused.stderr);
  assert.match(refused.stderr, /refused the readings, not retrying: HTTP 401/);
  assert.match(refused.stdout, /stopped: HTTP 401/);
  assert.doesNotMatch(refused.stderr, /retry \d/, 'a 401 is never retried');
  assert.ok(!refused.stderr.includes(device.token), 'the token is never printed');
  assert.equal((await storedReadings(ctx.server, device.id, day, day + DAY)).length, 0);

  // With the new token the same spool resumes and delivers everything.
  const resumed = await runSim([...options, '--token', rotated.json.token]).done;
  assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
  assert.match(resumed.stderr, /resuming from spool/);
  assertSameReadings(await storedReadings(ctx.server, device.id, day, day + DAY),
    sourceReadings(sourceOptions));
});
