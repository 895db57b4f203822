'use strict';
// drill: what the fault drills share. A fleet of simulated devices (one wattline-sim
// process each, with its own spool, retrying until the server acknowledges), and the
// audit that compares what the devices had acknowledged with what the database holds.
//
//   const fleet = await drill.startFleet(server, adminToken, { devices: 8, count: 150 });
//   ... faults ...
//   const results = await fleet.finished(timeoutMs);       // every simulator's exit
//   const audit = drill.audit(pg, fleet);                   // acknowledged vs stored
//
// What "acknowledged" means: the simulator writes each reading to its spool before it
// sends it and drops it from the spool only on a 2xx; it exits 0 with "pending 0" only
// when every reading of its run was acknowledged, and never sends an acknowledged
// reading again. So after a run that exits 0, the acknowledged readings are exactly the
// run's readings, which `wattline-sim --print csv` with the same source options lists
// (the household profile is a pure function of seed and time). A reading the server
// acknowledged and then lost stays lost: nobody resends it.
//
// The hours are recomputed here from the stored readings with the contract's arithmetic,
// written as ingest/energy.c writes it (an hour is the left-to-right sum, in ts order,
// of the contributions touching it, each `delta * ((to - from) / length)` on integral
// microseconds), so the stored figures must match bit for bit.
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('../../api/lib/harness');

const SIM_BIN = process.env.WATTLINE_SIM_BIN || path.join(h.REPO_ROOT, 'bin', 'wattline-sim');
const HOUR_US = 3600 * 1e6;
const MIN_MS = 60 * 1000;
const SUMMARY_RE = /sent (\d+), acknowledged (\d+) \(duplicates (\d+)\), pending (\d+), retries (\d+)/;

const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');

// Settings for the next start of a harness cluster: ALTER SYSTEM (postgresql.auto.conf
// is read after the harness's own file, so these win), then a restart.
async function configurePostgres(pg, settings) {
  const sql = Object.entries(settings)
    .map(([name, value]) => `ALTER SYSTEM SET ${name} = '${value}';`).join('\n');
  pg.psql(sql, { database: 'postgres' });
  await pg.restart();
}

function showSettings(pg, names) {
  const list = names.map((n) => `'${n}'`).join(',');
  return Object.fromEntries(pg.rows(`select name, setting from pg_settings where name in (${list})`)
    .map((r) => [r.name, r.setting]));
}

// The readings a simulator run with these source options sends: [{ts (µs), value}].
function sourceReadings(sourceArgs) {
  const res = spawnSync(SIM_BIN, [...sourceArgs, '--print', 'csv'], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`wattline-sim --print csv failed: ${res.stderr}`);
  const [, ...lines] = res.stdout.trim().split('\n');
  return lines.map((line) => {
    const [ts, value] = line.split(',');
    return { ts: Date.parse(ts) * 1000, value: Number(value) };
  });
}

class SimDevice {
  constructor({ device, type, seed, sourceArgs, spool, tokenFile }) {
    this.device = device;
    this.id = device.id;
    this.type = type;
    this.seed = seed;
    this.sourceArgs = sourceArgs;
    this.spool = spool;
    this.tokenFile = tokenFile;
    this.source = sourceReadings(sourceArgs);
    this.stdout = '';
    this.stderr = '';
    this.proc = null;
    this.result = null;
  }

