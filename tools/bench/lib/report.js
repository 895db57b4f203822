'use strict';
// report: the table (scenario, measured, ceiling, ratio, target, result) and the
// machine description printed at the end of a run and stored in its JSON.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');

const { mib, ms, num, ratio } = require('./stats');

const MIB = 1024;

function times(value) {
  return Number.isFinite(value) ? `${num(value, 2)}×` : 'n/a';
}

function row(scenario, measured, ceiling, r, target, pass) {
  return { scenario, measured, ceiling, ratio: r, target, pass };
}

function ingestionRows(ing) {
  const w = ing.runs[0];
  const naive = ing.naive_ceiling;
  const httpC = ing.http_ceiling;
  const vsNaive = ratio(w.ok_rate, naive.tps);
  return [
    row('1 ingestion, 1 reading/request', `${num(w.ok_rate)} readings/s`,
      `naive SQL ${num(naive.tps)} tx/s`, times(vsNaive), '≥ 1.50× naive SQL', vsNaive >= 1.5),
    row('1   same, against HTTP ceiling', `${num(w.ok_rate)} readings/s`,
      `mhd204 ${num(httpC.rate)} req/s`, times(ratio(w.ok_rate, httpC.rate)), '(information)', null),
    row('1   latency p50 / p99', `${ms(w.latency_ms.p50)} / ${ms(w.latency_ms.p99)}`,
      `mhd204 p99 ${ms(httpC.latency_ms.p99)}; SQL p99 ${ms(naive.latency_us.p99 / 1000)}`,
      times(ratio(w.latency_ms.p99, naive.latency_us.p99 / 1000)), 'p99 ≤ 20 ms',
      w.latency_ms.p99 <= 20),
    row('1   errors', `${w.error_count} (${num(w.stored)} stored)`, '', '', '0',
      w.error_count === 0 && w.stored >= w.requests - w.errors.status),
  ];
}

function batchRows(b) {
  const w = b.wattline;
  const r = ratio(w.readings_per_s, b.copy_ceiling.rate);
  return [
    row(`2 ingestion, ${num(b.batch)} readings/request`, `${num(w.readings_per_s)} readings/s`,
      `COPY ${num(b.copy_ceiling.rate)} rows/s`, times(r), '≥ 0.50× COPY',
      r >= 0.5 && w.error_count === 0),
  ];
}

// "wattline 30, postgresql 56, rabbitmq 96, bench 40"
function cpuText(perReading) {
  return Object.entries(perReading || {}).map(([c, us]) => `${c} ${us}`).join(', ');
}

function brokerRows(b) {
  const w = b.wattline;
  const r = ratio(w.rate, b.ceiling.rate);
  return [
    row('7 broker, 1 reading/message', `${num(w.rate)} readings/s`,
      `ack-only consumer ${num(b.ceiling.rate)} msg/s`, times(r), '(information)', null),
    row('7   CPU µs per reading', cpuText(w.cpu_us_per_reading), '', '', '(information)', null),
    row('7   dead-lettered', `${b.dead}`, '', '', '0', b.dead === 0),
  ];
}

function alertRows(a) {
  const w = a.wattline;
  const c = a.notify_ceiling;
  const l = w.latency_ms;
  return [
    row('3 alert latency p50 / p99 / max', `${ms(l.p50)} / ${ms(l.p99)} / ${ms(l.max)}`,
      `NOTIFY round trip p99 ${ms(c.rtt_ms.p99, 3)}`, times(ratio(l.p99, c.rtt_ms.p99)),
      'p99 ≤ 10 ms', l.p99 <= 10),
    row('3   deliveries missing / wrong', `${w.missing} / ${w.wrong_session} of ` +
      `${num(w.deliveries_expected)}`, '', '', '0 / 0',
    w.missing === 0 && w.wrong_session === 0 && w.duplicates === 0 && w.post_failures === 0 &&
      w.alerts_stored === w.alerts_posted),
  ];
}

