'use strict';
// rabbit.js: the broker scenario's private RabbitMQ node, started with tools/rabbitmq.sh
// (as `make run-broker` and the tests start theirs) in the bench's work folder, on free
// loopback ports.
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { freePort, ROOT } = require('./wattline');

const SCRIPT = path.join(ROOT, 'tools', 'rabbitmq.sh');

function run(args, env) {
  return new Promise((resolve, reject) => {
    execFile(SCRIPT, args, { env, timeout: 180000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`tools/rabbitmq.sh ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

async function start(work) {
  const env = {
    ...process.env,
    WATTLINE_RABBITMQ_DIR: path.join(work, 'rabbitmq'),
    WATTLINE_AMQP_PORT: String(await freePort()),
    WATTLINE_MQTT_PORT: String(await freePort()),
    WATTLINE_RABBITMQ_DIST_PORT: String(await freePort()),
    WATTLINE_EPMD_PORT: String(await freePort()),
  };
  await run(['start'], env);
  const amqpUrl = (await run(['url'], env)).trim();
  // The Erlang VM's pid, for the CPU it spends (rabbitmq.sh keeps it there).
  const pid = Number(fs.readFileSync(path.join(env.WATTLINE_RABBITMQ_DIR, 'rabbitmq.pid'), 'utf8').trim());
  return { amqpUrl, pid, stop: () => run(['destroy'], env) };
}

module.exports = { start };
