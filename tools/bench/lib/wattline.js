'use strict';
// wattline: the server under test (bin/wattline, or run.sh's WATTLINE_BIN) and its HTTP API.
//
// The server runs with its production defaults except where the benchmark needs room:
// longer-lived access tokens (the run outlasts the default 15 minutes' margin), and
// WebSocket session limits that admit 50,000 idle sessions. Its request log (one line
// per request, as in production) goes to a file, not to a pipe this process would
// have to drain while it generates load.

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');

const { exited, run, spawnTracked, stop } = require('./proc');
const { sleep } = require('./stats');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BIN = process.env.BENCH_SERVER_BIN || path.join(ROOT, 'bin', 'wattline');
const READY_TIMEOUT_MS = 30000;

// A loopback port nobody listens on right now.
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function baseEnv(databaseUrl) {
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name.startsWith('BENCH_') || name === 'JWT_SECRET_FILE') delete env[name];
  }
  return { ...env, DATABASE_URL: databaseUrl, LOG_FORMAT: 'json', LOG_LEVEL: 'info' };
}

// GET url: resolves to the status code, 0 when nothing answers.
function probe(url) {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 1000, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
      res.on('error', () => resolve(0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

class Server {
  constructor({ databaseUrl, work, env = {} }) {
    this.databaseUrl = databaseUrl;
    this.extraEnv = env;
    this.work = work;
    this.proc = null;
  }

  get pid() {
    return this.proc.pid;
  }

  async start() {
    this.httpPort = await freePort();
    this.wsPort = await freePort();
    this.baseUrl = `http://127.0.0.1:${this.httpPort}`;
    this.wsUrl = `ws://127.0.0.1:${this.wsPort}/ws`;
    this.env = {
      ...baseEnv(this.databaseUrl),
      HTTP_ADDR: '127.0.0.1',
      HTTP_PORT: String(this.httpPort),
      WS_PORT: String(this.wsPort),
      JWT_SECRET: crypto.randomBytes(48).toString('hex'),
      ACCESS_TOKEN_TTL: '3600',
      // The scale scenario's 50,000 sessions, over 180 users.
      WS_MAX_SESSIONS: '60000',
      WS_MAX_SESSIONS_PER_USER: '1000',
      // Measures the server, not the per-device limit: 1,000 devices at 10k/s is
      // each device's 600 a minute already.
      DEVICE_RATE_PER_MIN: '0',
      // Every client of the bench is 127.0.0.1: thousands of sessions open
      // at once, each unauthenticated for a moment.
      WS_MAX_UNAUTH_PER_ADDR: '100000',
      // The webhook scenario's receiver listens on loopback.
      WEBHOOK_ALLOW_PRIVATE: '1',
      ...this.extraEnv,
    };
    this.logFile = path.join(this.work, 'wattline.log');
    const out = fs.openSync(this.logFile, 'a');
    this.proc = spawnTracked(BIN, ['serve'], { cwd: ROOT, env: this.env,
      stdio: ['ignore', out, out] });
    fs.closeSync(out);
    await this.waitReady();
  }

  async waitReady() {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while ((await probe(`${this.baseUrl}/readyz`)) !== 200) {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
        throw new Error(`wattline exited during start-up; see the end of its log:\n${this.logTail()}`);
      }
      if (Date.now() > deadline) throw new Error(`wattline not ready after ${READY_TIMEOUT_MS} ms`);
      await sleep(50);
    }
  }

  logTail(lines = 20) {
    try {
      return fs.readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  // Fails loudly if the server died during a phase (a crash is a result too, but the
  // remaining phases would only measure connection errors).
  assertAlive() {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
      throw new Error(`wattline exited (${this.proc.exitCode ?? this.proc.signalCode}); ` +
        `log tail:\n${this.logTail()}`);
    }
  }

  async stop() {
    if (this.proc) await stop(this.proc);
  }

  exited() {
    return exited(this.proc);
  }

  // `wattline ARGS...` against the same database; resolves to {code, stdout, stderr}.
  cli(args, input) {
    return run(BIN, args, { cwd: ROOT, env: baseEnv(this.databaseUrl), input });
  }

  // One API request: {status, json, text}. Never throws for an HTTP status.
  async api(method, urlPath, { token, body, headers = {} } = {}) {
    const sendHeaders = { ...headers };
    if (token) sendHeaders.authorization = `Bearer ${token}`;
    let payload;
    if (body !== undefined) {
      payload = JSON.stringify(body);
      sendHeaders['content-type'] = 'application/json';
    }
    const res = await fetch(this.baseUrl + urlPath, { method, headers: sendHeaders, body: payload });
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    return { status: res.status, json, text };
  }

  // api() that throws unless the status is the expected one; resolves to the JSON.
  async apiOk(method, urlPath, expected, options) {
    const res = await this.api(method, urlPath, options);
    if (res.status !== expected) {
      throw new Error(`${method} ${urlPath}: HTTP ${res.status} (expected ${expected}): ` +
        res.text.slice(0, 500));
    }
    return res.json;
  }
}

module.exports = { BIN, ROOT, Server, freePort };