  start(baseUrl, speed) {
    const args = [...this.sourceArgs, '--url', baseUrl, '--speed', String(speed),
      '--token-file', this.tokenFile, '--spool', this.spool];
    this.proc = spawn(SIM_BIN, args, { cwd: path.dirname(this.spool),
      stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout.setEncoding('utf8').on('data', (d) => { this.stdout += d; });
    this.proc.stderr.setEncoding('utf8').on('data', (d) => { this.stderr += d; });
    this.done = new Promise((resolve) => {
      this.proc.once('error', (err) => resolve({ code: -1, signal: null, error: err }));
      this.proc.once('close', (code, signal) => resolve({ code, signal }));
    }).then((r) => {
      const m = SUMMARY_RE.exec(this.stdout);
      this.result = { ...r, summary: m ? { sent: +m[1], acknowledged: +m[2], duplicates: +m[3],
        pending: +m[4], retries: +m[5] } : null };
      return this.result;
    });
  }
}

// Creates `devices` devices (alternately cumulative and interval) through the API and
// starts one simulator for each: `count` readings a minute apart, the last one stamped
// about now, sent `speed` times faster than real time (so the run lasts about
// count * 60 / speed seconds). maxHourly is low enough that some hours raise alerts.
async function startFleet(server, adminToken, { devices = 8, count = 150, speed = 300,
  maxHourly = 0.3, seedBase = 100 } = {}) {
  if (!fs.existsSync(SIM_BIN)) throw new Error(`${SIM_BIN} is missing (make bin/wattline-sim)`);
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wattline-drill-'));
  const now = Date.now();
  const start = Math.floor(now / MIN_MS) * MIN_MS - count * MIN_MS;
  const sims = [];
  for (let i = 0; i < devices; i++) {
    const type = i % 2 ? 'interval' : 'cumulative';
    const res = await h.api(server, 'POST', '/api/v1/devices', { token: adminToken,
      body: { name: `drill meter ${i}`, max_hourly_kwh: maxHourly, reading_type: type } });
    if (res.status !== 201) throw new Error(`create device: ${res.status} ${res.text}`);
    const tokenFile = path.join(workDir, `dev${i}.token`);
    fs.writeFileSync(tokenFile, `${res.json.token}\n`, { mode: 0o600 });
    const sourceArgs = ['--profile', 'household', '--seed', String(seedBase + i),
      '--start', iso(start), '--count', String(count), '--interval', '1m',
      '--reading-type', type];
    sims.push(new SimDevice({ device: res.json, type, seed: seedBase + i, sourceArgs,
      spool: path.join(workDir, `dev${i}.spool`), tokenFile }));
  }
  for (const sim of sims) sim.start(server.baseUrl, speed);
  return {
    sims,
    workDir,
    // Resolves to every simulator's result; kills the stragglers after timeoutMs.
    async finished(timeoutMs) {
      const timer = setTimeout(() => {
        for (const sim of sims) if (!sim.result) sim.proc.kill('SIGKILL');
      }, timeoutMs);
      try {
        return await Promise.all(sims.map((sim) => sim.done));
      } finally {
        clearTimeout(timer);
      }
    },
    stop() {
      for (const sim of sims) if (sim.proc && !sim.result) sim.proc.kill('SIGKILL');
      fs.rmSync(workDir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------
// The contract's arithmetic, as ingest/energy.c computes it

function hourFloor(ts) {
  const r = ts % HOUR_US;
  return r < 0 ? ts - r - HOUR_US : ts - r;
}

function addTo(map, hour, value) {
  map.set(hour, (map.get(hour) ?? 0) + value);
}

// Energy per UTC hour (Map hour µs -> kWh) of one device's readings, sorted by ts.
function recomputeHours(type, readings) {
  const out = new Map();
  if (type === 'interval') {
    for (const r of readings) addTo(out, hourFloor(r.ts), r.value);
    return out;
  }
  for (let i = 1; i < readings.length; i++) {
    const a = readings[i - 1];
    const b = readings[i];
    const delta = b.value >= a.value ? b.value - a.value : b.value;
    if (b.ts <= a.ts) continue;
    const length = b.ts - a.ts;
    for (let hr = hourFloor(a.ts); hr < b.ts; hr += HOUR_US) {
      const from = Math.max(a.ts, hr);
      const to = Math.min(b.ts, hr + HOUR_US);
      if (to <= from) continue;
      addTo(out, hr, delta * ((to - from) / length));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The audit

const usOf = (column) => `(extract(epoch from ${column}) * 1000000)::bigint`;

// Compares, for every device of the fleet, the acknowledged readings (see the top) with
// the stored ones, the stored hours with a recomputation from the stored readings, and
// the alerts with the hours over the limit. Returns the counts and the first examples.
function audit(pg, fleet) {
  const byDevice = (rows) => {
    const m = new Map();
    for (const r of rows) {
      if (!m.has(r.device_id)) m.set(r.device_id, []);
      m.get(r.device_id).push(r);
    }
    return m;
  };
  const readings = byDevice(pg.rows(`select device_id, ${usOf('ts')} as ts, value
    from readings order by device_id, ts`));
  const hours = byDevice(pg.rows(`select device_id, ${usOf('hour')} as hour, kwh from device_hours`));
  const alerts = byDevice(pg.rows(`select device_id, ${usOf('hour_start')} as hour, hour_kwh
    from alerts`));
  const duplicateKeys = Number(pg.scalar(`select count(*) from (select device_id, ts from readings
    group by 1, 2 having count(*) > 1) d`));

  const out = { devices: fleet.sims.length, acknowledged: 0, stored: 0, lost: 0, invented: 0,
    valueMismatches: 0, duplicateKeys, hoursCompared: 0, hourMismatches: 0,
    maxHourRelError: 0, alerts: 0, missingAlerts: 0, wrongAlerts: 0, examples: [] };
  const example = (what) => { if (out.examples.length < 10) out.examples.push(what); };
  for (const sim of fleet.sims) {
    const acked = new Map(sim.source.map((r) => [r.ts, r.value]));
    const stored = (readings.get(sim.id) ?? []).map((r) => ({ ts: Number(r.ts), value: r.value }));
    const storedTs = new Set(stored.map((r) => r.ts));
    out.acknowledged += acked.size;
    out.stored += stored.length;
    for (const ts of acked.keys()) {
      if (!storedTs.has(ts)) {
        out.lost++;
        example(`device ${sim.id}: acknowledged reading ${iso(ts / 1000)} is not stored`);
      }
    }
    for (const r of stored) {
      if (!acked.has(r.ts)) {
        out.invented++;
        example(`device ${sim.id}: stored reading ${iso(r.ts / 1000)} was never sent`);
      } else if (acked.get(r.ts) !== r.value) {
        out.valueMismatches++;
        example(`device ${sim.id}: reading ${iso(r.ts / 1000)} stored ${r.value}, sent ${acked.get(r.ts)}`);
      }
    }

    const expected = recomputeHours(sim.type, stored);
    const actual = new Map((hours.get(sim.id) ?? []).map((r) => [Number(r.hour), r.kwh]));
    for (const hour of new Set([...expected.keys(), ...actual.keys()])) {
      const e = expected.get(hour) ?? 0;
      const a = actual.get(hour) ?? 0;
      out.hoursCompared++;
      if (a !== e) {
        out.hourMismatches++;
        const rel = Math.abs(a - e) / Math.max(Math.abs(e), Number.MIN_VALUE);
        out.maxHourRelError = Math.max(out.maxHourRelError, rel);
        example(`device ${sim.id}: hour ${iso(hour / 1000)} stored ${a}, recomputed ${e}`);
      }
    }

    const limit = sim.device.max_hourly_kwh;
    const alerted = new Set((alerts.get(sim.id) ?? []).map((r) => Number(r.hour)));
    out.alerts += alerted.size;
    for (const [hour, kwh] of expected) {
      if (kwh > limit && !alerted.has(hour)) {
        out.missingAlerts++;
        example(`device ${sim.id}: hour ${iso(hour / 1000)} has ${kwh} kWh > ${limit}, no alert`);
      }
    }
    for (const hour of alerted) {
      if (!((expected.get(hour) ?? 0) > limit)) {
        out.wrongAlerts++;
        example(`device ${sim.id}: alert for hour ${iso(hour / 1000)} at ${expected.get(hour) ?? 0} kWh`);
      }
    }
  }
  return out;
}

function storedCount(pg) {
  return Number(pg.scalar('select count(*) from readings'));
}

function describeSims(fleet) {
  return fleet.sims.map((s) => `device ${s.id} (${s.type}): exit ${s.result?.code}` +
    `${s.result?.signal ? ` signal ${s.result.signal}` : ''}; ${s.stdout.trim().split('\n').pop()}` +
    `\n  stderr tail: ${s.stderr.trim().split('\n').slice(-3).join(' | ')}`).join('\n');
}

// One line for the test's output (node --test shows diagnostics).
function report(name, facts) {
  process.stdout.write(`# drill ${name}: ${JSON.stringify(facts)}\n`);
}

module.exports = {
  SIM_BIN,
  audit,
  configurePostgres,
  describeSims,
  recomputeHours,
  report,
  showSettings,
  sourceReadings,
  startFleet,
  storedCount,
};
