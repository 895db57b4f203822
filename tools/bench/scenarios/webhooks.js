'use strict';
// Scenario 8: webhook delivery latency. Every owner of the alert devices registers a
// webhook for alerts at a receiver in this process (loopback: the server runs with
// WEBHOOK_ALLOW_PRIVATE=1); readings that push a device over its limit are posted at the
// alert scenario's rate, in hours of their own; for every alert, the time from the POST's
// response (the event committed) to the receiver getting its signed POST. Nothing may be
// missing or come twice. No ceiling of its own: the alert scenario's NOTIFY round trip is
// shown as the floor (the sender is woken by a NOTIFY).

const crypto = require('node:crypto');
const http = require('node:http');
const { performance } = require('node:perf_hooks');

const { sleep, summarize } = require('../lib/stats');
const { keyOf, plan, postAll, runHour } = require('./alerts');

const STRAGGLER_WAIT_MS = 15000;

// A receiver that records each delivery's arrival and checks its signature.
function receiver(secrets) {
  const arrivals = new Map(); // key -> [times]
  let badSignatures = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const at = performance.now();
      res.writeHead(204).end();
      let msg;
      try {
        msg = JSON.parse(body);
      } catch {
        badSignatures++;
        return;
      }
      const sig = /t=(\d+),v1=([0-9a-f]+)/.exec(req.headers['wattline-signature'] || '');
      const secret = secrets.get(msg.alert?.owner_id);
      const want = sig && secret &&
        crypto.createHmac('sha256', secret).update(`${sig[1]}.${body}`).digest('hex');
      if (!sig || want !== sig[2]) badSignatures++;
      if (msg.type !== 'alert') return;
      const key = keyOf(msg.alert.device_id, Date.parse(msg.alert.hour_start));
      arrivals.set(key, [...(arrivals.get(key) ?? []), at]);
    });
  });
  return { server, arrivals, bad: () => badSignatures };
}

async function run(ctx) {
  const { owners, devices } = ctx.setup;
  const secrets = new Map();
  const rx = receiver(secrets);
  await new Promise((resolve) => rx.server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${rx.server.address().port}/hook`;
  try {
    const alertOwners = new Set(devices.alerting.map((d) => d.owner.id));
    // A BENCH_REPEAT run replaces the webhooks of the run before (whose receiver is
    // gone); they stay until then, so that the ingestion runs measure a server with
    // webhooks configured.
    for (const { owner, id } of ctx.webhooks ?? []) {
      await ctx.server.apiOk('DELETE', `/api/v1/me/webhooks/${id}`, 204, { token: owner.token });
    }
    ctx.webhooks = [];
    ctx.log(`webhooks: ${alertOwners.size} owners register a webhook for alerts`);
    for (const owner of owners.filter((o) => alertOwners.has(o.id))) {
      const hook = await ctx.server.apiOk('POST', '/api/v1/me/webhooks', 201,
        { token: owner.token, body: { url, events: ['alert'] } });
      secrets.set(owner.id, hook.secret);
      ctx.webhooks.push({ owner, id: hook.id, url, events: ['alert'] });
    }
    // Hours of their own: the alert scenario used the three days before.
    const firstHour = runHour(ctx, 10);
    const readings = plan(devices.alerting, ctx.cfg.alertCount, firstHour);
    ctx.log(`webhooks: posting ${readings.length} alerting readings at ${ctx.cfg.alertRate}/s`);
    const posted = await postAll(ctx, readings);
    const deadline = performance.now() + STRAGGLER_WAIT_MS;
    while (rx.arrivals.size < posted.responses.size && performance.now() < deadline) await sleep(50);

    const latencies = [];
    let missing = 0;
    let duplicates = 0;
    for (const [key, respondedAt] of posted.responses) {
      const got = rx.arrivals.get(key);
      if (!got) {
        missing++;
        continue;
      }
      duplicates += got.length - 1;
      latencies.push(Math.max(0, got[0] - respondedAt));
    }
    return { webhooks: secrets.size, alerts_posted: readings.length,
      post_failures: posted.failures, deliveries: latencies.length, missing, duplicates,
      bad_signatures: rx.bad(), latency_ms: summarize(latencies) };
  } finally {
    rx.server.close();
  }
}

module.exports = { run };
