'use strict';
// harness: throwaway PostgreSQL clusters and Wattline servers for the black-box tests.
//
//   const h = require('./lib/harness');
//   const ctx = h.suite();                      // one cluster + server per test file
//   test('...', async () => {
//     const res = await h.api(ctx.server, 'GET', '/api/v1/devices', { token: ctx.admin.token });
//   });
//
// What it offers (details above each function):
//   suite({pg, server, admin})      before/after hooks: ctx.pg, ctx.server, ctx.admin, ctx.api
//   startPostgres({fsync})          -> cluster: url, port, dir, psql(sql), rows(sql), row(sql),
//                                      scalar(sql), stop({mode}), start(), restart(), destroy(),
//                                      crash() (kill -9 of every process of the cluster)
//   startServer({databaseUrl, env, args, bin})
//                                   -> server: baseUrl, wsUrl, httpPort, wsPort, jwtSecret, proc,
//                                      databaseUrl (the owner's), appDatabaseUrl (serving role),
//                                      logs(), stdout(), stderr(), waitForLog(fn), waitReady(),
//                                      stop(signal), kill()
//   cli(args, {server, input, env}) runs `wattline ARGS` -> {code, signal, stdout, stderr}
//   createUser(server, {email, name, role, password}), login(server, email, password)
//   api(server, method, path, {token, body, headers}) -> {status, headers, json, text}
//   freePort(), sleep(ms), waitFor(fn, {timeout, interval}), sanitizerReport(text)
// api() uses fetch, which checks certificates: against a TLS server started with a test
// CA, run node with NODE_EXTRA_CA_CERTS or use node:https with `ca`.
//
// Every cluster lives in its own temporary directory (mode 0700) and listens on a free
// loopback port. As root, PostgreSQL runs as the postgres user, which may not enter the
// checkout (a clone in /root) or a private TMPDIR: its directories are made under the
// first of TMPDIR, /tmp and /var/tmp it can reach, handed to it, and its programs run from /.
// Every server gets free ports and a fresh JWT secret. Whatever a test file starts is
// stopped and removed when the file's process ends, however it ends: an exit hook cleans
// up synchronously, and a small detached reaper process does the same if this process is
// killed outright (SIGKILL, or a crash the exit hook cannot see).
//
// Uses only Node's built-ins (Node 20: global fetch, node:test).

const { spawn, spawnSync, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const PG_SUPERUSER = 'wattline';
const PG_DATABASE = 'wattline';
const PG_SYSTEM_USER = 'postgres'; // PostgreSQL refuses to run as root
// The serving login role (README, "Database roles"): a member of the group role the
// migrations grant. Servers serve as it; the superuser above migrates (the owner).
const PG_APP_ROLE = 'wattline_app';
const PG_SERVER_ROLE = 'wattline_server';
const READY_TIMEOUT_MS = 15000;
const POLL_INTERVAL_MS = 50;
const STOP_TIMEOUT_MS = 10000;

// Every setting the server reads from the environment. The tests' own environment must
// not leak into a server (a JWT_SECRET_FILE exported in the shell, say), so these are
// removed before the harness sets its own.
const SERVER_CONFIG_VARS = [
  'DATABASE_URL', 'DATABASE_OWNER_URL', 'HTTP_ADDR', 'HTTP_PORT', 'WS_PORT', 'JWT_SECRET', 'JWT_SECRET_FILE',
  'ACCESS_TOKEN_TTL', 'TLS_CERT', 'TLS_KEY', 'WEB_ROOT', 'MIGRATIONS_DIR', 'OPENAPI_FILE',
  'PUBLIC_WS_URL', 'LOG_LEVEL', 'LOG_FORMAT', 'DB_POOL_SIZE', 'HTTP_THREADS',
  'WS_MAX_SESSIONS_PER_USER', 'WS_MAX_SESSIONS', 'WS_MAX_UNAUTH_PER_ADDR', 'MAX_BODY_BYTES',
  'MAX_CONNECTIONS', 'MAX_CONNECTIONS_PER_IP', 'CONNECTION_TIMEOUT', 'STATEMENT_TIMEOUT_MS',
  'PASSWORD_HASH_SLOTS', 'NO_MIGRATE', 'DEVICE_RATE_PER_MIN', 'SEND_TIMEOUT_S', 'EXPORT_MAX_PER_USER',
  'EXPORT_MAX_TOTAL', 'MAX_READING_AGE_DAYS',
  'TRUSTED_PROXIES', 'METRICS_ALLOW',
  'DB_TIMEOUT_S', 'SHUTDOWN_TIMEOUT_S',
  'AMQP_URL', 'AMQP_PREFETCH', 'AMQP_LEGACY_QUEUES', 'BROKER_AUTH_ALLOW',
  'COMMAND_LOCK_S',
  'WEBHOOK_ALLOW_PRIVATE', 'WEBHOOK_RETRY_DIVISOR', 'WEBHOOK_FAIL_WINDOW_S',
  'RAW_RETENTION_DAYS', 'ARCHIVE_DIR',
];

// Lines that mean a sanitizer found a bug, whatever the exit status says.
const SANITIZER_PATTERNS = [
  /ERROR: AddressSanitizer/,
  /ERROR: LeakSanitizer/,
  /runtime error:/,
  /SUMMARY: UndefinedBehaviorSanitizer/,
  /WARNING: ThreadSanitizer/,
];

// ---------------------------------------------------------------------------------------
// Small utilities

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Calls fn until it returns something truthy and returns that; throws after `timeout` ms
// with the last error fn threw, if any.
async function waitFor(fn, { timeout = 5000, interval = POLL_INTERVAL_MS, message } = {}) {
  const deadline = Date.now() + timeout;
  let lastError = null;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
      lastError = null;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const what = message || 'condition';
      const why = lastError ? `: ${lastError.message}` : '';
      throw new Error(`waitFor: ${what} not met within ${timeout} ms${why}`);
    }
    await sleep(interval);
  }
}

