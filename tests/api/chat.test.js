'use strict';
// The support chat (API.md "Support chat"): conversations and messages over REST and the
// WebSocket, scoping, limits, unread counts with several admins, read receipts, typing,
// and two instances sharing one database.
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');
const wsc = require('./lib/wsclient');

const { describe, before, after } = test;
const ctx = h.suite();

// How long "nothing arrives" is watched for: well above the NOTIFY round trip.
const QUIET_MS = 1000;

async function newUser(role = 'client', server = ctx.server) {
  const account = await h.createUser(server, { role });
  const tokens = await h.login(server, account.email, account.password);
  return { ...account, id: tokens.user.id, token: tokens.access_token };
}

const asUser = (user, method, path, body) =>
  ctx.api(method, path, { token: user.token, body });

async function conversationOf(client) {
  const res = await asUser(client, 'GET', '/api/v1/me/conversation');
  assert.equal(res.status, 200, res.text);
  return res.json;
}

async function post(user, conversationId, text) {
  return asUser(user, 'POST', `/api/v1/conversations/${conversationId}/messages`, { text });
}

async function postOk(user, conversationId, text) {
  const res = await post(user, conversationId, text);
  assert.equal(res.status, 201, res.text);
  return res.json;
}

function session(user, server = ctx.server) {
  return wsc.session(server.wsUrl, user.token);
}

