'use strict';
// Scenario 6: support chat latency. Owners keep WebSocket sessions open (several each, as
// the alert scenario: 1,000 in all) and two admins one each; messages go both ways at a
// steady rate over the socket (chat.send): half from a client (to both admins and the
// client's other sessions), half from an admin (to the client's sessions and the other
// admin). For every message and every session it must reach, the time from the send to
// the arrival of its chat.message; for the sender, the time to its chat.sent (stored and
// committed). Nothing may be missing, nothing may reach another client. No ceiling of its
// own: the alert scenario's NOTIFY round trip is the floor of both.

const { performance } = require('node:perf_hooks');

const { sleep, summarize } = require('../lib/stats');
const { closeSessions, closedCount, openSessions } = require('../lib/ws');

const STRAGGLER_WAIT_MS = 5000;

// Every session records its chat messages by text: text -> arrival time.
function onMessage(session, msg, at) {
  if (msg.type === 'chat.message' && msg.message) {
    if (!session.chat) session.chat = new Map();
    const seen = session.chat.get(msg.message.text);
    session.chat.set(msg.message.text, seen === undefined ? at : -1); // -1: a duplicate
    session.lastConversation = msg.message.conversation_id;
  } else if (msg.type === 'chat.sent') {
    if (!session.sent) session.sent = new Map();
    session.sent.set(msg.client_msg_id, at);
  } else if (msg.type === 'error') {
    session.errors = (session.errors ?? 0) + 1;
  }
}

async function conversations(ctx, owners) {
  const ids = new Map();
  for (const owner of owners) {
    const conv = await ctx.server.apiOk('GET', '/api/v1/me/conversation', 200, { token: owner.token });
    ids.set(owner.id, conv.id);
  }
  return ids;
}

async function run(ctx) {
  const { owners, admin } = ctx.setup;
  ctx.log(`chat latency: opening ${ctx.cfg.alertSessions} client sessions and 2 admin sessions`);
  const convOf = await conversations(ctx, owners);
  const clients = await openSessions(ctx.server.wsUrl, owners, ctx.cfg.alertSessions, { onMessage });
  const admins = await openSessions(ctx.server.wsUrl, [{ id: 0, token: admin.token }], 2, { onMessage });
  const byOwner = new Map();
  for (const s of clients) {
    if (!byOwner.has(s.owner.id)) byOwner.set(s.owner.id, []);
    byOwner.get(s.owner.id).push(s);
  }
  const active = owners.filter((o) => byOwner.has(o.id));
  try {
    const plan = Array.from({ length: ctx.cfg.chatMessages }, (_, i) => {
      const owner = active[Math.floor(i / 2) % active.length];
      const fromClient = i % 2 === 0;
      const sender = fromClient ? byOwner.get(owner.id)[0] : admins[0];
      // Who must get chat.message: the other side and the sender's own side's other sessions.
      const targets = [...byOwner.get(owner.id), ...admins].filter((s) => s !== sender);
      return { i, owner, fromClient, sender, targets, text: `bench chat ${i} ${fromClient ? 'c' : 'a'}` };
    });
    ctx.log(`chat latency: ${plan.length} messages at ${ctx.cfg.chatRate}/s, both ways`);
    const period = 1000 / ctx.cfg.chatRate;
    const start = performance.now();
    for (const m of plan) {
      const wait = start + m.i * period - performance.now();
      if (wait > 0) await sleep(wait);
      m.sentAt = performance.now();
      m.sender.ws.send(JSON.stringify({ type: 'chat.send', conversation_id: convOf.get(m.owner.id),
        text: m.text, client_msg_id: m.i }));
    }
    const expected = plan.reduce((n, m) => n + m.targets.length, 0);
    const arrived = () => [...clients, ...admins].reduce((n, s) => n + (s.chat?.size ?? 0), 0);
    const deadline = performance.now() + STRAGGLER_WAIT_MS;
    while (arrived() < expected && performance.now() < deadline) await sleep(50);

    const otherSide = [];
    const ownSide = [];
    const committed = [];
    let missing = 0;
    let duplicates = 0;
    let lostSent = 0;
    for (const m of plan) {
      const sentAt = m.sender.sent?.get(m.i);
      if (sentAt === undefined) lostSent++;
      else committed.push(sentAt - m.sentAt);
      for (const s of m.targets) {
        const at = s.chat?.get(m.text);
        if (at === undefined) {
          missing++;
        } else if (at < 0) {
          duplicates++;
        } else {
          const isAdmin = admins.includes(s);
          (isAdmin === m.fromClient ? otherSide : ownSide).push(at - m.sentAt);
        }
      }
    }
    // Another client's session must get nothing of it: a chat.message for a conversation
    // not its own.
    const wrong = clients.filter((s) => s.lastConversation !== undefined &&
      s.lastConversation !== convOf.get(s.owner.id)).length;
    const echoed = plan.filter((m) => m.sender.chat?.has(m.text)).length;
    return {
      sessions: clients.length + admins.length, messages: plan.length,
      deliveries_expected: expected, missing, duplicates, wrong_session: wrong,
      echoed_to_sender: echoed, sent_missing: lostSent,
      errors: [...clients, ...admins].reduce((n, s) => n + (s.errors ?? 0), 0),
      sessions_closed_by_server: closedCount([...clients, ...admins]),
      latency_ms: summarize(otherSide), own_side_latency_ms: summarize(ownSide),
      sent_latency_ms: summarize(committed),
    };
  } finally {
    await closeSessions([...clients, ...admins]);
  }
}

module.exports = { run };
