'use strict';
// Scenario 3: alert latency. Owners keep WebSocket sessions open (several each); readings
// that push a device over its hourly limit are posted at a steady rate; for every alert
// and every session of the device's owner, the time from the POST's response to the
// session receiving the alert. Nothing may be missing, nothing may reach a session of
// another owner. Ceiling: PostgreSQL's LISTEN/NOTIFY round trip (notify_rtt), at the
// same rate.

const http = require('node:http');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const pg = require('../lib/pg');
const { runOk } = require('../lib/proc');
const { sleep, summarize } = require('../lib/stats');
const { closeSessions, closedCount, openSessions } = require('../lib/ws');

const HOUR_S = 3600;
const STRAGGLER_WAIT_MS = 5000;

const keyOf = (deviceId, hourStartMs) => `${deviceId}|${hourStartMs}`;

// POSTs one reading; resolves to {status, at} with `at` taken when the response is
// complete (performance.now()).
function post(server, agent, token, body) {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = http.request(`${server.baseUrl}/api/v1/measurements`, {
      method: 'POST', agent,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json',
        'content-length': Buffer.byteLength(payload) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, text, at: performance.now() }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

// The readings: alert i is for device i % n in hour floor(i / n) after firstHour, so
// every (device, hour) is new and 1.5 kWh > the 1 kWh limit raises exactly one alert.
function plan(devices, count, firstHour) {
  return Array.from({ length: count }, (_, i) => {
    const device = devices[i % devices.length];
    const hour = firstHour + Math.floor(i / devices.length) * HOUR_S;
    return { device, hourMs: hour * 1000,
      body: { ts: new Date((hour + 1800) * 1000).toISOString(), kwh: 1.5 } };
  });
}

async function postAll(ctx, readings) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const period = 1000 / ctx.cfg.alertRate;
  const start = performance.now();
  const responses = new Map(); // key -> response time
  let failures = 0;
  const pending = [];
  for (const [i, r] of readings.entries()) {
    const due = start + i * period;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    pending.push(post(ctx.server, agent, r.device.token, r.body).then((res) => {
      if (res.status === 200 && JSON.parse(res.text).accepted === 1) {
        responses.set(keyOf(r.device.id, r.hourMs), res.at);
      } else {
        failures++;
      }
    }, () => { failures++; }));
  }
  await Promise.all(pending);
  agent.destroy();
  return { responses, failures, seconds: (performance.now() - start) / 1000 };
}

// What each session received: key -> [arrival times].
function collector(deviceOwner) {
  const wrong = [];
  const onMessage = (session, msg, at) => {
    if (msg.type !== 'alert' || !msg.alert) return;
    const a = msg.alert;
    if (deviceOwner.get(a.device_id) !== session.owner.id) wrong.push(a.id);
    const key = keyOf(a.device_id, Date.parse(a.hour_start));
    if (!session.alerts) session.alerts = new Map();
    const list = session.alerts.get(key) ?? [];
    list.push(at);
    session.alerts.set(key, list);
  };
  return { onMessage, wrong };
}

function deliveries(readings, sessionsByOwner, responses) {
  const latencies = [];
  let missing = 0;
  let duplicates = 0;
  let beforeResponse = 0;
  for (const r of readings) {
    const key = keyOf(r.device.id, r.hourMs);
    const respondedAt = responses.get(key);
    for (const session of sessionsByOwner.get(r.device.owner.id) ?? []) {
      const got = session.alerts?.get(key);
      if (!got || respondedAt === undefined) {
        missing++;
        continue;
      }
      duplicates += got.length - 1;
      const latency = got[0] - respondedAt;
      if (latency < 0) beforeResponse++;
      latencies.push(Math.max(0, latency));
    }
  }
  return { latencies, missing, duplicates, beforeResponse };
}

// The sessions of each owner.
function byOwner(sessions) {
  const sessionsByOwner = new Map();
  for (const s of sessions) {
    if (!sessionsByOwner.has(s.owner.id)) sessionsByOwner.set(s.owner.id, []);
    sessionsByOwner.get(s.owner.id).push(s);
  }
  return sessionsByOwner;
}

// Posts `count` alerting readings for `devices` (hours from firstHour on) and measures
// their delivery to `sessions`, opened with collect.onMessage (the scale scenario
// measures the same among thousands of other sessions).
async function measure(ctx, { sessions, collect, devices, count, firstHour }) {
  const sessionsByOwner = byOwner(sessions);
  const readings = plan(devices, count, firstHour);
  const expected = readings.reduce(
    (n, r) => n + (sessionsByOwner.get(r.device.owner.id)?.length ?? 0), 0);
  ctx.log(`alert latency: posting ${readings.length} alerting readings at ${ctx.cfg.alertRate}/s`);
  const posted = await postAll(ctx, readings);
  const received = () => sessions.reduce((n, s) => n + [...(s.alerts?.values() ?? [])]
    .reduce((m, l) => m + l.length, 0), 0);
  const deadline = performance.now() + STRAGGLER_WAIT_MS;
  while (received() < expected && performance.now() < deadline) await sleep(50);

  const d = deliveries(readings, sessionsByOwner, posted.responses);
  const lastHour = firstHour + Math.ceil(count / devices.length) * HOUR_S;
  const stored = Number(await pg.scalar(`SELECT count(*) FROM alerts
    WHERE device_id IN (${devices.map((x) => x.id).join(',')})
      AND hour_start >= to_timestamp(${firstHour}) AND hour_start < to_timestamp(${lastHour})`));
  return {
    sessions: sessions.length, owners: sessionsByOwner.size, alerts_posted: readings.length,
    post_failures: posted.failures, post_seconds: posted.seconds, alerts_stored: stored,
    deliveries_expected: expected, deliveries: d.latencies.length, missing: d.missing,
    wrong_session: collect.wrong.length, duplicates: d.duplicates,
    before_response: d.beforeResponse, sessions_closed_by_server: closedCount(sessions),
    latency_ms: summarize(d.latencies),
  };
}

// Hours of a run's own: each BENCH_REPEAT run 12 hours after the one before (at most
// 5 hours each), so that every reading raises a new alert.
function runHour(ctx, daysBack) {
  return Math.floor(Date.now() / 1000 / HOUR_S) * HOUR_S - daysBack * 86400 + ctx.rep * 12 * HOUR_S;
}

async function wattline(ctx) {
  const { owners, devices } = ctx.setup;
  const deviceOwner = new Map(devices.alerting.map((d) => [d.id, d.owner.id]));
  const collect = collector(deviceOwner);
  ctx.log(`alert latency: opening ${ctx.cfg.alertSessions} WebSocket sessions`);
  const sessions = await openSessions(ctx.server.wsUrl, owners, ctx.cfg.alertSessions,
    { onMessage: collect.onMessage });
  try {
    return await measure(ctx, { sessions, collect, devices: devices.alerting,
      count: ctx.cfg.alertCount, firstHour: runHour(ctx, 3) });
  } finally {
    await closeSessions(sessions);
  }
}

async function ceiling(ctx) {
  ctx.log('alert latency: LISTEN/NOTIFY ceiling (notify_rtt)');
  const res = await runOk(path.join(process.env.BENCH_HELPERS, 'notify_rtt'),
    [pg.URL, String(ctx.cfg.alertCount), String(ctx.cfg.alertRate)],
    { timeoutMs: (ctx.cfg.alertCount / ctx.cfg.alertRate + 60) * 1000 });
  const raw = JSON.parse(res.stdout);
  const toMs = (o) => ({ p50: o.p50 / 1000, p99: o.p99 / 1000, max: o.max / 1000 });
  return { count: raw.count, rtt_ms: toMs(raw.rtt_us), after_commit_ms: toMs(raw.after_commit_us) };
}

async function run(ctx) {
  const result = await wattline(ctx);
  return { wattline: result, notify_ceiling: await ceiling(ctx) };
}

module.exports = { run, plan, postAll, keyOf, collector, measure, runHour };
