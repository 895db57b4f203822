'use strict';
// The private RabbitMQ node of tools/rabbitmq.sh, as tests/api/lib/rabbitmq.js runs it:
// it starts on its own loopback ports, amqplib (a client that is not ours) connects with
// the URL it prints, guest does not exist, a message published to a durable queue is
// read back (also after a restart on the same data), and a stop leaves no process of
// the node behind, its own epmd included.
const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const amqp = require('amqplib');
const { startRabbit } = require('../api/lib/rabbitmq');

let rabbit = null;
test.after(async () => {
  if (rabbit) await rabbit.stop();
});

function accepts(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

// Publishes body to a durable queue with a confirm channel and reads it back.
async function roundTrip(url, queue, body) {
  const conn = await amqp.connect(url);
  try {
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(queue, { durable: true });
    ch.sendToQueue(queue, Buffer.from(body), { persistent: true, contentType: 'text/plain' });
    await ch.waitForConfirms();
    const msg = await ch.get(queue, { noAck: false });
    assert.ok(msg, 'a message is waiting');
    ch.ack(msg);
    await ch.close();
    return msg.content.toString();
  } finally {
    await conn.close();
  }
}

test('the node starts on its own ports and amqplib connects with its URL', async () => {
  const started = Date.now();
  rabbit = await startRabbit({ httpPort: 1 });
  const took = Date.now() - started;
  console.log(`first start took ${took} ms`);
  assert.match(rabbit.amqpUrl,
    new RegExp(`^amqp://wattline:[0-9a-f]{48}@127\\.0\\.0\\.1:${rabbit.amqpPort}/%2f$`));
  assert.equal(rabbit.mqttUrl, `mqtt://127.0.0.1:${rabbit.mqttPort}`);
  assert.ok(await accepts(rabbit.amqpPort), 'AMQP accepts');
  assert.ok(await accepts(rabbit.mqttPort), 'MQTT accepts');
  assert.equal(fs.statSync(rabbit.dir).mode & 0o777, 0o700);
  assert.equal(fs.statSync(`${rabbit.dir}/password`).mode & 0o777, 0o600);
  assert.equal(await roundTrip(rabbit.amqpUrl, 'harness.check', 'hello'), 'hello');
});

// Every listening socket of the node's processes (the VM, its epmd) is on loopback.
test('the node listens on loopback only', () => {
  const pids = new Set(rabbit.processes().map(String));
  const out = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' });
  const mine = out.split('\n').filter((line) =>
    [...line.matchAll(/pid=(\d+)/g)].some((m) => pids.has(m[1])));
  const local = mine.map((line) => line.trim().split(/\s+/)[3]);
  for (const port of [rabbit.amqpPort, rabbit.mqttPort, rabbit.distPort, rabbit.epmdPort]) {
    assert.ok(local.includes(`127.0.0.1:${port}`), `127.0.0.1:${port} listens: ${local}`);
  }
  for (const address of local) {
    assert.match(address, /^(127\.0\.0\.1|\[::1\]):\d+$/, `${address} is not loopback`);
  }
});

test('guest/guest is refused; wattline is the only user, an administrator', async () => {
  const guestUrl = `amqp://guest:guest@127.0.0.1:${rabbit.amqpPort}/%2f`;
  await assert.rejects(amqp.connect(guestUrl), /ACCESS_REFUSED|403/);
  const users = await rabbit.rabbitmqctl(['list_users', '--quiet', '--no-table-headers']);
  assert.deepEqual(users.trim().split('\n').map((l) => l.trim().split(/\s+/)),
    [['wattline', '[administrator]']]);
  const wrong = rabbit.amqpUrl.replace(/:[0-9a-f]{48}@/, ':not-the-password@');
  await assert.rejects(amqp.connect(wrong), /ACCESS_REFUSED|403/);
});

test('a persistent message in a durable queue survives a restart of the node', async () => {
  const conn = await amqp.connect(rabbit.amqpUrl);
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue('harness.durable', { durable: true });
  ch.sendToQueue('harness.durable', Buffer.from('kept'), { persistent: true });
  await ch.waitForConfirms();
  await conn.close();

  const started = Date.now();
  await rabbit.restart();
  console.log(`stop + start on the same data took ${Date.now() - started} ms`);
  const again = await amqp.connect(rabbit.amqpUrl);
  const ch2 = await again.createChannel();
  const msg = await ch2.get('harness.durable', { noAck: true });
  await again.close();
  assert.ok(msg, 'the message survived the restart');
  assert.equal(msg.content.toString(), 'kept');
});

test('stop leaves no process of the node, not even its epmd, and removes its folder', async () => {
  const pids = rabbit.processes();
  assert.ok(pids.length >= 1, 'the node runs before the stop');
  const { amqpPort, mqttPort, epmdPort, distPort, dir } = rabbit;
  const started = Date.now();
  await rabbit.stop();
  console.log(`stop took ${Date.now() - started} ms`);
  rabbit = null;
  for (const pid of pids) {
    let state = null;
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    } catch {
      state = null; // gone
    }
    assert.ok(state === null || state === 'Z', `process ${pid} of the node is still running`);
  }
  for (const port of [amqpPort, mqttPort, epmdPort, distPort]) {
    assert.equal(await accepts(port), false, `port ${port} still accepts`);
  }
  assert.equal(fs.existsSync(dir), false, 'the folder is removed');
});
