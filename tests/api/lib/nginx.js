'use strict';
// nginx: Debian's nginx in front of Wattline instances, run unprivileged from a temporary
// prefix with docker/nginx.conf rendered for loopback upstreams (tools/render-nginx.sh),
// as tools/docker-check.sh does for `nginx -t`.
//
//   const ngx = require('./lib/nginx');
//   const proxy = await ngx.startNginx({ port, cert, key, ca,
//     http: ['127.0.0.1:8001', '127.0.0.1:8002'], ws: ['127.0.0.1:9001', '127.0.0.1:9002'] });
//   proxy.baseUrl, proxy.wsUrl        // https://127.0.0.1:PORT, wss://127.0.0.1:PORT/ws
//   proxy.accessLog()                 // parsed lines of access.log: {request, status, rid, upstream, ...}
//   proxy.errorLog(), proxy.stderr()
//   await proxy.stop()                // SIGQUIT (graceful), then waits for the exit
//   ngx.waitForListener(port)         // polls until a TCP connect to 127.0.0.1:port works
//
// When the tests run as root, nginx runs as nobody (the prefix, config, certificate and
// key are handed to it): a test must not need privileges the product does not. nobody
// may not enter the checkout (a clone in /root) or a private TMPDIR, so nginx reads
// nothing from the checkout, runs from /, and its prefix is made under the first of
// TMPDIR and /tmp that nobody can reach. nginx is
// stopped when this process exits, and a detached reaper stops it if this process is
// killed outright (nginx workers outlive a master killed with SIGKILL, so the reaper
// sends SIGTERM, which the master passes on).