function commandRows(c, alerts) {
  const floor = alerts?.notify_ceiling?.rtt_ms?.p99;
  return [
    row(`9 command round trip p50 / p99 (${num(c.commands)})`,
      `${ms(c.round_trip_ms.p50)} / ${ms(c.round_trip_ms.p99)}`,
      floor === undefined ? '' : `NOTIFY round trip p99 ${ms(floor, 3)}`, '', '(information)', null),
    row('9   create to device p50 / p99', `${ms(c.to_device_ms.p50)} / ${ms(c.to_device_ms.p99)}`,
      '', '', '(information)', null),
  ];
}

function webhookRows(w, alerts) {
  const l = w.latency_ms;
  const floor = alerts?.notify_ceiling?.rtt_ms?.p99;
  return [
    row('8 webhook latency p50 / p99', `${ms(l.p50)} / ${ms(l.p99)}`,
      floor === undefined ? '' : `NOTIFY round trip p99 ${ms(floor, 3)}`, '', '(information)', null),
    row('8   deliveries missing / twice / bad signature', `${w.missing} / ${w.duplicates} / ` +
      `${w.bad_signatures} of ${num(w.alerts_posted)}`, '', '', '0 / 0 / 0',
    w.missing === 0 && w.duplicates === 0 && w.bad_signatures === 0 && w.post_failures === 0),
  ];
}

function chatRows(c, alerts) {
  const l = c.latency_ms;
  const floor = alerts ? alerts.notify_ceiling.rtt_ms.p99 : NaN;
  return [
    row(`6 chat latency p50 / p99 (${num(c.sessions)} sessions)`, `${ms(l.p50)} / ${ms(l.p99)}`,
      alerts ? `NOTIFY round trip p99 ${ms(floor, 3)}` : '', times(ratio(l.p99, floor)),
      '(information)', null),
    row('6   chat.sent (stored) p50 / p99', `${ms(c.sent_latency_ms.p50)} / ${ms(c.sent_latency_ms.p99)}`,
      '', '', '(information)', null),
    row('6   deliveries missing / wrong', `${c.missing} / ${c.wrong_session} of ` +
      `${num(c.deliveries_expected)}`, '', '', '0 / 0',
    c.missing === 0 && c.wrong_session === 0 && c.duplicates === 0 && c.sent_missing === 0 &&
      c.echoed_to_sender === 0 && c.errors === 0),
  ];
}

function queryRows(q) {
  const d = q.day_chart;
  const csv = q.csv;
  return [
    row('4 day chart, 16 connections', `${num(d.wattline.ok_rate)} req/s, p99 ` +
      `${ms(d.wattline.latency_ms.p99)}`, `SQL ${num(d.ceiling.tps)} q/s, p99 ` +
      `${ms(d.ceiling.latency_us.p99 / 1000)}`, times(ratio(d.wattline.ok_rate, d.ceiling.tps)),
    'p99 ≤ 5 ms', d.wattline.latency_ms.p99 <= 5 && d.wattline.error_count === 0),
    row('4 year as CSV: time, RSS growth', `${num(csv.seconds, 2)} s, +${mib(csv.rss_growth_kib)}`,
      `COPY ${num(csv.ceiling_seconds, 2)} s`, times(ratio(csv.seconds, csv.ceiling_seconds)),
      'RSS growth < 16 MiB', csv.status === 200 && csv.lines === csv.expected_lines &&
        csv.rss_growth_kib < 16 * MIB),
  ];
}

