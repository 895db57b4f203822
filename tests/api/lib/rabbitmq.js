'use strict';
// rabbitmq: throwaway RabbitMQ nodes for the broker tests, through tools/rabbitmq.sh (the
// script behind `make run-broker`), so the tests run the node exactly as developers do.
//
//   const { startRabbit } = require('./lib/rabbitmq');
//   const rabbit = await startRabbit({ httpPort: ctx.server.httpPort });
//   // rabbit.amqpUrl, rabbit.amqpPort, rabbit.mqttPort, rabbit.mqttUrl, rabbit.dir, rabbit.node
//   await rabbit.restart();              // stop, then start on the same data and ports
//   await rabbit.restart({ kill: true, downMs: 2000 });  // kill -9, 2 s down, start
//   await rabbit.rabbitmqctl(['list_queues', 'name', 'messages']);  // -> stdout
//   await rabbit.stop();                 // stops the node and removes its folder
//
// With a Wattline server that consumes from it and answers its HTTP auth backend (the
// node must know the server's port before the server knows the node's URL):
//   const httpPort = await h.freePort();
//   const rabbit = await startRabbit({ httpPort });
//   const server = await h.startServer({ databaseUrl: pg.url,
//     env: { HTTP_PORT: httpPort, AMQP_URL: rabbit.amqpUrl } });
//
// Each node has a temporary folder (mode 0700) and free loopback ports of its own (AMQP,
// MQTT, distribution, epmd), so its epmd goes with it. httpPort is where the node's HTTP
// auth backend asks about MQTT logins (Wattline's, or a test's stand-in). A node a test
// forgets is stopped and removed when the test process exits, and by a small detached
// reaper if the process is killed outright.
//
// On a busy 2-core machine the first start of a node takes 10-15 s (a new database and
// the MQTT plugin's Raft member), a restart on the same data 5-9 s (about 12 s after a
// kill -9), a stop about 1.3 s.

const { execFile, spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { freePort, REPO_ROOT, sleep } = require('./harness');

const SCRIPT = path.join(REPO_ROOT, 'tools', 'rabbitmq.sh');
const START_TIMEOUT_S = 90; // the machine is shared: a slow first boot is not a failure

const liveNodes = new Set();
let exitHookInstalled = false;

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const node of liveNodes) node.cleanupSync();
  });
}

function run(args, env, { timeout = (START_TIMEOUT_S + 30) * 1000 } = {}) {
  return new Promise((resolve, reject) => {
    execFile(SCRIPT, args, { env, timeout, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        err.message = `tools/rabbitmq.sh ${args.join(' ')} failed: ${err.message}\n${stdout}${stderr}`;
        reject(err);
      } else {
        resolve(stdout);
      }
    });
  });
}