const { spawn, spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const certs = require('./certs');
const hs = require('./https');

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const RENDER = path.join(REPO_ROOT, 'tools', 'render-nginx.sh');
const NGINX_CANDIDATES = ['/usr/sbin/nginx', '/usr/bin/nginx'];
const UNPRIVILEGED_USER = 'nobody';
const START_TIMEOUT_MS = 10000;
const STOP_TIMEOUT_MS = 10000;

// Sends SIGTERM to the nginx master named in the pipe's arguments once this process is
// gone (its end of the pipe closes), unless the pid was reused meanwhile.
const REAPER_SCRIPT = `
pid=$1; start=$2
cat >/dev/null
now=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f20)
[ "$now" = "$start" ] && kill -TERM "$pid" 2>/dev/null
exit 0
`;

function nginxBinary() {
  const found = NGINX_CANDIDATES.find((p) => fs.existsSync(p));
  if (!found) throw new Error('nginx not found (apt-get install nginx-light or nginx)');
  return found;
}

function isRoot() {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function userIds(name) {
  return {
    uid: Number(execFileSync('id', ['-u', name], { encoding: 'utf8' })),
    gid: Number(execFileSync('id', ['-g', name], { encoding: 'utf8' })),
  };
}

function processStartTime(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Polls until 127.0.0.1:port accepts a TCP connection.
async function waitForListener(port, { timeout = START_TIMEOUT_MS } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const up = await new Promise((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (up) return;
    if (Date.now() >= deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeout} ms`);
    await sleep(50);
  }
}

// One access.log line in docker/nginx.conf's "wattline" format, as an object.
function parseAccessLine(line) {
  const m = /^(\S+) \[([^\]]+)\] "([^"]*)" (\d+) (\d+) (\S+) rid=(\S*) upstream=(.*) ustatus=(.*) utime=(.*)$/.exec(line);
  if (!m) return { raw: line };
  return { remote: m[1], time: m[2], request: m[3], status: Number(m[4]), bytes: Number(m[5]),
    requestTime: Number(m[6]), rid: m[7], upstream: m[8], upstreamStatus: m[9], upstreamTime: m[10] };
}

class Nginx {
  constructor({ proc, prefix, port }) {
    this.proc = proc;
    this.pid = proc.pid;
    this.prefix = prefix;
    this.port = port;
    this.baseUrl = `https://127.0.0.1:${port}`;
    this.wsUrl = `wss://127.0.0.1:${port}/ws`;
    this.stderrText = '';
    this.exitInfo = null;
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk) => { this.stderrText += chunk; });
    proc.stdout.resume();
    this.closed = new Promise((resolve) => {
      proc.on('close', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
    });
    this.onExit = () => this.killSync();
    process.on('exit', this.onExit);
  }

  stderr() {
    return this.stderrText;
  }

  readPrefixFile(name) {
    try {
      return fs.readFileSync(path.join(this.prefix, name), 'utf8');
    } catch {
      return '';
    }
  }

  errorLog() {
    return this.readPrefixFile('error.log');
  }

  accessLog() {
    return this.readPrefixFile('access.log').split('\n').filter(Boolean).map(parseAccessLine);
  }

  killSync() {
    if (this.exitInfo) return;
    try {
      process.kill(this.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }

  // Graceful stop (SIGQUIT: finish what is in flight); SIGTERM after the timeout.
  async stop({ timeout = STOP_TIMEOUT_MS } = {}) {
    process.removeListener('exit', this.onExit);
    if (this.exitInfo) return this.exitInfo;
    this.proc.ref();
    this.proc.stderr.ref();
    this.proc.kill('SIGQUIT');
    let timer;
    const expired = new Promise((resolve) => { timer = setTimeout(resolve, timeout, null); });
    const info = await Promise.race([this.closed, expired]);
    clearTimeout(timer);
    if (info) return info;
    this.proc.kill('SIGTERM');
    await this.closed;
    throw new Error(`nginx did not stop within ${timeout} ms of SIGQUIT; error.log:\n${this.errorLog()}`);
  }
}

// Gives the prefix and everything in it to `owner` (uid/gid), so nginx running as that
// user can write its pid file, logs and temp directories and read the key.
function handOver(dir, owner) {
  fs.chownSync(dir, owner.uid, owner.gid);
  for (const name of fs.readdirSync(dir)) fs.chownSync(path.join(dir, name), owner.uid, owner.gid);
}

// The directory to make nginx's prefix in: as root, one nobody can enter.
function prefixBase() {
  if (!isRoot()) return os.tmpdir();
  const reachable = (dir) => spawnSync('runuser', ['-u', UNPRIVILEGED_USER, '--', 'test', '-x', dir],
    { cwd: '/' }).status === 0;
  return [os.tmpdir(), '/tmp'].find(reachable) ?? '/tmp';
}

function startReaper(pid) {
  const reaper = spawn('sh', ['-c', REAPER_SCRIPT, 'wattline-nginx-reaper', String(pid),
    processStartTime(pid)], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
  reaper.unref();
  reaper.stdin.unref();
  reaper.stdin.on('error', () => {});
}

// Renders docker/nginx.conf into a fresh prefix and starts nginx in the foreground on
// 127.0.0.1:port; resolves once a TLS handshake verified against `ca` succeeds.
async function startNginx({ port, cert, key, ca, http, ws }) {
  const bin = nginxBinary();
  const prefix = certs.tempDir('wattline-nginx-', prefixBase());
  fs.chmodSync(prefix, 0o755); // nobody must reach it
  fs.copyFileSync(cert, path.join(prefix, 'server.crt'));
  fs.copyFileSync(key, path.join(prefix, 'server.key'));
  fs.chmodSync(path.join(prefix, 'server.key'), 0o600);
  const conf = path.join(prefix, 'nginx.conf');
  try {
    execFileSync(RENDER, [conf, `LISTEN=127.0.0.1:${port}`, `PREFIX=${prefix}`,
      `TLS_CERT=${prefix}/server.crt`, `TLS_KEY=${prefix}/server.key`,
      `WATTLINE_HTTP_1=${http[0]}`, `WATTLINE_HTTP_2=${http[1]}`,
      `WATTLINE_WS_1=${ws[0]}`, `WATTLINE_WS_2=${ws[1]}`],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new Error(`tools/render-nginx.sh failed: ${err.stderr || err.message}`);
  }
  const spawnOptions = { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] };
  if (isRoot()) {
    const owner = userIds(UNPRIVILEGED_USER);
    handOver(prefix, owner);
    Object.assign(spawnOptions, owner);
  }
  const proc = spawn(bin, ['-p', prefix, '-e', 'stderr', '-c', conf], spawnOptions);
  await new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('spawn', resolve);
  });
  startReaper(proc.pid);
  const nginx = new Nginx({ proc, prefix, port });
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (nginx.exitInfo) {
      throw new Error(`nginx exited (${JSON.stringify(nginx.exitInfo)}) while starting:\n` +
        `${nginx.stderr()}${nginx.errorLog()}`);
    }
    try {
      await hs.handshake({ port, ca, timeout: 1000 });
      break;
    } catch (err) {
      if (Date.now() >= deadline) {
        await nginx.stop().catch(() => {});
        throw new Error(`nginx did not answer a TLS handshake on ${port}: ${err.message}\n` +
          `${nginx.stderr()}${nginx.errorLog()}`);
      }
      await sleep(50);
    }
  }
  proc.unref();
  proc.stderr.unref();
  proc.stdout.unref();
  return nginx;
}

module.exports = { startNginx, waitForListener };
