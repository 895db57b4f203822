'use strict';
// wrk: runs wrk with one of the Lua scripts in ../lua, whose done() (lua/report.lua)
// prints one "BENCH_RESULT {json}" line: requests, duration, errors, latency.

const path = require('node:path');

const { run } = require('./proc');

const LUA_DIR = path.resolve(__dirname, '..', 'lua');

// With cpu, wrk runs under bash, whose `times` prints the CPU of its finished children:
// wrk's own user + system seconds, which /proc no longer has once wrk has exited.
const CPU_WRAPPER = 'wrk "$@"; status=$?; times; exit $status';

// bash's `times`: the children's line, "0m12.340s 0m3.210s" -> 15.55 (seconds).
function childrenCpu(stdout) {
  const lines = stdout.trimEnd().split('\n');
  const m = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(lines[lines.length - 1] ?? '');
  return m ? Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]) : NaN;
}

// Resolves to {requests, duration_s, rate, errors: {...}, error_count, latency_ms: {...}}
// (and cpu_seconds, wrk's CPU, when asked for).
async function wrk({ script, url, threads = 2, connections, seconds, env = {}, cpu = false }) {
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`,
    '--timeout', '10s', '-s', path.join(LUA_DIR, script), url];
  const res = await run(cpu ? 'bash' : 'wrk', cpu ? ['-c', CPU_WRAPPER, 'wrk', ...args] : args, {
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
    ...(cpu ? { cpu_seconds: childrenCpu(res.stdout) } : {}),
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