describe('REST', () => {
  let alice, bob, admin2;
  before(async () => {
    alice = await newUser();
    bob = await newUser();
    admin2 = await newUser('admin');
  });

  test('a client\'s conversation is created on first ask, and is the same afterwards', async () => {
    const first = await conversationOf(alice);
    assert.equal(first.user.id, alice.id);
    assert.equal(first.user.email, alice.email);
    assert.equal(first.user.name, alice.name);
    assert.equal(first.last_message, null);
    assert.equal(first.unread_count, 0);
    assert.match(first.updated_at, /Z$/);
    const again = await conversationOf(alice);
    assert.equal(again.id, first.id);
    const admin = await ctx.api('GET', '/api/v1/me/conversation', { token: ctx.admin.token });
    assert.equal(admin.status, 404);
  });

  test('messages: 201 with Location, newest first, paged by before_id and cursor', async () => {
    const conv = await conversationOf(alice);
    const res = await post(alice, conv.id, 'hello support');
    assert.equal(res.status, 201, res.text);
    const m = res.json;
    assert.equal(res.headers.get('location'), `/api/v1/conversations/${conv.id}/messages/${m.id}`);
    assert.deepEqual(Object.keys(m).sort(), ['conversation_id', 'created_at', 'id', 'read_at',
      'sender_id', 'sender_role', 'text']);
    assert.equal(m.sender_id, alice.id);
    assert.equal(m.sender_role, 'client');
    assert.equal(m.read_at, null);
    const byLocation = await asUser(alice, 'GET', res.headers.get('location'));
    assert.deepEqual(byLocation.json, m);
    const answer = await postOk(ctx.admin, conv.id, 'hello alice');
    assert.equal(answer.sender_role, 'admin');
    const third = await postOk(alice, conv.id, 'third');

    const page = await asUser(alice, 'GET', `/api/v1/conversations/${conv.id}/messages?limit=2`);
    assert.equal(page.status, 200, page.text);
    assert.deepEqual(page.json.items.map((x) => x.id), [third.id, answer.id]);
    assert.equal(typeof page.json.next_cursor, 'string');
    const rest = await asUser(alice, 'GET',
      `/api/v1/conversations/${conv.id}/messages?cursor=${page.json.next_cursor}`);
    assert.deepEqual(rest.json.items.map((x) => x.id), [m.id]);
    assert.equal(rest.json.next_cursor, null);
    const older = await asUser(alice, 'GET',
      `/api/v1/conversations/${conv.id}/messages?before_id=${answer.id}`);
    assert.deepEqual(older.json.items.map((x) => x.id), [m.id]);
    for (const q of ['before_id=0', 'before_id=x', 'limit=0', 'cursor=zzz']) {
      const bad = await asUser(alice, 'GET', `/api/v1/conversations/${conv.id}/messages?${q}`);
      assert.equal(bad.status, 400, q);
    }
  });

  test('another client\'s conversation is 404 whatever the method; admins see all', async () => {
    const conv = await conversationOf(alice);
    const mine = await conversationOf(bob);
    for (const [method, path, body] of [
      ['GET', `/api/v1/conversations/${conv.id}/messages`],
      ['POST', `/api/v1/conversations/${conv.id}/messages`, { text: 'sneaky' }],
      ['POST', `/api/v1/conversations/${conv.id}/read`, { up_to_id: 1 }],
      ['GET', `/api/v1/conversations/${conv.id}/messages/1`],
      ['GET', '/api/v1/conversations/999999999/messages'],
    ]) {
      const res = await asUser(bob, method, path, body);
      assert.equal(res.status, 404, `${method} ${path}: ${res.text}`);
      assert.equal(res.json.code, 'not_found');
    }
    // A message of alice's conversation named under bob's is not found either.
    const m = await postOk(alice, conv.id, 'mine');
    const cross = await asUser(bob, 'GET', `/api/v1/conversations/${mine.id}/messages/${m.id}`);
    assert.equal(cross.status, 404);
    const list = await asUser(bob, 'GET', '/api/v1/conversations');
    assert.equal(list.status, 403);
    const asAdmin = await asUser(admin2, 'GET', `/api/v1/conversations/${conv.id}/messages`);
    assert.equal(asAdmin.status, 200);
  });

  test('text: 1 to 4000 characters (not bytes), stored verbatim', async () => {
    const conv = await conversationOf(bob);
    for (const [text, why] of [['', 'empty'], ['x'.repeat(4001), '4001 characters'],
      ['é'.repeat(4001), '4001 two-byte characters'], ['a\u0000b', 'NUL']]) {
      const res = await post(bob, conv.id, text);
      assert.equal(res.status, 422, why);
      assert.equal(res.json.field, 'text', why);
    }
    for (const body of [{}, { text: 5 }, { text: 'x', extra: 1 }]) {
      const res = await asUser(bob, 'POST', `/api/v1/conversations/${conv.id}/messages`, body);
      assert.equal(res.status, 422, JSON.stringify(body));
    }
    const ascii = await postOk(bob, conv.id, 'x'.repeat(4000));
    assert.equal(ascii.text.length, 4000);
    const emoji = '😀'.repeat(4000); // 4 bytes each in UTF-8, 16,000 bytes
    const wide = await postOk(bob, conv.id, emoji);
    assert.equal(wide.text, emoji);
    const script = '<script>alert(1)</script> & "quotes" \'\n';
    assert.equal((await postOk(bob, conv.id, script)).text, script);
  });

  test('the 31st client message within a minute is 429 with Retry-After; admins are not limited',
    async () => {
      const carol = await newUser();
      const conv = await conversationOf(carol);
      for (let i = 0; i < 30; i++) await postOk(carol, conv.id, `m${i}`);
      const res = await post(carol, conv.id, 'one too many');
      assert.equal(res.status, 429, res.text);
      assert.equal(res.json.code, 'rate_limited');
      const retry = Number(res.headers.get('retry-after'));
      assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 60, `Retry-After ${retry}`);
      for (let i = 0; i < 35; i++) await postOk(ctx.admin, conv.id, `a${i}`);
      const page = await asUser(carol, 'GET', `/api/v1/conversations/${conv.id}/messages?limit=100`);
      assert.equal(page.json.items.filter((m) => m.sender_role === 'client').length, 30);
    });

  test('unread counts and read_at with two admins: the support side reads as one', async () => {
    const dave = await newUser();
    const conv = await conversationOf(dave);
    const m1 = await postOk(dave, conv.id, 'one');
    const m2 = await postOk(dave, conv.id, 'two');
    const listed = async (admin, query = '') => {
      const res = await asUser(admin, 'GET', `/api/v1/conversations?limit=1000${query}`);
      assert.equal(res.status, 200, res.text);
      return res.json.items.find((c) => c.id === conv.id);
    };
    assert.equal((await listed(ctx.admin)).unread_count, 2);
    assert.equal((await listed(admin2)).unread_count, 2);
    assert.equal((await listed(ctx.admin)).last_message.id, m2.id);
    assert.ok(await listed(admin2, '&unread=true'));

    const read = await asUser(admin2, 'POST', `/api/v1/conversations/${conv.id}/read`,
      { up_to_id: m1.id });
    assert.equal(read.status, 204, read.text);
    assert.equal((await listed(ctx.admin)).unread_count, 1);
    assert.equal((await listed(admin2)).unread_count, 1);
    await asUser(ctx.admin, 'POST', `/api/v1/conversations/${conv.id}/read`, { up_to_id: m2.id });
    assert.equal((await listed(ctx.admin)).unread_count, 0);
    assert.equal(await listed(admin2, '&unread=true'), undefined);

    const page = await asUser(dave, 'GET', `/api/v1/conversations/${conv.id}/messages`);
    const [r2, r1] = page.json.items;
    assert.ok(r1.read_at && r2.read_at);
    // The first reader's time stays: reading again changes nothing.
    await asUser(ctx.admin, 'POST', `/api/v1/conversations/${conv.id}/read`, { up_to_id: m2.id });
    const again = await asUser(dave, 'GET', `/api/v1/conversations/${conv.id}/messages`);
    assert.deepEqual(again.json.items.map((m) => m.read_at), [r2.read_at, r1.read_at]);
    // A client's own read marks the support side's messages, not its own.
    const answer = await postOk(ctx.admin, conv.id, 'answer');
    assert.equal((await conversationOf(dave)).unread_count, 1);
    await asUser(dave, 'POST', `/api/v1/conversations/${conv.id}/read`, { up_to_id: answer.id });
    assert.equal((await conversationOf(dave)).unread_count, 0);
    assert.equal((await listed(ctx.admin)).unread_count, 0);

    for (const body of [{}, { up_to_id: 0 }, { up_to_id: 'x' }, { up_to_id: 1, x: 1 }]) {
      const bad = await asUser(dave, 'POST', `/api/v1/conversations/${conv.id}/read`, body);
      assert.equal(bad.status, 422, JSON.stringify(body));
    }
  });

  test('conversations: most recently active first, paged, admin only', async () => {
    const erin = await newUser();
    const frank = await newUser();
    const ce = await conversationOf(erin);
    const cf = await conversationOf(frank);
    await postOk(frank, cf.id, 'frank first');
    await postOk(erin, ce.id, 'erin later');
    const top = await asUser(ctx.admin, 'GET', '/api/v1/conversations?limit=1');
    assert.deepEqual(top.json.items.map((c) => c.id), [ce.id]);
    const next = await asUser(ctx.admin, 'GET',
      `/api/v1/conversations?limit=1&cursor=${top.json.next_cursor}`);
    assert.deepEqual(next.json.items.map((c) => c.id), [cf.id]);
    await postOk(ctx.admin, cf.id, 'answer to frank');
    const after = await asUser(ctx.admin, 'GET', '/api/v1/conversations?limit=2');
    assert.deepEqual(after.json.items.map((c) => c.id), [cf.id, ce.id]);
    for (const q of ['unread=yes', 'cursor=abc', 'limit=1001']) {
      assert.equal((await asUser(ctx.admin, 'GET', `/api/v1/conversations?${q}`)).status, 400, q);
    }
  });

  test('a deleted user\'s conversation goes with it', async () => {
    const gina = await newUser();
    const conv = await conversationOf(gina);
    await postOk(gina, conv.id, 'bye');
    const del = await ctx.api('DELETE', `/api/v1/users/${gina.id}`, { token: ctx.admin.token });
    assert.equal(del.status, 204);
    const res = await asUser(ctx.admin, 'GET', `/api/v1/conversations/${conv.id}/messages`);
    assert.equal(res.status, 404);
    assert.deepEqual(ctx.pg.rows(`SELECT count(*)::int AS n FROM chat_messages
      WHERE conversation_id = ${conv.id}`), [{ n: 0 }]);
  });
});