// The pid of the node's VM (rabbitmq.pid), or 0.
function beamPid(dir) {
  try {
    return Number(fs.readFileSync(path.join(dir, 'rabbitmq.pid'), 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

// The node's processes alive now (the VM and its children), from /proc: whatever has
// the node's folder in its environment. Used to prove a stop leaves nothing behind.
function nodeProcesses(dir) {
  const marker = `RABBITMQ_MNESIA_BASE=${path.join(dir, 'mnesia')}`;
  const out = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue; // zombie
      const environ = fs.readFileSync(`/proc/${name}/environ`, 'utf8').split('\0');
      if (environ.includes(marker)) out.push(Number(name));
    } catch {
      // exited meanwhile, or not ours to read
    }
  }
  return out;
}

class RabbitNode {
  constructor({ dir, env, ports }) {
    this.dir = dir;
    this.env = env;
    Object.assign(this, ports);
    this.user = 'wattline'; // the node's administrator (tools/rabbitmq.sh)
    this.password = '';
    this.amqpUrl = '';
    this.mqttUrl = `mqtt://127.0.0.1:${ports.mqttPort}`;
    this.node = '';
    this.running = false;
    this.removed = false;
    this.reaper = null;
  }

  async startNode() {
    if (this.removed) throw new Error('startNode: the node was removed');
    if (this.running) return;
    await run(['start'], this.env);
    this.running = true;
    this.amqpUrl = (await run(['url'], this.env)).trim();
    this.password = fs.readFileSync(path.join(this.dir, 'password'), 'utf8').trim();
    const envText = await run(['env'], this.env);
    this.node = /^RABBITMQ_NODENAME=(\S+)$/m.exec(envText)[1];
  }

  // Stops the node, keeping its data: cleanly, or with kill -9 of the VM (a crash).
  async stopNode({ kill = false } = {}) {
    if (!this.running) return;
    if (kill) {
      const pid = beamPid(this.dir);
      if (pid) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    await run(['stop'], this.env); // after a kill: the launcher, the pid files, epmd
    this.running = false;
  }

  async restart({ kill = false, downMs = 0 } = {}) {
    await this.stopNode({ kill });
    if (downMs > 0) await sleep(downMs);
    await this.startNode();
  }

  rabbitmqctl(args) {
    return run(['ctl', ...args], this.env, { timeout: 60000 });
  }

  processes() {
    return nodeProcesses(this.dir);
  }

  // Stops the node and removes its folder.
  async stop() {
    if (this.removed) return;
    try {
      await this.stopNode();
    } finally {
      this.remove();
    }
  }

  remove() {
    this.removed = true;
    this.running = false;
    fs.rmSync(this.dir, { recursive: true, force: true });
    liveNodes.delete(this);
    if (this.reaper) {
      // Its work is done: it must not run `stop` later against ports reused meanwhile.
      this.reaper.kill('SIGKILL');
      this.reaper.stdin.destroy();
      this.reaper = null;
    }
  }

  cleanupSync() {
    if (this.removed) return;
    spawnSync(SCRIPT, ['stop'], { env: this.env, stdio: 'ignore', timeout: 30000 });
    this.remove();
  }

  // A detached shell that blocks on a pipe only this process writes to: when this
  // process dies, however it dies, the read returns and the shell stops the node.
  startReaper() {
    const script = 'cat >/dev/null; "$1" stop >/dev/null 2>&1; rm -rf "$2"';
    this.reaper = spawn('sh', ['-c', script, 'wattline-rabbit-reaper', SCRIPT, this.dir], {
      cwd: '/', env: this.env, detached: true, stdio: ['pipe', 'ignore', 'ignore'],
    });
    this.reaper.unref();
    this.reaper.stdin.unref();
    this.reaper.stdin.on('error', () => {});
  }
}

// Starts a node in a new temporary folder on free ports; httpPort is the port of the
// HTTP auth backend (Wattline's /api/v1/broker/auth/*). Resolves once AMQP and MQTT accept.
async function startRabbit({ httpPort = 0 } = {}) {
  installExitHook();
  for (let attempt = 0; ; attempt++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wattline-rabbit-'));
    const ports = {
      amqpPort: await freePort(),
      mqttPort: await freePort(),
      distPort: await freePort(),
      epmdPort: await freePort(),
    };
    const env = {
      ...process.env,
      WATTLINE_RABBITMQ_DIR: dir,
      WATTLINE_AMQP_PORT: String(ports.amqpPort),
      WATTLINE_MQTT_PORT: String(ports.mqttPort),
      WATTLINE_RABBITMQ_DIST_PORT: String(ports.distPort),
      WATTLINE_EPMD_PORT: String(ports.epmdPort),
      // Nothing answers on port 1 when no backend is wanted: devices are refused.
      HTTP_PORT: String(httpPort || 1),
      WATTLINE_RABBITMQ_START_TIMEOUT: String(START_TIMEOUT_S),
    };
    const node = new RabbitNode({ dir, env, ports });
    liveNodes.add(node);
    node.startReaper();
    try {
      await node.startNode();
      return node;
    } catch (err) {
      node.cleanupSync();
      // Another process may take a free port before the node binds it: new ports.
      if (attempt < 2 && /in use|eaddrinuse/i.test(err.message)) continue;
      throw err;
    }
  }
}

module.exports = { startRabbit, nodeProcesses };
