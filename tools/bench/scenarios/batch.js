'use strict';
// Scenario 2: batched ingestion, 1,000 readings per request, several devices in
// parallel (a fleet uploading backlogs). Ceiling: COPY of rows of the same shape into
// the same tables (readings and their device_hours), split over as many parallel
// sessions as Wattline had connections, each one transaction; in two halves, just
// before and just after Wattline's run, so that a drift of the shared machine's speed
// weighs on both sides of the ratio.

const fs = require('node:fs');
const path = require('node:path');

const pg = require('../lib/pg');
const { cpuByTree, cpuDelta } = require('../lib/proc');
const { sleep } = require('../lib/stats');
const { wrk } = require('../lib/wrk');
const { cpuRoots, perReading } = require('./ingest');

const BATCH = 1000;
const COPY_HALF_ROWS = 600000; // about half of what Wattline stores in its 10 s

const num = (n) => n.toLocaleString('en-US');
const CONNECTIONS = 8;
const STEP_S = 10;
const DAY_S = 86400;

async function storedFor(devices, t0, t1) {
  const ids = devices.map((d) => d.id).join(',');
  return Number(await pg.scalar(`SELECT count(*) FROM readings
    WHERE device_id IN (${ids}) AND ts >= to_timestamp(${t0}) AND ts < to_timestamp(${t1})`));
}

// Writes, for each of `streams` sessions, a readings file, a device_hours file and the
// psql script that copies both; returns the script paths. The rows continue the
// devices' meters (0.01 kWh a minute) from t0 in STEP_S steps.
function writeCopyFiles(work, devices, rows, t0, streams) {
  const perDevice = Math.ceil(rows / devices.length);
  const scripts = [];
  for (let s = 0; s < streams; s++) {
    const readings = [];
    const hours = [];
    for (let d = s; d < devices.length; d += streams) {
      const id = devices[d].id;
      const perHour = new Map();
      for (let k = 0; k < perDevice; k++) {
        const ts = t0 + k * STEP_S;
        readings.push(`${id}\t${new Date(ts * 1000).toISOString()}\t${(ts / 6000).toFixed(4)}\n`);
        if (k > 0) { // the minute's energy belongs to the hour holding its end
          const hour = Math.floor((ts - 1e-6) / 3600) * 3600;
          perHour.set(hour, (perHour.get(hour) ?? 0) + STEP_S / 6000);
        }
      }
      for (const [hour, kwh] of perHour) {
        hours.push(`${id}\t${new Date(hour * 1000).toISOString()}\t${kwh}\n`);
      }
    }
    const readingsFile = path.join(work, `copy-${s}-readings.tsv`);
    const hoursFile = path.join(work, `copy-${s}-hours.tsv`);
    const script = path.join(work, `copy-${s}.sql`);
    fs.writeFileSync(readingsFile, readings.join(''));
    fs.writeFileSync(hoursFile, hours.join(''));
    fs.writeFileSync(script,
      `\\copy readings (device_id, ts, value) FROM '${readingsFile}'\n` +
      `\\copy device_hours (device_id, hour, kwh) FROM '${hoursFile}'\n`);
    scripts.push(script);
  }
  return { scripts, rows: perDevice * devices.length };
}

async function copyCeiling(ctx, devices, rows, t0) {
  const streams = Math.min(CONNECTIONS, devices.length);
  const files = writeCopyFiles(ctx.work, devices, rows, t0, streams);
  await pg.checkpoint();
  const started = process.hrtime.bigint();
  await Promise.all(files.scripts.map((script) => pg.psqlFile(script)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  for (const name of fs.readdirSync(ctx.work)) {
    if (name.startsWith('copy-')) fs.rmSync(path.join(ctx.work, name));
  }
  return { rows: files.rows, streams, seconds, rate: files.rows / seconds };
}

async function run(ctx) {
  const devices = ctx.setup.devices.batch;
  const today = Math.floor(Date.now() / 1000 / DAY_S) * DAY_S;
  // Each BENCH_REPEAT run 100 days after the one before, all within the 13 months of
  // partitions, so that every run appends (Wattline's readings, then the COPY's).
  const wattlineT0 = today - (150 + 100 * (ctx.repeat - 1 - ctx.rep)) * DAY_S;
  const copyT0 = wattlineT0 + 50 * DAY_S;

  ctx.log(`batched ingestion: COPY ceiling, first half (${num(COPY_HALF_ROWS)} rows)`);
  const before = await copyCeiling(ctx, devices, COPY_HALF_ROWS, copyT0);

  ctx.log('batched ingestion: Wattline');
  await pg.checkpoint();
  const roots = cpuRoots(ctx);
  const cpuBefore = cpuByTree(roots);
  const res = await wrk({ script: 'batch.lua', url: ctx.server.baseUrl, connections: CONNECTIONS,
    seconds: ctx.cfg.batchSeconds, cpu: true, env: { BENCH_DEVICES: ctx.setup.files.batch,
      BENCH_T0: wattlineT0, BENCH_STEP: STEP_S, BENCH_BATCH: BATCH } });
  const cpu = { ...cpuDelta(cpuBefore, cpuByTree(roots)), wrk: res.cpu_seconds };
  await sleep(500);
  ctx.server.assertAlive();
  const stored = await storedFor(devices, wattlineT0, copyT0);
  const okRequests = res.requests - res.errors.status;

  ctx.log(`batched ingestion: COPY ceiling, second half (${num(COPY_HALF_ROWS)} rows)`);
  const after = await copyCeiling(ctx, devices, COPY_HALF_ROWS, copyT0 + 10 * DAY_S);
  const copy = { rows: before.rows + after.rows, streams: before.streams,
    seconds: before.seconds + after.seconds,
    rate: (before.rows + after.rows) / (before.seconds + after.seconds), halves: [before, after] };
  return {
    batch: BATCH,
    connections: CONNECTIONS,
    devices: devices.length,
    wattline: { ...res, readings_per_s: (okRequests * BATCH) / res.duration_s, stored,
      cpu_seconds: cpu, cpu_us_per_reading: perReading(cpu, stored) },
    copy_ceiling: copy,
  };
}

module.exports = { run };
