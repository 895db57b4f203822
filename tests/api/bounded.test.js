'use strict';
// Bounded work per request (issue 14): MAX_READING_AGE_DAYS (422 too_old), values bounded
// at 1e12, a stored reading older than the window never makes one request write more than
// the window's hours, every stored figure finite (in the schema too), and the day chart
// failing loudly rather than answering invalid JSON.
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const ctx = h.suite();
const MIN = 60 * 1000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const MAX_AGE_DAYS = 1100; // the default
const WINDOW_HOURS = MAX_AGE_DAYS * 24;
const iso = (ms) => new Date(ms).toISOString();
const hourFloor = (ms) => Math.floor(ms / HOUR) * HOUR;

let serial = 0;
async function createDevice({ type = 'cumulative', limit = 1e9 } = {}) {
  const res = await ctx.api('POST', '/api/v1/devices', { token: ctx.admin.token,
    body: { name: `bounded ${++serial}`, max_hourly_kwh: limit, reading_type: type } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

function post(device, body) {
  return ctx.api('POST', '/api/v1/measurements', { token: device.token, body });
}

function count(sql) {
  return Number(ctx.pg.scalar(sql));
}

function assertProblem(res, code, field) {
  assert.equal(res.status, 422, res.text);
  assert.equal(res.json.code, code, res.text);
  assert.equal(res.json.field, field, res.text);
}

test('the issue\'s example: a cumulative reading of 1970 is 422 too_old and stores nothing',
  async () => {
    const d = await createDevice();
    const res = await post(d, { ts: '1970-01-01T00:00:00Z', meter_kwh: 0 });
    assertProblem(res, 'too_old', 'ts');
    // In a batch, the field is the reading's ts; nothing of the batch is stored.
    const batch = await post(d, { measurements: [{ ts: iso(Date.now() - HOUR), meter_kwh: 1 },
      { ts: '1970-01-01T00:00:00Z', meter_kwh: 0 }] });
    assertProblem(batch, 'too_old', 'measurements[1].ts');
    assert.equal(count(`SELECT count(*) FROM readings WHERE device_id = ${d.id}`), 0);
    assert.equal(count(`SELECT count(*) FROM device_hours WHERE device_id = ${d.id}`), 0);
  });

test('MAX_READING_AGE_DAYS: one day past it is too_old, just inside it is accepted', async () => {
  const d = await createDevice({ type: 'interval' });
  const now = Date.now();
  const old = await post(d, { ts: iso(now - (MAX_AGE_DAYS + 1) * DAY), kwh: 1 });
  assertProblem(old, 'too_old', 'ts');
  // A minute inside the window (the request takes less than that to arrive).
  const inside = await post(d, { ts: iso(now - MAX_AGE_DAYS * DAY + MIN), kwh: 1 });
  assert.equal(inside.status, 200, inside.text);
  assert.deepEqual(inside.json, { accepted: 1, duplicates: 0 });
});

test('a value above 1e12 is 422 invalid_field; 1e12 itself is taken', async () => {
  const d = await createDevice();
  const ts = iso(Date.now() - HOUR);
  assertProblem(await post(d, { ts, meter_kwh: 1e308 }), 'invalid_field', 'meter_kwh');
  assertProblem(await post(d, { ts, meter_kwh: 1.1e12 }), 'invalid_field', 'meter_kwh');
  const i = await createDevice({ type: 'interval' });
  assertProblem(await post(i, { measurements: [{ ts, kwh: 1 }, { ts: iso(Date.now()), kwh: 1e308 }] }),
    'invalid_field', 'measurements[1].kwh');
  assert.equal(count(`SELECT count(*) FROM readings WHERE device_id IN (${d.id}, ${i.id})`), 0);
  const top = await post(d, { ts, meter_kwh: 1e12 });
  assert.equal(top.status, 200, top.text);
  // Near-1e308 readings summing to Infinity can no longer be sent: the sum of what can is
  // finite, and so is every hour.
  const burst = await post(i, { measurements: Array.from({ length: 50 },
    (_, k) => ({ ts: iso(hourFloor(Date.now()) - HOUR + k * 1000), kwh: 1e12 })) });
  assert.equal(burst.status, 200, burst.text);
  assert.equal(Number(ctx.pg.scalar(`SELECT max(kwh) FROM device_hours WHERE device_id = ${i.id}`)),
    5e13);
});

// Legacy data: a reading stored before the window existed (inserted directly, bypassing
// the API, as a database migrated from an older version would hold it).
function storeLegacyReading(deviceId, ts, value) {
  ctx.pg.psql(`INSERT INTO readings (device_id, ts, value) VALUES (${deviceId}, '${ts}', ${value});
    UPDATE devices SET latest_reading_ts = '${ts}', latest_reading_value = ${value}
    WHERE id = ${deviceId};`);
}

test('a stored reading of 1970 and a reading now write at most the window\'s hours', async () => {
  const d = await createDevice({ limit: 1000 });
  storeLegacyReading(d.id, '1970-01-01T00:00:00Z', 0);
  const now = Date.now();
  const started = Date.now();
  const res = await post(d, { ts: iso(now), meter_kwh: 1e6 });
  const took = Date.now() - started;
  assert.equal(res.status, 200, res.text);
  const written = count(`SELECT count(*) FROM device_hours WHERE device_id = ${d.id}`);
  // The window (plus the hour it starts in and the new reading's own hour), not ~500,000.
  assert.ok(written <= WINDOW_HOURS + 2, `${written} hour rows written`);
  assert.ok(written >= WINDOW_HOURS, `${written} hour rows written`);
  assert.equal(count(`SELECT count(*) FROM device_hours WHERE device_id = ${d.id}
    AND hour < now() - interval '${MAX_AGE_DAYS} days' - interval '1 hour'`), 0);
  assert.equal(count(`SELECT count(*) FROM alerts WHERE device_id = ${d.id}`), 0);
  // Each hour of the window holds its share of the spread: 1e6 kWh over 56 years.
  const span = now - 0;
  const share = Number(ctx.pg.scalar(`SELECT kwh FROM device_hours WHERE device_id = ${d.id}
    AND hour = '${iso(hourFloor(now) - 5 * HOUR)}'`));
  assert.ok(Math.abs(share - 1e6 * HOUR / span) < 1e-9 * share, `${share}`);
  console.log(`# one request after a 1970 reading: ${written} hour rows in ${took} ms`);

  // A late reading into the gap: again only the window's hours, and each equals the share
  // its interval gives (the stored readings recomputed).
  const late = now - 100 * DAY;
  const res2 = await post(d, { ts: iso(late), meter_kwh: 4e5 });
  assert.equal(res2.status, 200, res2.text);
  assert.ok(count(`SELECT count(*) FROM device_hours WHERE device_id = ${d.id}`) <= WINDOW_HOURS + 2);
  const before = Number(ctx.pg.scalar(`SELECT kwh FROM device_hours WHERE device_id = ${d.id}
    AND hour = '${iso(hourFloor(late) - 10 * DAY)}'`));
  assert.ok(Math.abs(before - 4e5 * HOUR / (late - 0)) < 1e-6 * before, `${before}`);
  const after = Number(ctx.pg.scalar(`SELECT kwh FROM device_hours WHERE device_id = ${d.id}
    AND hour = '${iso(hourFloor(late) + 10 * DAY)}'`));
  assert.ok(Math.abs(after - 6e5 * HOUR / (now - late)) < 1e-6 * after, `${after}`);

  // The consumption endpoints answer valid JSON over it.
  const day = await ctx.api('GET', `/api/v1/devices/${d.id}/consumption?date=${iso(now).slice(0, 10)}`,
    { token: ctx.admin.token });
  assert.equal(day.status, 200, day.text);
  assert.ok(day.json.total_kwh > 0);
  const months = await ctx.api('GET', `/api/v1/devices/${d.id}/consumption?from=${
    iso(now - (MAX_AGE_DAYS + 30) * DAY)}&to=${iso(now + DAY)}&bucket=month`, { token: ctx.admin.token });
  assert.equal(months.status, 200, months.text);
  assert.ok(months.json.hours.every((b) => Number.isFinite(b.kwh)));
});

test('every stored figure is finite: the schema refuses Infinity and NaN', async () => {
  const d = await createDevice();
  const refused = [
    `INSERT INTO device_hours (device_id, hour, kwh) VALUES (${d.id}, '2026-01-01T00:00Z', 'Infinity')`,
    `INSERT INTO device_hours (device_id, hour, kwh) VALUES (${d.id}, '2026-01-01T01:00Z', 'NaN')`,
    `INSERT INTO device_hours (device_id, hour, kwh) VALUES (${d.id}, '2026-01-01T02:00Z', '-Infinity')`,
    `INSERT INTO alerts (device_id, hour_start, hour_kwh, max_hourly_kwh)
      VALUES (${d.id}, '2026-01-01T00:00Z', 'Infinity', 1)`,
    `INSERT INTO alerts (device_id, hour_start, hour_kwh, max_hourly_kwh)
      VALUES (${d.id}, '2026-01-01T00:00Z', 2, 'NaN')`,
    `INSERT INTO readings (device_id, ts, value) VALUES (${d.id}, '2026-01-01T00:00Z', 'Infinity')`,
    `UPDATE devices SET latest_reading_ts = now(), latest_reading_value = 'NaN' WHERE id = ${d.id}`,
  ];
  for (const sql of refused) {
    assert.throws(() => ctx.pg.psql(sql), /violates check constraint/, sql);
  }
  // The largest double is finite and stored.
  ctx.pg.psql(`INSERT INTO device_hours (device_id, hour, kwh)
    VALUES (${d.id}, '2026-01-01T00:00Z', 1.7976931348623157e308)`);
});

test('a day whose total is not a finite number answers 500 and logs it, never invalid JSON',
  async () => {
    const d = await createDevice();
    // Two hours at the largest double (legacy figures): each is finite, their sum is not.
    ctx.pg.psql(`INSERT INTO device_hours (device_id, hour, kwh) VALUES
      (${d.id}, '2026-03-01T10:00Z', 1.7976931348623157e308),
      (${d.id}, '2026-03-01T11:00Z', 1.7976931348623157e308)`);
    const res = await ctx.api('GET', `/api/v1/devices/${d.id}/consumption?date=2026-03-01`,
      { token: ctx.admin.token });
    assert.equal(res.status, 500, res.text);
    assert.equal(res.json.code, 'internal');
    await h.waitFor(() => /consumption: device \d+: the answer cannot be written: a number is not finite/
      .test(ctx.server.stdout() + ctx.server.stderr()), { message: 'no log line for the 500' });
    // One of them alone is a valid (huge) number.
    const one = await ctx.api('GET', `/api/v1/devices/${d.id}/consumption?from=2026-03-01T10:00:00Z&to=2026-03-01T11:00:00Z`,
      { token: ctx.admin.token });
    assert.equal(one.status, 200, one.text);
    assert.equal(one.json.hours[0].kwh, 1.7976931348623157e308);
  });

test('migration 0005 is safe on existing data: an Infinity stored by the old overflow becomes the largest double',
  async () => {
    const fs = require('node:fs');
    const os = require('node:os');
    const path = require('node:path');
    const all = path.join(__dirname, '..', '..', 'migrations');
    const before = fs.mkdtempSync(path.join(os.tmpdir(), 'wattline-migrations-'));
    try {
      for (const f of fs.readdirSync(all).filter((n) => n < '0005')) {
        fs.copyFileSync(path.join(all, f), path.join(before, f));
      }
      ctx.pg.psql('CREATE DATABASE legacy', { database: 'postgres' });
      const databaseUrl = ctx.pg.urlFor('legacy');
      const old = await h.cli(['migrate'], { databaseUrl, env: { MIGRATIONS_DIR: before } });
      assert.equal(old.code, 0, old.stderr);
      ctx.pg.psql(`INSERT INTO devices (name, max_hourly_kwh, token_hash) VALUES ('old', 1, 'x');
        INSERT INTO device_hours (device_id, hour, kwh) VALUES
          (1, '2025-01-01T00:00Z', 'Infinity'), (1, '2025-01-01T01:00Z', 'NaN'),
          (1, '2025-01-01T02:00Z', 2.5);
        INSERT INTO alerts (device_id, hour_start, hour_kwh, max_hourly_kwh)
          VALUES (1, '2025-01-01T00:00Z', 'Infinity', 1);`, { database: 'legacy' });
      const now = await h.cli(['migrate'], { databaseUrl });
      assert.equal(now.code, 0, now.stderr);
      assert.deepEqual(ctx.pg.rows(`SELECT kwh::text FROM device_hours ORDER BY hour`,
        { database: 'legacy' }).map((r) => r.kwh), ['1.7976931348623157e+308',
        '1.7976931348623157e+308', '2.5']);
      assert.equal(ctx.pg.scalar(`SELECT hour_kwh::text FROM alerts`, { database: 'legacy' }),
        '1.7976931348623157e+308');
    } finally {
      fs.rmSync(before, { recursive: true, force: true });
    }
  });