describe('WebSocket', () => {
  let alice, bob, admin2;
  let conv; // alice's
  before(async () => {
    alice = await newUser();
    bob = await newUser();
    admin2 = await newUser('admin');
    conv = await conversationOf(alice);
  });

  test('chat.send: chat.sent to the sender, chat.message to the client\'s other sessions and ' +
    'every admin, nothing to anyone else', async () => {
    const [a1, a2, ad1, ad2, b] = await Promise.all([session(alice), session(alice),
      session(ctx.admin), session(admin2), session(bob)]);
    a1.send({ type: 'chat.send', conversation_id: conv.id, text: 'hi <b>there</b>',
      client_msg_id: 'c-1' });
    const sent = await a1.next('chat.sent');
    assert.equal(sent.client_msg_id, 'c-1');
    assert.equal(sent.message.text, 'hi <b>there</b>');
    assert.equal(sent.message.sender_id, alice.id);
    assert.equal(sent.message.conversation_id, conv.id);
    // chat.sent means committed: REST sees it at once.
    const page = await asUser(alice, 'GET', `/api/v1/conversations/${conv.id}/messages?limit=1`);
    assert.equal(page.json.items[0].id, sent.message.id);
    for (const c of [a2, ad1, ad2]) {
      assert.deepEqual((await c.next('chat.message')).message, sent.message);
    }
    await h.sleep(QUIET_MS);
    assert.equal(a1.received('chat.message').length, 0, 'the sender has chat.sent instead');
    assert.equal(b.received('chat.message').length, 0, 'another client sees nothing');
    for (const c of [a2, ad1, ad2]) assert.equal(c.received('chat.message').length, 1);

    // A message posted over REST reaches every session, the poster's included.
    const answer = await postOk(admin2, conv.id, 'answer over REST');
    for (const c of [a1, a2, ad1, ad2]) {
      assert.equal((await c.next('chat.message')).message.id, answer.id);
    }
    // An admin's chat.send: its other sessions (here: none) and the other admin get it.
    ad1.send({ type: 'chat.send', conversation_id: conv.id, text: 'from admin', client_msg_id: 7 });
    const adminSent = await ad1.next('chat.sent');
    assert.equal(adminSent.client_msg_id, 7);
    assert.equal(adminSent.message.sender_role, 'admin');
    for (const c of [a1, a2, ad2]) {
      assert.equal((await c.next('chat.message')).message.id, adminSent.message.id);
    }
    await h.sleep(QUIET_MS);
    assert.equal(b.received('chat.message').length, 0);
    await Promise.all([a1, a2, ad1, ad2, b].map((c) => c.close()));
  });

  test('malformed chat.* messages get an error and the session stays open', async () => {
    const c = await session(alice);
    const cases = [
      [{ type: 'chat.send', text: 'no conversation' }, 'invalid_field', 'conversation_id'],
      [{ type: 'chat.send', conversation_id: 'x', text: 'a' }, 'invalid_field', 'conversation_id'],
      [{ type: 'chat.send', conversation_id: conv.id }, 'invalid_field', 'text'],
      [{ type: 'chat.send', conversation_id: conv.id, text: 5 }, 'invalid_field', 'text'],
      [{ type: 'chat.send', conversation_id: conv.id, text: '' }, 'invalid_field', 'text'],
      [{ type: 'chat.send', conversation_id: conv.id, text: 'ü'.repeat(4001) }, 'invalid_field',
        'text'],
      [{ type: 'chat.send', conversation_id: conv.id, text: 'a', client_msg_id: { x: 1 } },
        'invalid_field', 'client_msg_id'],
      [{ type: 'chat.typing' }, 'invalid_field', 'conversation_id'],
      [{ type: 'chat.read', conversation_id: conv.id }, 'invalid_field', 'up_to_id'],
      [{ type: 'chat.read', conversation_id: conv.id, up_to_id: -1 }, 'invalid_field', 'up_to_id'],
      ['{"type":"chat.send","conversation_id":1,"conversation_id":2,"text":"a"}', 'malformed',
        'type'],
    ];
    for (const [msg, code, field] of cases) {
      c.send(msg);
      const err = await c.next('error');
      assert.equal(err.code, code, JSON.stringify(msg));
      assert.equal(err.field, field, JSON.stringify(msg));
    }
    // The text's own error names the message it refuses.
    c.send({ type: 'chat.send', conversation_id: conv.id, text: '', client_msg_id: 'e-1' });
    assert.equal((await c.next('error')).client_msg_id, 'e-1');
    // 4000 multi-byte characters are fine.
    c.send({ type: 'chat.send', conversation_id: conv.id, text: 'ü'.repeat(4000),
      client_msg_id: 'ok' });
    assert.equal((await c.next('chat.sent')).message.text.length, 4000);
    assert.ok(c.isOpen);
    await c.close();
  });

  test('another client\'s conversation is not_found for every chat.* message', async () => {
    const b = await session(bob);
    b.send({ type: 'chat.send', conversation_id: conv.id, text: 'sneaky', client_msg_id: 's' });
    const e1 = await b.next('error');
    assert.equal(e1.code, 'not_found');
    assert.equal(e1.client_msg_id, 's');
    b.send({ type: 'chat.typing', conversation_id: conv.id });
    assert.equal((await b.next('error')).code, 'not_found');
    b.send({ type: 'chat.read', conversation_id: conv.id, up_to_id: 1 });
    assert.equal((await b.next('error')).code, 'not_found');
    b.send({ type: 'chat.send', conversation_id: 999999999, text: 'x' });
    assert.equal((await b.next('error')).code, 'not_found');
    const page = await asUser(alice, 'GET', `/api/v1/conversations/${conv.id}/messages?limit=5`);
    assert.ok(!page.json.items.some((m) => m.text === 'sneaky'));
    await b.close();
  });

  test('typing reaches only the other side, at most once per 2 s per sender', async () => {
    const [a1, a2, ad1, ad2] = await Promise.all([session(alice), session(alice),
      session(ctx.admin), session(admin2)]);
    a1.send({ type: 'chat.typing', conversation_id: conv.id });
    for (const c of [ad1, ad2]) {
      assert.deepEqual(await c.next('chat.typing'), { type: 'chat.typing',
        conversation_id: conv.id, user_id: alice.id, name: alice.name });
    }
    // Typing again and again within 2 s, from either of alice's sessions: passed on once.
    for (let i = 0; i < 5; i++) {
      (i % 2 ? a2 : a1).send({ type: 'chat.typing', conversation_id: conv.id });
      await h.sleep(100);
    }
    await h.sleep(QUIET_MS);
    assert.equal(ad1.received('chat.typing').length, 1);
    assert.equal(ad2.received('chat.typing').length, 1);
    assert.equal(a2.received('chat.typing').length, 0, 'not to the typer\'s own side');
    await h.sleep(2100 - QUIET_MS);
    a1.send({ type: 'chat.typing', conversation_id: conv.id });
    await ad1.next('chat.typing');
    // An admin's typing goes to the client only, not to the other admins.
    ad1.send({ type: 'chat.typing', conversation_id: conv.id });
    for (const c of [a1, a2]) {
      const t = await c.next('chat.typing');
      assert.equal(t.user_id, ctx.admin.user.id);
      assert.equal(t.name, ctx.admin.user.name);
    }
    await h.sleep(QUIET_MS);
    assert.equal(ad2.received('chat.typing').length, 2);
    // Typing is never stored.
    assert.deepEqual(ctx.pg.rows(`SELECT count(*)::int AS n FROM chat_messages
      WHERE text = ''`), [{ n: 0 }]);
    await Promise.all([a1, a2, ad1, ad2].map((c) => c.close()));
  });

  test('read receipts go to the other side, only when something was newly read', async () => {
    const [a1, ad1, ad2] = await Promise.all([session(alice), session(ctx.admin),
      session(admin2)]);
    const m1 = await postOk(alice, conv.id, 'read me');
    await ad1.next('chat.message');
    await ad2.next('chat.message');
    ad1.send({ type: 'chat.read', conversation_id: conv.id, up_to_id: m1.id });
    const receipt = await a1.next('chat.read');
    assert.equal(receipt.conversation_id, conv.id);
    assert.equal(receipt.reader_id, ctx.admin.user.id);
    assert.equal(receipt.up_to_id, m1.id);
    assert.match(receipt.read_at, /Z$/);
    const stored = await asUser(alice, 'GET', `/api/v1/conversations/${conv.id}/messages?limit=1`);
    assert.equal(stored.json.items[0].read_at, receipt.read_at);
    // The second admin reading the same: nothing newly read, nothing sent.
    ad2.send({ type: 'chat.read', conversation_id: conv.id, up_to_id: m1.id });
    const again = await asUser(admin2, 'POST', `/api/v1/conversations/${conv.id}/read`,
      { up_to_id: m1.id });
    assert.equal(again.status, 204);
    await h.sleep(QUIET_MS);
    assert.equal(a1.received('chat.read').length, 1);
    assert.equal(ad2.received('chat.read').length, 0, 'not to the reader\'s own side');
    assert.equal(ad1.received('error').length + ad2.received('error').length, 0);
    // The client reads an answer (over REST): the admins hear of it.
    const answer = await postOk(admin2, conv.id, 'an answer');
    await a1.next('chat.message');
    await asUser(alice, 'POST', `/api/v1/conversations/${conv.id}/read`, { up_to_id: answer.id });
    for (const c of [ad1, ad2]) {
      const r = await c.next('chat.read');
      assert.equal(r.reader_id, alice.id);
      assert.equal(r.up_to_id, answer.id);
    }
    await h.sleep(QUIET_MS);
    assert.equal(a1.received('chat.read').length, 1);
    await Promise.all([a1, ad1, ad2].map((c) => c.close()));
  });

  test('the rate limit counts REST and WebSocket together', async () => {
    const carol = await newUser();
    const cc = await conversationOf(carol);
    const c = await session(carol);
    for (let i = 0; i < 15; i++) await postOk(carol, cc.id, `rest ${i}`);
    for (let i = 0; i < 15; i++) {
      c.send({ type: 'chat.send', conversation_id: cc.id, text: `ws ${i}`, client_msg_id: i });
      assert.equal((await c.next('chat.sent')).client_msg_id, i);
    }
    c.send({ type: 'chat.send', conversation_id: cc.id, text: 'the 31st', client_msg_id: 'x' });
    const err = await c.next('error');
    assert.equal(err.code, 'rate_limited');
    assert.equal(err.client_msg_id, 'x');
    assert.ok(err.retry_after >= 1 && err.retry_after <= 60);
    assert.equal((await post(carol, cc.id, 'also refused')).status, 429);
    assert.ok(c.isOpen);
    await c.close();
  });
});

