'use strict';
// Broker ingestion (API.md, "Message broker"): a private RabbitMQ node, Wattline consuming
// it, and clients that are not ours publishing: amqplib (AMQP 0-9-1 with publisher
// confirms) and, for MQTT, Debian's mosquitto_pub. Every format of the contract, dead
// letters around valid messages, legacy queues used as they are, alerts reaching the
// owner's WebSocket, two instances sharing the queue, and the MQTT logins that RabbitMQ
// asks Wattline about.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFile } = require('node:child_process');
const amqp = require('amqplib');
const h = require('../api/lib/harness');
const wsc = require('../api/lib/wsclient');
const { startRabbit } = require('../api/lib/rabbitmq');

const { before, after } = test;
const LEGACY_QUEUE = 'energy-queue';
const MIN = 60 * 1000;
const HOUR = 60 * MIN;
const iso = (ms) => new Date(ms).toISOString();
// The real smart-meter registers of the seed (one per line), as its simulators send them.
const SENSOR = fs.readFileSync(path.join(h.REPO_ROOT, 'tools', 'sim', 'sample-sensor.csv'), 'utf8')
  .split('\n').filter(Boolean).map(Number);

const ctx = { pg: null, server: null, rabbit: null, admin: null, conn: null, ch: null };
const api = (method, urlPath, options) => h.api(ctx.server, method, urlPath, options);

before(async () => {
  ctx.pg = await h.startPostgres();
  const httpPort = await h.freePort();
  ctx.rabbit = await startRabbit({ httpPort });
  // The legacy queue exists before Wattline starts, with flags of the simulators' own
  // choosing (not durable, a length limit): Wattline must use it as it is.
  const conn = await amqp.connect(ctx.rabbit.amqpUrl);
  const setup = await conn.createChannel();
  await setup.assertQueue(LEGACY_QUEUE, { durable: false, arguments: { 'x-max-length': 100000 } });
  await conn.close();
  ctx.server = await h.startServer({ databaseUrl: ctx.pg.url, env: {
    HTTP_PORT: httpPort, AMQP_URL: ctx.rabbit.amqpUrl, AMQP_LEGACY_QUEUES: `${LEGACY_QUEUE}, Sensor_sends`,
  } });
  await ctx.server.waitReady();
  const account = await h.createUser(ctx.server, { email: 'admin@example.test', name: 'Admin', role: 'admin' });
  ctx.admin = { ...account, token: (await h.login(ctx.server, account.email, account.password)).access_token };
  await waitConnected(ctx.server);
  ctx.conn = await amqp.connect(ctx.rabbit.amqpUrl);
  ctx.ch = await ctx.conn.createConfirmChannel();
});

after(async () => {
  try {
    if (ctx.conn) await ctx.conn.close().catch(() => {});
    if (ctx.server) await ctx.server.stop();
  } finally {
    if (ctx.rabbit) await ctx.rabbit.stop();
    if (ctx.pg) await ctx.pg.destroy();
  }
});

