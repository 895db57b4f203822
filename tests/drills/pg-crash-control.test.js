'use strict';
// Negative control: the drill must be able to fail. The same load and audit as the
// other drills, against a PostgreSQL that acknowledges commits it has not written:
// synchronous_commit=off and fsync=off, killed -9 (the postmaster and all its children,
// stopped first so none writes anything on the way out). The audit must then find
// acknowledged readings that are not stored; if it found none, it would not be
// testing anything.
//
// Why the loss is reliable here: with synchronous_commit=off a COMMIT returns once its
// WAL is in shared memory (wal_buffers); the WAL writer writes it out to the kernel
// (whose page cache survives a kill -9 of PostgreSQL, fsync or not) only when a whole
// WAL page is full or every wal_writer_delay. So at any moment under steady load the
// last, partly filled WAL page, holding the latest few commits, exists only in shared
// memory. The settings below remove the other writers of WAL: the longest
// wal_writer_delay (10 s), wal_buffers large enough never to fill, no background
// writer's page writes, no autovacuum, no checkpoints, and wal_level=minimal (no
// standby snapshots). Each crash lands while devices are committing, so it takes the
// commits of the last page with it; three crashes make a miss very unlikely.
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../api/lib/harness');
const drill = require('./lib/drill');

const CRASHES = 3;
const UNSAFE = {
  synchronous_commit: 'off',
  fsync: 'off',
  wal_writer_delay: '10s',
  wal_writer_flush_after: '1GB',
  wal_buffers: '64MB',
  wal_level: 'minimal',
  max_wal_senders: '0',
  bgwriter_lru_maxpages: '0',
  autovacuum: 'off',
  checkpoint_timeout: '1h',
  max_wal_size: '10GB',
};

test('negative control: PostgreSQL without durable commits, killed -9: the audit sees the loss',
  { timeout: 180000 }, async (t) => {
    const began = Date.now();
    const pg = await h.startPostgres();
    await drill.configurePostgres(pg, UNSAFE);
    const settings = drill.showSettings(pg, Object.keys(UNSAFE));
    assert.equal(settings.synchronous_commit, 'off');
    assert.equal(settings.fsync, 'off');
    assert.equal(settings.wal_level, 'minimal');
    const server = await h.startServer({ databaseUrl: pg.url });
    let fleet = null;
    t.after(async () => {
      if (fleet) fleet.stop();
      await server.kill();
      await pg.destroy();
    });
    await server.waitReady();
    const admin = await h.createUser(server, { role: 'admin' });
    const token = (await h.login(server, admin.email, admin.password)).access_token;

    fleet = await drill.startFleet(server, token, { devices: 8, count: 100, speed: 300,
      seedBase: 300 });
    const crashes = [];
    for (let c = 0; c < CRASHES; c++) {
      const before = drill.storedCount(pg);
      await h.waitFor(() => drill.storedCount(pg) >= before + 40, { timeout: 30000,
        message: `readings stored before crash ${c + 1}` });
      await h.sleep(300 + Math.floor(Math.random() * 700));
      const pids = await pg.crash();
      crashes.push({ at: Date.now() - began, processes: pids.length });
      await h.sleep(500);
      await pg.start(); // crash recovery replays what reached the WAL files
      await server.waitReady({ timeout: 30000 });
    }

    const results = await fleet.finished(90000);
    const details = drill.describeSims(fleet);
    for (const r of results) {
      assert.equal(r.code, 0, `a simulator did not finish cleanly:\n${details}`);
      assert.ok(r.summary && r.summary.pending === 0, details);
    }
    assert.equal(server.exited, false, 'the server rode out the crashes');

    const a = drill.audit(pg, fleet);
    drill.report('pg-crash-control', { crashes, ...a, examples: a.examples.slice(0, 3),
      seconds: Math.round((Date.now() - began) / 1000) });
    assert.equal(a.acknowledged, 8 * 100);
    // The point of the control: acknowledged readings are missing, and the audit says so.
    assert.ok(a.lost > 0, 'the negative control lost no acknowledged reading: with these ' +
      `settings and ${CRASHES} crashes under load it should have; the drill may not be ` +
      `able to see a loss (${JSON.stringify({ ...a, examples: undefined })})`);
    assert.equal(a.stored + a.lost, a.acknowledged);
    // Losing whole transactions loses nothing else: no reading is invented.
    assert.equal(a.invented, 0, a.examples.join('\n'));

    await server.stop();
  });
