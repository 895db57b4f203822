'use strict';
// RabbitMQ's HTTP auth backend routes (/api/v1/broker/auth/{user,vhost,resource,topic}):
// MQTT devices log in with their id or serial and their token; they may use only the
// vhost of AMQP_URL, exchange amq.topic, their subscription queues and their own topics.
// Bodies are form-encoded as rabbitmq_auth_backend_http sends them; answers are
// text/plain "allow" or "deny". No broker needs to run: these routes never talk to it.
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const { before, describe } = test;
// Nothing listens on port 1: a consumer, where there is one, keeps retrying.
const AMQP_URL = 'amqp://wattline:secret@127.0.0.1:1/meters';
const ctx = h.suite({ server: { env: { AMQP_URL } } });

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

// POSTs fields form-encoded to /api/v1/broker/auth/<kind> of server.
function ask(kind, fields, server = ctx.server) {
  return h.api(server, 'POST', `/api/v1/broker/auth/${kind}`,
    { body: new URLSearchParams(fields).toString(), headers: FORM });
}

// The answer to a question: 'allow' or 'deny' (asserting the form of the answer).
async function verdict(kind, fields, server) {
  const res = await ask(kind, fields, server);
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get('content-type'), /^text\/plain/);
  assert.ok(res.text === 'allow' || res.text === 'deny', res.text);
  return res.text;
}

let seq = 0;

// A device (with a serial unless serial is null): {id, serial, token}.
async function device(serial) {
  seq += 1;
  const body = { name: `MQTT meter ${seq}`, max_hourly_kwh: 5 };
  if (serial !== null) body.serial = serial ?? `MQ-${process.pid}-${seq}`;
  const res = await ctx.api('POST', '/api/v1/devices', { token: ctx.admin.token, body });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

let a; // a device with a serial
let b; // another

async function devices() {
  if (!a) {
    a = await device();
    b = await device();
  }
}

describe('user: the device logs in with its id or serial and its token', () => {
  before(devices);

  test('by id and by serial: allow, with no tags', async () => {
    for (const username of [String(a.id), a.serial]) {
      const res = await ask('user', { username, password: a.token });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.text, 'allow'); // never "allow administrator"
    }
    // The fields the plugin may add change nothing.
    assert.equal(await verdict('user', { username: a.serial, password: a.token,
      client_id: 'meter-1', vhost: 'meters' }), 'allow');
  });

  test('a wrong token, another device\'s token, or a name that is no device: deny', async () => {
    const cases = [
      { username: String(a.id), password: `${a.token}x` },
      { username: String(a.id), password: b.token },
      { username: a.serial, password: b.token },
      { username: b.serial, password: a.token },
      { username: String(b.id), password: a.token },
      { username: '999999', password: a.token },
      { username: 'NO-SUCH-SERIAL', password: a.token },
      { username: `0${a.id}`, password: a.token },
      { username: a.serial.toLowerCase(), password: a.token },
      { username: 'guest', password: 'guest' },
      { username: String(a.id), password: '' },
      { username: '', password: a.token },
      { username: 'a.b', password: a.token },
      { username: String(a.id) },
      { password: a.token },
      {},
    ];
    for (const fields of cases) {
      assert.equal(await verdict('user', fields), 'deny', JSON.stringify(fields));
    }
  });

  test('a device without a serial logs in by id only', async () => {
    const plain = await device(null);
    assert.equal(await verdict('user', { username: String(plain.id), password: plain.token }),
      'allow');
  });

  test('a rotated token is refused within a second; the new one works', async () => {
    const d = await device();
    assert.equal(await verdict('user', { username: d.serial, password: d.token }), 'allow');
    assert.equal(await verdict('user', { username: String(d.id), password: d.token }), 'allow');
    const rotated = await ctx.api('POST', `/api/v1/devices/${d.id}/token`,
      { token: ctx.admin.token });
    assert.equal(rotated.status, 200, rotated.text);
    const started = Date.now();
    await h.waitFor(async () =>
      (await verdict('user', { username: d.serial, password: d.token })) === 'deny' &&
      (await verdict('user', { username: String(d.id), password: d.token })) === 'deny',
    { timeout: 3000, interval: 50, message: 'the old token still logs in' });
    assert.ok(Date.now() - started <= 1500, `refused only after ${Date.now() - started} ms`);
    assert.equal(await verdict('user', { username: d.serial, password: rotated.json.token }),
      'allow');
  });

  test('a changed serial: the old name stops working, the new one works', async () => {
    const d = await device();
    assert.equal(await verdict('user', { username: d.serial, password: d.token }), 'allow');
    const renamed = `${d.serial}-new`;
    const res = await ctx.api('PATCH', `/api/v1/devices/${d.id}`,
      { token: ctx.admin.token, body: { serial: renamed } });
    assert.equal(res.status, 200, res.text);
    await h.waitFor(async () =>
      (await verdict('user', { username: d.serial, password: d.token })) === 'deny',
    { timeout: 3000, interval: 50, message: 'the old serial still logs in' });
    assert.equal(await verdict('user', { username: renamed, password: d.token }), 'allow');
  });
});

