'use strict';
// setup: the accounts and devices every scenario uses, created the way an operator would
// (an admin from the command line, owners and devices over HTTP; most owners cloned, see
// cloneOwners), and the year of one-minute readings of the query scenario, loaded with
// SQL (setup, not a measured part).

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const pg = require('./pg');

const DAY_S = 86400;

// Runs fn(item, index) over items, at most `parallel` at a time; resolves to the results.
async function mapLimit(items, parallel, fn) {
  const out = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, worker));
  return out;
}

async function createAdmin(server) {
  const admin = {
    email: 'admin@bench.invalid', password: `Bench-${crypto.randomBytes(12).toString('hex')}`,
  };
  const res = await server.cli(['user', 'add', '--email', admin.email, '--name', 'Bench Admin',
    '--role', 'admin'], `${admin.password}\n`);
  if (res.code !== 0) throw new Error(`wattline user add failed (${res.code}): ${res.stderr.trim()}`);
  const tokens = await server.apiOk('POST', '/api/v1/auth/login', 200,
    { body: { email: admin.email, password: admin.password } });
  admin.token = tokens.access_token;
  return admin;
}

// Owners created and logged in through the API. Each one costs two scrypt hashes at the
// production cost (N = 2^17: about half a second of a core each), so only the first
// few go this way; see cloneOwners for the rest.
const API_OWNERS = 4;

async function createOwnersByApi(server, admin, count, password) {
  const indexes = Array.from({ length: count }, (_, i) => i);
  const users = await mapLimit(indexes, 4, (i) => server.apiOk('POST', '/api/v1/users', 201, {
    token: admin.token,
    body: { email: `owner${i}@bench.invalid`, name: `Owner ${i}`, password, role: 'client' },
  }));
  return mapLimit(users, 4, async (user) => {
    const tokens = await server.apiOk('POST', '/api/v1/auth/login', 200,
      { body: { email: user.email, password } });
    return { id: user.id, token: tokens.access_token };
  });
}

