'use strict';
// Scenario 10: scale. 50,000 idle authenticated WebSocket sessions: how many the server
// took, the time to open them, and its RSS per session (growth over the RSS before
// the first was opened); and, with 10,000 of them open, the alert latency (scenario 3's
// measurement) for owners who hold a few sessions among thousands of other users'.
//
// The idle sessions live in ws_holder.js processes, ~12,500 each, each from a loopback
// source address of its own (127.0.0.2, .3, ...: one address has ~28,000 ephemeral
// ports towards one server port). run.sh raises the open-file limit for the bench's
// processes (the server's and the holders'); where it could not, the figure says how
// many sessions were reached and why not more: the scenario reports, it does not fail.

const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');

const { rssKiB, spawnTracked, stop } = require('../lib/proc');
const { sleep } = require('../lib/stats');
const { closeSessions, openSessions } = require('../lib/ws');
const alerts = require('./alerts');

const PER_HOLDER = 12500;
const ALERT_OWNERS = 20; // with 5 sessions each
const SESSIONS_PER_ALERT_OWNER = 5;
const SETTLE_MS = 1500;
// Before the alert latency: the sessions just opened are authenticated, but the hub
// may still be busy with them; the figure is for 10,000 sessions open, not opening.
const QUIET_MS = 5000;
// Handshakes in flight over all holders: each session must authenticate within the
// hub's 10 s (HUB_AUTH_TIMEOUT_S), and the hub authenticates them one at a time.
const PARALLEL = 100;
const HOUR_S = 3600;
const FD_MARGIN = 300; // the server's other descriptors: database, HTTP, the alert POSTs

// The sessions the server can take: its open-file limit less what it has open and a
// margin. Beyond it lws cannot accept, and each further client would wait out its
// handshake timeout: better to stop there and say why.
function serverRoom(pid) {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'));
  const limit = m && m[1] !== 'unlimited' ? Number(m[1]) : Infinity;
  const open = fs.readdirSync(`/proc/${pid}/fd`).length;
  return { limit, open, room: Math.max(0, limit - open - FD_MARGIN) };
}

// A holder process and its JSON answers, one per "open N".
function startHolder(ctx, tokensFile, index, parallel) {
  const child = spawnTracked(process.execPath, [path.join(__dirname, '..', 'lib', 'ws_holder.js'),
    ctx.server.wsUrl, tokensFile, `127.0.0.${2 + index}`, String(parallel)],
  { stdio: ['pipe', 'pipe', 'inherit'] });
  const answers = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    child,
    async open(n) {
      child.stdin.write(`open ${n}\n`);
      const { value, done } = await answers.next();
      if (done) throw new Error(`ws_holder ${index} exited`);
      return JSON.parse(value);
    },
  };
}

// Opens `total` more sessions spread over the holders; resolves to their answers.
function openOnHolders(holders, total) {
  return Promise.all(holders.map((h, i) => {
    const share = Math.floor(total / holders.length) + (i < total % holders.length ? 1 : 0);
    return h.open(share);
  }));
}

function sum(answers, field) {
  return answers.reduce((n, a) => n + a[field], 0);
}

// Alert readings of the run's own hours: 60 days back, each BENCH_REPEAT run 3 days
// later (a run's readings span count / 20 hours), clear of the other scenarios'.
function firstHour(ctx) {
  return Math.floor(Date.now() / 1000 / HOUR_S) * HOUR_S - 60 * 86400 + ctx.rep * 3 * 86400;
}

