'use strict';
// wattline-sim --mqtt --commands against a real RabbitMQ node, without Wattline: the test
// plays the server's part, publishing commands to amq.topic with routing key
// devices.<id>.commands (what an MQTT subscriber of devices/<id>/commands receives) and
// reading the answers from a queue of its own bound to devices.<id>.command_results.
// MQTT logins go to a stand-in for Wattline's /api/v1/broker/auth/* that allows the
// test's device token and everything else asked.
//
// What it shows: the simulator subscribes at QoS 1 and answers each command with a
// {"type": "command_result", ...} body; both shapes of a command (the bare object and
// the WebSocket's {"type": "command", "command": {...}}) are understood; `relay off`
// holds the published register while readings keep coming; a command delivered again is
// answered as before and not obeyed twice; an unknown name is answered failed; a message
// without an id is ignored.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const amqp = require('amqplib');
const h = require('../api/lib/harness');
const { startRabbit } = require('../api/lib/rabbitmq');

const SIM_BIN = process.env.WATTLINE_SIM_BIN || path.join(h.REPO_ROOT, 'bin', 'wattline-sim');
const DEVICE_ID = 77;
const TOKEN = 'device-token-for-commands';
const READINGS_QUEUE = 'test.commands.measurements';
const RESULTS_QUEUE = 'test.commands.results';

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wattline-sim-commands-mqtt-'));
let rabbit = null;
let authServer = null;
let conn = null;
let channel = null;

function startAuthServer() {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => { body += chunk; });
      req.on('end', () => {
        const form = new URLSearchParams(body);
        const login = req.url === '/api/v1/broker/auth/user';
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(!login || form.get('password') === TOKEN ? 'allow' : 'deny');
      });
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

test.before(async () => {
  assert.ok(fs.existsSync(SIM_BIN), `${SIM_BIN} is missing (make bin/wattline-sim)`);
  authServer = await startAuthServer();
  rabbit = await startRabbit({ httpPort: authServer.address().port });
  conn = await amqp.connect(rabbit.amqpUrl);
  channel = await conn.createChannel();
  await channel.assertQueue(READINGS_QUEUE, { durable: true });
  await channel.bindQueue(READINGS_QUEUE, 'amq.topic', `devices.${DEVICE_ID}.measurements`);
  await channel.assertQueue(RESULTS_QUEUE, { durable: true });
  await channel.bindQueue(RESULTS_QUEUE, 'amq.topic', `devices.${DEVICE_ID}.command_results`);
});

test.after(async () => {
  try {
    if (conn) await conn.close();
    if (rabbit) await rabbit.stop();
  } finally {
    if (authServer) authServer.close();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
});

// Every message in the queue, taken off it, as JSON.
async function drain(queue) {
  const out = [];
  for (;;) {
    const msg = await channel.get(queue, { noAck: true });
    if (!msg) return out;
    out.push(JSON.parse(msg.content.toString('utf8')));
  }
}

// The registers of the readings in the queue, oldest first.
async function registers() {
  const values = [];
  for (const body of await drain(READINGS_QUEUE)) {
    for (const r of body.measurements || [body]) values.push(r.meter_kwh);
  }
  return values;
}

function publishCommand(body) {
  channel.publish('amq.topic', `devices.${DEVICE_ID}.commands`,
    Buffer.from(JSON.stringify(body)), { contentType: 'application/json' });
}

// The next answer on the results queue.
async function nextAnswer() {
  return h.waitFor(async () => {
    const msg = await channel.get(RESULTS_QUEUE, { noAck: true });
    return msg && JSON.parse(msg.content.toString('utf8'));
  }, { timeout: 10000, message: 'an answer on devices.77.command_results' });
}

test('--mqtt --commands: answers on command_results, relay holds the register, ' +
  'a redelivery is answered as before', async () => {
  const csv = path.join(workDir, 'steps.csv');
  fs.writeFileSync(csv, Array.from({ length: 900 }, (_, i) => `${500 + i}`).join('\n') + '\n');
  const proc = spawn(SIM_BIN, ['--mqtt', `mqtt://127.0.0.1:${rabbit.mqttPort}`, '--device-id',
    String(DEVICE_ID), '--token', TOKEN, '--csv', csv, '--interval', '1s', '--spool',
    'mqtt-commands.spool', '--commands'], { cwd: workDir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk) => { output += chunk; });
  proc.stderr.setEncoding('utf8').on('data', (chunk) => { output += chunk; });
  const done = new Promise((resolve) => proc.once('close', (code) => resolve(code)));
  try {
    // Readings flowing means connected, and the subscription comes first on a connection.
    await h.waitFor(async () => (await channel.checkQueue(READINGS_QUEUE)).messageCount >= 2,
      { timeout: 15000, message: `first readings (sim: ${output})` });

    publishCommand({ id: 101, name: 'relay', params: { state: 'off' }, status: 'sent' });
    assert.deepEqual(await nextAnswer(),
      { type: 'command_result', id: 101, status: 'succeeded', result: { state: 'off' } });
    await registers(); // what was published before the answer
    await h.sleep(1200); // a reading already due may still rise once
    await registers();
    await h.sleep(3200);
    const held = await registers();
    assert.ok(held.length >= 2, `readings keep coming while off: ${held}`);
    assert.ok(held.every((v) => v === held[0]), `still while off: ${held}`);

    publishCommand({ type: 'command', command: { id: 102, name: 'relay', params: { state: 'on' } } });
    assert.deepEqual(await nextAnswer(),
      { type: 'command_result', id: 102, status: 'succeeded', result: { state: 'on' } });

    // 101 again (its answer was lost, say): the same answer, and the relay stays on.
    publishCommand({ id: 101, name: 'relay', params: { state: 'off' }, status: 'sent' });
    assert.deepEqual(await nextAnswer(),
      { type: 'command_result', id: 101, status: 'succeeded', result: { state: 'off' } });
    await h.sleep(3200);
    // Still readings until `on` came, then one step a reading from where it stood.
    const after = await registers();
    const rising = after.filter((v) => v !== held[0]);
    assert.ok(rising.length >= 2, `readings after on: ${after}`);
    rising.forEach((v, i) => assert.equal(v, held[0] + 1 + i, `rising without a jump: ${after}`));

    // Without an id there is nothing to answer: ignored, and said.
    publishCommand({ name: 'relay', params: { state: 'off' } });
    publishCommand({ id: 103, name: 'reboot', params: {} });
    assert.deepEqual(await nextAnswer(),
      { type: 'command_result', id: 103, status: 'failed', error: 'unknown command' });
  } finally {
    proc.kill('SIGINT');
  }
  assert.equal(await done, 130, output);
  assert.match(output, /commands obeyed 2, failed 1/, output);
  assert.match(output, /1 message\(s\) on devices\/77\/commands without a command id: ignored/,
    output);
});
