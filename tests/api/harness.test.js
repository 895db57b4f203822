'use strict';
// Tests of the test harness itself: clusters, and the cleanup of clusters and servers
// however a test process ends.

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { describe, test } = require('node:test');

const h = require('./lib/harness');


function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

function canConnect(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.once('connect', () => { sock.destroy(); resolve(true); });
    sock.once('error', () => resolve(false));
  });
}

function postmasterPid(pg) {
  return Number(fs.readFileSync(path.join(pg.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

describe('utilities', () => {
  test('freePort returns distinct ports nobody listens on', async () => {
    const ports = await Promise.all([h.freePort(), h.freePort(), h.freePort()]);
    assert.equal(new Set(ports).size, 3);
    for (const port of ports) assert.equal(await canConnect(port), false);
  });

  test('waitFor returns the first truthy value and times out with the last error', async () => {
    let calls = 0;
    assert.equal(await h.waitFor(() => (++calls >= 3 ? 'done' : null), { interval: 1 }), 'done');
    assert.equal(calls, 3);
    await assert.rejects(
      h.waitFor(() => { throw new Error('still broken'); }, { timeout: 50, interval: 5 }),
      /not met within 50 ms: still broken/);
  });

  test('sanitizerReport finds ASan, LSan and UBSan reports and nothing else', () => {
    assert.equal(h.sanitizerReport('listening on 8080\nbye\n'), null);
    assert.match(h.sanitizerReport('ok\n==7==ERROR: AddressSanitizer: heap-buffer-overflow\nx'),
      /^==7==ERROR: AddressSanitizer: heap-buffer-overflow\nx$/);
    assert.ok(h.sanitizerReport('==7==ERROR: LeakSanitizer: detected memory leaks'));
    assert.ok(h.sanitizerReport('a.c:1:2: runtime error: load of misaligned address'));
    assert.ok(h.sanitizerReport('SUMMARY: UndefinedBehaviorSanitizer: undefined-behavior a.c:1'));
  });
});

describe('startPostgres', () => {
  test('runs SQL, survives stop and start on the same port, and destroy removes it', async () => {
    const pg = await h.startPostgres();
    try {
      assert.match(pg.url, /^postgresql:\/\/wattline@127\.0\.0\.1:\d+\/wattline$/);
      assert.equal(pg.psql('select 1'), '1');
      assert.equal(pg.psql('show fsync'), 'off');
      assert.equal(pg.psql('show max_connections'), '200');
      assert.deepEqual(pg.rows("select 1 as n, 'x' as s union all select 2, null;"),
        [{ n: 1, s: 'x' }, { n: 2, s: null }]);
      assert.equal(pg.scalar('select current_database()'), 'wattline');
      assert.throws(() => pg.psql('select * from no_such_table'), /no_such_table/);

      pg.psql('create table kept (v int); insert into kept values (42)');
      const port = pg.port;
      await pg.stop();
      assert.equal(await canConnect(port), false);
      assert.throws(() => pg.psql('select 1'), /psql failed/);
      await pg.start();
      assert.equal(pg.port, port);
      assert.equal(pg.scalar('select v from kept'), 42);

      await pg.restart({ mode: 'immediate' }); // a crash: recovery must keep the data
      assert.equal(pg.scalar('select v from kept'), 42);
    } finally {
      await pg.destroy();
    }
    assert.equal(fs.existsSync(pg.dir), false);
    assert.equal(await canConnect(pg.port), false);
    await pg.destroy(); // idempotent
  });
});

// Starts a cluster and a fake server in a child process that then ends as `how` says,
// and checks that nothing it started outlives it.
async function assertChildCleansUp(how) {
  const script = `
    const h = require(${JSON.stringify(require.resolve('./lib/harness'))});
    const fs = require('node:fs');
    (async () => {
      const pg = await h.startPostgres();
      const server = await h.startServer({ databaseUrl: pg.url, bin: ${JSON.stringify(h.serverBinary())} });
      const pgPid = Number(fs.readFileSync(pg.dataDir + '/postmaster.pid', 'utf8').split('\\n')[0]);
      process.stdout.write(JSON.stringify({ dir: pg.dir, pgPid, serverPid: server.pid }) + '\\n');
      const how = process.argv[1];
      if (how === 'exit') process.exit(1);
      if (how === 'throw') throw new Error('a test blew up');
      setInterval(() => {}, 1000); // wait to be killed
    })();
  `;
  const child = spawn(process.execPath, ['-e', script, how], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  const started = await h.waitFor(() => out.includes('\n') && JSON.parse(out), { timeout: 20000 });
  if (how === 'SIGTERM' || how === 'SIGKILL') child.kill(how);
  await new Promise((resolve) => child.on('close', resolve));
  // After SIGKILL the reaper does the work, a moment later.
  await h.waitFor(() => !fs.existsSync(started.dir) && !isAlive(started.pgPid) &&
    !isAlive(started.serverPid), { timeout: 10000, message: `cleanup after ${how}` });
}

// The four children are independent, so they run at once.
describe('cleanup when the test process ends', { concurrency: true }, () => {
  for (const how of ['exit', 'throw', 'SIGTERM', 'SIGKILL']) {
    test(`removes clusters and servers after ${how}`, () => assertChildCleansUp(how));
  }
});
