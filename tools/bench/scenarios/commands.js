'use strict';
// Scenario 9: command round trip. An owner creates a command over HTTP; the device's
// WebSocket session receives it and answers (command_result); the owner's session sees
// "succeeded". For each of N commands, one after another: create -> device received it,
// and create -> owner saw succeeded. The device's answers are paced under the hub's flood
// limit (a session sending over 20 messages a second is closed with 1008). No ceiling of
// its own: the alert scenario's NOTIFY round trip is the floor of each hop.

const http = require('node:http');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const { sleep, summarize } = require('../lib/stats');

const WebSocket = require(path.resolve(__dirname, '..', '..', '..', 'tests', 'node_modules', 'ws'));

const PACE_MS = 60;
const WAIT_MS = 10000;

// A session that queues what it receives: next(pred) resolves to the first message
// (received now or later) that pred accepts, with its arrival time.
function session(url, auth) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const s = { ws, inbox: [], waiters: [] };
    s.next = (pred) => new Promise((res, rej) => {
      const i = s.inbox.findIndex((m) => pred(m.msg));
      if (i >= 0) return res(s.inbox.splice(i, 1)[0]);
      const w = { pred, res };
      s.waiters.push(w);
      setTimeout(() => {
        const k = s.waiters.indexOf(w);
        if (k >= 0) {
          s.waiters.splice(k, 1);
          rej(new Error('no such message in time'));
        }
      }, WAIT_MS);
    });
    ws.on('open', () => ws.send(JSON.stringify(auth)));
    ws.on('error', reject);
    ws.on('message', (data) => {
      const at = performance.now();
      const msg = JSON.parse(String(data));
      if (msg.type === 'ready') return resolve(s);
      const w = s.waiters.find((x) => x.pred(msg));
      if (w) {
        s.waiters.splice(s.waiters.indexOf(w), 1);
        w.res({ msg, at });
      } else {
        s.inbox.push({ msg, at });
      }
    });
  });
}

function create(ctx, agent, token, deviceId) {
  return new Promise((resolve, reject) => {
    const body = '{"name":"relay","params":{"state":"off"}}';
    const req = http.request(`${ctx.server.baseUrl}/api/v1/devices/${deviceId}/commands`, {
      method: 'POST', agent,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json',
        'content-length': body.length },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => (res.statusCode === 201 ? resolve(JSON.parse(text))
        : reject(new Error(`create: HTTP ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function run(ctx) {
  const owner = ctx.setup.owners[0];
  const device = await ctx.server.apiOk('POST', '/api/v1/devices', 201, {
    token: ctx.setup.admin.token, body: { name: 'commands-rtt', max_hourly_kwh: 1e6, owner_id: owner.id },
  });
  const ownerSession = await session(ctx.server.wsUrl, { type: 'auth', token: owner.token });
  const deviceSession = await session(ctx.server.wsUrl, { type: 'auth', device_token: device.token });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const toDevice = [];
  const total = [];
  ctx.log(`commands: ${ctx.cfg.commandCount} round trips, one after another`);
  try {
    for (let i = 0; i < ctx.cfg.commandCount; i++) {
      await sleep(PACE_MS);
      const t0 = performance.now();
      const c = await create(ctx, agent, owner.token, device.id);
      const got = await deviceSession.next((m) => m.type === 'command' && m.command.id === c.id);
      deviceSession.ws.send(JSON.stringify({ type: 'command_result', id: c.id, status: 'succeeded' }));
      const done = await ownerSession.next((m) => m.type === 'command' && m.command.id === c.id &&
        m.command.status === 'succeeded');
      toDevice.push(got.at - t0);
      total.push(done.at - t0);
      ownerSession.inbox.length = 0; // the queued and sent of earlier commands
    }
  } finally {
    agent.destroy();
    ownerSession.ws.close();
    deviceSession.ws.close();
  }
  return { commands: total.length, to_device_ms: summarize(toDevice), round_trip_ms: summarize(total) };
}

module.exports = { run };