const handedOutPorts = new Set();

function bindEphemeralPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// A loopback TCP port nobody listens on right now, never the same twice in this process.
// Another process may still take it before we bind it; callers that bind retry.
async function freePort() {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await bindEphemeralPort();
    if (!handedOutPorts.has(port)) {
      handedOutPorts.add(port);
      return port;
    }
  }
  throw new Error('freePort: no free port found');
}

function randomHex(bytes) {
  return crypto.randomBytes(bytes).toString('hex');
}

function tail(text, lines = 40) {
  return String(text).split('\n').slice(-lines).join('\n');
}

// The sanitizer report in a process's stderr (from the first report line on), or null.
function sanitizerReport(stderr) {
  const lines = String(stderr).split('\n');
  const first = lines.findIndex((line) => SANITIZER_PATTERNS.some((re) => re.test(line)));
  return first < 0 ? null : lines.slice(first).join('\n');
}

// The pids whose parent is `pid` (from /proc), alive or not yet reaped.
function processChildren(pid) {
  const out = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

function isRoot() {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

// ---------------------------------------------------------------------------------------
// Cleanup: an exit hook plus a reaper for the cases the hook cannot see

const liveResources = new Set(); // objects with cleanupSync()
let registryDir = null; // one file per live resource, read by the reaper
let exitHooksInstalled = false;

// The reaper is a detached shell that blocks reading a pipe whose only writer is this
// process. When this process dies, however it dies, the read returns and the reaper
// kills the servers and removes the clusters still named in the registry directory.
// A server is named with its start time, so a recycled pid is never killed.
const REAPER_SCRIPT = `
reg=$1; pg_ctl=$2; shift 2
cat >/dev/null
for f in "$reg"/proc.*; do
  [ -f "$f" ] || continue
  read -r pid start <"$f"
  now=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f20)
  [ "$now" = "$start" ] && kill -KILL "$pid" 2>/dev/null
done
for f in "$reg"/pg.*; do
  [ -f "$f" ] || continue
  read -r dir <"$f"
  "$@" "$pg_ctl" stop -D "$dir/data" -m immediate -w >/dev/null 2>&1
  rm -rf "$dir"
done
rm -rf "$reg"
`;

function startReaper() {
  registryDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wattline-harness-'));
  const asOwner = isRoot() ? ['runuser', '-u', PG_SYSTEM_USER, '--'] : [];
  const reaper = spawn('sh', ['-c', REAPER_SCRIPT, 'wattline-reaper', registryDir,
    path.join(pgBinDir(), 'pg_ctl'), ...asOwner], {
    cwd: '/', // the postgres user may not enter ours
    detached: true, // a Ctrl-C meant for the tests must not stop the cleanup
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  reaper.unref();
  reaper.stdin.unref(); // the pipe must not keep this process alive
  reaper.stdin.on('error', () => {}); // the reaper exiting first is not our problem
}

function installExitHooks() {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  startReaper();
  process.on('exit', cleanupAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
      cleanupAllSync();
      process.exit(128 + os.constants.signals[signal]);
    });
  }
}

function cleanupAllSync() {
  // Servers first: they hold connections to the clusters.
  const ordered = [...liveResources].sort((a, b) => a.cleanupOrder - b.cleanupOrder);
  for (const resource of ordered) {
    try {
      resource.cleanupSync();
    } catch (err) {
      process.stderr.write(`harness: cleanup failed: ${err.message}\n`);
    }
  }
  liveResources.clear();
  if (registryDir) fs.rmSync(registryDir, { recursive: true, force: true });
}

function track(resource, registryLine) {
  installExitHooks();
  liveResources.add(resource);
  resource.registryFile = path.join(registryDir, `${resource.kind}.${randomHex(6)}`);
  fs.writeFileSync(resource.registryFile, `${registryLine}\n`);
}

function untrack(resource) {
  liveResources.delete(resource);
  if (resource.registryFile) fs.rmSync(resource.registryFile, { force: true });
}

function processStartTime(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

let cachedBinDir = null;

function pgBinDir() {
  if (cachedBinDir) return cachedBinDir;
  const candidates = [process.env.PG_BINDIR, '/usr/lib/postgresql/15/bin'];
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim());
  } catch {
    // no pg_config: the fixed candidates are all we have
  }
  cachedBinDir = candidates.find((dir) => dir && fs.existsSync(path.join(dir, 'pg_ctl')));
  if (!cachedBinDir) {
    throw new Error('PostgreSQL 15 server programs not found (tools/deps.sh run installs them)');
  }
  return cachedBinDir;
}

function systemUserIds(name) {
  const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }));
  const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }));
  return { uid, gid };
}

