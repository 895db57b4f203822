'use strict';
// pg: psql and pgbench against the benchmark's throwaway cluster (run.sh started it;
// BENCH_PG_URL and BENCH_PG_BIN say where it is).

const fs = require('node:fs');
const path = require('node:path');

const { run, runOk } = require('./proc');
const { summarize } = require('./stats');

const URL = process.env.BENCH_PG_URL;
const BIN = process.env.BENCH_PG_BIN || '/usr/lib/postgresql/15/bin';
const WORK = process.env.BENCH_WORK;

// Runs SQL (several statements allowed) in one psql session with UTC as the time zone;
// resolves to the unaligned, tuples-only output without the final newline.
async function psql(sql, { single = false } = {}) {
  const args = ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', URL];
  if (single) args.push('-1');
  const res = await runOk(path.join(BIN, 'psql'), args, {
    input: `SET TIME ZONE 'UTC';\n${sql}\n`, timeoutMs: 600000,
  });
  return res.stdout.replace(/\n$/, '');
}

async function scalar(sql) {
  return (await psql(sql)).split('\n')[0];
}

// Runs a psql script file as one transaction (how the COPY ceiling loads its rows).
function psqlFile(file) {
  return runOk(path.join(BIN, 'psql'), ['-X', '-q', '-1', '-v', 'ON_ERROR_STOP=1', '-d', URL,
    '-f', file], { timeoutMs: 600000 });
}

// Flushes dirty buffers before a measured phase, so that no phase pays for the
// checkpoint of the one before it.
function checkpoint() {
  return psql('CHECKPOINT;');
}

// The per-transaction latencies (µs) in pgbench's -l logs for prefix.
function readPgbenchLogs(prefix) {
  const dir = path.dirname(prefix);
  const base = path.basename(prefix);
  const latencies = [];
  for (const name of fs.readdirSync(dir)) {
    if (!name.startsWith(`${base}.`)) continue;
    const file = path.join(dir, name);
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      // client_id transaction_no time script_no time_epoch time_us
      const fields = line.split(' ');
      if (fields.length >= 3) latencies.push(Number(fields[2]));
    }
    fs.rmSync(file);
  }
  return latencies;
}

// Runs a pgbench script; resolves to {tps, transactions, failed, latency_us: {...}}.
async function pgbench(script, { clients, threads, seconds, defines = {}, tag }) {
  const prefix = path.join(WORK, `pgbench-${tag}`);
  const args = ['-n', '-M', 'prepared', '-c', String(clients), '-j', String(threads),
    '-T', String(seconds), '-f', script, '-l', `--log-prefix=${prefix}`];
  for (const [name, value] of Object.entries(defines)) args.push('-D', `${name}=${value}`);
  args.push(URL);
  const res = await run(path.join(BIN, 'pgbench'), args, { cwd: WORK,
    timeoutMs: (seconds + 60) * 1000 });
  const tps = res.stdout.match(/tps = ([\d.]+) \(without initial connection time\)/);
  const done = res.stdout.match(/number of transactions actually processed: (\d+)/);
  const failed = res.stdout.match(/number of failed transactions: (\d+)/);
  if (res.code !== 0 || !tps) {
    throw new Error(`pgbench ${path.basename(script)} failed (${res.code}): ` +
      `${(res.stderr || res.stdout).trim().slice(-2000)}`);
  }
  const lat = summarize(readPgbenchLogs(prefix));
  return {
    tps: Number(tps[1]),
    transactions: done ? Number(done[1]) : NaN,
    failed: failed ? Number(failed[1]) : 0,
    latency_us: { p50: lat.p50, p99: lat.p99, max: lat.max },
  };
}

// ---- pg_stat_statements (BENCH_PG_STATS=1: run.sh preloads it) ----------------------

const STATS = process.env.BENCH_PG_STATS === '1';

async function statsReset() {
  if (!STATS) return;
  await psql('CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset();');
}

// The statements that took the most database time since the last reset.
async function statsTop(limit = 12) {
  if (!STATS) return undefined;
  const out = await psql(`SELECT coalesce(json_agg(s), '[]') FROM (
    SELECT calls, plans, round(total_plan_time::numeric, 1) AS plan_ms,
           round(total_exec_time::numeric, 1) AS exec_ms,
           round((mean_plan_time + mean_exec_time)::numeric, 3) AS mean_ms, rows,
           left(regexp_replace(query, '\\s+', ' ', 'g'), 160) AS query
    FROM pg_stat_statements ORDER BY total_plan_time + total_exec_time DESC LIMIT ${limit}) s;`);
  return JSON.parse(out);
}

module.exports = { URL, checkpoint, pgbench, psql, psqlFile, scalar, statsReset, statsTop };
