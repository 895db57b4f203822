'use strict';
// Fault drills for broker ingestion: a publisher with confirms streams readings into
// RabbitMQ while (1) Wattline is killed with SIGKILL and started again, and (2) PostgreSQL
// crashes and comes back. At least once end to end, exactly once in storage: every
// reading stored once, none invented, the queue drained; while PostgreSQL is down nothing
// is acked and consumption resumes by itself.
const test = require('node:test');
const assert = require('node:assert/strict');
const amqp = require('amqplib');
const h = require('../api/lib/harness');
const { startRabbit } = require('../api/lib/rabbitmq');

const DEVICES = 4;
const PER_DEVICE = 750;

async function metric(server, name) {
  const res = await h.api(server, 'GET', '/metrics');
  const line = res.text.split('\n').find((l) => l.split(' ')[0] === name);
  return line ? Number(line.split(' ').pop()) : NaN;
}

async function settled(server) {
  return (await metric(server, 'wattline_broker_messages_total{result="stored"}')) +
    (await metric(server, 'wattline_broker_messages_total{result="duplicate"}'));
}

async function queueDepth(rabbit, queue) {
  const out = await rabbit.rabbitmqctl(['list_queues', '-q', 'name', 'messages']);
  for (const line of out.split('\n')) {
    const [name, messages] = line.trim().split(/\s+/);
    if (name === queue) return Number(messages);
  }
  return NaN;
}

// PostgreSQL, RabbitMQ and a server consuming it, with DEVICES interval devices.
async function setup(t) {
  const pg = await h.startPostgres();
  const rabbit = await startRabbit();
  const env = { AMQP_URL: rabbit.amqpUrl };
  const servers = [await h.startServer({ databaseUrl: pg.url, env })];
  t.after(async () => {
    for (const s of servers) await s.kill();
    await rabbit.stop();
    await pg.destroy();
  });
  await servers[0].waitReady();
  const admin = await h.createUser(servers[0], { role: 'admin' });
  const token = (await h.login(servers[0], admin.email, admin.password)).access_token;
  const devices = [];
  for (let k = 0; k < DEVICES; k++) {
    const res = await h.api(servers[0], 'POST', '/api/v1/devices', { token,
      body: { name: `drill ${k}`, max_hourly_kwh: 1000, reading_type: 'interval' } });
    assert.equal(res.status, 201, res.text);
    devices.push(res.json);
  }
  const conn = await amqp.connect(rabbit.amqpUrl);
  t.after(() => conn.close().catch(() => {}));
  const ch = await conn.createConfirmChannel();
  return { pg, rabbit, env, servers, devices, ch };
}

// Publishes PER_DEVICE readings per device, paced (about 2,000 a second), with confirms.
async function stream(ch, devices) {
  const t0 = Math.floor(Date.now() / 1000) * 1000 - 20 * 3600e3;
  for (let k = 0; k < PER_DEVICE; k++) {
    for (const d of devices) {
      ch.publish('wattline', `measurements.${d.id}`, Buffer.from(JSON.stringify({
        device_id: d.id, ts: new Date(t0 + k * 1000).toISOString(), kwh: 0.001 })), { persistent: true });
    }
    if (k % 50 === 49) {
      await ch.waitForConfirms();
      await h.sleep(100);
    }
  }
  await ch.waitForConfirms();
}

// Exactly once: each device holds its PER_DEVICE distinct readings, nothing else, and
// its hours add up to them.
function audit(pg, devices) {
  for (const d of devices) {
    const row = pg.row(`SELECT count(*) AS n, count(DISTINCT ts) AS distinct_ts,
      (SELECT round(sum(kwh)::numeric, 6) FROM device_hours WHERE device_id = ${d.id}) AS kwh
      FROM readings WHERE device_id = ${d.id}`);
    assert.equal(Number(row.n), PER_DEVICE, `device ${d.id}: ${row.n} readings`);
    assert.equal(Number(row.distinct_ts), PER_DEVICE);
    assert.equal(Number(row.kwh), Number((PER_DEVICE * 0.001).toFixed(6)));
  }
}

test('Wattline killed with SIGKILL mid-stream and started again: every reading stored once, the queue drained',
  { timeout: 240000 }, async (t) => {
    const { pg, rabbit, env, servers, devices, ch } = await setup(t);
    const publishing = stream(ch, devices);
    await h.waitFor(async () => (await settled(servers[0])) >= 400, { timeout: 60000 });
    await servers[0].kill();
    // Deliveries it held unacked go back to the queue; the next instance takes them.
    const next = await h.startServer({ databaseUrl: pg.url, env });
    servers.push(next);
    await next.waitReady();
    await publishing;
    await h.waitFor(async () => (await queueDepth(rabbit, 'wattline.measurements')) === 0,
      { timeout: 90000, message: 'the queue drained' });
    audit(pg, devices);
    assert.equal(await queueDepth(rabbit, 'wattline.measurements.dead'), 0);
  });

test('PostgreSQL crashes mid-stream: nothing acked while it is down, everything stored once after',
  { timeout: 240000 }, async (t) => {
    const { pg, rabbit, servers, devices, ch } = await setup(t);
    const server = servers[0];
    const publishing = stream(ch, devices);
    await h.waitFor(async () => (await settled(server)) >= 400, { timeout: 60000 });
    await pg.stop({ mode: 'immediate' });
    const downAt = await settled(server);
    await publishing; // RabbitMQ keeps taking messages meanwhile
    await h.sleep(3000);
    // Nothing was acked while PostgreSQL was down: the queue holds every message
    // not settled before the crash (a group in flight at the crash may have been acked
    // just before it, so allow for what settled right then).
    const acked = await settled(server);
    assert.ok(acked - downAt <= 512, `${acked - downAt} settled while down`);
    const depth = await queueDepth(rabbit, 'wattline.measurements');
    assert.ok(depth > 0, 'the crash came after everything was stored: no drill');
    assert.equal(depth, DEVICES * PER_DEVICE - acked);
    await h.sleep(2000);
    assert.equal(await settled(server), acked, 'acked while PostgreSQL was down');
    assert.equal(await metric(server, 'wattline_broker_connected'), 1);
    assert.equal((await h.api(server, 'GET', '/readyz')).status, 503);

    const back = Date.now();
    await pg.start();
    await h.waitFor(async () => (await queueDepth(rabbit, 'wattline.measurements')) === 0,
      { timeout: 60000, message: 'the queue drained after PostgreSQL came back' });
    const resumedWithin = Date.now() - back;
    assert.ok(resumedWithin < 30000, `consumption resumed after ${resumedWithin} ms`);
    audit(pg, devices);
    assert.equal(await queueDepth(rabbit, 'wattline.measurements.dead'), 0);
  });
