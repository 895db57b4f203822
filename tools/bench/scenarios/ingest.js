'use strict';
// Scenario 1: single-reading ingestion, one reading per request, many devices each
// with its own token, 64 keep-alive connections.
//
// Ceilings, measured in the same run with the same load:
//   (a) HTTP: mhd204, a bare libmicrohttpd server answering 204 to the same requests;
//   (b) naive database: pgbench doing the per-reading SQL (insert + hourly upsert) in
//       one transaction per reading at the same concurrency. Group commit must beat it.
//   (c) grouped SQL (grouped_sql.c): the best this schema allows with groups of 64:
//       8 clients, each transaction 64 readings of 64 devices (insert the readings, add
//       to the hours, update the devices, check the limits) in two statements over
//       arrays, sent with BEGIN and COMMIT in one round trip.
// For the measured run, the CPU (user + system) the server, PostgreSQL (every process
// of the cluster) and wrk spent per stored reading, from /proc before and after.
// Wattline is run three times (the first is the measured one), each run continuing the
// devices' timelines where the one before stopped, as devices do; the server's RSS
// after each run shows whether memory grows with the work done. The naive ceiling runs
// in two halves, just before and just after the measured run: on a shared machine
// whose speed drifts over a minute, the ratio then compares like with like.

const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

const pg = require('../lib/pg');
const { cpuByTree, cpuDelta, rssKiB, runOk, spawnTracked, stop } = require('../lib/proc');
const { sleep } = require('../lib/stats');
const { freePort } = require('../lib/wattline');
const { wrk } = require('../lib/wrk');

const CONNECTIONS = 64;
const GROUPED_CLIENTS = 8;
const GROUPED_SIZE = 64; // readings per transaction
const STEP_S = 60; // a device reads its meter once a minute

function waitListening(port, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const sock = net.connect(port, '127.0.0.1', () => {
        sock.destroy();
        resolve();
      });
      sock.on('error', () => {
        if (Date.now() > deadline) reject(new Error(`nothing listens on port ${port}`));
        else setTimeout(attempt, 20);
      });
    };
    attempt();
  });
}