async function run(ctx) {
  const { owners, devices } = ctx.setup;
  const pid = ctx.server.pid;
  const target = ctx.cfg.scaleSessions;
  const fds = serverRoom(pid);
  const planned = Math.min(target, fds.room);
  const capped = planned < target ? `server's open-file limit ${fds.limit} (raising it ` +
    'needs CAP_SYS_RESOURCE)' : null;
  if (capped) ctx.log(`scale: only ${planned} sessions: ${capped}`);
  const nAlertOwners = Math.min(ALERT_OWNERS, Math.floor(owners.length / 5));
  const alertOwners = owners.slice(0, nAlertOwners);
  const others = owners.slice(nAlertOwners);
  const alertIds = new Set(alertOwners.map((o) => o.id));
  const alertDevices = devices.alerting.filter((d) => alertIds.has(d.owner.id));
  const tokensFile = path.join(ctx.work, 'scale-tokens.txt');
  fs.writeFileSync(tokensFile, others.map((o) => `${o.token}\n`).join(''));

  await sleep(SETTLE_MS);
  const rssBefore = rssKiB(pid);
  const nHolders = Math.max(1, Math.ceil(planned / PER_HOLDER));
  const holders = Array.from({ length: nHolders },
    (_, i) => startHolder(ctx, tokensFile, i, Math.ceil(PARALLEL / nHolders)));
  const collect = alerts.collector(new Map(alertDevices.map((d) => [d.id, d.owner.id])));
  let mine = [];
  try {
    // The alert owners' sessions, in this process (their arrival times are measured).
    const started = Date.now();
    mine = await openSessions(ctx.server.wsUrl, alertOwners,
      nAlertOwners * SESSIONS_PER_ALERT_OWNER, { onMessage: collect.onMessage });
    const firstCount = Math.max(0, Math.min(ctx.cfg.scaleAlertSessions, planned) - mine.length);
    ctx.log(`scale: opening ${firstCount.toLocaleString('en-US')} idle sessions ` +
      `(${nHolders} processes)`);
    let answers = await openOnHolders(holders, firstCount);
    let openSeconds = (Date.now() - started) / 1000;
    const withAlertSessions = mine.length + sum(answers, 'open');

    await sleep(QUIET_MS);
    ctx.log(`scale: alert latency with ${withAlertSessions.toLocaleString('en-US')} sessions open`);
    const count = Math.min(ctx.cfg.alertCount / 2, alertDevices.length * 25);
    const latency = await alerts.measure(ctx, { sessions: mine, collect, devices: alertDevices,
      count, firstHour: firstHour(ctx) });

    const rest = Math.max(0, planned - withAlertSessions);
    ctx.log(`scale: opening ${rest.toLocaleString('en-US')} more idle sessions`);
    const restStarted = Date.now();
    answers = await openOnHolders(holders, rest);
    openSeconds += (Date.now() - restStarted) / 1000;
    await sleep(SETTLE_MS);
    const established = mine.filter((s) => s.closedCode === null).length + sum(answers, 'open');
    const rssWith = rssKiB(pid);
    ctx.server.assertAlive();
    const codes = {};
    for (const a of answers) {
      for (const [code, n] of Object.entries(a.codes)) codes[code] = (codes[code] ?? 0) + n;
    }
    const closed = sum(answers, 'closed');
    const firstError = answers.map((a) => a.error).find(Boolean);
    const why = [capped, firstError ? `first failure: ${firstError}` : null,
      closed ? `closed by the server after ready: ${closed} (codes ${JSON.stringify(codes)})` : null]
      .filter(Boolean).join('; ') || null;
    return {
      target, planned, established, failed: sum(answers, 'failed'), closed_after_ready: closed,
      close_codes: codes, why_not_all: why,
      server_open_files_limit: fds.limit,
      processes: nHolders, open_seconds: openSeconds, rss_before_kib: rssBefore,
      rss_with_sessions_kib: rssWith,
      per_session_kib: established > 0 ? (rssWith - rssBefore) / established : NaN,
      alerts: { ...latency, sessions_open: withAlertSessions },
    };
  } finally {
    await closeSessions(mine);
    for (const h of holders) h.child.stdin.end();
    await Promise.all(holders.map((h) => stop(h.child, 30000)));
  }
}

module.exports = { run };