async function metric(server, name) {
  const res = await h.api(server, 'GET', '/metrics');
  const line = res.text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{') && l.split(' ')[0] === name);
  return line ? Number(line.split(' ').pop()) : NaN;
}

async function brokerCount(server, result) {
  return metric(server, `wattline_broker_messages_total{result="${result}"}`);
}

async function waitConnected(server) {
  await h.waitFor(async () => (await metric(server, 'wattline_broker_connected')) === 1,
    { timeout: 30000, interval: 100 });
}

let serialNo = 0;
async function createDevice({ type = 'cumulative', limit = 1000, owner = null, serial } = {}) {
  const res = await api('POST', '/api/v1/devices', { token: ctx.admin.token,
    body: { name: `meter ${++serialNo}`, max_hourly_kwh: limit, reading_type: type, owner_id: owner } });
  assert.equal(res.status, 201, res.text);
  const device = res.json;
  if (serial) {
    // Through the database, so these tests do not depend on the PATCH route's rules.
    ctx.pg.psql(`UPDATE devices SET serial = '${serial}' WHERE id = ${Number(device.id)}`);
    device.serial = serial;
  }
  return device;
}

function count(deviceId) {
  return Number(ctx.pg.scalar(`SELECT count(*) FROM readings WHERE device_id = ${Number(deviceId)}`));
}

async function waitCount(deviceId, n, timeout = 15000) {
  await h.waitFor(() => count(deviceId) >= n, { timeout, interval: 50 });
  assert.equal(count(deviceId), n);
}

function publish(exchange, key, body, options = {}) {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  ctx.ch.publish(exchange, key, bytes, { persistent: true, contentType: 'application/json', ...options });
}

// Every message now in a queue, taken off it (acked): [{body, headers, routingKey}].
async function drain(queue) {
  const ch = await ctx.conn.createChannel();
  const out = [];
  for (;;) {
    const m = await ch.get(queue, { noAck: true });
    if (!m) break;
    out.push({ body: m.content.toString(), headers: m.properties.headers || {}, routingKey: m.fields.routingKey });
  }
  await ch.close();
  return out;
}

async function queueDepth(queue) {
  const out = await ctx.rabbit.rabbitmqctl(['list_queues', '-q', 'name', 'messages']);
  for (const line of out.split('\n')) {
    const [name, messages] = line.trim().split(/\s+/);
    if (name === queue) return Number(messages);
  }
  return NaN;
}

test('the topology is declared: exchanges, the queue with its dead-letter exchange, the bindings', async () => {
  const queues = await ctx.rabbit.rabbitmqctl(['list_queues', '-q', 'name', 'durable', 'arguments']);
  assert.match(queues, /wattline\.measurements\s+true\s+.*x-dead-letter-exchange.*wattline\.dead/);
  assert.match(queues, /wattline\.measurements\.dead\s+true/);
  const exchanges = await ctx.rabbit.rabbitmqctl(['list_exchanges', '-q', 'name', 'type', 'durable']);
  assert.match(exchanges, /^wattline\s+topic\s+true$/m);
  assert.match(exchanges, /^wattline\.dead\s+topic\s+true$/m);
  const bindings = await ctx.rabbit.rabbitmqctl(['list_bindings', '-q', 'source_name', 'destination_name', 'routing_key']);
  assert.match(bindings, /^wattline\s+wattline\.measurements\s+measurements\.#$/m);
  assert.match(bindings, /^amq\.topic\s+wattline\.measurements\s+devices\.\*\.measurements$/m);
  // The legacy queue keeps the flags its simulators gave it.
  assert.match(queues, new RegExp(`^${LEGACY_QUEUE}\\s+false\\s+.*x-max-length`, 'm'));
  // A legacy queue that did not exist is declared, durable.
  assert.match(queues, /^Sensor_sends\s+true/m);
});

test("Wattline's own bodies: one reading, a batch, by id or by serial, all stored once", async () => {
  const d = await createDevice({ serial: 'MTR-own-1' });
  const t0 = Date.now() - 3 * HOUR;
  publish('wattline', `measurements.${d.id}`, { device_id: d.id, ts: iso(t0), meter_kwh: 100 });
  publish('wattline', 'measurements.batch', { serial: d.serial, measurements: [
    { ts: iso(t0 + MIN), meter_kwh: 101 }, { ts: iso(t0 + 2 * MIN), meter_kwh: 102 }] });
  publish('wattline', 'measurements.x', { device_id: String(d.id), serial: d.serial, ts: iso(t0 + 3 * MIN), meter_kwh: 103 });
  // The same readings again: duplicates, stored once.
  publish('wattline', `measurements.${d.id}`, { device_id: d.id, ts: iso(t0), meter_kwh: 100 });
  await ctx.ch.waitForConfirms();
  await waitCount(d.id, 4);
  await h.waitFor(async () => (await brokerCount(ctx.server, 'duplicate')) >= 1, { timeout: 5000 });
  const hours = ctx.pg.rows(`SELECT sum(kwh)::float8 AS kwh FROM device_hours WHERE device_id = ${d.id}`);
  assert.equal(hours[0].kwh, 3);
  // last_seen_at moved, as for HTTP ingestion.
  const res = await api('GET', `/api/v1/devices/${d.id}`, { token: ctx.admin.token });
  assert.ok(res.json.last_seen_at);
});

test("the seed's format, as its simulators send it: sensor.csv registers, every variant of the fields", async () => {
  const d = await createDevice({ serial: 'Sensor-0042' });
  const i = await createDevice({ type: 'interval' });
  const t0 = Date.now() - 6 * HOUR;
  const values = SENSOR.slice(0, 30);
  values.forEach((v, k) => {
    const ts = t0 + k * 10 * MIN;
    const variants = [
      { timestamp: ts, device_id: d.serial, measurement_value: v },
      { timestamp: String(ts), device_id: d.serial, measurement_value: String(v) },
      { pattern: 'sensor_data', data: { timestamp: ts, device_id: String(d.id), measurement_value: v } },
    ];
    publish('wattline', 'measurements.seed', variants[k % variants.length]);
  });
  // An interval device takes measurement_value as the interval's energy.
  publish('wattline', 'measurements.seed', { timestamp: iso(t0).replace('Z', '+00:00'), device_id: i.id, measurement_value: 0.25 });
  await ctx.ch.waitForConfirms();
  await waitCount(d.id, values.length);
  await waitCount(i.id, 1);
  const stored = ctx.pg.rows(`SELECT value::float8 AS v FROM readings WHERE device_id = ${d.id} ORDER BY ts`);
  assert.deepEqual(stored.map((r) => r.v), values);
  const kwh = Number(ctx.pg.scalar(`SELECT sum(kwh) FROM device_hours WHERE device_id = ${d.id}`));
  assert.ok(Math.abs(kwh - (values.at(-1) - values[0])) < 1e-6, `${kwh}`);
  assert.equal(Number(ctx.pg.scalar(`SELECT sum(kwh) FROM device_hours WHERE device_id = ${i.id}`)), 0.25);
});

test('poison messages are dead-lettered with their reason while the messages around them are stored', async () => {
  const d = await createDevice();
  const other = await createDevice({ serial: 'MTR-poison-2' });
  const t0 = Date.now() - 2 * HOUR;
  await drain('wattline.measurements.dead');
  const deadBefore = await brokerCount(ctx.server, 'dead');
  const poison = [
    'not json at all',
    '{"device_id": 1, "device_id": 2, "meter_kwh": 1}',
    JSON.stringify({ device_id: 999999, meter_kwh: 1 }),
    JSON.stringify({ serial: 'no-such-meter', meter_kwh: 1 }),
    JSON.stringify({ device_id: d.id, ts: iso(t0), kwh: 1 }), // the wrong member for its type
    JSON.stringify({ device_id: d.id, ts: iso(Date.now() + HOUR), meter_kwh: 1 }), // the future
    JSON.stringify({ device_id: d.id, serial: other.serial, meter_kwh: 1 }), // two devices
    JSON.stringify({ device_id: d.id, measurements: [] }),
    JSON.stringify({ device_id: d.id, ts: iso(t0), meter_kwh: 1, extra: true }),
    JSON.stringify({ timestamp: t0, device_id: d.id, measurement_value: 'NaN' }),
    '[' .repeat(100),
    Buffer.alloc(1024 * 1024 + 10, 0x20),
  ];
  poison.forEach((body, k) => {
    publish('wattline', `measurements.poison.${k}`, body);
    publish('wattline', `measurements.${d.id}`, { device_id: d.id, ts: iso(t0 + k * MIN), meter_kwh: k });
  });
  await ctx.ch.waitForConfirms();
  await waitCount(d.id, poison.length);
  await h.waitFor(async () => (await brokerCount(ctx.server, 'dead')) - deadBefore === poison.length, { timeout: 10000 });
  let dead = [];
  await h.waitFor(async () => {
    dead = dead.concat(await drain('wattline.measurements.dead'));
    return dead.length >= poison.length;
  }, { timeout: 10000 });
  assert.equal(dead.length, poison.length);
  const keys = dead.map((m) => m.routingKey).sort();
  assert.deepEqual(keys, poison.map((_, k) => `measurements.poison.${k}`).sort());
  // RabbitMQ's own record of why: rejected, from our queue.
  for (const m of dead) {
    assert.equal(m.headers['x-first-death-reason'], 'rejected');
    assert.equal(m.headers['x-first-death-queue'], 'wattline.measurements');
  }
  // Each is logged with its reason.
  const logs = ctx.server.stdout();
  for (const reason of ['not JSON', 'unknown device 999999', 'unknown device serial no-such-meter',
    'two different devices', 'measurements must be an array', 'more than 1048576']) {
    assert.ok(logs.includes(reason), `no log line with "${reason}"`);
  }
  assert.equal(await queueDepth('wattline.measurements'), 0);
});

test('a legacy queue is consumed with the same rules; its invalid messages reach the dead queue with where and why', async () => {
  const d = await createDevice({ serial: 'legacy-1' });
  const t0 = Date.now() - HOUR;
  await drain('wattline.measurements.dead');
  for (let k = 0; k < 10; k++) {
    ctx.ch.sendToQueue(LEGACY_QUEUE, Buffer.from(JSON.stringify({ timestamp: t0 + k * MIN, device_id: 'legacy-1', measurement_value: SENSOR[k] })));
  }
  ctx.ch.sendToQueue(LEGACY_QUEUE, Buffer.from('{"timestamp": "soon"}'), { headers: { 'x-sim': 'seed' }, messageId: 'm-1' });
  ctx.ch.sendToQueue('Sensor_sends', Buffer.from(JSON.stringify({ timestamp: t0 + 20 * MIN, device_id: d.id, measurement_value: SENSOR[20] })));
  await ctx.ch.waitForConfirms();
  await waitCount(d.id, 11);
  let dead = [];
  await h.waitFor(async () => (dead = dead.concat(await drain('wattline.measurements.dead'))).length >= 1, { timeout: 10000 });
  assert.equal(dead.length, 1);
  assert.equal(dead[0].body, '{"timestamp": "soon"}');
  assert.equal(dead[0].headers['x-wattline-queue'], LEGACY_QUEUE);
  assert.match(dead[0].headers['x-wattline-reason'], /timestamp/);
  assert.equal(dead[0].headers['x-sim'], 'seed'); // its own properties kept
  await h.waitFor(async () => (await queueDepth(LEGACY_QUEUE)) === 0, { timeout: 5000 });
});

test("a broker reading that takes an hour over the limit alerts the owner's WebSocket, and only the owner's", async () => {
  const sockets = [];
  const users = [];
  for (const email of ['owner@example.test', 'stranger@example.test']) {
    const who = await h.createUser(ctx.server, { email, role: 'client' });
    const tokens = await h.login(ctx.server, who.email, who.password);
    users.push(tokens.user);
    const c = await wsc.open(ctx.server.wsUrl);
    c.send({ type: 'auth', token: tokens.access_token });
    await c.next('ready');
    sockets.push(c);
  }
  const d = await createDevice({ limit: 1, owner: users[0].id, type: 'interval' });
  const hour = Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR;
  publish('wattline', 'measurements.alert', { device_id: d.id, measurements: [
    { ts: iso(hour + MIN), kwh: 0.6 }, { ts: iso(hour + 2 * MIN), kwh: 0.6 }] });
  await ctx.ch.waitForConfirms();
  const msg = await sockets[0].next('alert', 10000);
  assert.equal(msg.alert.device_id, d.id);
  assert.equal(msg.alert.hour_start, iso(hour).replace('.000', ''));
  assert.equal(msg.alert.hour_kwh, 1.2);
  await h.sleep(300);
  assert.equal(sockets[1].received('alert').length, 0);
  for (const c of sockets) c.close();
});

test('readings of one device from HTTP and from the broker interleave into one consistent history', async () => {
  const d = await createDevice();
  const t0 = Date.now() - 5 * HOUR;
  const http = [];
  for (let k = 0; k < 40; k++) {
    const reading = { ts: iso(t0 + k * MIN), meter_kwh: k };
    if (k % 2) {
      publish('wattline', 'measurements.mix', { device_id: d.id, ...reading });
    } else {
      http.push(api('POST', '/api/v1/measurements', { token: d.token, body: reading }));
    }
  }
  for (const res of await Promise.all(http)) assert.equal(res.status, 200, res.text);
  await ctx.ch.waitForConfirms();
  await waitCount(d.id, 40);
  // The hours add up to the register's rise, whatever order the two paths committed in.
  const kwh = Number(ctx.pg.scalar(`SELECT sum(kwh) FROM device_hours WHERE device_id = ${d.id}`));
  assert.ok(Math.abs(kwh - 39) < 1e-9, `${kwh}`);
});

test('MQTT devices: login by id or serial with the device token, their own topic only, a rotated token refused', async () => {
  const d = await createDevice({ serial: 'MQTT-meter-1' });
  const other = await createDevice();
  const t0 = Date.now() - HOUR;
  const pub = (user, password, topic, body) => mosquittoPub(['-u', user, '-P', password, '-t', topic, '-m', JSON.stringify(body)]);

  // By id, then by serial: both stored.
  let r = await pub(String(d.id), d.token, `devices/${d.id}/measurements`, { ts: iso(t0), meter_kwh: 1 });
  assert.equal(r.code, 0, r.stderr);
  r = await pub(d.serial, d.token, `devices/${d.serial}/measurements`, { measurements: [{ ts: iso(t0 + MIN), meter_kwh: 2 }] });
  assert.equal(r.code, 0, r.stderr);
  await waitCount(d.id, 2);

  // A wrong token, another device's token, the token under another device's name: refused.
  for (const [user, password] of [[String(d.id), 'wrong'], [String(d.id), other.token], [String(other.id), d.token]]) {
    r = await pub(user, password, `devices/${user}/measurements`, { meter_kwh: 9 });
    assert.notEqual(r.code, 0, `login ${user} accepted`);
  }
  // Another device's topic: the broker refuses the publish (RabbitMQ closes the connection).
  r = await pub(String(d.id), d.token, `devices/${other.id}/measurements`, { ts: iso(t0 + 5 * MIN), meter_kwh: 5 });
  await h.sleep(500);
  assert.equal(count(other.id), 0);
  // A body that names another device than the topic: dead-lettered, not stored.
  r = await pub(String(d.id), d.token, `devices/${d.id}/measurements`, { device_id: other.id, ts: iso(t0 + 6 * MIN), meter_kwh: 6 });
  await h.sleep(500);
  assert.equal(count(other.id), 0);
  assert.equal(count(d.id), 2);

  // Rotation: the old token stops working for new connections at once.
  const rotated = await api('POST', `/api/v1/devices/${d.id}/token`, { token: ctx.admin.token });
  assert.equal(rotated.status, 200);
  r = await pub(String(d.id), d.token, `devices/${d.id}/measurements`, { ts: iso(t0 + 7 * MIN), meter_kwh: 7 });
  assert.notEqual(r.code, 0, 'the old token still logs in');
  r = await pub(String(d.id), rotated.json.token, `devices/${d.id}/measurements`, { ts: iso(t0 + 8 * MIN), meter_kwh: 8 });
  assert.equal(r.code, 0, r.stderr);
  await waitCount(d.id, 3);
});

test('two instances consume the one queue: every message stored once, both take a share', async () => {
  const second = await h.startServer({ databaseUrl: ctx.pg.url, env: { AMQP_URL: ctx.rabbit.amqpUrl, AMQP_PREFETCH: '16' } });
  try {
    await second.waitReady();
    await waitConnected(second);
    const devices = [];
    for (let k = 0; k < 4; k++) devices.push(await createDevice({ type: 'interval' }));
    const before1 = await brokerCount(ctx.server, 'stored');
    const t0 = Date.now() - 10 * HOUR;
    const N = 600;
    for (let k = 0; k < N; k++) {
      const d = devices[k % devices.length];
      publish('wattline', 'measurements.shared', { device_id: d.id, ts: iso(t0 + k * 1000), kwh: 0.001 });
      if (k % 100 === 99) await ctx.ch.waitForConfirms();
    }
    await ctx.ch.waitForConfirms();
    for (const d of devices) await waitCount(d.id, N / devices.length, 30000);
    const first = (await brokerCount(ctx.server, 'stored')) - before1;
    const other = await brokerCount(second, 'stored');
    assert.equal(first + other, N);
    assert.ok(first > 0 && other > 0, `first ${first}, second ${other}`);
  } finally {
    await second.stop();
  }
});

test('the simulator end to end, both modes: wattline-sim → RabbitMQ → Wattline, every reading stored once', async () => {
  const sim = path.join(h.REPO_ROOT, 'bin', 'wattline-sim');
  const start = new Date(Date.now() - 6 * HOUR).toISOString().replace(/\.\d+Z$/, 'Z');
  for (const mode of ['amqp', 'mqtt']) {
    const d = await createDevice({ serial: `sim-${mode}` });
    const transport = mode === 'amqp'
      ? ['--amqp', ctx.rabbit.amqpUrl, '--device-id', String(d.id)]
      : ['--mqtt', `mqtt://127.0.0.1:${ctx.rabbit.mqttPort}`, '--serial', d.serial, '--token', d.token];
    const spool = path.join(ctx.pg.dir, `${mode}.spool`);
    const r = await run(sim, ['--profile', 'household', '--seed', '5', '--start', start, '--count', '30',
      '--interval', '10m', '--speed', '1000000', '--batch', '4', '--spool', spool, '--quiet', ...transport]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /sent 30, acknowledged 30/);
    await waitCount(d.id, 30);
  }
});

function run(bin, args) {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: 60000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr });
    });
  });
}

function mosquittoPub(args) {
  return new Promise((resolve) => {
    execFile('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(ctx.rabbit.mqttPort), '-q', '1', '-V', 'mqttv311', ...args],
      { timeout: 15000 }, (err, stdout, stderr) => {
        resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr });
      });
  });
}
