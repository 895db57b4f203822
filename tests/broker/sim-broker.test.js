'use strict';
// wattline-sim --amqp and --mqtt against a real RabbitMQ node (tests/api/lib/rabbitmq.js),
// without Wattline's consumer: the test binds durable queues of its own where Wattline's
// would be (to the exchange `wattline` with measurements.#, to amq.topic with
// devices.*.measurements) and reads what arrived. MQTT logins go to a stand-in for
// Wattline's /api/v1/broker/auth/* that knows the test's device tokens, allows
// everything else they ask for, and records the questions.
//
// What it shows: the messages carry the right bodies, routing keys and properties; the
// readings that arrive are exactly the ones the simulator's source produces; and a broker
// killed (kill -9) mid-run and started again loses none of them: a reading leaves the
// simulator's spool only once the broker confirmed it (persistent messages in durable
// queues are on disk before the confirmation), so whatever the crash took is sent again.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const amqp = require('amqplib');
const h = require('../api/lib/harness');
const { startRabbit } = require('../api/lib/rabbitmq');

const SIM_BIN = process.env.WATTLINE_SIM_BIN || path.join(h.REPO_ROOT, 'bin', 'wattline-sim');
const DAY = 24 * 3600 * 1000;
const AMQP_QUEUE = 'test.wattline.measurements';
const MQTT_QUEUE = 'test.mqtt.measurements';

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wattline-sim-broker-'));
let rabbit = null;
let authServer = null;
const authRequests = [];
const DEVICE_TOKENS = new Set(['device-token-for-mqtt', 'mqtt-restart-token']);

// The stand-in for Wattline's HTTP auth backend: a login with a known device token is
// allowed (whatever the username: Wattline checks that, not this test), any other login
// denied, as Wattline denies whoever is not a device; every other question is allowed.
function startAuthServer() {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => { body += chunk; });
      req.on('end', () => {
        const form = new URLSearchParams(body);
        authRequests.push({ path: req.url, form });
        const login = req.url === '/api/v1/broker/auth/user';
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(!login || DEVICE_TOKENS.has(form.get('password')) ? 'allow' : 'deny');
      });
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

// Declares what Wattline's consumer would, with queues of the test's own.
async function declareTopology(url) {
  const conn = await amqp.connect(url);
  const ch = await conn.createChannel();
  await ch.assertExchange('wattline', 'topic', { durable: true });
  await ch.assertQueue(AMQP_QUEUE, { durable: true });
  await ch.bindQueue(AMQP_QUEUE, 'wattline', 'measurements.#');
  await ch.assertQueue(MQTT_QUEUE, { durable: true });
  await ch.bindQueue(MQTT_QUEUE, 'amq.topic', 'devices.*.measurements');
  await conn.close();
}

test.before(async () => {
  assert.ok(fs.existsSync(SIM_BIN), `${SIM_BIN} is missing (make bin/wattline-sim)`);
  authServer = await startAuthServer();
  rabbit = await startRabbit({ httpPort: authServer.address().port });
  await declareTopology(rabbit.amqpUrl);
});

test.after(async () => {
  try {
    if (rabbit) await rabbit.stop();
  } finally {
    if (authServer) authServer.close();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
});

const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');

function pastMidnight(daysAgo) {
  const now = new Date();
  return Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) - daysAgo * DAY;
}

