'use strict';
// Scenario 7: readings through RabbitMQ. A publisher with confirms (amqplib) sends one
// reading per message for a fleet of devices, as fast as the broker confirms them; the
// figure is readings stored per second, end to end (first publish to last reading
// committed, acked only after commit). Ceiling, in the same run: the same publisher and
// the same broker with a consumer that acks without storing (ack_consumer.js), so the
// ratio says what Wattline's storing costs on top of RabbitMQ itself.

const path = require('node:path');
const readline = require('node:readline');

const amqp = require(path.resolve(__dirname, '..', '..', '..', 'tests', 'node_modules', 'amqplib'));
const pg = require('../lib/pg');
const fs = require('node:fs');

const { cpuByTree, cpuDelta, spawnTracked, stop } = require('../lib/proc');
const { sleep } = require('../lib/stats');

const DEVICES = 200;
const CONFIRM_WINDOW = 2000; // messages published before waiting for their confirms
const CEILING_QUEUE = 'bench.ceiling';
const PREFETCH = 512; // AMQP_PREFETCH's default, for both consumers

// The process trees whose CPU the scenario reports: the server, PostgreSQL (the
// postmaster and its backends), the RabbitMQ node, and the bench itself (the publisher,
// and the ceiling's consumer, its child).
function trees(ctx) {
  const firstLine = (file) => Number(fs.readFileSync(file, 'utf8').split('\n')[0]);
  return {
    wattline: ctx.server.pid,
    postgresql: firstLine(path.join(process.env.BENCH_PG_DATA, 'postmaster.pid')),
    rabbitmq: ctx.rabbitPid,
    bench: process.pid,
  };
}

function message(device, k, t0) {
  return Buffer.from(JSON.stringify({ device_id: device.id,
    ts: new Date(t0 + k * 60000).toISOString(), kwh: 0.001 }));
}

// Publishes n messages round the devices to routingKey(device), confirmed in windows.
async function publishAll(ch, devices, n, routingKey, t0) {
  const started = Date.now();
  for (let k = 0; k < n; k++) {
    const device = devices[k % devices.length];
    ch.publish('wattline', routingKey(device), message(device, Math.floor(k / devices.length), t0),
      { persistent: true, contentType: 'application/json' });
    if (k % CONFIRM_WINDOW === CONFIRM_WINDOW - 1) await ch.waitForConfirms();
  }
  await ch.waitForConfirms();
  return (Date.now() - started) / 1000;
}

async function ceiling(url, n, devices, t0, roots) {
  const conn = await amqp.connect(url);
  try {
    const setup = await conn.createChannel();
    await setup.assertQueue(CEILING_QUEUE, { durable: true });
    await setup.purgeQueue(CEILING_QUEUE);
    await setup.bindQueue(CEILING_QUEUE, 'wattline', 'ceiling.#');
    const consumer = spawnTracked(process.execPath,
      [path.join(__dirname, '..', 'lib', 'ack_consumer.js'), url, CEILING_QUEUE, String(PREFETCH), String(n)],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = readline.createInterface({ input: consumer.stdout });
    const events = lines[Symbol.asyncIterator]();
    if ((await events.next()).value !== 'ready') throw new Error('ack_consumer did not start');
    const ch = await conn.createConfirmChannel();
    const cpuBefore = cpuByTree(roots);
    const started = Date.now();
    const publishSeconds = await publishAll(ch, devices, n, () => 'ceiling.x', t0);
    const done = (await events.next()).value;
    const cpu = cpuDelta(cpuBefore, cpuByTree(roots));
    const finished = Number(String(done).split(' ')[1]);
    await stop(consumer);
    await setup.deleteQueue(CEILING_QUEUE);
    return { messages: n, rate: n / ((finished - started) / 1000), publish_seconds: publishSeconds,
      cpu_seconds: cpu };
  } finally {
    await conn.close();
  }
}

async function storedSince(devices, t0) {
  const ids = devices.map((d) => d.id).join(',');
  return Number(await pg.scalar(`SELECT count(*) FROM readings
    WHERE device_id IN (${ids}) AND ts >= to_timestamp(${t0 / 1000})`));
}

async function wattline(ctx, url, n, devices, t0, roots) {
  const conn = await amqp.connect(url);
  try {
    const ch = await conn.createConfirmChannel();
    const cpuBefore = cpuByTree(roots);
    const started = Date.now();
    const publishing = publishAll(ch, devices, n, (d) => `measurements.${d.id}`, t0);
    let stored = 0;
    while (stored < n) {
      await sleep(20);
      stored = await storedSince(devices, t0);
      ctx.server.assertAlive();
      if (Date.now() - started > 300000) throw new Error(`only ${stored} of ${n} stored in 300 s`);
    }
    const seconds = (Date.now() - started) / 1000;
    const publishSeconds = await publishing;
    // Where the CPU went, in µs per stored reading (2 cores: 2,000,000 µs a second in all).
    const cpu = cpuDelta(cpuBefore, cpuByTree(roots));
    const cpuUsPerReading = Object.fromEntries(Object.entries(cpu)
      .map(([comm, s]) => [comm, Math.round((s * 1e6) / n)]));
    return { messages: n, stored, rate: n / seconds, publish_seconds: publishSeconds,
      cpu_seconds: cpu, cpu_us_per_reading: cpuUsPerReading };
  } finally {
    await conn.close();
  }
}

async function run(ctx) {
  const url = ctx.amqpUrl;
  ctx.log(`broker: ${DEVICES} interval devices`);
  const devices = [];
  for (let i = 0; i < DEVICES; i++) {
    devices.push(await ctx.server.apiOk('POST', '/api/v1/devices', 201, {
      token: ctx.setup.admin.token,
      body: { name: `broker-${i}`, max_hourly_kwh: 1e6, reading_type: 'interval' },
    }));
  }
  const n = ctx.cfg.brokerMessages;
  // Minutes in the past, far enough that n readings per device stay behind now.
  const t0 = Math.floor(Date.now() / 60000) * 60000 - (Math.ceil(n / DEVICES) + 60) * 60000;
  await pg.checkpoint();
  ctx.log(`broker: ceiling, ${n.toLocaleString('en-US')} messages acked without storing`);
  const roots = trees(ctx);
  const ceil = await ceiling(url, n, devices, t0, roots);
  ctx.log(`broker: Wattline, ${n.toLocaleString('en-US')} messages stored`);
  const w = await wattline(ctx, url, n, devices, t0, roots);
  const metrics = await ctx.server.api('GET', '/metrics');
  const dead = /wattline_broker_messages_total\{result="dead"\} (\d+)/.exec(metrics.text);
  return { devices: DEVICES, prefetch: PREFETCH, ceiling: ceil, wattline: w,
    dead: dead ? Number(dead[1]) : null };
}

module.exports = { run };
