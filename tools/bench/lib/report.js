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

// spread (optional): what BENCH_REPEAT shows of the row's runs: `figure` (the row's
// main number) with `fmt` to print it, `ratio` as a number; `all` when the target
// must hold in every run (the day chart's three consecutive runs), not in the median.
function row(scenario, measured, ceiling, r, target, pass, spread = {}) {
  return { scenario, measured, ceiling, ratio: r, target, pass, spread };
}

const rate = (v) => num(v);
const msFig = (v) => ms(v);
const us = (v) => num(v, 1);

// "wattline 64.7, postgresql 87.6, wrk 17.5"
function cpuPerReading(w) {
  const c = w.cpu_us_per_reading || {};
  return ['wattline', 'postgresql', 'wrk'].filter((k) => c[k] !== undefined)
    .map((k) => `${k === 'wattline' ? 'server' : k} ${us(c[k])}`).join(' / ');
}

function ingestionRows(ing) {
  const w = ing.runs[0];
  const naive = ing.naive_ceiling;
  const grouped = ing.grouped_ceiling;
  const httpC = ing.http_ceiling;
  const vsGrouped = ratio(w.ok_rate, grouped.readings_per_s);
  const vsHttp = ratio(w.ok_rate, httpC.rate);
  const vsNaive = ratio(w.ok_rate, naive.tps);
  const measured = `${num(w.ok_rate)} readings/s`;
  const fig = { figure: w.ok_rate, fmt: rate };
  return [
    row('1 ingestion, 1 reading/request', measured,
      `grouped SQL ${num(grouped.readings_per_s)} readings/s (${grouped.clients}×${grouped.group})`,
      times(vsGrouped), '≥ 0.50× grouped SQL', vsGrouped >= 0.5, { ...fig, ratio: vsGrouped }),
    row('1   same, against HTTP ceiling', measured, `mhd204 ${num(httpC.rate)} req/s`,
      times(vsHttp), '≥ 0.30× HTTP', vsHttp >= 0.3, { ...fig, ratio: vsHttp }),
    row('1   same, against naive SQL', measured, `naive SQL ${num(naive.tps)} readings/s`,
      times(vsNaive), '(information)', null, { ...fig, ratio: vsNaive }),
    row('1   latency p50 / p99', `${ms(w.latency_ms.p50)} / ${ms(w.latency_ms.p99)}`,
      `mhd204 p99 ${ms(httpC.latency_ms.p99)}; grouped p99 ${ms(grouped.latency_us.p99 / 1000)}`,
      times(ratio(w.latency_ms.p99, grouped.latency_us.p99 / 1000)), 'p99 ≤ 20 ms',
      w.latency_ms.p99 <= 20, { figure: w.latency_ms.p99, fmt: msFig }),
    row('1   errors', `${w.error_count} (${num(w.stored)} stored)`, '', '', '0',
      w.error_count === 0 && w.stored >= w.requests - w.errors.status),
    row('1   CPU µs per stored reading', cpuPerReading(w), '', '', '(information)', null),
    ...webhookCostRows(ing.runs),
  ];
}

// Runs 2, 3 and 4 (scenarios/ingest.js): with the webhooks of scenario 8, without, and
// with them again. Compared: run 3 against the mean of runs 2 and 4, which cancels a
// steady drift between runs. Within noise: no further apart than runs 2 and 4 (alike
// but for time) are from each other, or 5 %.
function webhookCostRows(runs) {
  const [, withHooks, without, withAgain] = runs;
  if (!withAgain || !withHooks.webhooks || without.webhooks || !withAgain.webhooks) return [];
  const withRate = (withHooks.ok_rate + withAgain.ok_rate) / 2;
  const r = ratio(withRate, without.ok_rate);
  const noise = Math.max(0.05, Math.abs(1 - ratio(withAgain.ok_rate, withHooks.ok_rate)));
  return [row('1   with / without webhooks (runs 2+4, 3)',
    `${num(withRate)} / ${num(without.ok_rate)} readings/s`,
    `${withHooks.webhooks} webhooks, none, again`, times(r),
    `within noise (±${num(noise * 100, 1)} %)`, Math.abs(1 - r) <= noise,
    { figure: r, fmt: times })];
}

function batchRows(b) {
  const w = b.wattline;
  const r = ratio(w.readings_per_s, b.copy_ceiling.rate);
  const rows = [
    row(`2 ingestion, ${num(b.batch)} readings/request`, `${num(w.readings_per_s)} readings/s`,
      `COPY ${num(b.copy_ceiling.rate)} rows/s`, times(r), '≥ 0.75× COPY',
      r >= 0.75 && w.error_count === 0, { figure: w.readings_per_s, fmt: rate, ratio: r }),
  ];
  if (w.cpu_us_per_reading) {
    rows.push(row('2   CPU µs per stored reading', cpuPerReading(w), '', '', '(information)', null));
  }
  return rows;
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
      `ack-only consumer ${num(b.ceiling.rate)} msg/s`, times(r), '(information)', null,
      { figure: w.rate, fmt: rate, ratio: r }),
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
      'p99 ≤ 5 ms', l.p99 <= 5, { figure: l.p99, fmt: msFig, ratio: ratio(l.p99, c.rtt_ms.p99) }),
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
      floor === undefined ? '' : `NOTIFY round trip p99 ${ms(floor, 3)}`, '', '(information)', null,
      { figure: c.round_trip_ms.p99, fmt: msFig }),
    row('9   create to device p50 / p99', `${ms(c.to_device_ms.p50)} / ${ms(c.to_device_ms.p99)}`,
      '', '', '(information)', null),
  ];
}