// The readings a run with these options sends: [{ts (ms), value}].
function sourceReadings(options) {
  const res = spawnSync(SIM_BIN, [...options, '--print', 'csv'], { encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  return res.stdout.trim().split('\n').slice(1).map((line) => {
    const [ts, value] = line.split(',');
    return { ts: Date.parse(ts), value: Number(value) };
  });
}

function runSim(args, { timeout = 50000 } = {}) {
  const proc = spawn(SIM_BIN, args, { cwd: workDir, stdio: ['ignore', 'pipe', 'pipe'] });
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

// Every message in the queue, taken off it: [{routingKey, properties, json}].
async function drain(queue) {
  const conn = await amqp.connect(rabbit.amqpUrl);
  const ch = await conn.createChannel();
  const out = [];
  for (;;) {
    const msg = await ch.get(queue, { noAck: true });
    if (!msg) break;
    out.push({ routingKey: msg.fields.routingKey, properties: msg.properties,
      json: JSON.parse(msg.content.toString('utf8')) });
  }
  await conn.close();
  return out;
}

async function queueLength(queue) {
  const conn = await amqp.connect(rabbit.amqpUrl);
  try {
    const ch = await conn.createChannel();
    return (await ch.checkQueue(queue)).messageCount;
  } finally {
    await conn.close();
  }
}

// The readings in a list of bodies (single or batch), in arrival order.
function readingsOf(bodies) {
  const out = [];
  for (const body of bodies) {
    const list = body.measurements ?? [{ ts: body.ts, meter_kwh: body.meter_kwh }];
    for (const r of list) {
      assert.deepEqual(Object.keys(r).sort(), ['meter_kwh', 'ts']);
      out.push({ ts: Date.parse(r.ts), value: r.meter_kwh });
    }
  }
  return out;
}

// Every source reading arrived with its value, and nothing else did. A message the
// broker took but could not confirm before it died is sent again, so a reading may come
// twice (Wattline stores it once: dedup by device and ts); none may be missing.
function assertAllArrived(arrived, source, { allowDuplicates = false } = {}) {
  const byTs = new Map();
  for (const r of arrived) {
    if (byTs.has(r.ts)) {
      assert.ok(allowDuplicates, `reading ${iso(r.ts)} arrived twice`);
      assert.equal(byTs.get(r.ts), r.value, `reading ${iso(r.ts)} changed on resend`);
    }
    byTs.set(r.ts, r.value);
  }
  assert.equal(byTs.size, source.length, 'number of distinct readings');
  for (const r of source) {
    assert.ok(byTs.has(r.ts), `reading ${iso(r.ts)} is missing`);
    assert.ok(Math.abs(byTs.get(r.ts) - r.value) < 1e-9, `reading ${iso(r.ts)} value`);
  }
}

const SUMMARY = /sent (\d+), acknowledged (\d+) \(duplicates \d+\), pending 0, retries (\d+)/;

test('--amqp: Wattline\'s own body to exchange wattline, persistent, confirmed', async () => {
  const options = ['--profile', 'household', '--seed', '21', '--start', iso(pastMidnight(3)),
    '--count', '40', '--interval', '10m'];
  const source = sourceReadings(options);
  // --batch 8: several messages, batch bodies, and a single-reading body at the end.
  const res = await runSim([...options, '--amqp', rabbit.amqpUrl, '--device-id', '7',
    '--speed', '1000000', '--batch', '8', '--spool', 'amqp.spool', '--quiet']).done;
  assert.equal(res.code, 0, res.stdout + res.stderr);
  assert.match(res.stdout, /sent 40, acknowledged 40 \(duplicates 0\), pending 0, retries 0/);

  const messages = await drain(AMQP_QUEUE);
  assert.ok(messages.length >= 5, `${messages.length} messages of at most 8 readings`);
  for (const m of messages) {
    assert.equal(m.routingKey, 'measurements.7');
    assert.equal(m.properties.deliveryMode, 2, 'persistent');
    assert.equal(m.properties.contentType, 'application/json');
    assert.equal(m.json.device_id, 7);
    assert.equal(Object.keys(m.json)[0], 'device_id');
    assert.ok(m.json.measurements ? m.json.measurements.length <= 8 : m.json.ts, 'body shape');
  }
  const bodies = messages.map((m) => {
    const { device_id: _id, ...rest } = m.json;
    return rest;
  });
  assertAllArrived(readingsOf(bodies), source);
});

test('--mqtt: QoS 1 to devices/<serial>/measurements, logged in with serial and token', async () => {
  const options = ['--profile', 'household', '--seed', '22', '--start', iso(pastMidnight(3)),
    '--count', '12', '--interval', '10m'];
  const source = sourceReadings(options);
  authRequests.length = 0;
  const token = 'device-token-for-mqtt';
  const res = await runSim([...options, '--mqtt', `mqtt://127.0.0.1:${rabbit.mqttPort}`,
    '--serial', 'MTR-0042', '--token', token, '--speed', '1000000', '--spool', 'mqtt.spool',
    '--quiet']).done;
  assert.equal(res.code, 0, res.stdout + res.stderr);
  assert.match(res.stdout, /sent 12, acknowledged 12 \(duplicates 0\), pending 0, retries 0/);

  const messages = await drain(MQTT_QUEUE);
  assert.ok(messages.length >= 1);
  for (const m of messages) {
    // RabbitMQ's MQTT plugin turns the topic's '/' into '.'.
    assert.equal(m.routingKey, 'devices.MTR-0042.measurements');
    assert.equal(m.json.device_id, undefined, 'the topic names the device, not the body');
    assert.equal(m.json.serial, undefined);
  }
  assertAllArrived(readingsOf(messages.map((m) => m.json)), source);

  const login = authRequests.find((r) => r.path === '/api/v1/broker/auth/user');
  assert.ok(login, 'RabbitMQ asked the HTTP backend about the login');
  assert.equal(login.form.get('username'), 'MTR-0042');
  assert.equal(login.form.get('password'), token);
  const topic = authRequests.find((r) => r.path === '/api/v1/broker/auth/topic');
  assert.equal(topic.form.get('routing_key'), 'devices.MTR-0042.measurements');
  assert.ok(!res.stderr.includes(token) && !res.stdout.includes(token), 'token never printed');
});

test('--mqtt: a login the broker refuses stops the run (exit 3), readings kept', async () => {
  // No backend at all behind this node's HTTP auth: every device login is refused.
  const refusing = await startRabbit({ httpPort: 1 });
  try {
    const res = await runSim(['--profile', 'household', '--start', iso(pastMidnight(2)),
      '--count', '3', '--mqtt', `mqtt://127.0.0.1:${refusing.mqttPort}`, '--device-id', '9',
      '--token', 'nope', '--speed', '1000000', '--spool', 'refused.spool']).done;
    assert.equal(res.code, 3, res.stdout + res.stderr);
    assert.match(res.stderr, /the broker refused the device, not retrying: the broker refused the login/);
    // Refused at its first reading: what was spooled stays for a run with the right login.
    assert.match(res.stdout, /acknowledged 0 \(duplicates 0\), pending [1-3]\b/);
    assert.ok(fs.existsSync(path.join(workDir, 'refused.spool')));
  } finally {
    await refusing.stop();
  }
});

test('--amqp: a wrong password stops the run (exit 3), readings kept', async () => {
  const wrong = rabbit.amqpUrl.replace(/:[0-9a-f]{48}@/, ':not-the-password@');
  const res = await runSim(['--profile', 'household', '--start', iso(pastMidnight(2)),
    '--count', '3', '--amqp', wrong, '--device-id', '7', '--speed', '1000000',
    '--spool', 'wrong-password.spool']).done;
  assert.equal(res.code, 3, res.stdout + res.stderr);
  assert.match(res.stderr, /not retrying: login: the broker closed the connection: ACCESS_REFUSED/);
  assert.ok(!res.stderr.includes('not-the-password'), 'the password is never printed');
});

// A day in about eight seconds; the broker is killed when some of it has arrived and
// comes back about five seconds later (its restart), while the simulator spools on.
async function restartMidRun({ transportArgs, queue, seed, spool }) {
  const day = pastMidnight(4 + seed % 3);
  const options = ['--profile', 'household', '--seed', String(seed), '--start', iso(day),
    '--count', '145'];
  const source = sourceReadings(options);
  const run = runSim([...options, ...transportArgs(), '--speed', '10800', '--batch', '4',
    '--spool', spool], { timeout: 55000 });
  await h.waitFor(async () => (await queueLength(queue)) >= 5,
    { timeout: 15000, interval: 100, message: 'first messages in the queue' });
  const started = Date.now();
  await rabbit.restart({ kill: true, downMs: 1000 });
  console.log(`broker down and back in ${Date.now() - started} ms`);
  const res = await run.done;
  assert.equal(res.code, 0, res.stdout + res.stderr);
  const summary = SUMMARY.exec(res.stdout);
  assert.ok(summary, res.stdout);
  assert.ok(Number(summary[2]) >= 145, res.stdout);
  assert.ok(Number(summary[3]) > 0, `the outage caused retries: ${res.stdout}${res.stderr}`);
  const messages = await drain(queue);
  return { source, messages };
}

test('--amqp: the broker killed mid-run and restarted, no reading lost', async () => {
  const { source, messages } = await restartMidRun({
    transportArgs: () => ['--amqp', rabbit.amqpUrl, '--device-id', '8'],
    queue: AMQP_QUEUE, seed: 23, spool: 'amqp-restart.spool',
  });
  const bodies = messages.map((m) => {
    assert.equal(m.json.device_id, 8);
    const { device_id: _id, ...rest } = m.json;
    return rest;
  });
  assertAllArrived(readingsOf(bodies), source, { allowDuplicates: true });
});

test('--mqtt: the broker killed mid-run and restarted, no reading lost', async () => {
  const { source, messages } = await restartMidRun({
    transportArgs: () => ['--mqtt', `mqtt://127.0.0.1:${rabbit.mqttPort}`, '--device-id', '9',
      '--token', 'mqtt-restart-token'],
    queue: MQTT_QUEUE, seed: 24, spool: 'mqtt-restart.spool',
  });
  for (const m of messages) assert.equal(m.routingKey, 'devices.9.measurements');
  assertAllArrived(readingsOf(messages.map((m) => m.json)), source, { allowDuplicates: true });
});