describe('vhost, resource and topic', () => {
  before(devices);

  test('vhost: only the vhost of AMQP_URL', async () => {
    for (const username of [String(a.id), a.serial]) {
      assert.equal(await verdict('vhost', { username, vhost: 'meters', ip: '127.0.0.1' }), 'allow');
      assert.equal(await verdict('vhost', { username, vhost: '/', ip: '127.0.0.1' }), 'deny');
    }
    assert.equal(await verdict('vhost', { username: 'a.b', vhost: 'meters' }), 'deny');
    assert.equal(await verdict('vhost', { username: String(a.id) }), 'deny');
  });

  test('resource: exchange amq.topic and the MQTT subscription queues, nothing else', async () => {
    const u = { username: a.serial, vhost: 'meters' };
    const allowed = [
      { resource: 'exchange', name: 'amq.topic', permission: 'write' },
      { resource: 'exchange', name: 'amq.topic', permission: 'read' },
      { resource: 'queue', name: 'mqtt-subscription-xqos1', permission: 'configure' },
      { resource: 'queue', name: 'mqtt-subscription-xqos1', permission: 'write' },
      { resource: 'queue', name: 'mqtt-subscription-xqos1', permission: 'read' },
      { resource: 'queue', name: 'mqtt-subscription-meter-1qos0', permission: 'read' },
    ];
    for (const fields of allowed) {
      assert.equal(await verdict('resource', { ...u, ...fields }), 'allow', JSON.stringify(fields));
    }
    const denied = [
      { resource: 'exchange', name: 'amq.topic', permission: 'configure' },
      { resource: 'exchange', name: 'wattline', permission: 'write' },
      { resource: 'exchange', name: 'wattline.dead', permission: 'read' },
      { resource: 'exchange', name: '', permission: 'write' },
      { resource: 'queue', name: 'wattline.measurements', permission: 'read' },
      { resource: 'queue', name: 'wattline.measurements.dead', permission: 'read' },
      { resource: 'queue', name: 'energy-queue', permission: 'write' },
      { resource: 'queue', name: 'mqtt-subscription-xqos2', permission: 'read' },
      { resource: 'queue', name: 'amq.gen-123', permission: 'configure' },
      { resource: 'topic', name: 'amq.topic', permission: 'write' },
      { resource: 'exchange', name: 'amq.topic' },
      {},
    ];
    for (const fields of denied) {
      assert.equal(await verdict('resource', { ...u, ...fields }), 'deny', JSON.stringify(fields));
    }
    assert.equal(await verdict('resource', { username: a.serial, vhost: '/', resource: 'exchange',
      name: 'amq.topic', permission: 'write' }), 'deny');
  });

  test('topic: its own measurements and command results (write), commands (read)', async () => {
    const topic = (username, permission, key) => verdict('topic', { username, vhost: 'meters',
      resource: 'topic', name: 'amq.topic', permission, routing_key: key,
      'variable_map.client_id': 'meter-1', 'variable_map.username': username,
      'variable_map.vhost': 'meters' });
    for (const it of [String(a.id), a.serial]) {
      assert.equal(await topic(it, 'write', `devices.${it}.measurements`), 'allow');
      assert.equal(await topic(it, 'write', `devices.${it}.command_results`), 'allow');
      assert.equal(await topic(it, 'read', `devices.${it}.commands`), 'allow');
      assert.equal(await topic(it, 'write', `devices.${it}.commands`), 'deny');
      assert.equal(await topic(it, 'read', `devices.${it}.measurements`), 'deny');
      assert.equal(await topic(it, 'read', `devices.${it}.#`), 'deny');
      assert.equal(await topic(it, 'read', 'devices.*.commands'), 'deny');
    }
    // Another device's topics, by id or serial; its own other name is not the one it used.
    assert.equal(await topic(String(a.id), 'write', `devices.${b.id}.measurements`), 'deny');
    assert.equal(await topic(a.serial, 'write', `devices.${b.serial}.measurements`), 'deny');
    assert.equal(await topic(a.serial, 'read', `devices.${b.serial}.commands`), 'deny');
    assert.equal(await topic(String(a.id), 'write', `devices.${a.serial}.measurements`), 'deny');
    assert.equal(await topic(a.serial, 'write', 'measurements.x'), 'deny');
    // Another exchange, another vhost.
    assert.equal(await verdict('topic', { username: a.serial, vhost: 'meters', resource: 'topic',
      name: 'wattline', permission: 'write', routing_key: `devices.${a.serial}.measurements` }),
    'deny');
    assert.equal(await verdict('topic', { username: a.serial, vhost: '/', resource: 'topic',
      name: 'amq.topic', permission: 'write', routing_key: `devices.${a.serial}.measurements` }),
    'deny');
  });
});

