'use strict';
// Command round trip (issue 16), standalone until it joins `make bench`: create (owner,
// HTTP) -> the device's WebSocket session receives it -> it answers (command_result) ->
// the owner's session sees "succeeded"; N commands one after another (default 1000),
// paced under the hub's flood limit (20 messages/s per session). Uses the API tests'
// harness (a throwaway PostgreSQL cluster and server):
//   cd tests && WATTLINE_BIN=$PWD/../bin/wattline node ../tools/bench/commands_rtt.js
// 2026-12-07, release build, the shared 2-core VM: create -> device p50 4.9 ms, p99 29.6 ms;
// create -> owner sees succeeded p50 7.0 ms, p99 40.0 ms (NOTIFY round trip: ~0.25 ms).
const h = require('../../tests/api/lib/harness');
const wsc = require('../../tests/api/lib/wsclient');
const { performance } = require('node:perf_hooks');
const N = Number(process.env.N || 1000);
(async () => {
  const pg = await h.startPostgres();
  const server = await h.startServer({ databaseUrl: pg.url, env: { LOG_LEVEL: 'warn' } });
  try {
    const admin = await h.createUser(server, { role: 'admin' });
    const tok = (await h.login(server, admin.email, admin.password)).access_token;
    const dev = (await h.api(server, 'POST', '/api/v1/devices', { token: tok,
      body: { name: 'rtt', max_hourly_kwh: 1, owner_id: (await h.api(server, 'GET', '/api/v1/me', { token: tok })).json.id } })).json;
    const owner = await wsc.session(server.wsUrl, tok);
    const device = await wsc.open(server.wsUrl);
    device.send({ type: 'auth', device_token: dev.token });
    await device.next('ready');
    const toDevice = [], total = [];
    for (let i = 0; i < N; i++) {
      // The hub closes a session sending over 20 messages/s sustained (1008): pace the answers.
      await new Promise((r) => setTimeout(r, 60));
      const t0 = performance.now();
      const res = await fetch(`${server.baseUrl}/api/v1/devices/${dev.id}/commands`, { method: 'POST',
        headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' }, body: '{"name":"relay","params":{"state":"off"}}' });
      const c = await res.json();
      let m;
      do { m = await device.next('command', 5000); } while (m.command.id !== c.id);
      const t1 = performance.now();
      device.send({ type: 'command_result', id: c.id, status: 'succeeded' });
      for (;;) {
        const o = await owner.next('command', 5000);
        if (o.command.id === c.id && o.command.status === 'succeeded') break;
      }
      const t2 = performance.now();
      toDevice.push(t1 - t0); total.push(t2 - t0);
    }
    const q = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))].toFixed(2); };
    console.log(`N=${N} create->device: p50 ${q(toDevice, 0.5)} ms p99 ${q(toDevice, 0.99)} ms; create->owner sees succeeded: p50 ${q(total, 0.5)} ms p99 ${q(total, 0.99)} ms`);
    await owner.close(); await device.close();
  } finally {
    await server.stop(); await pg.destroy();
  }
})().catch((e) => { console.error(e); process.exit(1); });
