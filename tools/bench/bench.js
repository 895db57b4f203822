'use strict';
// bench.js: the benchmark's conductor, started by run.sh (which built the binaries and
// started PostgreSQL). Starts the server, creates the users and devices, runs the
// scenarios in an order where no phase inherits another's debris (checkpoints before
// each measured phase), prints the table and writes the JSON.
//
// Exit status: 0 every target met, 1 a target missed, 2 the benchmark broke.

const pg = require('./lib/pg');
const { killAll } = require('./lib/proc');
const report = require('./lib/report');
const { setupAll } = require('./lib/setup');
const { BIN, Server } = require('./lib/wattline');
const alerts = require('./scenarios/alerts');
const batch = require('./scenarios/batch');
const broker = require('./scenarios/broker');
const webhooks = require('./scenarios/webhooks');
const commands = require('./scenarios/commands');
const rabbit = require('./lib/rabbit');
const chat = require('./scenarios/chat');
const ingest = require('./scenarios/ingest');
const memory = require('./scenarios/memory');
const queries = require('./scenarios/queries');
const scale = require('./scenarios/scale');

const FULL = {
  owners: 200,
  ingestDevices: 1000,
  batchDevices: 64,
  yearDays: 365,
  ingestSeconds: 20,
  repeatSeconds: 10,
  batchSeconds: 10,
  alertSessions: 1000,
  alertCount: 1000,
  alertRate: 100,
  chatMessages: 400,
  chatRate: 20,
  idleSessions: 10000,
  chartSeconds: 10,
  brokerMessages: 100000,
  commandCount: 1000,
  scaleSessions: 50000,
  scaleAlertSessions: 10000,
};

// BENCH_QUICK=1: every phase short, to try the machinery out; not comparable figures.
const QUICK = {
  ...FULL,
  owners: 20,
  ingestDevices: 200,
  batchDevices: 16,
  yearDays: 30,
  ingestSeconds: 3,
  repeatSeconds: 2,
  batchSeconds: 3,
  alertSessions: 100,
  alertCount: 100,
  chatMessages: 60,
  idleSessions: 1000,
  chartSeconds: 3,
  brokerMessages: 10000,
  commandCount: 100,
  scaleSessions: 3000,
  scaleAlertSessions: 1000,
};

const SERVER_SETTINGS_SHOWN = ['HTTP_THREADS', 'QUERY_WORKERS', 'DB_POOL_SIZE', 'LOG_LEVEL', 'LOG_FORMAT',
  'ACCESS_TOKEN_TTL', 'WS_MAX_SESSIONS', 'WS_MAX_SESSIONS_PER_USER', 'MAX_CONNECTIONS',
  'MAX_CONNECTIONS_PER_IP'];

const SCENARIOS = ['memory', 'alerts', 'chat', 'commands', 'webhooks', 'ingestion', 'batch',
  'queries', 'broker', 'scale'];

// BENCH_REPEAT=3: every scenario three times over (one server, one setup); the table
// shows the median of each figure and the runs' spread.
function repeatCount() {
  const text = process.env.BENCH_REPEAT || '1';
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 9) throw new Error(`BENCH_REPEAT=${text}: 1 to 9`);
  return n;
}

// BENCH_ONLY=alerts,queries runs just those (for profiling one of them); default all.
function selectedScenarios() {
  const only = (process.env.BENCH_ONLY || '').split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = only.filter((s) => !SCENARIOS.includes(s));
  if (unknown.length) throw new Error(`BENCH_ONLY: unknown scenario ${unknown.join(', ')}`);
  return new Set(only.length ? only : SCENARIOS);
}

const startedAt = new Date();
const t0 = Date.now();

function log(message) {
  const s = ((Date.now() - t0) / 1000).toFixed(0).padStart(4);
  process.stderr.write(`[${s} s] ${message}\n`);
}

async function phase(results, name, fn) {
  const started = Date.now();
  await pg.statsReset();
  results[name] = await fn();
  const top = await pg.statsTop();
  if (top) results[name].pg_statements = top;
  results.phase_seconds[name] = (Date.now() - started) / 1000;
}

async function runScenarios(ctx, results) {
  const only = ctx.only;
  if (only.has('memory')) {
    const started = Date.now();
    results.memory.sessions = await memory.sessions(ctx);
    results.phase_seconds.memory = (Date.now() - started) / 1000;
  }
  if (only.has('alerts')) await phase(results, 'alerts', () => alerts.run(ctx));
  if (only.has('chat')) await phase(results, 'chat', () => chat.run(ctx));
  if (only.has('commands')) await phase(results, 'commands', () => commands.run(ctx));
  // Before ingestion: the ingestion runs then measure a server whose owners have
  // webhooks configured (compare with BENCH_ONLY=ingestion, where none have).
  if (only.has('webhooks')) await phase(results, 'webhooks', () => webhooks.run(ctx));
  if (only.has('ingestion')) await phase(results, 'ingestion', () => ingest.run(ctx));
  if (only.has('batch')) await phase(results, 'batch', () => batch.run(ctx));
  if (only.has('queries')) await phase(results, 'queries', () => queries.run(ctx));
  if (only.has('broker')) await phase(results, 'broker', () => broker.run(ctx));
  // Last: 50,000 sessions leave the most behind (TIME_WAIT sockets, the allocator).
  if (only.has('scale')) await phase(results, 'scale', () => scale.run(ctx));
}