// The memory rows whose figures exist (BENCH_ONLY may have skipped some phases).
function memoryRows(m, ing) {
  const rows = [
    row('5 RSS idle', mib(m.idle.rss_kib), '', '', '≤ 20 MiB', m.idle.rss_kib <= 20 * MIB),
  ];
  if (m.sessions) {
    rows.push(row(`5 RSS per idle WebSocket session`, `${num(m.sessions.per_session_kib, 2)} ` +
      `KiB (${num(m.sessions.sessions)} sessions)`, '', '', '≤ 8 KiB',
    m.sessions.per_session_kib <= 8 && m.sessions.closed_by_server === 0));
  }
  if (ing) {
    const rss = ing.runs.map((r) => r.rss_after_kib);
    const last = rss[rss.length - 1];
    const before = rss[rss.length - 2];
    const tolerance = Math.max(MIB, before * 0.02);
    rows.push(row('5 RSS after ingestion runs 1 / 2 / 3',
      `${rss.map((k) => num(k / MIB, 1)).join(' / ')} MiB`, '', '',
      'run 3 ≤ run 2 (+1 MiB or 2%)', last <= before + tolerance));
  }
  return rows;
}

// The table rows for whatever scenarios finished.
function tableRows(results) {
  const rows = [];
  if (results.ingestion) rows.push(...ingestionRows(results.ingestion));
  if (results.batch) rows.push(...batchRows(results.batch));
  if (results.alerts) rows.push(...alertRows(results.alerts));
  if (results.chat) rows.push(...chatRows(results.chat, results.alerts));
  if (results.queries) rows.push(...queryRows(results.queries));
  if (results.commands) rows.push(...commandRows(results.commands, results.alerts));
  if (results.webhooks) rows.push(...webhookRows(results.webhooks, results.alerts));
  if (results.broker) rows.push(...brokerRows(results.broker));
  if (results.memory) rows.push(...memoryRows(results.memory, results.ingestion));
  return rows;
}

function passText(pass) {
  if (pass === null) return '';
  return pass ? 'pass' : 'FAIL';
}

function formatTable(rows) {
  const header = ['scenario', 'measured', 'ceiling', 'ratio', 'target', 'result'];
  const cells = rows.map((r) => [r.scenario, r.measured, r.ceiling, r.ratio, r.target,
    passText(r.pass)]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c) => c.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

// The first line a program prints, whatever its exit status (`wrk -v` exits 1).
function firstLine(cmd, args) {
  const res = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const text = `${res.stdout ?? ''}${res.stderr ?? ''}`.trim();
  return res.error || !text ? 'unknown' : text.split('\n')[0].trim();
}

// Whether tracked files differ from the commit. --no-optional-locks: never take the
// index lock, which someone else's git command may need at the same moment.
function gitDirty() {
  const res = spawnSync('git', ['--no-optional-locks', '-C', __dirname, 'status', '--porcelain',
    '--untracked-files=no'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return res.status === 0 ? res.stdout.trim() !== '' : null;
}

function machine() {
  const cpus = os.cpus();
  let storage = 'unknown';
  try {
    storage = firstLine('findmnt', ['-n', '-o', 'SOURCE,FSTYPE', '--target', os.tmpdir()]);
  } catch {
    storage = 'unknown';
  }
  return {
    cpu_model: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memory_gib: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    virtualization: firstLine('systemd-detect-virt', []),
    storage,
    node: process.version,
    wrk: firstLine('wrk', ['-v']).replace(/\s*Copyright.*$/, ''),
    git_commit: firstLine('git', ['-C', __dirname, 'rev-parse', '--short', 'HEAD']),
    git_dirty: gitDirty(),
  };
}

function machineText(m, pgVersion) {
  return [
    `machine:    ${m.cores} cores, ${m.cpu_model}, ${m.memory_gib} GiB (${m.virtualization})`,
    `system:     ${m.kernel}; storage ${m.storage}`,
    `software:   ${pgVersion}; ${m.wrk}; node ${m.node}`,
    `wattline:   ${m.git_commit}${m.git_dirty ? ' (with uncommitted changes)' : ''}`,
  ].join('\n');
}

function writeJson(dir, report) {
  fs.mkdirSync(dir, { recursive: true });
  const stamp = report.started_at.replace(/[:]/g, '').replace(/\..*$/, '');
  const file = `${dir}/bench-${stamp}.json`;
  fs.writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}

module.exports = { formatTable, machine, machineText, tableRows, writeJson };
