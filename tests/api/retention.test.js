'use strict';
// Data lifecycle (issue 19, part 2): raw readings retired by whole months, each archived
// first as ARCHIVE_DIR/<yyyy-mm>/device-<id>.csv.gz, byte for byte the CSV export of that
// month; hourly energy kept; a late reading into a retired month is 422 too_old on every
// instance (one told by NOTIFY, one at start); `wattline archive` on demand, its second run
// keeping what is archived unless --force; RAW_RETENTION_DAYS on the server's own schedule.
//
// The months: M5, M4, M3 (five to three months ago) hold readings of two devices; M4 and
// M3 have partitions of their own (made as a server that has run for months has them), M5
// sits in the default partition (a backfill older than the months prepared ahead). M2 gets
// one late reading, which the schedule retires at the end.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');
const h = require('./lib/harness');

const ctx = h.suite();
const HOUR = 3600 * 1000;

// Months as year * 12 + month - 1, as base/month.c counts them.
const monthOf = (ms) => { const d = new Date(ms); return d.getUTCFullYear() * 12 + d.getUTCMonth(); };
const monthStart = (m) => Date.UTC(Math.floor(m / 12), m % 12, 1);
const monthName = (m) => `${Math.floor(m / 12)}-${String(m % 12 + 1).padStart(2, '0')}`;
const partition = (m) => `readings_${monthName(m).replace('-', '_')}`;
const iso = (ms) => new Date(ms).toISOString();

const CURRENT = monthOf(Date.now());
const M5 = CURRENT - 5;
const M4 = CURRENT - 4;
const M3 = CURRENT - 3;
const M2 = CURRENT - 2;
const OLD = [M5, M4, M3];

const archiveDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wattline-archive-'));
const scheduleDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wattline-schedule-'));
test.after(() => {
  fs.rmSync(archiveDir, { recursive: true, force: true });
  fs.rmSync(scheduleDir, { recursive: true, force: true });
});

const devices = {};
const exported = {}; // `${month}/${device id}` -> the CSV export's text, taken before
const hours = {}; // the same -> the month's hourly consumption, taken before
let serverB = null;
let serverC = null;
test.after(async () => {
  if (serverB) await serverB.stop();
  if (serverC) await serverC.stop();
});

