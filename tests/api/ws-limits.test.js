'use strict';
// The WebSocket limits that protect the server from one client address: sockets that
// have not authenticated yet count against their address (WS_MAX_UNAUTH_PER_ADDR), not
// against the authenticated total, so they can never keep a real user out; and SIGTERM
// closes every session with 1001, whatever its client is doing.
//
// Every client binds a loopback address of its own (localAddress): the whole of
// 127.0.0.0/8 reaches the server on 127.0.0.1, and each is a different client address.
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');
const wsc = require('./lib/wsclient');

const QUOTA = 3;
// WS_MAX_SESSIONS is also the size of the pool of unauthenticated sockets, all addresses.
const ctx = h.suite({ server: { env: { WS_MAX_UNAUTH_PER_ADDR: QUOTA, WS_MAX_SESSIONS: 4 } } });

const from = (address) => ({ localAddress: address });

async function newUser() {
  const account = await h.createUser(ctx.server);
  const tokens = await h.login(ctx.server, account.email, account.password);
  return { ...account, id: tokens.user.id, token: tokens.access_token };
}

// Opens a socket from address and authenticates it.
async function sessionFrom(address, token) {
  const c = await wsc.open(ctx.server.wsUrl, from(address));
  c.send({ type: 'auth', token });
  c.ready = await c.next('ready');
  return c;
}

// QUOTA unauthenticated sockets from address, all still open.
async function fillQuota(address) {
  const sockets = [];
  for (let i = 0; i < QUOTA; i++) sockets.push(await wsc.open(ctx.server.wsUrl, from(address)));
  return sockets;
}

async function assertRefused(address) {
  const extra = await wsc.open(ctx.server.wsUrl, from(address));
  assert.equal(await extra.closedWithin(3000), 1013);
  assert.equal(extra.closeReason, 'too many unauthenticated sessions');
}

// Still open after a moment: not refused.
async function assertAccepted(address) {
  const c = await wsc.open(ctx.server.wsUrl, from(address));
  await h.sleep(300);
  assert.ok(c.isOpen, `a socket from ${address} was closed (${c.closeCode} ${c.closeReason})`);
  return c;
}

async function closeAll(sockets) {
  await Promise.all(sockets.map((c) => c.close()));
  await h.sleep(200); // the server sees the closes
}

test('one address gets WS_MAX_UNAUTH_PER_ADDR unauthenticated sockets; one more is refused with 1013',
  async () => {
    const sockets = await fillQuota('127.0.0.3');
    await assertRefused('127.0.0.3');
    for (const c of sockets) assert.ok(c.isOpen);
    sockets.push(await assertAccepted('127.0.0.4')); // other addresses are not affected
    const metrics = await ctx.api('GET', '/metrics');
    assert.match(metrics.text, /wattline_ws_sessions_closed_total\{reason="unauth_quota"\} [1-9]/);
    await closeAll(sockets);
  });

test('while an address\'s quota is used up, users from elsewhere and its own sockets authenticate',
  async () => {
    const alice = await newUser();
    const sockets = await fillQuota('127.0.0.5');
    await assertRefused('127.0.0.5');
    const elsewhere = await sessionFrom('127.0.0.6', alice.token);
    assert.deepEqual(elsewhere.ready, { type: 'ready', user_id: alice.id });
    // One of the waiting sockets authenticates: it leaves the quota, and a place is free.
    sockets[0].send({ type: 'auth', token: alice.token });
    await sockets[0].next('ready');
    sockets.push(await assertAccepted('127.0.0.5'));
    await assertRefused('127.0.0.5');
    await closeAll([...sockets, elsewhere]);
  });

test('closing an unauthenticated socket frees its place', async () => {
  const sockets = await fillQuota('127.0.0.7');
  await assertRefused('127.0.0.7');
  await sockets.shift().close();
  await h.sleep(200);
  sockets.push(await assertAccepted('127.0.0.7'));
  await assertRefused('127.0.0.7');
  await closeAll(sockets);
});

test('unauthenticated sockets do not count against WS_MAX_SESSIONS; authenticated ones do',
  async () => {
    const bob = await newUser();
    const waiting = await fillQuota('127.0.1.1');
    // WS_MAX_SESSIONS (4) users authenticate next to the QUOTA (3) waiting sockets...
    const users = [];
    for (let i = 0; i < 4; i++) users.push(await sessionFrom(`127.0.1.${2 + i}`, bob.token));
    for (const c of waiting) assert.ok(c.isOpen);
    // ... and then the authenticated total is full: the next auth is refused with 1013.
    const late = await wsc.open(ctx.server.wsUrl, from('127.0.1.9'));
    late.send({ type: 'auth', token: bob.token });
    assert.equal(await late.closedWithin(3000), 1013);
    assert.equal(late.closeReason, 'server full');
    await closeAll([...waiting, ...users]);
  });

// Last: it stops the suite's server.
test('SIGTERM closes authenticated sessions, waiting sockets and busy clients with 1001',
  async () => {
    const carol = await newUser();
    const quiet = await sessionFrom('127.0.2.1', carol.token);
    const waiting = await wsc.open(ctx.server.wsUrl, from('127.0.2.2'));
    // A client that never pauses: its close frame must not wait for a quiet moment.
    const busy = await sessionFrom('127.0.2.3', carol.token);
    const chatter = setInterval(() => {
      if (busy.isOpen) busy.send({ type: 'unsubscribe', device_id: 1 });
    }, 50);
    try {
      await h.sleep(300);
      const stopped = ctx.server.stop(); // throws on a sanitizer report or a non-zero exit
      assert.equal(await quiet.closedWithin(5000), 1001);
      assert.equal(quiet.closeReason, 'server shutting down');
      assert.equal(await waiting.closedWithin(5000), 1001);
      assert.equal(await busy.closedWithin(5000), 1001);
      await stopped;
    } finally {
      clearInterval(chatter);
    }
  });
