'use strict';
// Fault drill: kill -9 of the server every few seconds while 8 simulated devices post
// readings with retries; 5 kills, the server started again each time on the same ports
// and database. Afterwards every acknowledged reading is stored exactly once, nothing
// is invented, every hour equals a recomputation from the stored readings (bit for
// bit), and every hour over its limit has its one alert.
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../api/lib/harness');
const drill = require('./lib/drill');

const KILLS = 5;

test('kill -9 of the server, 5 times under load: nothing acknowledged lost or doubled',
  { timeout: 240000 }, async (t) => {
    const began = Date.now();
    const pg = await h.startPostgres();
    let server = await h.startServer({ databaseUrl: pg.url });
    let fleet = null;
    t.after(async () => {
      if (fleet) fleet.stop();
      await server.kill();
      await pg.destroy();
    });
    await server.waitReady();
    const admin = await h.createUser(server, { role: 'admin' });
    const token = (await h.login(server, admin.email, admin.password)).access_token;

    // 130 readings each, a minute apart, at 300x: about 26 s of traffic.
    fleet = await drill.startFleet(server, token, { devices: 8, count: 130, speed: 300 });
    const kills = [];
    for (let k = 0; k < KILLS; k++) {
      // Let the devices get some readings through this server first, so every kill
      // lands on a server that is busy committing.
      const before = drill.storedCount(pg);
      await h.waitFor(() => drill.storedCount(pg) >= before + 40, { timeout: 20000,
        message: `readings stored before kill ${k + 1}` });
      await h.sleep(500 + Math.floor(Math.random() * 1500));
      const storedAtKill = drill.storedCount(pg);
      const old = server;
      const res = await old.kill();
      assert.equal(res.signal, 'SIGKILL');
      const report = h.sanitizerReport(res.stderr);
      assert.equal(report, null, `sanitizer report before kill ${k + 1}:\n${report}`);
      kills.push({ at: Date.now() - began, storedAtKill });
      await h.sleep(300);
      server = await h.startServer({ databaseUrl: pg.url,
        env: { HTTP_PORT: old.httpPort, WS_PORT: old.wsPort, JWT_SECRET: old.jwtSecret } });
    }

    const results = await fleet.finished(90000);
    const details = drill.describeSims(fleet);
    for (const r of results) {
      assert.equal(r.code, 0, `a simulator did not finish cleanly:\n${details}`);
      assert.ok(r.summary && r.summary.pending === 0, details);
    }
    const retries = results.reduce((n, r) => n + r.summary.retries, 0);
    assert.ok(retries > 0, `the kills caused retries:\n${details}`);

    const a = drill.audit(pg, fleet);
    drill.report('server-kill', { kills: kills.length, retries, ...a, examples: undefined,
      seconds: Math.round((Date.now() - began) / 1000) });
    assert.equal(a.acknowledged, 8 * 130);
    assert.equal(a.lost, 0, `acknowledged readings lost:\n${a.examples.join('\n')}`);
    assert.equal(a.invented, 0, a.examples.join('\n'));
    assert.equal(a.valueMismatches, 0, a.examples.join('\n'));
    assert.equal(a.duplicateKeys, 0);
    assert.equal(a.stored, a.acknowledged);
    assert.equal(a.hourMismatches, 0, `hours differ from a recomputation (max relative ` +
      `error ${a.maxHourRelError}):\n${a.examples.join('\n')}`);
    assert.ok(a.hoursCompared > 8, 'hours were compared');
    assert.equal(a.missingAlerts, 0, a.examples.join('\n'));
    assert.equal(a.wrongAlerts, 0, a.examples.join('\n'));

    await server.stop(); // the last server shuts down cleanly, no sanitizer report
  });