describe('two instances on one database', () => {
  let two, client, adminB, conv;
  before(async () => {
    two = await h.startServer({ databaseUrl: ctx.pg.url,
      env: { JWT_SECRET: ctx.server.jwtSecret } });
    await two.waitReady();
    client = await newUser();
    adminB = await newUser('admin');
    conv = await conversationOf(client);
  });
  after(async () => {
    if (two) await two.stop();
  });

  test('messages, typing and reads cross instances; two admins and a client', async () => {
    // Admin A on instance 1, admin B and the client on instance 2 (and the client on 1).
    const adA = await session(ctx.admin);
    const adB = await session(adminB, two);
    const cl2 = await session(client, two);
    const cl1 = await session(client);
    cl2.send({ type: 'chat.send', conversation_id: conv.id, text: 'from two', client_msg_id: 1 });
    const sent = await cl2.next('chat.sent');
    for (const c of [adA, adB, cl1]) {
      assert.equal((await c.next('chat.message')).message.id, sent.message.id);
    }
    cl2.send({ type: 'chat.typing', conversation_id: conv.id });
    for (const c of [adA, adB]) assert.equal((await c.next('chat.typing')).user_id, client.id);
    adA.send({ type: 'chat.read', conversation_id: conv.id, up_to_id: sent.message.id });
    for (const c of [cl1, cl2]) assert.equal((await c.next('chat.read')).up_to_id, sent.message.id);
    // Admin A answers on instance 1; everyone else hears it once.
    adA.send({ type: 'chat.send', conversation_id: conv.id, text: 'from one', client_msg_id: 2 });
    const answer = await adA.next('chat.sent');
    for (const c of [adB, cl1, cl2]) {
      assert.equal((await c.next('chat.message')).message.id, answer.message.id);
    }
    adA.send({ type: 'chat.typing', conversation_id: conv.id });
    for (const c of [cl1, cl2]) assert.equal((await c.next('chat.typing')).user_id, ctx.admin.user.id);
    await h.sleep(QUIET_MS);
    assert.equal(adB.received('chat.typing').length, 1, 'admin A\'s typing is not for admin B');
    assert.equal(adA.received('chat.message').length, 1);
    assert.equal(cl2.received('chat.message').length, 1);
    assert.equal(adB.received('chat.read').length, 0);
    for (const c of [adA, adB, cl1, cl2]) {
      assert.equal(c.received('chat.message').length, c === adA || c === cl2 ? 1 : 2);
    }
    await Promise.all([adA, adB, cl1, cl2].map((c) => c.close()));
  });

  test('one user typing on both instances is passed on once per 2 s', async () => {
    const eve = await newUser();
    const ec = await conversationOf(eve);
    const adA = await session(ctx.admin);
    const adB = await session(adminB, two);
    const e1 = await session(eve);
    const e2 = await session(eve, two);
    e1.send({ type: 'chat.typing', conversation_id: ec.id });
    e2.send({ type: 'chat.typing', conversation_id: ec.id });
    for (const c of [adA, adB]) assert.equal((await c.next('chat.typing')).user_id, eve.id);
    await h.sleep(QUIET_MS);
    assert.equal(adA.received('chat.typing').length, 1);
    assert.equal(adB.received('chat.typing').length, 1);
    await Promise.all([adA, adB, e1, e2].map((c) => c.close()));
  });

  test('the rate limit holds across instances', async () => {
    const dora = await newUser();
    const dc = await conversationOf(dora);
    const sends = [];
    for (let i = 0; i < 32; i++) {
      const server = i % 2 ? two : ctx.server;
      sends.push(h.api(server, 'POST', `/api/v1/conversations/${dc.id}/messages`,
        { token: dora.token, body: { text: `n${i}` } }));
    }
    const statuses = (await Promise.all(sends)).map((r) => r.status).sort();
    assert.equal(statuses.filter((s) => s === 201).length, 30, statuses.join(','));
    assert.equal(statuses.filter((s) => s === 429).length, 2);
  });
});