// An access token for user `id` shaped exactly like `model` (one the server issued at
// login: same header, same claims, same lifetime), with its own jti, signed with the
// server's secret as the server signs (HS256).
function tokenLike(model, id, secret) {
  const [header, payload] = model.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  claims.sub = String(id);
  claims.jti = crypto.randomBytes(16).toString('base64url');
  const body = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${body}.${crypto.createHmac('sha256', secret).update(body).digest('base64url')}`;
}

// The other owners: rows copied from owner 0 (same password hash) by SQL, tokens shaped
// like owner 0's. 400 logins' worth of scrypt would take minutes of a 10-minute run;
// what the scenarios measure is unaffected. The server checks each token against the
// stored user, which exists.
async function cloneOwners(server, first, from, count) {
  if (count <= from) return [];
  const ids = (await pg.psql(`
    INSERT INTO users (email, name, role, password_hash)
      SELECT 'owner' || i || '@bench.invalid', 'Owner ' || i, 'client', u.password_hash
      FROM generate_series(${from}, ${count - 1}) AS i, users u WHERE u.id = ${first.id}
      ORDER BY i
    RETURNING id;`)).split('\n').map(Number);
  return ids.map((id) => ({ id, token: tokenLike(first.token, id, server.env.JWT_SECRET) }));
}

async function createOwners(server, admin, count) {
  const password = `Owner-${crypto.randomBytes(12).toString('hex')}`;
  const viaApi = await createOwnersByApi(server, admin, Math.min(count, API_OWNERS), password);
  const cloned = await cloneOwners(server, viaApi[0], viaApi.length, count);
  const owners = [...viaApi, ...cloned];
  // Every token must work before anything is measured with it.
  await mapLimit(owners, 8, (o) => server.apiOk('GET', '/api/v1/me', 200, { token: o.token }));
  return owners;
}

// count devices named prefix-i, of owner owners[i % owners.length].
function createDevices(server, admin, owners, { count, prefix, readingType, maxHourlyKwh }) {
  const indexes = Array.from({ length: count }, (_, i) => i);
  return mapLimit(indexes, 8, async (i) => {
    const owner = owners[i % owners.length];
    const device = await server.apiOk('POST', '/api/v1/devices', 201, {
      token: admin.token,
      body: { name: `${prefix}-${i}`, max_hourly_kwh: maxHourlyKwh, reading_type: readingType,
        owner_id: owner.id },
    });
    return { id: device.id, token: device.token, owner };
  });
}

// A file of "device_id token" lines, what the wrk scripts read.
function writeDeviceFile(file, devices) {
  fs.writeFileSync(file, devices.map((d) => `${d.id} ${d.token}\n`).join(''));
  return file;
}

// Monthly partitions for the past 13 months, as a server that has been running for a
// year would have them (the server itself prepares the current and next months).
function preparePartitions() {
  return pg.psql(`SELECT readings_ensure_partitions(
    (now() AT TIME ZONE 'UTC' - interval '13 months')::date, 14);`);
}

// A year of one-minute readings of a cumulative meter ending at the last midnight UTC,
// its hourly energy exactly as the server computes it (readings on whole minutes, so
// each minute's energy, the register's difference, falls in the hour that contains the
// minute's end; the first reading has no energy before it), and its newest reading on
// the device row, as ingestion keeps it.
async function loadYear(deviceId, days) {
  const lastMidnight = Math.floor(Date.now() / 1000 / DAY_S) * DAY_S;
  const firstDay = lastMidnight - days * DAY_S;
  const minutes = days * 24 * 60;
  await pg.psql(`
    CREATE TEMP TABLE year_rows AS
      SELECT k, to_timestamp(${firstDay}) + k * interval '1 minute' AS ts,
             0.005 + 0.004 * (1 + sin(k / 60.0)) AS delta
      FROM generate_series(0, ${minutes - 1}) AS k;
    INSERT INTO readings (device_id, ts, value)
      SELECT ${deviceId}, ts, 1000 + sum(delta) OVER (ORDER BY k) FROM year_rows;
    INSERT INTO device_hours (device_id, hour, kwh)
      SELECT ${deviceId}, date_trunc('hour', ts - interval '1 microsecond'), sum(delta)
      FROM year_rows WHERE k > 0 GROUP BY 2;
    UPDATE devices SET (latest_reading_ts, latest_reading_value) = (
      SELECT ts, value FROM readings WHERE device_id = ${deviceId} ORDER BY ts DESC LIMIT 1)
      WHERE id = ${deviceId};
    ANALYZE readings;
    ANALYZE device_hours;`, { single: true });
  return { firstDay, days, readings: minutes };
}

// Everything the scenarios need. sizes: {owners, ingestDevices, batchDevices, yearDays}.
async function setupAll(server, work, sizes, log) {
  const started = Date.now();
  await preparePartitions();
  const admin = await createAdmin(server);
  log(`setup: ${sizes.owners} owners (${API_OWNERS} through the API, the rest cloned)`);
  const owners = await createOwners(server, admin, sizes.owners);
  log(`setup: ${2 * sizes.ingestDevices + sizes.batchDevices + owners.length + 1} devices`);
  const ingest = await createDevices(server, admin, owners, {
    count: sizes.ingestDevices, prefix: 'ingest', readingType: 'cumulative', maxHourlyKwh: 1e6,
  });
  // The naive ceiling writes to devices of its own: its readings (stamped "now") would
  // otherwise be later than Wattline's, turning every reading Wattline stores into a
  // late one that re-divides weeks of hours.
  const naive = await createDevices(server, admin, owners, {
    count: sizes.ingestDevices, prefix: 'naive', readingType: 'cumulative', maxHourlyKwh: 1e6,
  });
  const batch = await createDevices(server, admin, owners, {
    count: sizes.batchDevices, prefix: 'batch', readingType: 'cumulative', maxHourlyKwh: 1e6,
  });
  // One interval device per owner, limit 1 kWh: a reading of 1.5 kWh in a fresh hour
  // raises exactly one alert.
  const alerting = await createDevices(server, admin, owners, {
    count: owners.length, prefix: 'alert', readingType: 'interval', maxHourlyKwh: 1,
  });
  const [year] = await createDevices(server, admin, owners.slice(0, 1), {
    count: 1, prefix: 'year', readingType: 'cumulative', maxHourlyKwh: 1e6,
  });
  log(`setup: ${sizes.yearDays} days of one-minute readings for the query scenario`);
  const yearData = await loadYear(year.id, sizes.yearDays);
  return {
    admin,
    owners,
    devices: { ingest, naive, batch, alerting, year },
    files: {
      ingest: writeDeviceFile(path.join(work, 'ingest-devices.txt'), ingest),
      batch: writeDeviceFile(path.join(work, 'batch-devices.txt'), batch),
    },
    year: yearData,
    seconds: (Date.now() - started) / 1000,
  };
}

module.exports = { setupAll };
