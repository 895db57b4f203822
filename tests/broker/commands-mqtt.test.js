'use strict';
// Commands over MQTT (API.md, "Commands to devices"): a device subscribed to
// devices/<id or serial>/commands through RabbitMQ's MQTT plugin receives each command as
// {"type": "command", "command": {...}} and answers on devices/<it>/command_results; the
// command goes sent (claimed like any delivery) and then succeeded. A device that does not
// subscribe keeps its commands for the long-poll. Clients that are not ours:
// mosquitto_sub and mosquitto_pub from Debian.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFile } = require('node:child_process');
const amqp = require('amqplib');
const h = require('../api/lib/harness');
const { startRabbit } = require('../api/lib/rabbitmq');

const { before, after } = test;
const ctx = { pg: null, server: null, rabbit: null, admin: null };
const api = (method, urlPath, options) => h.api(ctx.server, method, urlPath, options);

before(async () => {
  ctx.pg = await h.startPostgres();
  const httpPort = await h.freePort();
  ctx.rabbit = await startRabbit({ httpPort });
  ctx.server = await h.startServer({ databaseUrl: ctx.pg.url, env: {
    HTTP_PORT: httpPort, AMQP_URL: ctx.rabbit.amqpUrl, COMMAND_LOCK_S: '3',
  } });
  await ctx.server.waitReady();
  const account = await h.createUser(ctx.server, { email: 'admin@example.test', role: 'admin' });
  ctx.admin = (await h.login(ctx.server, account.email, account.password)).access_token;
  await h.waitFor(async () => /wattline_broker_connected 1/.test((await api('GET', '/metrics')).text),
    { timeout: 30000 });
});

after(async () => {
  try {
    if (ctx.server) await ctx.server.stop();
  } finally {
    if (ctx.rabbit) await ctx.rabbit.stop();
    if (ctx.pg) await ctx.pg.destroy();
  }
});

let serialNo = 0;
async function createDevice(serial) {
  const res = await api('POST', '/api/v1/devices', { token: ctx.admin,
    body: { name: `mqtt ${++serialNo}`, max_hourly_kwh: 10, ...(serial ? { serial } : {}) } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

async function command(device, name = 'relay', params = { state: 'off' }) {
  const res = await api('POST', `/api/v1/devices/${device.id}/commands`, { token: ctx.admin,
    body: { name, params } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

async function status(id) {
  return (await api('GET', `/api/v1/commands/${id}`, { token: ctx.admin })).json;
}

// A subscriber that keeps every message of its topic: {messages, stop()}.
function subscribe(user, password, topic) {
  const proc = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(ctx.rabbit.mqttPort),
    '-V', 'mqttv311', '-q', '1', '-u', user, '-P', password, '-t', topic], { stdio: ['ignore', 'pipe', 'pipe'] });
  const sub = { messages: [], stderr: '', proc };
  let buf = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      sub.messages.push(JSON.parse(buf.slice(0, nl)));
      buf = buf.slice(nl + 1);
    }
  });
  proc.stderr.setEncoding('utf8').on('data', (chunk) => { sub.stderr += chunk; });
  sub.stop = () => new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve();
    proc.once('exit', resolve);
    proc.kill('SIGTERM');
  });
  return sub;
}

function publish(user, password, topic, body) {
  return new Promise((resolve) => {
    execFile('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(ctx.rabbit.mqttPort), '-V', 'mqttv311',
      '-q', '1', '-u', user, '-P', password, '-t', topic, '-m', JSON.stringify(body)], { timeout: 15000 },
    (err, stdout, stderr) => resolve({ code: err ? (err.code ?? 1) : 0, stderr }));
  });
}

