'use strict';
// Scenario 4: queries on a device holding a year of one-minute readings.
//   - the day chart (GET /devices/{id}/consumption?date=&tz=UTC), 16 connections, a
//     different day on each request. Ceiling: pgbench running the least SQL that
//     answers it (the device row and its 24 device_hours rows), 16 clients.
//   - the year as CSV (Accept: text/csv): seconds, and the server's peak RSS above
//     what it held before (it must stream, not buffer). Ceiling: psql COPY of the
//     same rows to CSV.

const http = require('node:http');
const path = require('node:path');

const pg = require('../lib/pg');
const { peakRssKiB, resetPeakRss, rssKiB, runOk } = require('../lib/proc');
const { sleep } = require('../lib/stats');
const { wrk } = require('../lib/wrk');

const CONNECTIONS = 16;
const RSS_SAMPLE_MS = 10;
const DAY_S = 86400;

async function dayChart(ctx) {
  const { year, devices, owners } = ctx.setup;
  ctx.log('queries: day chart (Wattline)');
  const res = await wrk({ script: 'daychart.lua', url: ctx.server.baseUrl, connections: CONNECTIONS,
    seconds: ctx.cfg.chartSeconds, env: { BENCH_DEVICE: devices.year.id, BENCH_TOKEN: owners[0].token,
      BENCH_FIRST_DAY: year.firstDay, BENCH_DAYS: year.days } });
  ctx.log('queries: day chart ceiling (pgbench)');
  const ceiling = await pg.pgbench(path.resolve(__dirname, '..', 'pgbench', 'daychart.sql'), {
    clients: CONNECTIONS, threads: 2, seconds: ctx.cfg.chartSeconds, tag: 'daychart',
    defines: { dev: devices.year.id, first_day: year.firstDay, days: year.days },
  });
  return { wattline: res, ceiling };
}

function isoDay(seconds) {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

// Downloads the CSV, counting lines, while sampling the server's RSS.
function downloadCsv(ctx, from, to) {
  const { server } = ctx;
  const url = `${server.baseUrl}/api/v1/devices/${ctx.setup.devices.year.id}/measurements` +
    `?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
  return new Promise((resolve, reject) => {
    let peakSampled = 0;
    const sampler = setInterval(() => {
      peakSampled = Math.max(peakSampled, rssKiB(server.pid));
    }, RSS_SAMPLE_MS);
    const started = process.hrtime.bigint();
    const req = http.get(url, { agent: false, headers: {
      authorization: `Bearer ${ctx.setup.owners[0].token}`, accept: 'text/csv' } }, (res) => {
      let lines = 0;
      let bytes = 0;
      res.on('data', (chunk) => {
        bytes += chunk.length;
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
      });
      res.on('end', () => {
        clearInterval(sampler);
        resolve({ status: res.statusCode, contentType: res.headers['content-type'], lines, bytes,
          seconds: Number(process.hrtime.bigint() - started) / 1e9, peakSampled });
      });
      res.on('error', (err) => {
        clearInterval(sampler);
        reject(err);
      });
    });
    req.on('error', (err) => {
      clearInterval(sampler);
      reject(err);
    });
  });
}

async function csvExport(ctx) {
  const { year, devices } = ctx.setup;
  const from = isoDay(year.firstDay);
  const to = isoDay(year.firstDay + year.days * DAY_S);
  ctx.log('queries: year as CSV (Wattline)');
  const pid = ctx.server.pid;
  await sleep(500);
  const before = rssKiB(pid);
  const hwmReset = resetPeakRss(pid);
  const dl = await downloadCsv(ctx, from, to);
  const peak = Math.max(dl.peakSampled, hwmReset ? peakRssKiB(pid) : 0);
  ctx.server.assertAlive();

  ctx.log('queries: year as CSV ceiling (psql COPY)');
  const started = process.hrtime.bigint();
  await runOk(path.join(process.env.BENCH_PG_BIN, 'psql'), ['-X', '-q', '-d', pg.URL,
    '-o', '/dev/null', '-c', `COPY (SELECT ts, value FROM readings WHERE device_id = ${devices.year.id}
      AND ts >= '${from}' AND ts < '${to}' ORDER BY ts) TO STDOUT WITH (FORMAT csv, HEADER)`]);
  const ceilingSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  return {
    status: dl.status, content_type: dl.contentType, lines: dl.lines,
    expected_lines: year.readings + 1, bytes: dl.bytes, seconds: dl.seconds,
    rss_before_kib: before, rss_peak_kib: peak, rss_growth_kib: peak - before,
    peak_from: hwmReset ? 'VmHWM after reset, and 10 ms samples' : '10 ms samples',
    ceiling_seconds: ceilingSeconds,
  };
}

async function run(ctx) {
  return { day_chart: await dayChart(ctx), csv: await csvExport(ctx) };
}

module.exports = { run };
