'use strict';
// Ingestion and the hourly energy: the contract's rules, order independence,
// concurrency, all-or-nothing batches, credentials.
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const ctx = h.suite();
const MIN = 60 * 1000;
const HOUR = 60 * MIN;
// A past day, so no reading is in the future.
const DAY0 = Date.parse('2026-10-01T00:00:00Z');
const iso = (ms) => new Date(ms).toISOString();

let serial = 0;
async function createDevice({ type = 'cumulative', limit = 1000, owner = null } = {}) {
  const res = await ctx.api('POST', '/api/v1/devices', { token: ctx.admin.token,
    body: { name: `meter ${++serial}`, max_hourly_kwh: limit, reading_type: type, owner_id: owner } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

function post(device, body) {
  return ctx.api('POST', '/api/v1/measurements', { token: device.token, body });
}

function cumulative(readings) {
  return { measurements: readings.map(([ts, v]) => ({ ts: iso(ts), meter_kwh: v })) };
}

// Every stored hour of a device, exactly as PostgreSQL prints the double.
async function hours(deviceId) {
  return ctx.pg.rows(`SELECT to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24') AS hour,
    kwh::text AS kwh FROM device_hours WHERE device_id = ${Number(deviceId)} AND kwh <> 0
    ORDER BY hour`);
}

async function hourKwh(deviceId, hourMs) {
  const v = await ctx.pg.scalar(`SELECT kwh FROM device_hours WHERE device_id = ${Number(deviceId)}
    AND hour = '${iso(hourMs)}'`);
  return v === null || v === undefined ? 0 : Number(v);
}

async function alertCount(deviceId) {
  return Number(await ctx.pg.scalar(`SELECT count(*) FROM alerts WHERE device_id = ${Number(deviceId)}`));
}

test('a cumulative interval is spread evenly over the hours and days it covers', async () => {
  const d = await createDevice();
  // 23:55 -> 00:05 across midnight with 2 kWh: 1 kWh to each day's hour.
  const res = await post(d, cumulative([[DAY0 + 23 * HOUR + 55 * MIN, 100], [DAY0 + 24 * HOUR + 5 * MIN, 102]]));
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { accepted: 2, duplicates: 0 });
  assert.equal(await hourKwh(d.id, DAY0 + 23 * HOUR), 1);
  assert.equal(await hourKwh(d.id, DAY0 + 24 * HOUR), 1);
  // Energy before the first reading is unknown: 0.
  assert.equal(await hourKwh(d.id, DAY0 + 22 * HOUR), 0);
});

test('a lower register is a meter reset: the later register is the energy since', async () => {
  const d = await createDevice();
  await post(d, cumulative([[DAY0 + 10 * MIN, 5000], [DAY0 + 20 * MIN, 3.5], [DAY0 + 30 * MIN, 4]]));
  assert.equal(await hourKwh(d.id, DAY0), 4);
});

test('a late reading re-divides its interval and raises the alert of an hour now over', async () => {
  const d = await createDevice({ limit: 3 });
  // 10:30 -> 11:30 with 4 kWh: 2 + 2, under the limit of 3.
  await post(d, cumulative([[DAY0 + 10.5 * HOUR, 0], [DAY0 + 11.5 * HOUR, 4]]));
  assert.equal(await hourKwh(d.id, DAY0 + 10 * HOUR), 2);
  assert.equal(await alertCount(d.id), 0);
  // The late 11:00 reading shows 3.5 of it fell before 11:00.
  const late = await post(d, { ts: iso(DAY0 + 11 * HOUR), meter_kwh: 3.5 });
  assert.deepEqual(late.json, { accepted: 1, duplicates: 0 });
  assert.equal(await hourKwh(d.id, DAY0 + 10 * HOUR), 3.5);
  assert.equal(await hourKwh(d.id, DAY0 + 11 * HOUR), 0.5);
  const alerts = await ctx.pg.rows(`SELECT to_char(hour_start AT TIME ZONE 'UTC', 'HH24') AS h,
    hour_kwh FROM alerts WHERE device_id = ${d.id}`);
  assert.deepEqual(alerts, [{ h: '10', hour_kwh: 3.5 }]);
});

test('duplicates change nothing, in a retried batch and inside one batch', async () => {
  const d = await createDevice();
  const batch = cumulative([[DAY0 + 5 * MIN, 1], [DAY0 + 15 * MIN, 2], [DAY0 + 25 * MIN, 4]]);
  assert.deepEqual((await post(d, batch)).json, { accepted: 3, duplicates: 0 });
  const before = await hours(d.id);
  assert.deepEqual((await post(d, batch)).json, { accepted: 0, duplicates: 3 });
  // Same ts twice in one batch: the first counts.
  const twice = await post(d, cumulative([[DAY0 + 35 * MIN, 10], [DAY0 + 35 * MIN, 99]]));
  assert.deepEqual(twice.json, { accepted: 1, duplicates: 1 });
  assert.equal(Number(await ctx.pg.scalar(`SELECT value FROM readings WHERE device_id = ${d.id}
    AND ts = '${iso(DAY0 + 35 * MIN)}'`)), 10);
  assert.deepEqual((await hours(d.id)).length, before.length);
  assert.equal(await hourKwh(d.id, DAY0), 9);
});

// Readings after the device's newest stored one are appended without asking
// which are new; a row stored behind the device row's back (by hand) makes
// that append fail, and the group is run again the careful way.
test('a reading the device row does not know of is still a duplicate, nothing lost', async () => {
  const d = await createDevice({ type: 'interval' });
  const first = await post(d, { measurements: [{ ts: iso(DAY0 + 5 * MIN), kwh: 1 },
    { ts: iso(DAY0 + 10 * MIN), kwh: 2 }] });
  assert.deepEqual(first.json, { accepted: 2, duplicates: 0 });
  ctx.pg.psql(`UPDATE devices SET latest_reading_ts = '${iso(DAY0 + 5 * MIN)}',
    latest_reading_value = 1 WHERE id = ${d.id}`);
  const again = await post(d, { measurements: [{ ts: iso(DAY0 + 10 * MIN), kwh: 9 },
    { ts: iso(DAY0 + 20 * MIN), kwh: 4 }] });
  assert.equal(again.status, 200, again.text);
  assert.deepEqual(again.json, { accepted: 1, duplicates: 1 });
  assert.equal(Number(await ctx.pg.scalar(`SELECT value FROM readings WHERE device_id = ${d.id}
    AND ts = '${iso(DAY0 + 10 * MIN)}'`)), 2);
  assert.equal(await hourKwh(d.id, DAY0), 7);
  assert.equal(await ctx.pg.scalar(`SELECT latest_reading_ts = '${iso(DAY0 + 20 * MIN)}'
    FROM devices WHERE id = ${d.id}`), true);
});

test('interval readings belong to the hour of their ts; microseconds are kept', async () => {
  const d = await createDevice({ type: 'interval' });
  const res = await post(d, { measurements: [
    { ts: '2026-10-01T05:59:59.000Z', kwh: 0.5 },
    { ts: '2026-10-01T05:59:59.250Z', kwh: 0.25 },
    { ts: '2026-10-01T05:59:59.500000Z', kwh: 0.125 },
    { ts: '2026-10-01T08:00:00+02:00', kwh: 2 }, // 06:00 UTC
  ] });
  assert.deepEqual(res.json, { accepted: 4, duplicates: 0 });
  assert.equal(await hourKwh(d.id, DAY0 + 5 * HOUR), 0.875);
  assert.equal(await hourKwh(d.id, DAY0 + 6 * HOUR), 2);
  // The wrong member for the device's type is 422.
  const wrong = await post(d, { ts: iso(DAY0), meter_kwh: 1 });
  assert.equal(wrong.status, 422);
  assert.equal(wrong.json.field, 'meter_kwh');
});

// A register with noise, a reset, gaps, sub-second stamps; spread over 3 days.
function syntheticReadings(count) {
  const out = [];
  let ts = DAY0 + 7 * MIN;
  let reg = 48000;
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let i = 0; i < count; i++) {
    ts += Math.floor(rand() * 40 * MIN) + 1 + (i % 5 === 0 ? 250 : 0);
    reg = i === count / 2 ? 3.25 : reg + rand() * 3;
    out.push([ts, Math.round(reg * 1000) / 1000]);
  }
  return out;
}

function shuffled(list, seed) {
  const a = list.slice();
  let s = seed;
  for (let i = a.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

test('the hours are identical whatever the order and batching of arrival', async () => {
  const readings = syntheticReadings(240);
  const orders = {
    sorted: [readings],
    reversed: [readings.slice().reverse()],
    shuffled: [shuffled(readings, 7)],
    batches: [],
    singles: readings.map((r) => [r]),
    // One at a time in order: every reading takes the append path.
    appended: readings.map((r) => [r]),
  };
  const mixed = shuffled(readings, 99);
  for (let i = 0, size = 1; i < mixed.length; i += size, size = (size * 7) % 23 + 1) {
    orders.batches.push(mixed.slice(i, i + size));
  }
  const results = {};
  for (const [name, batches] of Object.entries(orders)) {
    const d = await createDevice();
    if (name === 'appended') {
      for (const b of batches) assert.equal((await post(d, cumulative(b))).status, 200);
    } else if (name === 'singles') {
      // Concurrently, eight at a time, in shuffled order.
      const queue = shuffled(batches, 3);
      await Promise.all(Array.from({ length: 8 }, async () => {
        for (let b = queue.pop(); b; b = queue.pop()) {
          assert.equal((await post(d, cumulative(b))).status, 200);
        }
      }));
    } else {
      for (const b of batches) assert.equal((await post(d, cumulative(b))).status, 200);
    }
    results[name] = await hours(d.id);
  }
  assert.ok(results.sorted.length > 60, 'the readings span many hours');
  for (const name of Object.keys(orders)) {
    assert.deepEqual(results[name], results.sorted, `${name} differs from sorted`);
  }
});

test('32 clients posting into one hour at once: the exact figure and exactly one alert', async () => {
  const d = await createDevice({ type: 'interval', limit: 1 });
  const base = DAY0 + 40 * HOUR;
  const results = await Promise.all(Array.from({ length: 32 }, (_, i) =>
    post(d, { ts: iso(base + i * 1000), kwh: 0.125 })));
  for (const r of results) assert.equal(r.status, 200, r.text);
  assert.equal(await hourKwh(d.id, base), 4);
  assert.equal(await alertCount(d.id), 1);
  // Cumulative too: 32 concurrent readings of one register.
  const c = await createDevice({ limit: 1 });
  await post(c, { ts: iso(base), meter_kwh: 0 });
  await Promise.all(Array.from({ length: 32 }, (_, i) =>
    post(c, { ts: iso(base + (i + 1) * MIN), meter_kwh: (i + 1) * 0.25 })));
  assert.equal(await hourKwh(c.id, base), 8);
  assert.equal(await alertCount(c.id), 1);
});

test('a 10,000-reading batch with one bad value stores nothing', async () => {
  const d = await createDevice();
  const list = Array.from({ length: 10000 }, (_, i) => [DAY0 + 50 * HOUR + i * 1000, i]);
  const body = cumulative(list);
  body.measurements[9876].meter_kwh = -1;
  const res = await post(d, body);
  assert.equal(res.status, 422);
  assert.equal(res.json.field, 'measurements[9876].meter_kwh');
  assert.equal(Number(await ctx.pg.scalar(`SELECT count(*) FROM readings WHERE device_id = ${d.id}`)), 0);
  body.measurements[9876].meter_kwh = 9876;
  const ok = await post(d, body);
  assert.deepEqual(ok.json, { accepted: 10000, duplicates: 0 });
  const tooMany = await post(d, cumulative([...list, [DAY0, 1]]));
  assert.equal(tooMany.status, 422);
  assert.equal(tooMany.json.field, 'measurements');
});

test('invalid readings are 422 naming the field; non-finite numbers never pass', async () => {
  const d = await createDevice();
  const cases = [
    [{ ts: iso(Date.now() + 6 * MIN), meter_kwh: 1 }, 'ts'],
    [{ ts: '2026-10-01 10:00:00', meter_kwh: 1 }, 'ts'],
    [{ ts: iso(DAY0), meter_kwh: '1' }, 'meter_kwh'],
    [{ ts: iso(DAY0), meter_kwh: -0.5 }, 'meter_kwh'],
    [{ ts: iso(DAY0) }, 'meter_kwh'],
    [{ ts: iso(DAY0), meter_kwh: 1, extra: 1 }, 'extra'],
    [{ measurements: [] }, 'measurements'],
  ];
  for (const [body, field] of cases) {
    const res = await post(d, body);
    assert.equal(res.status, 422, JSON.stringify(body));
    assert.equal(res.json.field, field);
  }
  for (const raw of ['{"meter_kwh": 1e400}', '{"meter_kwh": NaN}', '{"meter_kwh": Infinity}']) {
    const res = await ctx.api('POST', '/api/v1/measurements', { token: d.token, body: raw,
      headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 400, raw);
  }
  // Without ts the receive time is used.
  const now = await post(d, { meter_kwh: 7 });
  assert.deepEqual(now.json, { accepted: 1, duplicates: 0 });
});

test('device tokens work only on ingestion; user tokens not there; last_seen_at moves', async () => {
  const d = await createDevice();
  assert.equal((await ctx.api('GET', '/api/v1/devices', { token: d.token })).status, 401);
  const byUser = await ctx.api('POST', '/api/v1/measurements', { token: ctx.admin.token,
    body: { meter_kwh: 1 } });
  assert.equal(byUser.status, 401);
  assert.equal(byUser.headers.get('www-authenticate'), 'Bearer');
  assert.equal((await ctx.api('POST', '/api/v1/measurements', { body: { meter_kwh: 1 } })).status, 401);
  const before = await ctx.api('GET', `/api/v1/devices/${d.id}`, { token: ctx.admin.token });
  assert.equal(before.json.last_seen_at, null);
  await post(d, { ts: iso(DAY0), meter_kwh: 1 });
  const after = await ctx.api('GET', `/api/v1/devices/${d.id}`, { token: ctx.admin.token });
  assert.ok(Math.abs(Date.parse(after.json.last_seen_at) - Date.now()) < 60000);
});

test('a rotated token stops at once; a deleted device takes its readings and alerts along',
  async () => {
    const d = await createDevice({ limit: 0.5 });
    assert.equal((await post(d, cumulative([[DAY0, 0], [DAY0 + 30 * MIN, 2]]))).status, 200);
    assert.equal(await alertCount(d.id), 1);
    const rotated = await ctx.api('POST', `/api/v1/devices/${d.id}/token`, { token: ctx.admin.token });
    assert.equal(rotated.status, 200);
    assert.equal((await post(d, { meter_kwh: 3 })).status, 401);
    assert.equal((await post({ token: rotated.json.token }, { meter_kwh: 3 })).status, 200);
    const del = await ctx.api('DELETE', `/api/v1/devices/${d.id}`, { token: ctx.admin.token });
    assert.equal(del.status, 204);
    assert.equal((await post({ token: rotated.json.token }, { meter_kwh: 4 })).status, 401);
    assert.equal(Number(await ctx.pg.scalar(`SELECT count(*) FROM readings WHERE device_id = ${d.id}`)), 0);
    assert.equal(await alertCount(d.id), 0);
  });

test('alerts: listed per owner, newest first, acknowledged once', async () => {
  const owner = await h.createUser(ctx.server, { email: 'owner-alerts@example.test', role: 'client' });
  const other = await h.createUser(ctx.server, { email: 'other-alerts@example.test', role: 'client' });
  const ownerLogin = await h.login(ctx.server, owner.email, owner.password);
  const ownerToken = ownerLogin.access_token;
  const otherToken = (await h.login(ctx.server, other.email, other.password)).access_token;
  const d = await createDevice({ type: 'interval', limit: 1, owner: ownerLogin.user.id });
  await post(d, { measurements: [{ ts: iso(DAY0 + 60 * HOUR), kwh: 2 }, { ts: iso(DAY0 + 61 * HOUR), kwh: 3 }] });
  const mine = await ctx.api('GET', `/api/v1/alerts?device_id=${d.id}`, { token: ownerToken });
  assert.equal(mine.status, 200);
  assert.equal(mine.json.items.length, 2);
  assert.ok(mine.json.items[0].id > mine.json.items[1].id);
  const a = mine.json.items[1];
  assert.equal(a.device_id, d.id);
  assert.equal(a.device_name, d.name);
  assert.equal(a.hour_start, iso(DAY0 + 60 * HOUR).replace('.000Z', 'Z'));
  assert.equal(a.hour_kwh, 2);
  assert.equal(a.max_hourly_kwh, 1);
  assert.equal(a.acknowledged_at, null);
  const theirs = await ctx.api('GET', `/api/v1/alerts?device_id=${d.id}`, { token: otherToken });
  assert.equal(theirs.json.items.length, 0);
  assert.equal((await ctx.api('POST', `/api/v1/alerts/${a.id}/ack`, { token: otherToken })).status, 404);
  const acked = await ctx.api('POST', `/api/v1/alerts/${a.id}/ack`, { token: ownerToken });
  assert.equal(acked.status, 200);
  assert.ok(acked.json.acknowledged_at);
  const again = await ctx.api('POST', `/api/v1/alerts/${a.id}/ack`, { token: ctx.admin.token });
  assert.equal(again.json.acknowledged_at, acked.json.acknowledged_at);
  const since = await ctx.api('GET', `/api/v1/alerts?since_id=${a.id}`, { token: ownerToken });
  assert.deepEqual(since.json.items.map((x) => x.id), [mine.json.items[0].id]);
  const paged = await ctx.api('GET', `/api/v1/alerts?device_id=${d.id}&limit=1`, { token: ownerToken });
  assert.equal(paged.json.items.length, 1);
  const next = await ctx.api('GET', `/api/v1/alerts?device_id=${d.id}&limit=1&cursor=${paged.json.next_cursor}`,
    { token: ownerToken });
  assert.equal(next.json.items[0].id, a.id);
  assert.equal((await ctx.api('GET', '/api/v1/alerts?limit=0', { token: ownerToken })).status, 400);
});

test('two instances ingesting one meter at once: every hour exact', async () => {
  const second = await h.startServer({ databaseUrl: ctx.pg.url, env: { JWT_SECRET: ctx.server.jwtSecret } });
  try {
    const d = await createDevice();
    const base = DAY0 + 70 * HOUR;
    // Quarter-hour readings, 0.25 kWh apart: every interval lies inside one hour,
    // so each full hour holds exactly 1 kWh, whatever the order of arrival.
    const all = Array.from({ length: 97 }, (_, k) => [base + k * 15 * MIN, 100 + k * 0.25]);
    const send = async (server, list) => {
      for (const r of list) {
        const res = await h.api(server, 'POST', '/api/v1/measurements',
          { token: d.token, body: cumulative([r]) });
        assert.equal(res.status, 200, res.text);
      }
    };
    await Promise.all([
      send(ctx.server, all.filter((_, k) => k % 2 === 0)),
      send(second, all.filter((_, k) => k % 2 === 1)),
    ]);
    const got = await hours(d.id);
    assert.equal(got.length, 24);
    for (const row of got) assert.equal(row.kwh, '1', `hour ${row.hour}`);
  } finally {
    await second.stop();
  }
});