test('a subscribed device receives its command over MQTT and answers it there', async () => {
  const d = await createDevice();
  const sub = subscribe(String(d.id), d.token, `devices/${d.id}/commands`);
  try {
    await h.sleep(1500); // the subscription is in place
    const c = await command(d);
    await h.waitFor(() => sub.messages.length >= 1, { timeout: 10000, message: `no command; ${sub.stderr}` });
    const got = sub.messages[0];
    assert.equal(got.type, 'command');
    assert.equal(got.command.id, c.id);
    assert.equal(got.command.name, 'relay');
    assert.deepEqual(got.command.params, { state: 'off' });
    // Delivered: claimed like any transport's delivery.
    await h.waitFor(async () => (await status(c.id)).status === 'sent', { timeout: 5000 });
    assert.equal((await status(c.id)).attempts, 1);

    const r = await publish(String(d.id), d.token, `devices/${d.id}/command_results`,
      { type: 'command_result', id: c.id, status: 'succeeded', result: { state: 'off' } });
    assert.equal(r.code, 0, r.stderr);
    await h.waitFor(async () => (await status(c.id)).status === 'succeeded', { timeout: 10000 });
    assert.deepEqual((await status(c.id)).result, { state: 'off' });
  } finally {
    await sub.stop();
  }
});

test('by serial: the topic under the serial gets it too', async () => {
  const d = await createDevice('MQTT-cmd-7');
  const sub = subscribe(d.serial, d.token, `devices/${d.serial}/commands`);
  try {
    await h.sleep(1500);
    const c = await command(d, 'interval', { seconds: 60 });
    await h.waitFor(() => sub.messages.some((m) => m.command.id === c.id), { timeout: 10000 });
    // The answer without the envelope's type, under the serial's topic.
    const r = await publish(d.serial, d.token, `devices/${d.serial}/command_results`,
      { id: c.id, status: 'failed', error: 'unknown command' });
    assert.equal(r.code, 0, r.stderr);
    await h.waitFor(async () => (await status(c.id)).status === 'failed', { timeout: 10000 });
    assert.equal((await status(c.id)).error, 'unknown command');
  } finally {
    await sub.stop();
  }
});

test('unanswered, a command is published again after COMMAND_LOCK_S; a subscriber that came late gets it', async () => {
  const d = await createDevice();
  const c = await command(d); // nobody listens yet: it stays queued
  await h.sleep(1000);
  assert.equal((await status(c.id)).status, 'queued');
  const sub = subscribe(String(d.id), d.token, `devices/${d.id}/commands`);
  try {
    // The periodic pass finds it (every 5 s), then the lock (3 s) passes unanswered.
    await h.waitFor(() => sub.messages.filter((m) => m.command.id === c.id).length >= 2,
      { timeout: 30000, message: 'not delivered twice' });
    assert.ok((await status(c.id)).attempts >= 2);
  } finally {
    await sub.stop();
  }
});

test('a device that does not subscribe keeps its commands for the long-poll', async () => {
  const d = await createDevice();
  const c = await command(d);
  await h.sleep(6000); // a periodic pass has come and gone
  assert.equal((await status(c.id)).status, 'queued');
  const poll = await api('GET', '/api/v1/device/commands?wait=1', { token: d.token });
  assert.equal(poll.status, 200, poll.text);
  assert.deepEqual(poll.json.items.map((x) => x.id), [c.id]);
});

test("answers that are not the device's, or not answers, are dead-lettered; the rest go on", async () => {
  const a = await createDevice();
  const b = await createDevice();
  const cb = await command(b);
  const conn = await amqp.connect(ctx.rabbit.amqpUrl);
  try {
    const ch = await conn.createChannel();
    await ch.purgeQueue('wattline.measurements.dead');
    // a answering b's command, a malformed answer, and garbage.
    for (const body of [{ id: cb.id, status: 'succeeded' }, { id: cb.id, status: 'maybe' }]) {
      const r = await publish(String(a.id), a.token, `devices/${a.id}/command_results`, body);
      assert.equal(r.code, 0, r.stderr);
    }
    await h.waitFor(async () => (await ch.checkQueue('wattline.measurements.dead')).messageCount >= 2,
      { timeout: 10000 });
    assert.equal((await status(cb.id)).status, 'queued');
    const logs = ctx.server.stdout();
    assert.match(logs, /no such command of this device/);
    assert.match(logs, /status/);
  } finally {
    await conn.close();
  }
});