async function httpCeiling(ctx, env) {
  const port = await freePort();
  const proc = spawnTracked(path.join(process.env.BENCH_HELPERS, 'mhd204'), [String(port)],
    { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await waitListening(port);
    return await wrk({ script: 'ingest.lua', url: `http://127.0.0.1:${port}`,
      connections: CONNECTIONS, seconds: ctx.cfg.ingestSeconds, env });
  } finally {
    await stop(proc);
  }
}

// A device set's ids must be one contiguous range: pgbench picks ids by arithmetic, and
// the counts select by range.
function deviceRange(devices) {
  const ids = devices.map((d) => d.id).sort((a, b) => a - b);
  if (ids[ids.length - 1] - ids[0] !== ids.length - 1) {
    throw new Error(`devices ${ids[0]}..${ids[ids.length - 1]} do not have contiguous ids`);
  }
  return { first: ids[0], last: ids[ids.length - 1], count: ids.length };
}

async function naiveCeilingHalf(ctx, tag) {
  const range = deviceRange(ctx.setup.devices.naive);
  await pg.checkpoint();
  return pg.pgbench(path.resolve(__dirname, '..', 'pgbench', 'ingest.sql'), {
    clients: CONNECTIONS, threads: 2, seconds: Math.max(1, Math.round(ctx.cfg.ingestSeconds / 2)),
    tag, defines: { first_device: range.first, per_client: Math.floor(range.count / CONNECTIONS) },
  });
}

// The grouped-SQL ceiling on the naive ceiling's devices (its readings, stamped "now"
// too, only ever append to them). QUICK has too few devices for 8 clients x 64: the
// group shrinks to what each client owns, and the JSON says so.
async function groupedCeilingHalf(ctx) {
  const range = deviceRange(ctx.setup.devices.naive);
  const group = Math.min(GROUPED_SIZE, Math.floor(range.count / GROUPED_CLIENTS));
  const seconds = Math.max(1, Math.round(ctx.cfg.ingestSeconds / 2));
  await pg.checkpoint();
  const res = await runOk(path.join(process.env.BENCH_HELPERS, 'grouped_sql'), [pg.URL,
    String(range.first), String(range.count), String(GROUPED_CLIENTS), String(group),
    String(seconds)], { timeoutMs: (seconds + 60) * 1000 });
  return JSON.parse(res.stdout);
}

function groupedBracket(before, after) {
  return {
    clients: before.clients, group: before.group,
    readings_per_s: (before.readings_per_s + after.readings_per_s) / 2,
    latency_us: {
      p50: (before.latency_us.p50 + after.latency_us.p50) / 2,
      p99: Math.max(before.latency_us.p99, after.latency_us.p99),
      max: Math.max(before.latency_us.max, after.latency_us.max),
    },
    halves: [before, after],
  };
}

// The process trees whose CPU the measured run reports (wrk's own comes from wrk()).
function cpuRoots(ctx) {
  const postmaster = Number(fs.readFileSync(path.join(process.env.BENCH_PG_DATA, 'postmaster.pid'),
    'utf8').split('\n')[0]);
  return { wattline: ctx.server.pid, postgresql: postmaster };
}

// µs of CPU per stored reading, by process tree.
function perReading(cpuSeconds, stored) {
  return Object.fromEntries(Object.entries(cpuSeconds)
    .map(([name, s]) => [name, stored > 0 ? Number(((s * 1e6) / stored).toFixed(1)) : NaN]));
}

// The two halves as one ceiling: the mean rate (equal durations) and the worse p99.
function bracket(before, after) {
  return {
    tps: (before.tps + after.tps) / 2,
    transactions: before.transactions + after.transactions,
    failed: (before.failed ?? 0) + (after.failed ?? 0),
    latency_us: {
      p50: (before.latency_us.p50 + after.latency_us.p50) / 2,
      p99: Math.max(before.latency_us.p99, after.latency_us.p99),
      max: Math.max(before.latency_us.max, after.latency_us.max),
    },
    halves: [before, after],
  };
}

async function storedSince(range, t0) {
  return Number(await pg.scalar(`SELECT count(*) FROM readings
    WHERE device_id BETWEEN ${range.first} AND ${range.last} AND ts >= to_timestamp(${t0})`));
}

// Where the devices' timelines go on: the minute after their newest reading.
async function continueFrom(range, fallback) {
  const newest = Number(await pg.scalar(`SELECT coalesce(extract(epoch FROM max(ts)), 0)
    FROM readings WHERE device_id BETWEEN ${range.first} AND ${range.last}`));
  return newest > 0 ? (Math.floor(newest / STEP_S) + 1) * STEP_S : fallback;
}

async function wattlineRun(ctx, range, base, seconds) {
  const { server } = ctx;
  const t0 = await continueFrom(range, base);
  await pg.checkpoint();
  const roots = cpuRoots(ctx);
  const cpuBefore = cpuByTree(roots);
  const res = await wrk({ script: 'ingest.lua', url: server.baseUrl, connections: CONNECTIONS,
    seconds, cpu: true,
    env: { BENCH_DEVICES: ctx.setup.files.ingest, BENCH_T0: t0, BENCH_STEP: STEP_S } });
  // Sampled before the pause below: what the window cost, not the idle second after it.
  const cpu = { ...cpuDelta(cpuBefore, cpuByTree(roots)), wrk: res.cpu_seconds };
  await sleep(1000); // in-flight requests finish; the allocator settles
  server.assertAlive();
  const stored = await storedSince(range, t0);
  return { ...res, t0, stored, rss_after_kib: rssKiB(server.pid), cpu_seconds: cpu,
    cpu_us_per_reading: perReading(cpu, stored) };
}

async function run(ctx) {
  const range = deviceRange(ctx.setup.devices.ingest);
  const hour = 3600;
  const base = Math.floor(Date.now() / 1000 / hour) * hour - 30 * 86400;
  const env = { BENCH_DEVICES: ctx.setup.files.ingest, BENCH_T0: base, BENCH_STEP: STEP_S };

  ctx.log('ingestion: HTTP ceiling (mhd204)');
  const http = await httpCeiling(ctx, env);
  ctx.log('ingestion: naive database ceiling (pgbench), first half');
  const naiveBefore = await naiveCeilingHalf(ctx, 'ingest-before');
  ctx.log('ingestion: grouped SQL ceiling (grouped_sql), first half');
  const groupedBefore = await groupedCeilingHalf(ctx);
  await pg.psql('VACUUM ANALYZE readings; VACUUM ANALYZE device_hours;');

  const runs = [];
  let naive;
  let grouped;
  // Runs 2, 3 and 4 are alike and back to back: 2 and 4 with the webhooks of scenario 8
  // registered (every owner of an alerting device has one), 3 after they are deleted, so
  // that ingestion with webhooks configured and without compare in one run, and a drift
  // from one run to the next (later runs were seen up to 10 % faster, webhooks or not)
  // falls on both sides. Without scenario 8, the three are just repeats.
  const hooks = ctx.webhooks ?? [];
  const lengths = [ctx.cfg.ingestSeconds, ctx.cfg.repeatSeconds, ctx.cfg.repeatSeconds,
    ...(hooks.length ? [ctx.cfg.repeatSeconds] : [])];
  for (const [i, seconds] of lengths.entries()) {
    if (i === 2 && hooks.length) {
      ctx.log(`ingestion: deleting the ${hooks.length} webhooks before run 3`);
      for (const hook of hooks) {
        await ctx.server.apiOk('DELETE', `/api/v1/me/webhooks/${hook.id}`, 204,
          { token: hook.owner.token });
      }
      ctx.webhooks = [];
    }
    if (i === 3) {
      ctx.log(`ingestion: registering the ${hooks.length} webhooks again before run 4`);
      for (const hook of hooks) {
        const again = await ctx.server.apiOk('POST', '/api/v1/me/webhooks', 201,
          { token: hook.owner.token, body: { url: hook.url, events: hook.events } });
        ctx.webhooks.push({ ...hook, id: again.id });
      }
    }
    const webhooks = ctx.webhooks?.length ?? 0;
    ctx.log(`ingestion: Wattline, run ${i + 1} of ${lengths.length} (${seconds} s, ` +
      `${webhooks} webhooks configured)`);
    runs.push({ ...await wattlineRun(ctx, range, base, seconds), webhooks });
    if (i === 0) {
      ctx.log('ingestion: naive database ceiling (pgbench), second half');
      naive = bracket(naiveBefore, await naiveCeilingHalf(ctx, 'ingest-after'));
      ctx.log('ingestion: grouped SQL ceiling (grouped_sql), second half');
      grouped = groupedBracket(groupedBefore, await groupedCeilingHalf(ctx));
    }
  }
  return { connections: CONNECTIONS, devices: range.count, http_ceiling: http,
    naive_ceiling: naive, grouped_ceiling: grouped, runs };
}

module.exports = { cpuRoots, perReading, run };