describe('who may ask, and how', () => {
  test('a JSON body is 415; a malformed form is 400; GET is 405', async () => {
    for (const kind of ['user', 'vhost', 'resource', 'topic']) {
      const json = await ctx.api('POST', `/api/v1/broker/auth/${kind}`,
        { body: { username: '7', password: 'x' } });
      assert.equal(json.status, 415, json.text);
      assert.equal(json.json.code, 'unsupported_media_type');
      const bad = await h.api(ctx.server, 'POST', `/api/v1/broker/auth/${kind}`,
        { body: 'username=%zz', headers: FORM });
      assert.equal(bad.status, 400, bad.text);
      assert.equal(bad.json.code, 'malformed_form');
      const twice = await h.api(ctx.server, 'POST', `/api/v1/broker/auth/${kind}`,
        { body: 'username=7&username=8', headers: FORM });
      assert.equal(twice.status, 400, twice.text);
      const get = await ctx.api('GET', `/api/v1/broker/auth/${kind}`);
      assert.equal(get.status, 405);
    }
  });

  test('an empty form is a deny, not an error', async () => {
    for (const kind of ['user', 'vhost', 'resource', 'topic']) {
      assert.equal(await verdict(kind, {}), 'deny');
    }
  });

  test('404 from an address outside BROKER_AUTH_ALLOW, and without AMQP_URL', async (t) => {
    await devices();
    const outside = await h.startServer({ databaseUrl: ctx.pg.url,
      env: { AMQP_URL, BROKER_AUTH_ALLOW: '10.0.0.0/8' } });
    t.after(() => outside.stop());
    const off = await h.startServer({ databaseUrl: ctx.pg.url, env: { AMQP_URL: undefined } });
    t.after(() => off.stop());
    for (const server of [outside, off]) {
      for (const kind of ['user', 'vhost', 'resource', 'topic']) {
        const res = await ask(kind, { username: a.serial, password: a.token, vhost: 'meters' },
          server);
        assert.equal(res.status, 404, res.text);
        assert.equal(res.json.code, 'not_found');
        // Refused before the body is looked at: a JSON body changes nothing.
        const json = await h.api(server, 'POST', `/api/v1/broker/auth/${kind}`,
          { body: { username: '7' } });
        assert.equal(json.status, 404, json.text);
      }
    }
  });
});
