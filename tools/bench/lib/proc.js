'use strict';
// proc: the processes the benchmark starts, and what it reads about them in /proc.
//
// Every child is recorded as "pid starttime" in $BENCH_WORK/pids before anything else
// happens to it, so that run.sh's exit trap can kill whatever is left however this
// process ends (a start time that no longer matches means the pid was recycled).

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const children = new Set();

function pidsFile() {
  const work = process.env.BENCH_WORK;
  if (!work) throw new Error('BENCH_WORK is not set: run the benchmark with tools/bench/run.sh');
  return path.join(work, 'pids');
}

function processStartTime(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

// spawn() that records the child and forgets it again when it exits.
function spawnTracked(cmd, args, options = {}) {
  const child = spawn(cmd, args, options);
  if (child.pid) {
    try {
      fs.appendFileSync(pidsFile(), `${child.pid} ${processStartTime(child.pid)}\n`);
    } catch (err) {
      if (err.code !== 'ENOENT') throw err; // ENOENT: it already exited; nothing to clean
    }
    children.add(child);
    child.once('exit', () => children.delete(child));
  }
  return child;
}

// Runs a program to completion: {code, signal, stdout, stderr}. Never rejects for a
// non-zero status (the caller judges); rejects when it cannot start or on timeout.
function run(cmd, args, { env, input, cwd, timeoutMs = 120000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawnTracked(cmd, args, { env, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.stdin.on('error', () => {}); // it may exit without reading its input
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') {
        reject(new Error(`${path.basename(cmd)} timed out after ${timeoutMs} ms`));
      } else {
        resolve({ code, signal, stdout, stderr });
      }
    });
    child.stdin.end(input ?? '');
  });
}

// Like run(), but throws unless the status is 0.
async function runOk(cmd, args, options) {
  const res = await run(cmd, args, options);
  if (res.code !== 0) {
    throw new Error(`${path.basename(cmd)} ${args.slice(0, 3).join(' ')}... failed ` +
      `(${res.code ?? res.signal}): ${(res.stderr || res.stdout).trim().slice(-2000)}`);
  }
  return res;
}

// Resolves when the child has exited (at once if it already has).
function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', resolve));
}

// SIGTERM, then SIGKILL after timeoutMs; resolves once it is gone.
async function stop(child, timeoutMs = 15000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  let timer;
  const expired = new Promise((resolve) => { timer = setTimeout(resolve, timeoutMs, 'expired'); });
  const how = await Promise.race([exited(child), expired]);
  clearTimeout(timer);
  if (how === 'expired') {
    child.kill('SIGKILL');
    await exited(child);
  }
}

function killAll() {
  for (const child of children) child.kill('SIGKILL');
}

// A field of /proc/PID/status in KiB (VmRSS, VmHWM), or NaN when the process is gone.
function statusKiB(pid, field) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = text.match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

const rssKiB = (pid) => statusKiB(pid, 'VmRSS');
const peakRssKiB = (pid) => statusKiB(pid, 'VmHWM');

// Resets VmHWM to the current RSS (Linux: "5" in clear_refs), so that a later
// peakRssKiB() is the peak since now. Returns false where the kernel refuses it.
function resetPeakRss(pid) {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

// CPU seconds (user + system) used so far by each of the named process trees:
// roots is {label: pid}, and a tree is its root and every descendant (PostgreSQL's
// backends under the postmaster, say). Only these: the machine may be busy with
// other work whose processes share the names. The difference of two samples says
// where a phase's CPU went; a process that exits in between drops out of the later
// sample, so phases keep their processes alive.
function cpuByTree(roots) {
  const ticks = 100; // USER_HZ: what /proc reports in, on every Linux this runs on
  const procs = new Map(); // pid -> {ppid, cpu}
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      procs.set(Number(name), { ppid: Number(fields[1]),
        cpu: (Number(fields[11]) + Number(fields[12])) / ticks });
    } catch {
      // exited meanwhile
    }
  }
  const labelOf = new Map(Object.entries(roots).map(([label, pid]) => [Number(pid), label]));
  const out = Object.fromEntries(Object.keys(roots).map((label) => [label, 0]));
  for (const [pid, p] of procs) {
    let at = pid;
    for (let depth = 0; at > 1 && depth < 64 && !labelOf.has(at); depth++) at = procs.get(at)?.ppid ?? 0;
    if (labelOf.has(at)) out[labelOf.get(at)] += p.cpu;
  }
  return out;
}

// The CPU seconds each tree used between two cpuByTree() samples.
function cpuDelta(before, after) {
  return Object.fromEntries(Object.entries(after)
    .map(([label, s]) => [label, Number((s - (before[label] ?? 0)).toFixed(2))]));
}

module.exports = {
  cpuByTree, cpuDelta, exited, killAll, peakRssKiB, resetPeakRss, rssKiB, run, runOk,
  spawnTracked, stop,
};