function webhookRows(w, alerts) {
  const l = w.latency_ms;
  const floor = alerts?.notify_ceiling?.rtt_ms?.p99;
  return [
    row('8 webhook latency p50 / p99', `${ms(l.p50)} / ${ms(l.p99)}`,
      floor === undefined ? '' : `NOTIFY round trip p99 ${ms(floor, 3)}`, '', '(information)', null,
      { figure: l.p99, fmt: msFig }),
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
      '(information)', null, { figure: l.p99, fmt: msFig, ratio: ratio(l.p99, floor) }),
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
    'p99 ≤ 5 ms', d.wattline.latency_ms.p99 <= 5 && d.wattline.error_count === 0,
    { figure: d.wattline.latency_ms.p99, fmt: msFig, ratio: ratio(d.wattline.ok_rate, d.ceiling.tps),
      all: true }),
    row('4 year as CSV: time, RSS growth', `${num(csv.seconds, 2)} s, +${mib(csv.rss_growth_kib)}`,
      `COPY ${num(csv.ceiling_seconds, 2)} s`, times(ratio(csv.seconds, csv.ceiling_seconds)),
      'RSS growth < 16 MiB', csv.status === 200 && csv.lines === csv.expected_lines &&
        csv.rss_growth_kib < 16 * MIB),
  ];
}

function scaleRows(sc) {
  const a = sc.alerts;
  const l = a.latency_ms;
  const rows = [
    row('10 scale: idle WebSocket sessions', `${num(sc.established)} of ${num(sc.target)} in ` +
      `${num(sc.open_seconds, 1)} s (${sc.processes} client processes)`, '', '', '(information)', null,
    { figure: sc.established, fmt: num }),
    row('10   RSS per session', `${num(sc.per_session_kib, 2)} KiB (+${mib(sc.rss_with_sessions_kib -
      sc.rss_before_kib)})`, '', '', '(information)', null,
    { figure: sc.per_session_kib, fmt: (v) => num(v, 2) }),
    row(`10   alert p50 / p99, ${num(a.sessions_open)} sessions open`, `${ms(l.p50)} / ${ms(l.p99)}`,
      `${a.sessions} owner sessions of ${a.owners} owners`, '', '(information)', null,
      { figure: l.p99, fmt: msFig }),
    row('10   alert deliveries missing / wrong', `${a.missing} / ${a.wrong_session} of ` +
      `${num(a.deliveries_expected)}`, '', '', '0 / 0',
    a.missing === 0 && a.wrong_session === 0 && a.duplicates === 0 && a.post_failures === 0 &&
      a.alerts_stored === a.alerts_posted),
  ];
  if (sc.established < sc.target) {
    rows.push(row('10   why not all', `${num(sc.failed)} failed; ${sc.why_not_all ?? 'unknown'}`,
      '', '', '(information)', null));
  }
  return rows;
}

// The memory rows whose figures exist (BENCH_ONLY may have skipped some phases).
function memoryRows(m, ing) {
  const rows = [
    row('5 RSS idle', mib(m.idle.rss_kib), '', '', '≤ 20 MiB', m.idle.rss_kib <= 20 * MIB),
  ];
  if (m.sessions) {
    rows.push(row(`5 RSS per idle WebSocket session`, `${num(m.sessions.per_session_kib, 2)} ` +
      `KiB (${num(m.sessions.sessions)} sessions)`, '', '', '≤ 8 KiB',
    m.sessions.per_session_kib <= 8 && m.sessions.closed_by_server === 0,
    { figure: m.sessions.per_session_kib, fmt: (v) => num(v, 2) }));
  }
  if (ing) {
    const rss = ing.runs.slice(0, 3).map((r) => r.rss_after_kib);
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
  if (results.scale) rows.push(...scaleRows(results.scale));
  return rows;
}

// ---- BENCH_REPEAT: the median of N runs ---------------------------------------------

function median(values) {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

// The runs' results as one, every number the median of that number in each run (the
// first run's shape: a figure a later run lacks is the median of those that have it).
function medianOf(values) {
  const first = values[0];
  if (typeof first === 'number') return median(values.filter((v) => typeof v === 'number'));
  if (Array.isArray(first)) {
    return first.map((_, i) => medianOf(values.map((v) => (Array.isArray(v) ? v[i] : undefined))
      .filter((v) => v !== undefined)));
  }
  if (first && typeof first === 'object') {
    return Object.fromEntries(Object.keys(first).map((k) => [k,
      medianOf(values.map((v) => v?.[k]).filter((v) => v !== undefined))]));
  }
  return first;
}

// The table of N runs: each row from the median results, its main figure and its ratio
// followed by the spread of the runs (min–max); a row whose target must hold in every
// run (spread.all) passes only if it did.
function repeatRows(runs) {
  const rows = tableRows(medianOf(runs));
  const each = runs.map(tableRows);
  const range = (xs, fmt) => {
    const v = xs.filter(Number.isFinite);
    return v.length ? `${fmt(Math.min(...v))}–${fmt(Math.max(...v))}` : '';
  };
  return rows.map((r, i) => {
    const same = each.map((rs) => rs[i]).filter((x) => x && x.scenario === r.scenario);
    const out = { ...r, runs: same.map((x) => ({ measured: x.measured, ratio: x.ratio, pass: x.pass })) };
    if (r.spread.figure !== undefined && r.spread.fmt) {
      out.measured = `${r.measured} [${range(same.map((x) => x.spread.figure), r.spread.fmt)}]`;
    }
    if (r.spread.ratio !== undefined) {
      out.ratio = `${r.ratio} [${range(same.map((x) => x.spread.ratio), (v) => num(v, 2))}]`;
    }
    if (r.spread.all && r.pass !== null) out.pass = same.every((x) => x.pass === true);
    return out;
  });
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

module.exports = { formatTable, machine, machineText, medianOf, repeatRows, tableRows, writeJson };