// Runs a PostgreSQL server program as the cluster's owner; throws with its output.
function runAsOwnerSync(program, args, { allowFailure = false } = {}) {
  const binary = path.join(pgBinDir(), program);
  const [cmd, argv] = isRoot()
    ? ['runuser', ['-u', PG_SYSTEM_USER, '--', binary, ...args]]
    : [binary, args];
  const res = spawnSync(cmd, argv, { cwd: '/', encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (res.error) throw res.error;
  if (res.status !== 0 && !allowFailure) {
    throw new Error(`${program} ${args.join(' ')} failed (${res.status}):\n${res.stdout}${res.stderr}`);
  }
  return res;
}

function runAsOwner(program, args) {
  return new Promise((resolve, reject) => {
    const binary = path.join(pgBinDir(), program);
    const [cmd, argv] = isRoot()
      ? ['runuser', ['-u', PG_SYSTEM_USER, '--', binary, ...args]]
      : [binary, args];
    const child = spawn(cmd, argv, { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(output);
      else reject(new Error(`${program} ${args.join(' ')} failed (${code}):\n${output}`));
    });
  });
}

// True when `user` can enter dir and create files in it.
function userCanUse(user, dir) {
  const probe = spawnSync('runuser', ['-u', user, '--', 'sh', '-c', 'test -x "$1" && test -w "$1"',
    'sh', dir], { cwd: '/' });
  return probe.status === 0;
}

// Where the cluster owner's temporary directories go: the system temp dir, unless it is
// out of that user's reach (a TMPDIR under /root, say); then /tmp or /var/tmp.
let cachedClusterBase = null;

function clusterBase() {
  if (cachedClusterBase) return cachedClusterBase;
  const candidates = [os.tmpdir(), '/tmp', '/var/tmp'];
  cachedClusterBase = candidates.find((dir) => userCanUse(PG_SYSTEM_USER, dir));
  if (!cachedClusterBase) {
    throw new Error(`user ${PG_SYSTEM_USER} can use none of ${candidates.join(', ')} ` +
      'for a throwaway cluster');
  }
  return cachedClusterBase;
}

// Makes a private (0700) temporary directory the cluster owner can use; as root that
// means one in a place the postgres user can reach, handed to it.
function makeClusterDir() {
  if (!isRoot()) return fs.mkdtempSync(path.join(os.tmpdir(), 'wattline-pg-'));
  const dir = fs.mkdtempSync(path.join(clusterBase(), 'wattline-pg-'));
  const { uid, gid } = systemUserIds(PG_SYSTEM_USER);
  fs.chownSync(dir, uid, gid);
  return dir;
}

function clusterSettings({ port, dir, fsync }) {
  const settings = {
    listen_addresses: "'127.0.0.1'",
    port: String(port),
    unix_socket_directories: `'${dir}'`,
    fsync: fsync ? 'on' : 'off',
    synchronous_commit: 'on',
    full_page_writes: fsync ? 'on' : 'off',
    max_connections: '200',
  };
  return Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n';
}

class PgCluster {
  constructor({ dir, fsync }) {
    this.kind = 'pg';
    this.cleanupOrder = 2;
    this.dir = dir;
    this.dataDir = path.join(dir, 'data');
    this.logFile = path.join(dir, 'postgres.log');
    this.fsync = fsync;
    this.port = 0;
    this.running = false;
    this.destroyed = false;
  }

  get url() {
    return this.urlFor(PG_DATABASE);
  }

  urlFor(database) {
    return `postgresql://${PG_SUPERUSER}@127.0.0.1:${this.port}/${database}`;
  }

  writeSettings() {
    // Written by root or the owner; the file is only read by the server, which any
    // owner-or-root-written file in its data directory satisfies.
    fs.writeFileSync(path.join(this.dataDir, 'harness.conf'),
      clusterSettings({ port: this.port, dir: this.dir, fsync: this.fsync }));
    if (isRoot()) {
      const { uid, gid } = systemUserIds(PG_SYSTEM_USER);
      fs.chownSync(path.join(this.dataDir, 'harness.conf'), uid, gid);
    }
  }

  logTail() {
    try {
      return tail(fs.readFileSync(this.logFile, 'utf8'));
    } catch {
      return '(no server log)';
    }
  }

  async initdb() {
    await runAsOwner('initdb', ['-D', this.dataDir, '-U', PG_SUPERUSER, '-A', 'trust',
      '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync', '--no-instructions']);
    fs.appendFileSync(path.join(this.dataDir, 'postgresql.conf'), "\ninclude = 'harness.conf'\n");
  }

  // Starts the cluster on this.port. Returns false when the port was taken meanwhile.
  async startOnce() {
    this.writeSettings();
    try {
      await runAsOwner('pg_ctl', ['start', '-D', this.dataDir, '-l', this.logFile, '-w',
        '-t', '60', '-s']);
    } catch (err) {
      if (/could not bind|Address already in use/i.test(this.logTail())) return false;
      throw new Error(`${err.message}\nserver log:\n${this.logTail()}`);
    }
    this.running = true;
    return true;
  }

  // Starts the cluster again after stop(), on the same port.
  async start() {
    if (this.destroyed) throw new Error('start: the cluster was destroyed');
    if (this.running) return;
    if (!(await this.startOnce())) {
      throw new Error(`start: port ${this.port} is taken:\n${this.logTail()}`);
    }
  }

  // mode 'fast' disconnects clients and shuts down cleanly; 'immediate' is a crash.
  async stop({ mode = 'fast' } = {}) {
    if (!this.running) return;
    await runAsOwner('pg_ctl', ['stop', '-D', this.dataDir, '-m', mode, '-w', '-t', '60', '-s']);
    this.running = false;
  }

  async restart(options) {
    await this.stop(options);
    await this.start();
  }

  // A crash of the whole database: kill -9 of the postmaster and every process of the
  // cluster, so whatever sits only in shared memory (WAL not yet written) is gone. Each
  // is stopped (SIGSTOP) before any is killed, so none runs on, or exits cleanly, after
  // another died. start() recovers from it. Resolves to the pids it killed.
  async crash() {
    if (!this.running) return [];
    const pidFile = fs.readFileSync(path.join(this.dataDir, 'postmaster.pid'), 'utf8');
    const postmaster = Number(pidFile.split('\n')[0]);
    const stopped = new Set();
    const stop = (pid) => {
      try {
        process.kill(pid, 'SIGSTOP');
        stopped.add(pid);
      } catch {
        // already gone
      }
    };
    stop(postmaster); // first: it forks no one from now on
    for (let round = 0; round < 2; round++) {
      for (const pid of processChildren(postmaster)) if (!stopped.has(pid)) stop(pid);
    }
    for (const pid of stopped) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    this.running = false;
    // A new postmaster refuses to start while the old pid still exists (even a zombie).
    await waitFor(() => [...stopped].every((pid) => !fs.existsSync(`/proc/${pid}`)),
      { timeout: STOP_TIMEOUT_MS, message: 'the killed PostgreSQL processes to be gone' });
    return [...stopped];
  }

  async destroy() {
    if (this.destroyed) return;
    try {
      await this.stop({ mode: 'immediate' });
    } finally {
      this.destroyed = true;
      fs.rmSync(this.dir, { recursive: true, force: true });
      untrack(this);
    }
  }

  cleanupSync() {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.running) {
      runAsOwnerSync('pg_ctl', ['stop', '-D', this.dataDir, '-m', 'immediate', '-w'],
        { allowFailure: true });
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  // Runs SQL with psql and returns its unaligned, tuples-only output without the final
  // newline ("1|foo" per row). Throws with psql's message on any error.
  psql(sql, { database = PG_DATABASE } = {}) {
    const res = spawnSync(path.join(pgBinDir(), 'psql'),
      ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', this.urlFor(database)],
      { input: sql, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
    if (res.error) throw res.error;
    if (res.status !== 0) throw new Error(`psql failed (${res.status}): ${res.stderr.trim()}`);
    return res.stdout.replace(/\n$/, '');
  }

  // The rows of a query as objects, typed the way PostgreSQL converts them to JSON.
  rows(sql, options) {
    const query = sql.trim().replace(/;+$/, '');
    const out = this.psql(`select coalesce(json_agg(q), '[]') from (${query}) q;`, options);
    return JSON.parse(out);
  }

  // The first row as an object, or null.
  row(sql, options) {
    return this.rows(sql, options)[0] ?? null;
  }

  // The first column of the first row, as JSON types it (null when there is no row).
  scalar(sql, options) {
    const first = this.row(sql, options);
    return first === null ? null : Object.values(first)[0];
  }
}

// Creates, starts and returns a private cluster with a `wattline` database, reachable
// over TCP on 127.0.0.1 with trust authentication (the tests own the whole machine's
// loopback anyway). fsync is off by default: the tests never survive a power cut.
async function startPostgres({ fsync = false } = {}) {
  const cluster = new PgCluster({ dir: makeClusterDir(), fsync });
  track(cluster, cluster.dir);
  try {
    await cluster.initdb();
    for (let attempt = 0; ; attempt++) {
      cluster.port = await freePort();
      if (await cluster.startOnce()) break;
      if (attempt >= 4) throw new Error('startPostgres: no free port after 5 attempts');
    }
    cluster.psql(`create database ${PG_DATABASE}`, { database: 'postgres' });
    // The group role is the migrations' to grant; it is made here too so that the login
    // role can join it before any migration ran (0011 tolerates it existing).
    cluster.psql(`create role ${PG_SERVER_ROLE} nologin;
      create role ${PG_APP_ROLE} login in role ${PG_SERVER_ROLE};`, { database: 'postgres' });
  } catch (err) {
    await cluster.destroy().catch(() => {});
    throw err;
  }
  return cluster;
}

// ---------------------------------------------------------------------------------------
// The Wattline server and its command line

// WATTLINE_BIN, relative to the working directory or else to the repository root;
// bin/wattline by default.
function serverBinary() {
  const configured = process.env.WATTLINE_BIN;
  if (!configured) return path.join(REPO_ROOT, 'bin', 'wattline');
  if (path.isAbsolute(configured)) return configured;
  const fromCwd = path.resolve(configured);
  return fs.existsSync(fromCwd) ? fromCwd : path.resolve(REPO_ROOT, configured);
}

function sanitizerEnv() {
  const env = {
    ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0:exitcode=86:halt_on_error=1',
    UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
  };
  const suppressions = path.join(REPO_ROOT, 'tests', 'lsan.supp');
  if (fs.existsSync(suppressions)) {
    env.LSAN_OPTIONS = `suppressions=${suppressions}:print_suppressions=0`;
  }
  return env;
}

// The environment for a wattline process: ours minus any server settings, then the
// defaults, then the caller's values; a value of undefined or null removes a variable.
function childEnv(defaults, overrides) {
  const env = { ...process.env };
  for (const name of SERVER_CONFIG_VARS) delete env[name];
  Object.assign(env, sanitizerEnv(), defaults, overrides);
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || value === null) delete env[name];
    else env[name] = String(value);
  }
  return env;
}

function requireBinary(bin) {
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    throw new Error(`wattline binary ${bin} not found or not executable: build it with make, ` +
      'or point WATTLINE_BIN at it');
  }
}

// GET url with node:http(s): one probe, resolving to the status (0 when unreachable).
// Certificates are not checked: this only asks our own child whether it is up.
function probe(url) {
  const client = url.startsWith('https:') ? https : http;
  return new Promise((resolve) => {
    const req = client.get(url, { timeout: 1000, rejectUnauthorized: false, agent: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
        res.on('error', () => resolve(0));
      });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

class WattlineServer {
  constructor({ proc, bin, env, httpPort, wsPort, jwtSecret, databaseUrl, appDatabaseUrl }) {
    this.kind = 'proc';
    this.cleanupOrder = 1;
    this.proc = proc;
    this.pid = proc.pid;
    this.bin = bin;
    this.env = env;
    this.httpPort = httpPort;
    this.wsPort = wsPort;
    this.jwtSecret = jwtSecret;
    this.databaseUrl = databaseUrl; // the owner's: tests inspect and alter rows with it
    this.appDatabaseUrl = appDatabaseUrl; // the serving role's, as the server uses it
    const tls = Boolean(env.TLS_CERT);
    let host = env.HTTP_ADDR === '0.0.0.0' ? '127.0.0.1' : env.HTTP_ADDR;
    if (host === '::') host = '::1';
    if (host.includes(':')) host = `[${host}]`;
    this.baseUrl = `${tls ? 'https' : 'http'}://${host}:${httpPort}`;
    this.wsUrl = `${tls ? 'wss' : 'ws'}://${host}:${wsPort}/ws`;
    this.stdoutText = '';
    this.stderrText = '';
    this.exitInfo = null;
    this.stopPromise = null;
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (chunk) => { this.stdoutText += chunk; });
    proc.stderr.on('data', (chunk) => { this.stderrText += chunk; });
    // 'close' rather than 'exit': by then both output pipes are drained.
    this.closed = new Promise((resolve) => {
      proc.on('close', (code, signal) => {
        this.exitInfo = { code, signal };
        untrack(this);
        resolve(this.exitInfo);
      });
    });
  }

  get exited() {
    return this.exitInfo !== null;
  }

  stdout() {
    return this.stdoutText;
  }

  stderr() {
    return this.stderrText;
  }

  // The JSON log lines written so far, parsed; other lines come back as {raw: line}.
  logs() {
    return this.stdoutText.split('\n').filter((line) => line.trim() !== '').map((line) => {
      try {
        return JSON.parse(line);
      } catch {
        return { raw: line };
      }
    });
  }

  // Resolves to the first log entry for which predicate(entry) is true.
  waitForLog(predicate, { timeout = 5000 } = {}) {
    return waitFor(() => this.logs().find(predicate), { timeout, message: 'log line' });
  }

  // Keeps this process alive while we wait for the child; see startServer().
  holdOpen() {
    this.proc.ref();
    this.proc.stdout.ref();
    this.proc.stderr.ref();
  }

  async waitForStatus(urlPath, { timeout = READY_TIMEOUT_MS } = {}) {
    const deadline = Date.now() + timeout;
    for (;;) {
      if (this.exited) {
        throw new Error(`wattline exited (code ${this.exitInfo.code}, signal ` +
          `${this.exitInfo.signal}) before ${urlPath} answered 200; stderr:\n${tail(this.stderrText)}`);
      }
      if ((await probe(this.baseUrl + urlPath)) === 200) return;
      if (Date.now() >= deadline) {
        throw new Error(`wattline: ${urlPath} did not answer 200 within ${timeout} ms; ` +
          `stderr:\n${tail(this.stderrText)}`);
      }
      await sleep(POLL_INTERVAL_MS);
    }
  }

  waitHealthy(options) {
    return this.waitForStatus('/healthz', options);
  }

  // Polls /readyz until the server says the database is usable.
  waitReady(options) {
    return this.waitForStatus('/readyz', options);
  }

  async waitClosed(timeout) {
    let timer;
    const expired = new Promise((resolve) => { timer = setTimeout(resolve, timeout, null); });
    const result = await Promise.race([this.closed, expired]);
    clearTimeout(timer);
    return result;
  }

  // Sends `signal` (SIGTERM: a graceful shutdown) and waits for the exit. Throws if the
  // process does not exit in time, if stderr holds a sanitizer report, or if a graceful
  // shutdown did not end with status 0. Calling it again returns the first result.
  stop(signal = 'SIGTERM', { timeout = STOP_TIMEOUT_MS } = {}) {
    if (!this.stopPromise) this.stopPromise = this.stopOnce(signal, timeout);
    return this.stopPromise;
  }

  async stopOnce(signal, timeout) {
    this.holdOpen();
    const alreadyExited = this.exited;
    if (!alreadyExited) this.proc.kill(signal);
    let info = await this.waitClosed(timeout);
    if (!info) {
      this.proc.kill('SIGKILL');
      await this.closed;
      throw new Error(`wattline did not exit within ${timeout} ms of ${signal}; stderr:\n` +
        tail(this.stderrText));
    }
    const result = { ...info, stdout: this.stdoutText, stderr: this.stderrText };
    const report = sanitizerReport(this.stderrText);
    if (report) throw new Error(`wattline: sanitizer report:\n${report}`);
    const graceful = signal === 'SIGTERM' || signal === 'SIGINT';
    if ((graceful || alreadyExited) && (info.code !== 0 || info.signal !== null)) {
      const how = alreadyExited ? 'exited on its own' : `after ${signal} exited`;
      throw new Error(`wattline ${how} with code ${info.code}, signal ${info.signal}; ` +
        `stderr:\n${tail(this.stderrText)}`);
    }
    return result;
  }

  // SIGKILL, no questions asked; resolves to {code, signal, stdout, stderr}. A later
  // stop() (suite()'s, say) returns the same without complaint.
  kill() {
    const done = this.killOnce();
    if (!this.stopPromise) this.stopPromise = done;
    return done;
  }

  async killOnce() {
    this.holdOpen();
    if (!this.exited) this.proc.kill('SIGKILL');
    const info = await this.closed;
    return { ...info, stdout: this.stdoutText, stderr: this.stderrText };
  }

  cleanupSync() {
    if (this.exited) return;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function spawnServer({ bin, env, args }) {
  const proc = spawn(bin, ['serve', ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    proc.once('error', reject); // ENOENT, EACCES: no pid, nothing to clean up
    proc.once('spawn', () => resolve(proc));
  });
}

// The same database as url, as the serving role, when url names the clusters' superuser
// (the owner); otherwise null: a URL a test built for another role is used as it is.
function appDatabaseUrl(url) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (decodeURIComponent(parsed.username) !== PG_SUPERUSER) return null;
  parsed.username = PG_APP_ROLE;
  parsed.password = '';
  return parsed.toString();
}

// Starts `wattline serve` on free loopback ports against databaseUrl and resolves once
// /healthz answers 200. env adds to or overrides the server's environment (undefined
// removes a variable); args are extra command-line flags; bin overrides WATTLINE_BIN.
// As in production, the server serves as the serving role (DATABASE_URL, server.
// appDatabaseUrl) and migrates as the owner (DATABASE_OWNER_URL = databaseUrl, which
// server.databaseUrl keeps: what tests use to inspect and alter rows).
async function startServer({ databaseUrl, env = {}, args = [], bin = serverBinary(),
  readyTimeout = READY_TIMEOUT_MS } = {}) {
  requireBinary(bin);
  const appUrl = appDatabaseUrl(databaseUrl);
  for (let attempt = 0; ; attempt++) {
    const httpPort = await freePort();
    const wsPort = await freePort();
    const jwtSecret = env.JWT_SECRET ?? (env.JWT_SECRET_FILE ? undefined : randomHex(48));
    const fullEnv = childEnv({
      DATABASE_URL: appUrl ?? databaseUrl,
      DATABASE_OWNER_URL: appUrl ? databaseUrl : undefined,
      HTTP_ADDR: '127.0.0.1',
      HTTP_PORT: httpPort,
      WS_PORT: wsPort,
      JWT_SECRET: jwtSecret,
      WEB_ROOT: path.join(REPO_ROOT, 'web'),
      MIGRATIONS_DIR: path.join(REPO_ROOT, 'migrations'),
      OPENAPI_FILE: path.join(REPO_ROOT, 'docs', 'openapi.json'),
      LOG_FORMAT: 'json',
    }, env);
    const proc = await spawnServer({ bin, env: fullEnv, args });
    const server = new WattlineServer({
      proc, bin, env: fullEnv, httpPort: Number(fullEnv.HTTP_PORT),
      wsPort: Number(fullEnv.WS_PORT), jwtSecret: fullEnv.JWT_SECRET, databaseUrl,
      appDatabaseUrl: fullEnv.DATABASE_URL,
    });
    track(server, `${proc.pid} ${processStartTime(proc.pid)}`);
    try {
      await server.waitHealthy({ timeout: readyTimeout });
    } catch (err) {
      await server.kill();
      const portTaken = /address already in use|could not bind|EADDRINUSE/i.test(server.stderr());
      if (portTaken && attempt < 4) continue;
      const report = sanitizerReport(server.stderr());
      throw report ? new Error(`wattline: sanitizer report:\n${report}`) : err;
    }
    // A server a test forgets to stop must not keep the test process alive: the exit
    // hook kills it. stop() and kill() take the references back while they wait.
    proc.unref();
    proc.stdout.unref();
    proc.stderr.unref();
    return server;
  }
}

// Runs `wattline ARGS...` to completion (user add, migrate, --help, ...) against the
// server's database (or options.databaseUrl) and resolves to {code, signal, stdout,
// stderr}. Throws on a sanitizer report; a non-zero status is the caller's to judge.
function cli(args, { server, databaseUrl = server?.databaseUrl, input, env = {},
  bin = server?.bin ?? serverBinary(), timeout = 30000 } = {}) {
  requireBinary(bin);
  const fullEnv = childEnv({
    DATABASE_URL: databaseUrl,
    MIGRATIONS_DIR: path.join(REPO_ROOT, 'migrations'),
    LOG_FORMAT: 'json',
  }, env);
  return new Promise((resolve, reject) => {
    const proc = spawn(bin, args, { cwd: REPO_ROOT, env: fullEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (d) => { stdout += d; });
    proc.stderr.on('data', (d) => { stderr += d; });
    proc.stdin.on('error', () => {}); // it may exit without reading its input
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeout);
    proc.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      const report = sanitizerReport(stderr);
      if (report) reject(new Error(`wattline ${args.join(' ')}: sanitizer report:\n${report}`));
      else if (signal === 'SIGKILL') reject(new Error(`wattline ${args.join(' ')}: timed out`));
      else resolve({ code, signal, stdout, stderr });
    });
    proc.stdin.end(input ?? '');
  });
}

// Creates a user through `wattline user add`, the password going in on stdin. Resolves
// to {email, name, role, password}; throws with the CLI's stderr if it fails.
async function createUser(server, { email, name, role = 'client', password } = {}) {
  const tag = randomHex(4);
  const user = {
    email: email ?? `user-${tag}@example.test`,
    name: name ?? `Test User ${tag}`,
    role,
    password: password ?? `Pw-${randomHex(10)}-x9`,
  };
  const res = await cli(['user', 'add', '--email', user.email, '--name', user.name,
    '--role', user.role], { server, input: `${user.password}\n` });
  if (res.code !== 0) {
    throw new Error(`wattline user add ${user.email} failed (${res.code}): ${res.stderr.trim()}`);
  }
  return user;
}

// An HTTP request to the server. body: an object (sent as JSON), a string or a Buffer
// (sent as is). Resolves to {status, headers, json, text}; json is null unless the body
// parses as JSON. Never throws for an HTTP status.
async function api(server, method, urlPath, { token, body, headers = {}, signal } = {}) {
  const sendHeaders = { ...headers };
  const hasHeader = (name) => Object.keys(sendHeaders).some((k) => k.toLowerCase() === name);
  if (token) sendHeaders.authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
    if (typeof body === 'string' || body instanceof Uint8Array) {
      payload = body;
    } else {
      payload = JSON.stringify(body);
      if (!hasHeader('content-type')) sendHeaders['content-type'] = 'application/json';
    }
  }
  const res = await fetch(server.baseUrl + urlPath, {
    method, headers: sendHeaders, body: payload, redirect: 'manual', signal,
  });
  const text = await res.text();
  let json = null;
  if (text !== '') {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  return { status: res.status, headers: res.headers, json, text };
}

// Logs in and resolves to the token response ({access_token, refresh_token, user, ...});
// throws unless the server answers 200.
async function login(server, email, password) {
  const res = await api(server, 'POST', '/api/v1/auth/login', { body: { email, password } });
  if (res.status !== 200) {
    throw new Error(`login ${email}: HTTP ${res.status}: ${res.text}`);
  }
  return res.json;
}

// One cluster and one server for a whole test file, started in before() and always torn
// down in after() (also when tests fail). With admin (the default) it also creates an
// admin account and logs it in. The returned object is filled in by before():
//   ctx.pg, ctx.server, ctx.admin = {email, password, name, role, token, refreshToken, user}
// and ctx.api(method, path, options) is api() bound to ctx.server.
function suite({ pg: pgOptions, server: serverOptions = {}, admin = true } = {}) {
  // Required here, not at the top, so that the rest works outside `node --test`.
  const { before, after } = require('node:test');
  const ctx = {
    pg: null,
    server: null,
    admin: null,
    api: (method, urlPath, options) => api(ctx.server, method, urlPath, options),
  };
  before(async () => {
    requireBinary(serverOptions.bin ?? serverBinary()); // before spending time on a cluster
    ctx.pg = await startPostgres(pgOptions);
    ctx.server = await startServer({ databaseUrl: ctx.pg.url, ...serverOptions });
    await ctx.server.waitReady();
    if (admin) {
      const account = await createUser(ctx.server, { email: 'admin@example.test',
        name: 'Admin', role: 'admin' });
      const tokens = await login(ctx.server, account.email, account.password);
      ctx.admin = { ...account, token: tokens.access_token, refreshToken: tokens.refresh_token,
        user: tokens.user };
    }
  });
  after(async () => {
    try {
      if (ctx.server) await ctx.server.stop();
    } finally {
      if (ctx.pg) await ctx.pg.destroy();
    }
  });
  return ctx;
}

module.exports = {
  PG_APP_ROLE,
  REPO_ROOT,
  api,
  cli,
  createUser,
  freePort,
  login,
  sanitizerReport,
  serverBinary,
  sleep,
  startPostgres,
  startServer,
  suite,
  waitFor,
};

// For lib/replica.js, which makes a standby the way startPostgres() makes a primary.
Object.assign(module.exports, { PgCluster, makeClusterDir, pgBinDir, runAsOwner, track });
// The read replica's settings (issue 19) must not leak from the shell into a server either.
SERVER_CONFIG_VARS.push('DATABASE_READ_URL', 'DATABASE_READ_MAX_LAG_S', 'DB_READ_POOL_SIZE');
