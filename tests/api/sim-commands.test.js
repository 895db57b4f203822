'use strict';
// wattline-sim --commands against a real server, over HTTP long-poll: an admin's `relay
// off` is obeyed and the stored register stops rising while readings keep arriving every
// interval; `relay on` makes it rise again from where it stood (the off period's energy is
// never added); `interval` changes how often readings come; an unknown command and bad
// params end `failed` with the device's reason; the summary counts the commands.
//
// The source is a CSV whose register rises by exactly 1 kWh a reading, so "still",
// "rising again" and "no jump" are exact comparisons.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');

const SIM_BIN = process.env.WATTLINE_SIM_BIN || path.join(h.REPO_ROOT, 'bin', 'wattline-sim');
const SECOND = 1000;

const ctx = h.suite();
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wattline-sim-commands-'));
test.after(() => fs.rmSync(workDir, { recursive: true, force: true }));

const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');

async function createDevice(name) {
  const res = await ctx.api('POST', '/api/v1/devices', { token: ctx.admin.token,
    body: { name, max_hourly_kwh: 100000 } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

// Runs the simulator in workDir; resolves to {code, signal, stdout, stderr}.
function runSim(args, env) {
  const proc = spawn(SIM_BIN, args, { cwd: workDir, env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk) => { stdout += chunk; });
  proc.stderr.setEncoding('utf8').on('data', (chunk) => { stderr += chunk; });
  const timer = setTimeout(() => proc.kill('SIGKILL'), 120 * SECOND);
  const done = new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { proc, done, output: () => stdout + stderr };
}

// The stored readings from `from` on, oldest first: [{ts (ms), value}].
async function storedReadings(deviceId, from) {
  const res = await ctx.api('GET', `/api/v1/devices/${deviceId}/measurements?` +
    `from=${iso(from)}&to=${iso(Date.now() + 60 * SECOND)}`,
  { token: ctx.admin.token, headers: { accept: 'text/csv' } });
  assert.equal(res.status, 200, res.text);
  const [, ...lines] = res.text.trim().split('\n');
  return lines.filter((line) => line !== '').map((line) => {
    const [ts, value] = line.split(',');
    return { ts: Date.parse(ts), value: Number(value) };
  });
}

async function sendCommand(deviceId, name, params) {
  const res = await ctx.api('POST', `/api/v1/devices/${deviceId}/commands`,
    { token: ctx.admin.token, body: params === undefined ? { name } : { name, params } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

// Waits for a command's final status; returns the command.
async function finalCommand(id, sim) {
  return h.waitFor(async () => {
    const res = await ctx.api('GET', `/api/v1/commands/${id}`, { token: ctx.admin.token });
    assert.equal(res.status, 200, res.text);
    return ['succeeded', 'failed', 'expired', 'canceled'].includes(res.json.status) && res.json;
  }, { timeout: 15 * SECOND, message: `command ${id} answered (sim: ${sim.output()})` });
}

// Waits until at least `n` readings stamped after `after` are stored; returns them.
async function readingsAfter(deviceId, after, n) {
  return h.waitFor(async () => {
    const list = (await storedReadings(deviceId, after)).filter((r) => r.ts > after);
    return list.length >= n && list;
  }, { timeout: 20 * SECOND, message: `${n} readings after ${iso(after)}` });
}

test('relay off holds the register, relay on resumes it; unknown and bad commands fail', async () => {
  assert.ok(fs.existsSync(SIM_BIN), `${SIM_BIN} is missing (make bin/wattline-sim)`);
  const device = await createDevice('relay meter');
  const csv = path.join(workDir, 'steps.csv');
  fs.writeFileSync(csv, Array.from({ length: 900 }, (_, i) => `${1000 + i}`).join('\n') + '\n');
  const started = Date.now() - 2 * SECOND;
  const sim = runSim(['--url', ctx.server.baseUrl, '--csv', csv, '--interval', '1s',
    '--spool', path.join(workDir, 'relay.spool'), '--commands'],
  { WATTLINE_DEVICE_TOKEN: device.token });
  try {
    await readingsAfter(device.id, started, 3);

    // Off: answered with the relay's state, then the register stands still.
    const off = await sendCommand(device.id, 'relay', { state: 'off' });
    const offDone = await finalCommand(off.id, sim);
    assert.equal(offDone.status, 'succeeded', JSON.stringify(offDone));
    assert.deepEqual(offDone.result, { state: 'off' });
    // A reading due while the answer travelled may be the last to rise: look one later.
    const offAt = Date.now() + SECOND;
    const held = await readingsAfter(device.id, offAt, 4);
    const still = held[0].value;
    for (const r of held) assert.equal(r.value, still, `still while off: ${JSON.stringify(held)}`);
    // Readings keep their pace while off: one a second.
    for (let i = 1; i < held.length; i++) assert.equal(held[i].ts - held[i - 1].ts, SECOND);

    // On: it rises again by one step a reading from where it stood, without the off
    // period's energy.
    const on = await sendCommand(device.id, 'relay', { state: 'on' });
    const onDone = await finalCommand(on.id, sim);
    assert.equal(onDone.status, 'succeeded', JSON.stringify(onDone));
    assert.deepEqual(onDone.result, { state: 'on' });
    const resumed = (await readingsAfter(device.id, offAt, held.length + 6))
      .filter((r) => r.value > still);
    assert.ok(resumed.length >= 3, JSON.stringify(resumed));
    resumed.forEach((r, i) => assert.equal(r.value, still + 1 + i,
      `rising from ${still} without a jump: ${JSON.stringify(resumed)}`));

    // Unknown name and bad params: failed, with the device's reason.
    const unknown = await finalCommand((await sendCommand(device.id, 'reboot')).id, sim);
    assert.equal(unknown.status, 'failed');
    assert.equal(unknown.error, 'unknown command');
    const badRelay = await finalCommand(
      (await sendCommand(device.id, 'relay', { state: 'dim' })).id, sim);
    assert.equal(badRelay.status, 'failed');
    assert.match(badRelay.error, /state/);
    const badInterval = await finalCommand(
      (await sendCommand(device.id, 'interval', { seconds: 0 })).id, sim);
    assert.equal(badInterval.status, 'failed');
    assert.match(badInterval.error, /1 to 86400/);

    // Interval: readings come every 2 s from the next one on.
    const interval = await finalCommand(
      (await sendCommand(device.id, 'interval', { seconds: 2 })).id, sim);
    assert.equal(interval.status, 'succeeded', JSON.stringify(interval));
    assert.deepEqual(interval.result, { seconds: 2 });
    const since = Date.now() + SECOND;
    const slower = await readingsAfter(device.id, since, 3);
    for (let i = 1; i < slower.length; i++) assert.equal(slower[i].ts - slower[i - 1].ts, 2 * SECOND);
  } finally {
    sim.proc.kill('SIGINT');
  }
  const res = await sim.done;
  assert.equal(res.code, 130, res.stdout + res.stderr);
  assert.match(res.stdout, /commands obeyed 3, failed 3/, res.stdout);
});

test('--commands keeps polling after the last reading, until stopped', async () => {
  const device = await createDevice('short meter');
  const csv = path.join(workDir, 'short.csv');
  fs.writeFileSync(csv, '5\n6\n');
  const sim = runSim(['--url', ctx.server.baseUrl, '--csv', csv, '--interval', '1s',
    '--spool', path.join(workDir, 'short.spool'), '--commands', '--quiet'],
  { WATTLINE_DEVICE_TOKEN: device.token });
  try {
    await readingsAfter(device.id, Date.now() - 10 * SECOND, 2);
    await h.sleep(1500);
    assert.equal(sim.proc.exitCode, null, `still running: ${sim.output()}`);
    const done = await finalCommand((await sendCommand(device.id, 'relay', { state: 'off' })).id,
      sim);
    assert.equal(done.status, 'succeeded');
  } finally {
    sim.proc.kill('SIGTERM');
  }
  const res = await sim.done;
  assert.equal(res.code, 143, res.stdout + res.stderr);
  assert.match(res.stdout, /sent 2, acknowledged 2 .*commands obeyed 1, failed 0/, res.stdout);
});

test('a gateway: each device polls with its own token and obeys its own commands', async () => {
  const a = await createDevice('gateway meter a');
  const b = await createDevice('gateway meter b');
  const csv = path.join(workDir, 'gateway.csv');
  fs.writeFileSync(csv, Array.from({ length: 600 }, (_, i) => `${i}`).join('\n') + '\n');
  const list = path.join(workDir, 'devices.txt');
  fs.writeFileSync(list, `${a.token} csv:${csv} a\n${b.token} csv:${csv} b\n`, { mode: 0o600 });
  const started = Date.now() - 2 * SECOND;
  // One connection for readings: the two long-polls must not starve them.
  const sim = runSim(['--url', ctx.server.baseUrl, '--devices', list, '--interval', '1s',
    '--max-connections', '1', '--spool', path.join(workDir, 'gateway-spool'), '--commands'], {});
  try {
    await readingsAfter(a.id, started, 2);
    await readingsAfter(b.id, started, 2);
    const offB = await finalCommand((await sendCommand(b.id, 'relay', { state: 'off' })).id, sim);
    assert.equal(offB.status, 'succeeded', JSON.stringify(offB));
    const unknownA = await finalCommand((await sendCommand(a.id, 'blink')).id, sim);
    assert.equal(unknownA.status, 'failed');
    assert.equal(unknownA.error, 'unknown command');
    // b stands still, a keeps rising: the relay was b's.
    const since = Date.now() + SECOND;
    const heldB = await readingsAfter(b.id, since, 3);
    const risingA = await readingsAfter(a.id, since, 3);
    assert.ok(heldB.every((r) => r.value === heldB[0].value), JSON.stringify(heldB));
    assert.ok(risingA[2].value > risingA[0].value, JSON.stringify(risingA));
  } finally {
    sim.proc.kill('SIGINT');
  }
  const res = await sim.done;
  assert.equal(res.code, 130, res.stdout + res.stderr);
  assert.match(res.stdout, /commands obeyed 1, failed 1/, res.stdout);
});

test('--commands with --amqp needs --url (AMQP carries no commands)', () => {
  const res = spawnSync(SIM_BIN, ['--amqp', 'amqp://127.0.0.1:1/%2f', '--device-id', '1',
    '--commands'], { encoding: 'utf8' });
  assert.equal(res.status, 2, res.stderr);
  assert.match(res.stderr, /--commands with --amqp needs --url/);
});

test('load shedding end to end: the hour goes over, the over-limit command turns the relay off', async () => {
  // 1 kWh a reading, a reading a second: the hour passes 5 kWh at the 7th reading.
  const res = await ctx.api('POST', '/api/v1/devices', { token: ctx.admin.token,
    body: { name: 'shedding meter', max_hourly_kwh: 5,
      over_limit_command: { name: 'relay', params: { state: 'off' } } } });
  assert.equal(res.status, 201, res.text);
  const device = res.json;
  const csv = path.join(workDir, 'shed.csv');
  fs.writeFileSync(csv, Array.from({ length: 900 }, (_, i) => `${2000 + i}`).join('\n') + '\n');
  const sim = runSim(['--url', ctx.server.baseUrl, '--csv', csv, '--interval', '1s',
    '--spool', path.join(workDir, 'shed.spool'), '--commands'],
  { WATTLINE_DEVICE_TOKEN: device.token });
  try {
    // One alert, and the one command it queued, answered by the simulator.
    const command = await h.waitFor(async () => {
      const list = await ctx.api('GET', `/api/v1/devices/${device.id}/commands`,
        { token: ctx.admin.token });
      const done = list.json.items.find((c) => c.alert_id && c.status === 'succeeded');
      return done;
    }, { timeout: 40 * SECOND, message: `the over-limit command answered (sim: ${sim.output()})` });
    assert.equal(command.name, 'relay');
    assert.deepEqual(command.params, { state: 'off' });
    assert.equal(command.created_by, null);
    const alerts = await ctx.api('GET', `/api/v1/alerts?device_id=${device.id}`,
      { token: ctx.admin.token });
    assert.equal(alerts.json.items.length, 1);
    assert.equal(command.alert_id, alerts.json.items[0].id);

    // The load is shed: readings keep coming, the register stands still.
    const after = Date.now() + SECOND;
    const held = await readingsAfter(device.id, after, 3);
    for (const r of held) assert.equal(r.value, held[0].value, JSON.stringify(held));
    const commands = await ctx.api('GET', `/api/v1/devices/${device.id}/commands`,
      { token: ctx.admin.token });
    assert.equal(commands.json.items.length, 1, 'one command for the one alert');
  } finally {
    sim.proc.kill('SIGTERM');
    await sim.done;
  }
});
