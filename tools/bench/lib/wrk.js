'use strict';
// wrk: runs wrk with one of the Lua scripts in ../lua, whose done() (lua/report.lua)
// prints one "BENCH_RESULT {json}" line: requests, duration, errors, latency.

const path = require('node:path');

const { run } = require('./proc');

const LUA_DIR = path.resolve(__dirname, '..', 'lua');

// Resolves to {requests, duration_s, rate, errors: {...}, error_count, latency_ms: {...}}.
async function wrk({ script, url, threads = 2, connections, seconds, env = {} }) {
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`,
    '--timeout', '10s', '-s', path.join(LUA_DIR, script), url];
  const res = await run('wrk', args, {
    env: { ...process.env, BENCH_LUA_DIR: LUA_DIR, BENCH_WRK_THREADS: String(threads), ...env },
    timeoutMs: (seconds + 60) * 1000,
  });
  const line = res.stdout.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
  if (res.code !== 0 || !line) {
    throw new Error(`wrk ${script} failed (${res.code}): ${(res.stderr + res.stdout).trim().slice(-2000)}`);
  }
  const raw = JSON.parse(line.slice('BENCH_RESULT '.length));
  const durationS = raw.duration_us / 1e6;
  const e = raw.errors;
  const errorCount = e.connect + e.read + e.write + e.status + e.timeout;
  const toMs = (us) => us / 1000;
  return {
    requests: raw.requests,
    duration_s: durationS,
    rate: raw.requests / durationS,
    ok_rate: (raw.requests - e.status) / durationS,
    errors: e,
    error_count: errorCount,
    latency_ms: {
      p50: toMs(raw.latency_us.p50), p90: toMs(raw.latency_us.p90),
      p99: toMs(raw.latency_us.p99), max: toMs(raw.latency_us.max),
      mean: toMs(raw.latency_us.mean),
    },
  };
}

module.exports = { wrk };
