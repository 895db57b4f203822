'use strict';
// rabbit.js: the broker scenario's private RabbitMQ node, started with tools/rabbitmq.sh
// (as `make run-broker` and the tests start theirs) in the bench's work folder, on free
// loopback ports.
const { execFile } = require('node:child_process');
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
  return { amqpUrl, stop: () => run(['destroy'], env) };
}

module.exports = { start };
