'use strict';
// GET /api/v1/devices/{id}/consumption: a local day's hours (23 or 25 on DST
// days), ranges in hour/day/month buckets of an IANA zone, half-hour zones,
// limits, errors, and "not yours is 404".
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const { before, describe } = test;
const ctx = h.suite();

const HOUR_MS = 3600 * 1000;

function assertProblem(res, status, code, field) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers.get('content-type'), /^application\/problem\+json/);
  if (code) assert.equal(res.json.code, code, res.text);
  if (field !== undefined) assert.equal(res.json.field, field, res.text);
}

async function createDevice(body) {
  const res = await ctx.api('POST', '/api/v1/devices', { token: ctx.admin.token,
    body: { name: 'Meter', max_hourly_kwh: 1, ...body } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

// Stores energy per UTC hour directly: {'2026-11-10T05:00:00Z': 1.0, ...}.
function putHours(deviceId, hours) {
  const values = Object.entries(hours)
    .map(([hour, kwh]) => `(${deviceId}, '${hour}', ${kwh})`).join(', ');
  ctx.pg.psql(`insert into device_hours (device_id, hour, kwh) values ${values}
    on conflict (device_id, hour) do update set kwh = excluded.kwh`);
}

// Every UTC hour in [from, to) gets kwh.
function fillHours(deviceId, from, to, kwh) {
  ctx.pg.psql(`insert into device_hours (device_id, hour, kwh)
    select ${deviceId}, g, ${kwh} from generate_series(timestamptz '${from}',
      timestamptz '${to}' - interval '1 hour', interval '1 hour') g
    on conflict (device_id, hour) do update set kwh = excluded.kwh`);
}

function iso(ms) {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

// The expected starts: n consecutive real hours from the first.
function hourlyStarts(first, n) {
  const t0 = Date.parse(first);
  return Array.from({ length: n }, (_, i) => iso(t0 + i * HOUR_MS));
}

function consumption(deviceId, query, token = ctx.admin.token) {
  return ctx.api('GET', `/api/v1/devices/${deviceId}/consumption?${query}`, { token });
}

describe('one local day', () => {
  let dev;

  before(async () => {
    dev = await createDevice({ name: 'Day meter', max_hourly_kwh: 1, reading_type: 'interval' });
    putHours(dev.id, {
      '2026-11-09T23:00:00Z': 9, // the day before: not counted
      '2026-11-10T00:00:00Z': 0.5,
      '2026-11-10T05:00:00Z': 1, // exactly the limit: not over it
      '2026-11-10T13:00:00Z': 1.25,
      '2026-11-11T00:00:00Z': 9, // the day after
    });
  });

  test('UTC by default: 24 hours, zeros where nothing was used, strict over_limit', async () => {
    const res = await consumption(dev.id, 'date=2026-11-10');
    assert.equal(res.status, 200, res.text);
    const body = res.json;
    assert.deepEqual(Object.keys(body).sort(),
      ['date', 'device_id', 'hours', 'max_hourly_kwh', 'total_kwh', 'tz']);
    assert.equal(body.device_id, dev.id);
    assert.equal(body.date, '2026-11-10');
    assert.equal(body.tz, 'UTC');
    assert.equal(body.max_hourly_kwh, 1);
    assert.equal(body.total_kwh, 2.75);
    assert.deepEqual(body.hours.map((x) => x.start), hourlyStarts('2026-11-10T00:00:00Z', 24));
    for (const hour of body.hours) assert.deepEqual(Object.keys(hour).sort(), ['kwh', 'over_limit', 'start']);
    const byHour = Object.fromEntries(body.hours.map((x) => [x.start.slice(11, 13), x]));
    assert.deepEqual(byHour['00'], { start: '2026-11-10T00:00:00Z', kwh: 0.5, over_limit: false });
    assert.deepEqual(byHour['05'], { start: '2026-11-10T05:00:00Z', kwh: 1, over_limit: false });
    assert.deepEqual(byHour['13'], { start: '2026-11-10T13:00:00Z', kwh: 1.25, over_limit: true });
    assert.deepEqual(byHour['14'], { start: '2026-11-10T14:00:00Z', kwh: 0, over_limit: false });
  });

  test('Europe/Bucharest: 23 hours on 2026-03-29, 25 on 2026-10-25, 24 otherwise', async () => {
    fillHours(dev.id, '2026-03-28T18:00:00Z', '2026-03-30T03:00:00Z', 0.25);
    fillHours(dev.id, '2026-10-24T18:00:00Z', '2026-10-26T03:00:00Z', 0.25);
    const cases = [
      ['2026-03-29', '2026-03-28T22:00:00Z', 23],
      ['2026-10-25', '2026-10-24T21:00:00Z', 25],
      ['2026-03-28', '2026-03-27T22:00:00Z', 24],
    ];
    for (const [date, first, n] of cases) {
      const res = await consumption(dev.id, `date=${date}&tz=Europe/Bucharest`);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.tz, 'Europe/Bucharest');
      assert.equal(res.json.date, date);
      assert.deepEqual(res.json.hours.map((x) => x.start), hourlyStarts(first, n), date);
    }
    const spring = (await consumption(dev.id, 'date=2026-03-29&tz=Europe/Bucharest')).json;
    assert.ok(spring.hours.every((x) => x.kwh === 0.25 && x.over_limit === false));
    assert.equal(spring.total_kwh, 23 * 0.25);
    const autumn = (await consumption(dev.id, 'date=2026-10-25&tz=Europe/Bucharest')).json;
    assert.equal(autumn.total_kwh, 25 * 0.25);
  });

  test('a half-hour zone (Asia/Kolkata) shares each UTC hour between two local hours', async () => {
    putHours(dev.id, { '2026-05-01T10:00:00Z': 1, '2026-05-01T11:00:00Z': 3 });
    const res = await consumption(dev.id, 'date=2026-05-01&tz=Asia/Kolkata');
    assert.equal(res.status, 200, res.text);
    const hours = res.json.hours;
    assert.deepEqual(hours.map((x) => x.start), hourlyStarts('2026-04-30T18:30:00Z', 24));
    const at = (start) => hours.find((x) => x.start === start);
    assert.equal(at('2026-05-01T09:30:00Z').kwh, 0.5);
    assert.deepEqual(at('2026-05-01T10:30:00Z'), { start: '2026-05-01T10:30:00Z', kwh: 2,
      over_limit: true });
    assert.equal(at('2026-05-01T11:30:00Z').kwh, 1.5);
    assert.equal(res.json.total_kwh, 4);
  });
});

describe('ranges in buckets', () => {
  let dev;

  before(async () => {
    dev = await createDevice({ name: 'Range meter', max_hourly_kwh: 0.9 });
    fillHours(dev.id, '2026-10-24T00:00:00Z', '2026-10-29T00:00:00Z', 1);
    putHours(dev.id, { '2026-01-15T12:00:00Z': 2, '2026-03-31T23:00:00Z': 4,
      '2026-04-01T00:00:00Z': 8 });
  });

  test('day buckets follow local midnight across the DST change', async () => {
    const res = await consumption(dev.id,
      'from=2026-10-24T21:00:00Z&to=2026-10-27T22:00:00Z&bucket=day&tz=Europe/Bucharest');
    assert.equal(res.status, 200, res.text);
    const body = res.json;
    assert.deepEqual(Object.keys(body).sort(), ['bucket', 'device_id', 'from', 'hours',
      'max_hourly_kwh', 'to', 'total_kwh', 'tz']);
    assert.equal(body.bucket, 'day');
    assert.equal(body.from, '2026-10-24T21:00:00Z');
    assert.equal(body.to, '2026-10-27T22:00:00Z');
    assert.deepEqual(body.hours, [
      { start: '2026-10-24T21:00:00Z', kwh: 25 },
      { start: '2026-10-25T22:00:00Z', kwh: 24 },
      { start: '2026-10-26T22:00:00Z', kwh: 24 },
    ]);
    assert.equal(body.total_kwh, 73);
  });

  test('month buckets in UTC; from/to accept any offset', async () => {
    const res = await consumption(dev.id,
      `from=${encodeURIComponent('2026-01-01T02:00:00+02:00')}&to=2026-05-01T00:00:00Z&bucket=month`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.from, '2026-01-01T00:00:00Z');
    assert.deepEqual(res.json.hours, [
      { start: '2026-01-01T00:00:00Z', kwh: 2 },
      { start: '2026-02-01T00:00:00Z', kwh: 0 },
      { start: '2026-03-01T00:00:00Z', kwh: 4 },
      { start: '2026-04-01T00:00:00Z', kwh: 8 },
    ]);
    // In Bucharest (UTC+3 then) both late-March UTC hours fall in local April.
    const local = await consumption(dev.id,
      'from=2026-02-28T22:00:00Z&to=2026-04-30T21:00:00Z&bucket=month&tz=Europe/Bucharest');
    assert.deepEqual(local.json.hours, [
      { start: '2026-02-28T22:00:00Z', kwh: 0 },
      { start: '2026-03-31T21:00:00Z', kwh: 12 },
    ]);
  });

  test('hour buckets are aligned to the zone; energy outside [from, to) is left out', async () => {
    const res = await consumption(dev.id,
      'from=2026-10-27T10:30:00Z&to=2026-10-27T12:15:00Z&bucket=hour');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.hours, [
      { start: '2026-10-27T10:00:00Z', kwh: 0.5, over_limit: false },
      { start: '2026-10-27T11:00:00Z', kwh: 1, over_limit: true },
      { start: '2026-10-27T12:00:00Z', kwh: 0.25, over_limit: false },
    ]);
    assert.equal(res.json.total_kwh, 1.75);
    // bucket defaults to hour
    const dflt = await consumption(dev.id, 'from=2026-10-27T10:00:00Z&to=2026-10-27T12:00:00Z');
    assert.equal(dflt.json.bucket, 'hour');
    assert.equal(dflt.json.hours.length, 2);
  });

  test('at most 10,000 buckets', async () => {
    const from = Date.parse('2026-01-01T00:00:00Z');
    const ok = await consumption(dev.id, `from=${iso(from)}&to=${iso(from + 10000 * HOUR_MS)}`);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.hours.length, 10000);
    assert.equal(ok.json.total_kwh, 2 + 4 + 8 + 5 * 24);
    assertProblem(await consumption(dev.id, `from=${iso(from)}&to=${iso(from + 10001 * HOUR_MS)}`),
      422, 'too_many_buckets');
    assertProblem(await consumption(dev.id, 'from=1970-01-01T00:00:00Z&to=9999-12-31T00:00:00Z'),
      422, 'too_many_buckets');
    assertProblem(await consumption(dev.id,
      'from=1970-01-01T00:00:00Z&to=9999-12-31T00:00:00Z&bucket=day'), 422, 'too_many_buckets');
    const months = await consumption(dev.id,
      'from=1970-01-01T00:00:00Z&to=2026-11-01T00:00:00Z&bucket=month&tz=America/New_York');
    assert.equal(months.status, 200, months.text);
    assert.equal(months.json.hours.length, 56 * 12 + 11);
    assert.equal(months.json.total_kwh, 2 + 4 + 8 + 5 * 24);
  });
});

describe('bad queries and other people\'s devices', () => {
  let dev;
  let alice;
  let bob;

  before(async () => {
    const accounts = [];
    for (let i = 0; i < 2; i++) {
      const account = await h.createUser(ctx.server, { role: 'client' });
      const tokens = await h.login(ctx.server, account.email, account.password);
      accounts.push({ id: tokens.user.id, token: tokens.access_token });
    }
    [alice, bob] = accounts;
    dev = await createDevice({ name: 'Alice meter', owner_id: alice.id });
  });

  test('malformed dates and times are 400; impossible values 422', async () => {
    const cases = [
      ['date=2026-02-30', 400, 'date'],
      ['date=2026-1-1', 400, 'date'],
      ['date=2026-01-01&from=2026-01-01T00:00:00Z', 400, 'date'],
      ['', 400, 'from'],
      ['from=2026-01-01T00:00:00Z', 400, 'to'],
      ['from=2026-01-01&to=2026-01-02', 400, 'from'],
      ['from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z', 422, 'to'],
      ['from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z', 422, 'to'],
      ['from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&bucket=week', 422, 'bucket'],
      ['date=2026-01-01&tz=Mars/Olympus_Mons', 422, 'tz'],
      ['date=2026-01-01&tz=Europe/../../etc/passwd', 422, 'tz'],
      ['date=2026-01-01&tz=', 422, 'tz'],
      [`date=2026-01-01&tz=${encodeURIComponent("Europe/Bucharest'; --")}`, 422, 'tz'],
      ['from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&tz=Nowhere', 422, 'tz'],
    ];
    for (const [query, status, field] of cases) {
      assertProblem(await consumption(dev.id, query), status, undefined, field);
    }
  });

  test('the owner and admins read it; anyone else gets 404 like for a missing device', async () => {
    assert.equal((await consumption(dev.id, 'date=2026-01-01', alice.token)).status, 200);
    assert.equal((await consumption(dev.id, 'date=2026-01-01')).status, 200);
    assertProblem(await consumption(dev.id, 'date=2026-01-01', bob.token), 404, 'not_found');
    // 404 before the query is even looked at
    assertProblem(await consumption(dev.id, 'date=nope', bob.token), 404, 'not_found');
    assertProblem(await consumption(999999, 'date=2026-01-01'), 404, 'not_found');
    assertProblem(await ctx.api('GET', `/api/v1/devices/${dev.id}/consumption?date=2026-01-01`), 401);
  });
});

describe('through ingestion', () => {
  test('readings posted by devices show up in the hours they belong to', async () => {
    const interval = await createDevice({ name: 'Posting interval', reading_type: 'interval',
      max_hourly_kwh: 1 });
    let res = await ctx.api('POST', '/api/v1/measurements', { token: interval.token, body: {
      measurements: [{ ts: '2026-11-12T10:10:00Z', kwh: 0.5 }, { ts: '2026-11-12T10:50:00Z', kwh: 0.75 },
        { ts: '2026-11-12T11:05:00Z', kwh: 0.25 }] } });
    assert.equal(res.status, 200, res.text);
    let day = (await consumption(interval.id, 'date=2026-11-12')).json;
    assert.deepEqual(day.hours[10], { start: '2026-11-12T10:00:00Z', kwh: 1.25, over_limit: true });
    assert.deepEqual(day.hours[11], { start: '2026-11-12T11:00:00Z', kwh: 0.25, over_limit: false });
    assert.equal(day.total_kwh, 1.5);

    // A cumulative meter: the 10:55 -> 11:05 interval is split evenly between the hours.
    const meter = await createDevice({ name: 'Posting meter', max_hourly_kwh: 5 });
    res = await ctx.api('POST', '/api/v1/measurements', { token: meter.token, body: {
      measurements: [{ ts: '2026-11-12T10:55:00Z', meter_kwh: 1000 },
        { ts: '2026-11-12T11:05:00Z', meter_kwh: 1002 }] } });
    assert.equal(res.status, 200, res.text);
    day = (await consumption(meter.id, 'date=2026-11-12&tz=Europe/Bucharest')).json;
    const nonzero = day.hours.filter((x) => x.kwh !== 0);
    assert.deepEqual(nonzero.map((x) => x.start), ['2026-11-12T10:00:00Z', '2026-11-12T11:00:00Z']);
    for (const x of nonzero) assert.ok(Math.abs(x.kwh - 1) < 1e-9, JSON.stringify(x));
  });
});
