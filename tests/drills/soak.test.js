'use strict';
// Soak: SOAK_SECONDS (default 180) of mixed traffic against the ASan/LSan build:
// ingestion (single readings, batches, retried batches), day and range charts, CSV
// exports (some abandoned mid-stream), WebSocket sessions coming and going (some
// never authenticating, some cut off without a close frame), logins with refresh and
// logout. RSS is sampled from /proc/PID/status every second (between logins). At the end: no
// request answered 500, SIGTERM ends the server with status 0 and no sanitizer report
// (LeakSanitizer runs at exit), and memory shows no growth trend after warm-up: the
// median RSS of the last third of the run is at most that of the middle third plus a
// small margin (a memory bound, not a timing assert).
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../api/lib/harness');
const wsc = require('../api/lib/wsclient');

const SOAK_SECONDS = Number(process.env.SOAK_SECONDS || 180);
const SAMPLE_MS = 1000;
// ASan keeps freed memory in a quarantine (256 MB by default) before reusing it, which
// reads as growth for minutes; a small quarantine lets RSS reach its plateau during the
// warm-up. Everything else as the harness sets it (leak detection on).
const ASAN_OPTIONS = 'detect_leaks=1:abort_on_error=0:exitcode=86:halt_on_error=1:' +
  'quarantine_size_mb=16';
const MARGIN_BYTES = 12 * 1024 * 1024;
const MARGIN_FRACTION = 0.05;

function rssBytes(pid) {
  const status = require('node:fs').readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) * 1024;
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// Exports cover the first 15 minutes of readings (3,600 a device once filled, in the
// first seconds): a fixed size, so their memory cannot grow with the data.
const EXPORT_MS = 15 * 60 * 1000;
const MiB = (b) => Math.round((b / 1048576) * 10) / 10;