async function runAll(ctx, results) {
  log(`starting ${BIN}`);
  await ctx.server.start();
  results.memory = { idle: await memory.idle(ctx) };

  log('setup: an admin (command line), owners and devices (API)');
  ctx.setup = await setupAll(ctx.server, ctx.work, {
    owners: ctx.cfg.owners, ingestDevices: ctx.cfg.ingestDevices,
    batchDevices: ctx.cfg.batchDevices, yearDays: ctx.cfg.yearDays,
  }, log);
  results.setup_seconds = ctx.setup.seconds;

  for (let rep = 0; rep < ctx.repeat; rep++) {
    ctx.rep = rep;
    if (ctx.repeat > 1) log(`run ${rep + 1} of ${ctx.repeat}`);
    // One run's figures: the results themselves, or one entry of results.runs.
    const r = ctx.repeat === 1 ? results
      : { phase_seconds: {}, memory: { idle: results.memory.idle } };
    if (ctx.repeat > 1) results.runs.push(r);
    await runScenarios(ctx, r);
  }
  log('stopping the server');
  await ctx.server.stop();
}

function serverSettings(server) {
  const shown = {};
  for (const name of SERVER_SETTINGS_SHOWN) {
    if (server.env?.[name] !== undefined) shown[name] = server.env[name];
  }
  return shown;
}

async function main() {
  const quick = process.env.BENCH_QUICK === '1';
  const only = selectedScenarios();
  const repeat = repeatCount();
  const cfg = quick ? QUICK : FULL;
  const machine = report.machine();
  const pgVersion = (await pg.scalar('SELECT version()')).replace(/ on .*$/, '');
  process.stdout.write(`Wattline benchmark, ${startedAt.toISOString()}${quick ? ' (QUICK: ' +
    'figures not comparable)' : ''}\n${report.machineText(machine, pgVersion)}\n\n`);

  const ctx = { cfg, only, repeat, rep: 0, work: process.env.BENCH_WORK, log, server: null,
    setup: null };
  let node = null;
  if (only.has('broker')) {
    log('starting a private RabbitMQ node (tools/rabbitmq.sh)');
    node = await rabbit.start(ctx.work);
    ctx.amqpUrl = node.amqpUrl;
    ctx.rabbitPid = node.pid;
  }
  ctx.server = new Server({ databaseUrl: pg.URL, work: ctx.work,
    env: ctx.amqpUrl ? { AMQP_URL: ctx.amqpUrl } : {} });
  const results = { phase_seconds: {}, ...(repeat > 1 ? { runs: [] } : {}) };
  let error = null;
  try {
    await runAll(ctx, results);
  } catch (err) {
    error = err;
    process.stderr.write(`\nbench: ${err.stack || err.message}\n`);
    if (ctx.server.proc) process.stderr.write(`server log tail:\n${ctx.server.logTail()}\n`);
    await ctx.server.stop().catch(() => {});
  }
  if (node) await node.stop().catch((err) => process.stderr.write(`bench: ${err.message}\n`));

  const rows = repeat > 1 ? report.repeatRows(results.runs.filter((r) => Object.keys(r).length > 2))
    : report.tableRows(results);
  const passed = !error && rows.every((r) => r.pass !== false);
  const totalSeconds = (Date.now() - t0) / 1000;
  if (repeat > 1) {
    process.stdout.write(`median of ${repeat} runs; [min–max] of the runs after the main ` +
      'figure and the ratio; the day chart must meet its target in every run\n');
  }
  process.stdout.write(`${report.formatTable(rows)}\n\n`);
  const file = report.writeJson(process.env.BENCH_RESULTS, {
    started_at: startedAt.toISOString(), quick, repeat, scenarios: [...only], machine,
    postgresql: pgVersion,
    config: cfg, server_settings: serverSettings(ctx.server), total_seconds: totalSeconds,
    error: error ? String(error.message) : null, passed, table: rows, results,
  });
  const verdict = error ? 'the benchmark did not complete'
    : passed ? 'every target met' : `${rows.filter((r) => r.pass === false).length} target(s) missed`;
  process.stdout.write(`${verdict}; ${totalSeconds.toFixed(0)} s; raw figures: ${file}\n`);
  return error ? 2 : passed ? 0 : 1;
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    killAll();
    process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
  });
}

main().then((status) => {
  process.exit(status);
}, (err) => {
  process.stderr.write(`bench: ${err.stack || err.message}\n`);
  killAll();
  process.exitCode = 2;
});