async function createDevice(type) {
  const res = await ctx.api('POST', '/api/v1/devices', { token: ctx.admin.token,
    body: { name: `retention ${type}`, max_hourly_kwh: 1e6, reading_type: type } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

function post(server, device, body) {
  return h.api(server, 'POST', '/api/v1/measurements', { token: device.token, body });
}

// A month's readings: its first instant, every 6 h 17 min with fractional values, and its
// last microsecond.
function monthReadings(m, type, register) {
  const out = [];
  const start = monthStart(m);
  const end = monthStart(m + 1);
  for (let t = start, k = 0; t < end; t += 6 * HOUR + 17 * 60 * 1000, k++) {
    const kwh = 0.05 + (k % 5) * 0.0123 + k * 1e-7;
    register.value += kwh;
    out.push(type === 'interval' ? { ts: iso(t), kwh } : { ts: iso(t), meter_kwh: register.value });
  }
  const last = `${iso(end - 1000).slice(0, 19)}.999999Z`;
  register.value += 0.5;
  out.push(type === 'interval' ? { ts: last, kwh: 0.5 } : { ts: last, meter_kwh: register.value });
  return out;
}

function exportCsv(server, device, m) {
  return h.api(server, 'GET', `/api/v1/devices/${device.id}/measurements?from=${
    iso(monthStart(m))}&to=${iso(monthStart(m + 1))}`,
  { token: ctx.admin.token, headers: { Accept: 'text/csv' } });
}

async function monthHours(device, m) {
  const res = await ctx.api('GET', `/api/v1/devices/${device.id}/consumption?from=${
    iso(monthStart(m))}&to=${iso(monthStart(m + 1))}&bucket=hour`, { token: ctx.admin.token });
  assert.equal(res.status, 200, res.text);
  return res.json;
}

const count = (sql) => Number(ctx.pg.scalar(sql));
const rawIn = (m) => count(`SELECT count(*) FROM readings WHERE ts >= '${iso(monthStart(m))}'
  AND ts < '${iso(monthStart(m + 1))}'`);
const exists = (name) => ctx.pg.scalar(`SELECT to_regclass('${name}') IS NOT NULL`) === true;
const archiveFile = (dir, m, device) => path.join(dir, monthName(m), `device-${device.id}.csv.gz`);

function archive(args, env = {}) {
  return h.cli(['archive', ...args], { server: ctx.server, env: { ARCHIVE_DIR: archiveDir, ...env } });
}

// Runs sql (which takes a lock, then sleeps) in a session of its own until it ends; resolves
// once heldSql counts the lock as granted.
async function holdWhile(sql, heldSql, what) {
  const bin = path.join(process.env.PG_BINDIR || '/usr/lib/postgresql/15/bin', 'psql');
  const proc = spawn(bin, ['-X', '-q', '-d', ctx.pg.url, '-c', sql], { stdio: 'ignore' });
  const done = new Promise((resolve) => proc.on('close', resolve));
  await h.waitFor(() => count(heldSql) > 0, { message: what });
  return { released: done }; // not the promise itself: awaiting this must not wait for it
}

// Holds an ACCESS SHARE lock on a table for ms (a long report, say): the DROP of that
// partition cannot have its lock within its 2 s lock_timeout.
function holdLock(table, ms) {
  return holdWhile(
    `BEGIN; LOCK TABLE ${table} IN ACCESS SHARE MODE; SELECT pg_sleep(${ms / 1000}); COMMIT;`,
    `SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
      WHERE c.relname = '${table}' AND l.granted AND l.pid <> pg_backend_pid()`, `a lock on ${table}`);
}

// A late reading into a retired month: 422 too_old naming ts, once the instance has the
// horizon. Until then the database refuses it (never a 200): the group fails, the device
// retries.
async function assertTooOld(server, device, ts) {
  const res = await h.waitFor(async () => {
    const r = await post(server, device, { ts, kwh: 0.1 });
    assert.notEqual(r.status, 200, `a reading at ${ts} was stored: ${r.text}`);
    return r.status === 422 ? r : null;
  }, { timeout: 10000, message: `422 too_old for ${ts}` });
  assert.equal(res.json.code, 'too_old', res.text);
  assert.equal(res.json.field, 'ts', res.text);
}

test('setup: two devices with readings three to five months old, and recent ones', async () => {
  // The months a server that has run since M4 would have prepared; M5 stays in default.
  ctx.pg.psql(`SELECT readings_ensure_partitions('${iso(monthStart(M4)).slice(0, 10)}', 2)`);
  assert.ok(exists(partition(M4)) && exists(partition(M3)) && !exists(partition(M5)));
  devices.cumulative = await createDevice('cumulative');
  devices.interval = await createDevice('interval');
  for (const [type, device] of Object.entries(devices)) {
    const register = { value: 1000.125 };
    const measurements = OLD.flatMap((m) => monthReadings(m, type, register));
    const now = Date.now();
    for (const t of [now - 30 * HOUR, now - 2 * HOUR]) {
      register.value += 1.25;
      measurements.push(type === 'interval' ? { ts: iso(t), kwh: 1.25 }
        : { ts: iso(t), meter_kwh: register.value });
    }
    const res = await post(ctx.server, device, { measurements });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.accepted, measurements.length);
  }
  assert.ok(count(`SELECT count(*) FROM readings_default WHERE ts < '${iso(monthStart(M4))}'`) > 0);
  for (const m of OLD) {
    for (const device of Object.values(devices)) {
      const csv = await exportCsv(ctx.server, device, m);
      assert.equal(csv.status, 200, csv.text);
      assert.ok(csv.text.split('\n').length > 100, csv.text);
      exported[`${m}/${device.id}`] = csv.text;
      const hs = await monthHours(device, m);
      assert.ok(hs.total_kwh > 0, JSON.stringify(hs));
      hours[`${m}/${device.id}`] = hs;
    }
  }
});

test('wattline archive refuses a bad --before with exit 2', async () => {
  for (const args of [[], ['--before'], ['--before', '2026-13'], ['--before', '26-01'],
    ['--before', monthName(CURRENT + 1)]]) {
    const res = await archive(args);
    assert.equal(res.code, 2, `${args.join(' ')}: ${res.stdout}${res.stderr}`);
    assert.match(res.stderr, /usage|--before/);
  }
  const bad = await h.cli(['archive', '--before', monthName(M3)],
    { server: ctx.server, env: { RAW_RETENTION_DAYS: 'soon' } });
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /RAW_RETENTION_DAYS/);
  assert.equal(rawIn(M5) > 0, true, 'nothing was retired');
});

test('archive --before M3: M5 archived and dropped; M4 archived, its drop fails on a lock, '
  + 'and a second run drops it without rewriting it', async () => {
  const { released } = await holdLock(partition(M4), 6000);
  const first = await archive(['--before', monthName(M3)]);
  assert.equal(first.code, 1, first.stdout + first.stderr);
  const lines = first.stdout.split('\n');
  for (const device of Object.values(devices)) {
    for (const m of [M5, M4]) {
      assert.ok(lines.some((l) => l.startsWith(`wrote ${archiveFile(archiveDir, m, device)} (`)),
        first.stdout);
    }
  }
  assert.ok(lines.includes(`dropped ${monthName(M5)}`), first.stdout);
  assert.ok(!lines.includes(`dropped ${monthName(M4)}`), first.stdout);
  assert.ok(lines.some((l) => l.startsWith(`retiring ${monthName(M4)} failed`)), first.stdout);
  // M4 is closed (not droppable yet) and keeps its readings until the next run.
  assert.equal(rawIn(M5), 0);
  assert.ok(rawIn(M4) > 0);
  assert.ok(exists(partition(M4)));
  await released;

  const before = Object.values(devices).map((d) => fs.statSync(archiveFile(archiveDir, M4, d)));
  const second = await archive(['--before', monthName(M3)]);
  assert.equal(second.code, 0, second.stdout + second.stderr);
  assert.match(second.stdout, new RegExp(`archive ${monthName(M4)}: already written`));
  assert.doesNotMatch(second.stdout, /^wrote /m);
  assert.ok(second.stdout.split('\n').includes(`dropped ${monthName(M4)}`), second.stdout);
  Object.values(devices).forEach((d, i) => {
    const after = fs.statSync(archiveFile(archiveDir, M4, d));
    assert.equal(after.ino, before[i].ino);
    assert.equal(after.mtimeMs, before[i].mtimeMs);
  });
  assert.ok(!exists(partition(M4)), 'the partition of M4 is dropped');
  assert.equal(rawIn(M4), 0);
  assert.equal(ctx.pg.scalar('SELECT to_char(oldest_kept, \'YYYY-MM\') FROM readings_horizon'),
    monthName(M3));
});

test('each archive file, gunzipped, is the CSV export of its month byte for byte; no temp '
  + 'files are left', () => {
  for (const m of [M5, M4]) {
    for (const device of Object.values(devices)) {
      const text = zlib.gunzipSync(fs.readFileSync(archiveFile(archiveDir, m, device))).toString();
      assert.equal(text, exported[`${m}/${device.id}`]);
    }
    const names = fs.readdirSync(path.join(archiveDir, monthName(m))).sort();
    assert.deepEqual(names, ['.done', ...Object.values(devices).map((d) => `device-${d.id}.csv.gz`)
      .sort()]);
  }
});

test('hourly energy of retired months is unchanged', async () => {
  for (const m of [M5, M4]) {
    for (const device of Object.values(devices)) {
      assert.deepEqual(await monthHours(device, m), hours[`${m}/${device.id}`]);
    }
  }
});

test('a late reading into a retired month is 422 too_old on a server that heard by NOTIFY and '
  + 'on one started afterwards; a kept month still takes it', async () => {
  const d = devices.interval;
  await assertTooOld(ctx.server, d, iso(monthStart(M4) + 10 * HOUR));
  await assertTooOld(ctx.server, d, iso(monthStart(M5) + 10 * HOUR));
  await assertTooOld(ctx.server, d, `${iso(monthStart(M3) - 1000).slice(0, 19)}.999999Z`);
  serverB = await h.startServer({ databaseUrl: ctx.pg.url });
  await serverB.waitReady();
  const res = await post(serverB, d, { measurements: [{ ts: iso(monthStart(M2) + HOUR), kwh: 0.2 },
    { ts: iso(monthStart(M4) + HOUR), kwh: 0.1 }] });
  assert.equal(res.status, 422, res.text);
  assert.equal(res.json.code, 'too_old');
  assert.equal(res.json.field, 'measurements[1].ts');
  const kept = await post(serverB, d, { ts: iso(monthStart(M2) + HOUR), kwh: 0.2 });
  assert.equal(kept.status, 200, kept.text);
  assert.deepEqual(kept.json, { accepted: 1, duplicates: 0 });
  assert.equal(rawIn(M4) + rawIn(M5), 0);
});

test('the database refuses a retired month too: no late row lands in the default partition, '
  + 'no partition is made again', () => {
  assert.throws(() => ctx.pg.psql(`INSERT INTO readings (device_id, ts, value)
    VALUES (${devices.interval.id}, '${iso(monthStart(M4) + HOUR)}', 1)`), /retired month/);
  assert.equal(count(`SELECT readings_ensure_partitions('${
    iso(monthStart(M5)).slice(0, 10)}', 3)`), 0);
  assert.ok(!exists(partition(M4)) && !exists(partition(M5)));
  assert.equal(rawIn(M4), 0);
});

test('--force writes an archived month again', async () => {
  const { released } = await holdLock(partition(M3), 6000);
  const first = await archive(['--before', monthName(M2)]);
  assert.equal(first.code, 1, first.stdout + first.stderr);
  await released;
  const before = Object.values(devices).map((d) => fs.statSync(archiveFile(archiveDir, M3, d)));
  const forced = await archive(['--before', monthName(M2), '--force']);
  assert.equal(forced.code, 0, forced.stdout + forced.stderr);
  Object.values(devices).forEach((d, i) => {
    const file = archiveFile(archiveDir, M3, d);
    assert.match(forced.stdout, new RegExp(`^wrote ${file} \\(\\d+ readings\\)$`, 'm'));
    assert.notEqual(fs.statSync(file).ino, before[i].ino, 'a new file was renamed over it');
    assert.equal(zlib.gunzipSync(fs.readFileSync(file)).toString(), exported[`${M3}/${d.id}`]);
  });
  assert.ok(forced.stdout.split('\n').includes(`dropped ${monthName(M3)}`), forced.stdout);
  assert.ok(!exists(partition(M3)));
  assert.equal(rawIn(M3), 0);
  for (const device of Object.values(devices)) {
    assert.deepEqual(await monthHours(device, M3), hours[`${M3}/${device.id}`]);
  }
});

test('while another instance is retiring months, a run skips and changes nothing', async () => {
  // The retention lock's key (db/retention.c), held as another instance's run holds it.
  const { released } = await holdWhile('SELECT pg_advisory_lock(7239019), pg_sleep(4);',
    `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 7239019 AND granted
      AND pid <> pg_backend_pid()`, 'the retention lock');
  const horizon = ctx.pg.scalar('SELECT oldest_kept FROM readings_horizon');
  const res = await archive(['--before', monthName(CURRENT - 1)]);
  assert.equal(res.code, 1, res.stdout + res.stderr);
  assert.match(res.stdout, /another instance is retiring months now: skipped/);
  assert.match(res.stderr, /try again later/);
  assert.equal(ctx.pg.scalar('SELECT oldest_kept FROM readings_horizon'), horizon);
  assert.equal(rawIn(M2), 1);
  await released;
});

test('RAW_RETENTION_DAYS: a server retires the months that are due on its own at start',
  async () => {
    const d = devices.interval;
    const m2Export = await exportCsv(ctx.server, d, M2);
    assert.equal(m2Export.status, 200);
    assert.equal(m2Export.text.split('\n').length, 3, m2Export.text); // header, one reading
    // Every day of M2 is older than that many days; M1 is not all older.
    const days = Math.floor((Date.now() - monthStart(CURRENT - 1)) / (24 * HOUR));
    serverC = await h.startServer({ databaseUrl: ctx.pg.url,
      env: { RAW_RETENTION_DAYS: days, ARCHIVE_DIR: scheduleDir } });
    await serverC.waitReady();
    await serverC.waitForLog((e) => JSON.stringify(e).includes(`retention: dropped ${monthName(M2)}`),
      { timeout: 15000 });
    assert.equal(rawIn(M2), 0);
    assert.equal(ctx.pg.scalar('SELECT to_char(oldest_kept, \'YYYY-MM\') FROM readings_horizon'),
      monthName(CURRENT - 1));
    const text = zlib.gunzipSync(fs.readFileSync(archiveFile(scheduleDir, M2, d))).toString();
    assert.equal(text, m2Export.text);
    // The instance that did not retire it hears of it.
    await assertTooOld(ctx.server, d, iso(monthStart(M2) + 2 * HOUR));
    // Recent readings are untouched.
    assert.ok(count(`SELECT count(*) FROM readings WHERE ts >= '${iso(monthStart(CURRENT - 1))}'`) >= 4);
  });
