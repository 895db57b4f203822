'use strict';
// Scenario 5: memory. The server's RSS
//   - idle: started, migrated, nothing else done yet;
//   - with N idle WebSocket sessions open (authenticated, then silent): the growth per
//     session, measured against the RSS just before they were opened;
//   - after each of the repeated ingestion runs (scenario 1 records it): a repeat must
//     not leave the server bigger than the one before it did.

const { rssKiB } = require('../lib/proc');
const { sleep } = require('../lib/stats');
const { closeSessions, closedCount, openSessions } = require('../lib/ws');

const SETTLE_MS = 1500;

async function idle(ctx) {
  await sleep(SETTLE_MS);
  return { rss_kib: rssKiB(ctx.server.pid) };
}

async function sessions(ctx) {
  const count = ctx.cfg.idleSessions;
  const pid = ctx.server.pid;
  await sleep(SETTLE_MS);
  const before = rssKiB(pid);
  ctx.log(`memory: opening ${count.toLocaleString('en-US')} idle WebSocket sessions`);
  const started = Date.now();
  const open = await openSessions(ctx.server.wsUrl, ctx.setup.owners, count, { parallel: 200 });
  const openSeconds = (Date.now() - started) / 1000;
  await sleep(SETTLE_MS);
  const withSessions = rssKiB(pid);
  const closedByServer = closedCount(open);
  await closeSessions(open);
  await sleep(SETTLE_MS);
  return {
    sessions: count,
    open_seconds: openSeconds,
    closed_by_server: closedByServer,
    rss_before_kib: before,
    rss_with_sessions_kib: withSessions,
    rss_after_close_kib: rssKiB(pid),
    per_session_kib: (withSessions - before) / count,
  };
}

module.exports = { idle, sessions };