test(`soak: ${SOAK_SECONDS} s of mixed traffic under ASan/LSan, no report, no growth`,
  { timeout: (SOAK_SECONDS + 120) * 1000 }, async (t) => {
    const pg = await h.startPostgres();
    const server = await h.startServer({ databaseUrl: pg.url, env: { ASAN_OPTIONS } });
    t.after(async () => {
      await server.kill();
      await pg.destroy();
    });
    await server.waitReady();
    const admin = await h.createUser(server, { role: 'admin' });
    const adminToken = (await h.login(server, admin.email, admin.password)).access_token;
    const owner = await h.createUser(server, { role: 'client' });
    const ownerLogin = await h.login(server, owner.email, owner.password);
    const ownerToken = ownerLogin.access_token;

    const devices = [];
    for (let i = 0; i < 6; i++) {
      const type = i < 4 ? 'interval' : 'cumulative';
      const res = await h.api(server, 'POST', '/api/v1/devices', { token: adminToken,
        body: { name: `soak ${i}`, max_hourly_kwh: 2, reading_type: type,
          owner_id: ownerLogin.user.id } });
      assert.equal(res.status, 201, res.text);
      devices.push({ ...res.json, type, next: 0, register: 1000 });
    }

    const statuses = {};
    const unexpected = [];
    const count = (what, res) => {
      const key = `${what} ${res.status}`;
      statuses[key] = (statuses[key] || 0) + 1;
      if (res.status >= 500 && res.status !== 503) unexpected.push(`${key}: ${res.text?.slice(0, 200)}`);
    };
    const began = Date.now();
    const deadline = began + SOAK_SECONDS * 1000;
    const running = () => Date.now() < deadline;
    // Readings 250 ms apart from six hours ago: room for 86,400 a device before "now",
    // far more than a soak sends.
    const tsBase = Math.floor(Date.now() / 3600e3) * 3600e3 - 6 * 3600e3;
    const reading = (d) => {
      const ts = new Date(tsBase + d.next++ * 250).toISOString();
      if (d.type === 'interval') return { ts, kwh: 0.01 + (d.next % 7) * 0.002 };
      d.register += 0.01 + (d.next % 5) * 0.003;
      return { ts, meter_kwh: Math.round(d.register * 1000) / 1000 };
    };

    async function ingestWorker(w) {
      for (let i = 0; running(); i++) {
        const d = devices[(w + i) % devices.length];
        let body;
        if (i % 10 === 9) body = { measurements: Array.from({ length: 25 }, () => reading(d)) };
        else body = reading(d);
        const res = await h.api(server, 'POST', '/api/v1/measurements', { token: d.token, body });
        count('ingest', res);
        if (i % 20 === 19 && res.status === 200) { // a device retrying a batch it sent
          count('ingest-retry', await h.api(server, 'POST', '/api/v1/measurements',
            { token: d.token, body }));
        }
        if (res.status === 429) await h.sleep(1000);
      }
    }

    async function chartWorker() {
      const day = new Date(tsBase).toISOString().slice(0, 10);
      for (let i = 0; running(); i++) {
        const d = devices[i % devices.length];
        const path = i % 2
          ? `/api/v1/devices/${d.id}/consumption?date=${day}&tz=Europe/Bucharest`
          : `/api/v1/devices/${d.id}/consumption?from=${new Date(tsBase - 86400e3).toISOString()}` +
            `&to=${new Date(tsBase + 86400e3).toISOString()}&bucket=hour`;
        count('chart', await h.api(server, 'GET', path, { token: i % 3 ? ownerToken : adminToken }));
        await h.sleep(100);
      }
    }

    async function exportWorker() {
      for (let i = 0; running(); i++) {
        const d = devices[i % devices.length];
        const url = `${server.baseUrl}/api/v1/devices/${d.id}/measurements?` +
          `from=${new Date(tsBase).toISOString()}&to=${new Date(tsBase + EXPORT_MS).toISOString()}`;
        const abort = new AbortController();
        try {
          const res = await fetch(url, { headers: { authorization: `Bearer ${ownerToken}`,
            accept: 'text/csv' }, signal: abort.signal });
          if (i % 4 === 3 && res.body) { // a client that walks away mid-export
            const reader = res.body.getReader();
            await reader.read();
            abort.abort();
            count('export-abandoned', { status: res.status });
          } else {
            const text = await res.text();
            count('export', { status: res.status, text });
          }
        } catch (err) {
          if (err.name !== 'AbortError') count('export-error', { status: 0, text: err.message });
        }
        await h.sleep(200);
      }
    }

    async function wsWorker() {
      for (let i = 0; running(); i++) {
        let c;
        try {
          c = await wsc.open(server.wsUrl);
          if (i % 5 === 4) { // never authenticates
            await h.sleep(200);
            await c.terminate();
            count('ws-unauth', { status: 101 });
            continue;
          }
          c.send({ type: 'auth', token: ownerToken, since_alert_id: 0 });
          await c.next('ready');
          const d = devices[i % devices.length];
          c.send({ type: 'subscribe', device_id: d.id });
          await c.next('usage', 1500).catch(() => null);
          if (i % 3 === 2) await c.terminate(); // cut off, no close frame
          else await c.close();
          count('ws-session', { status: 101 });
        } catch (err) {
          count('ws-error', { status: 0, text: err.message });
          if (c) await c.terminate();
        }
        await h.sleep(100);
      }
    }

    // A login hashes the password with scrypt, whose large buffer lives only while that
    // request does: RSS is sampled between logins (see the sampler).
    let loginsInFlight = 0;
    async function loginWorker() {
      while (running()) {
        loginsInFlight++;
        const res = await h.api(server, 'POST', '/api/v1/auth/login',
          { body: { email: owner.email, password: owner.password } })
          .finally(() => { loginsInFlight--; });
        count('login', res);
        if (res.status === 200) {
          const me = await h.api(server, 'GET', '/api/v1/me', { token: res.json.access_token });
          count('me', me);
          const refreshed = await h.api(server, 'POST', '/api/v1/auth/refresh',
            { body: { refresh_token: res.json.refresh_token } });
          count('refresh', refreshed);
          if (refreshed.status === 200) {
            count('logout', await h.api(server, 'POST', '/api/v1/auth/logout',
              { body: { refresh_token: refreshed.json.refresh_token } }));
          }
        }
        await h.sleep(4000);
      }
    }

    const samples = [];
    const sample = () => {
      if (loginsInFlight === 0) samples.push({ t: Date.now() - began, rss: rssBytes(server.pid) });
    };
    const sampler = (async () => {
      while (running()) {
        sample();
        await h.sleep(SAMPLE_MS);
      }
      sample();
    })();

    // SOAK_WORKLOADS (comma-separated: ingest,chart,export,ws,login) narrows the traffic
    // when hunting a leak; the default is all of it.
    const only = process.env.SOAK_WORKLOADS ? process.env.SOAK_WORKLOADS.split(',') : null;
    const on = (name) => !only || only.includes(name);
    await Promise.all([
      ...(on('ingest') ? [ingestWorker(0), ingestWorker(1), ingestWorker(2)] : []),
      ...(on('chart') ? [chartWorker()] : []),
      ...(on('export') ? [exportWorker()] : []),
      ...(on('ws') ? [wsWorker()] : []),
      ...(on('login') ? [loginWorker()] : []),
      sampler]);
    const stored = Number(pg.scalar('select count(*) from readings'));

    // SIGTERM: exit 0 within the timeout, and stop() throws on any sanitizer report
    // (LeakSanitizer's included) in stderr.
    const stop = await server.stop('SIGTERM', { timeout: 60000 });
    assert.equal(stop.code, 0);
    assert.equal(h.sanitizerReport(stop.stderr), null);

    const third = Math.floor(samples.length / 3);
    const middle = median(samples.slice(third, 2 * third).map((s) => s.rss));
    const last = median(samples.slice(2 * third).map((s) => s.rss));
    const margin = Math.max(MARGIN_BYTES, MARGIN_FRACTION * middle);
    process.stdout.write(`# drill soak: ${JSON.stringify({ seconds: SOAK_SECONDS, stored,
      samples: samples.length, rssFirstMiB: MiB(samples[0].rss),
      rssMiddleMedianMiB: MiB(middle), rssLastMedianMiB: MiB(last),
      rssMaxMiB: MiB(Math.max(...samples.map((s) => s.rss))), marginMiB: MiB(margin),
      statuses })}\n`);
    process.stdout.write(`# drill soak RSS MiB: ${samples.map((s) => MiB(s.rss)).join(' ')}\n`);
    assert.deepEqual(unexpected, [], 'server errors during the soak');
    for (const [name, key] of [['ws', 'ws-session 101'], ['login', 'login 200'],
      ['export', 'export 200'], ['chart', 'chart 200'], ['ingest', 'ingest 200']]) {
      if (on(name)) assert.ok(statuses[key] > 0, `${key}: ${JSON.stringify(statuses)}`);
    }
    assert.ok(samples.length >= 6, `enough RSS samples (${samples.length}): SOAK_SECONDS >= 18`);
    assert.ok(last <= middle + margin, `RSS grows after warm-up: median ${MiB(last)} MiB in ` +
      `the last third vs ${MiB(middle)} MiB in the middle third (margin ${MiB(margin)} MiB)`);
  });
