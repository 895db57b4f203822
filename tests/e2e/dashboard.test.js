'use strict';
// End-to-end tests of the dashboard against the real server: an admin sets up a client
// and a device through the UI, a device posts readings, and the client watches the
// chart, the red bar and the alert toast arrive live, while a second client sees
// nothing. The tests run in order and share the users and devices they create.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const { after, before, describe, test } = require('node:test');

const h = require('../api/lib/harness');
const b = require('./lib/browser');

const XSS_NAME = '<img src=x onerror=alert(1)>';
const LIVE_TIMEOUT = 5000; // "within a few seconds"

const ctx = h.suite();
let browser;
const open = []; // contexts to close at the end

// Shared state built up by the tests.
const state = {
  client: { email: 'casey@example.test', name: 'Casey Client', password: 'casey-password-1' },
  other: null, // a second client, created with the CLI
  device: null, // {id, token} of the device the admin creates
  xssDevice: null,
};

async function openUser(options) {
  const user = await b.openUser(browser, ctx.server, options);
  open.push(user);
  return user;
}

// Readings of an interval device, stamped just before now, oldest first.
function readingsNow(kwhValues) {
  const now = Date.now();
  return kwhValues.map((kwh, i) => ({ ts: new Date(now - (kwhValues.length - i) * 10).toISOString(), kwh }));
}

// Readings that must add up within one clock hour: keep clear of the hour's end.
async function awayFromHourEnd(marginMs = 60000) {
  const left = 3600e3 - (Date.now() % 3600e3);
  if (left < marginMs) await h.sleep(left + 1000);
}

async function postReadings(token, readings) {
  const res = await h.api(ctx.server, 'POST', '/api/v1/measurements', { token, body: { measurements: readings } });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.accepted, readings.length);
}

// The chart's bars, from the table the chart keeps for screen readers.
function chartRows(page) {
  return page.locator('.chart-data tbody tr').evaluateAll((rows) => rows.map((r) => ({
    start: r.dataset.start, kwh: Number(r.dataset.kwh), over: r.dataset.over === 'true',
  })));
}

// Pixels of a CSS colour (a custom property of the page) painted on the chart's canvas.
function countChartPixels(page, cssVar) {
  return page.evaluate((name) => {
    const probe = document.createElement('div');
    probe.style.color = getComputedStyle(document.documentElement).getPropertyValue(name);
    document.body.appendChild(probe);
    const [r, g, bl] = getComputedStyle(probe).color.match(/\d+/g).map(Number);
    probe.remove();
    const canvas = document.querySelector('.chart canvas');
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (Math.abs(data[i] - r) < 8 && Math.abs(data[i + 1] - g) < 8 && Math.abs(data[i + 2] - bl) < 8 && data[i + 3] > 240) n += 1;
    }
    return n;
  }, cssVar);
}

describe('dashboard', () => {
  // Inside the describe block: the harness's own root hooks (the cluster and the
  // server) have finished by the time these run.
  before(async () => {
    browser = await b.launch();
    state.other = await h.createUser(ctx.server, { email: 'olive@example.test', name: 'Olive Other', role: 'client' });
  });

  after(async () => {
    for (const user of open) await user.close().catch(() => {});
    if (browser) await browser.close();
  });

  test('the server sends the security headers with the dashboard', async () => {
    const res = await fetch(`${ctx.server.baseUrl}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    const csp = res.headers.get('content-security-policy') || '';
    assert.match(csp, /default-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.ok(csp.includes(new URL(ctx.server.wsUrl).host), `connect-src names the WebSocket origin: ${csp}`);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.ok(res.headers.get('referrer-policy'), 'Referrer-Policy is set');
    const js = await fetch(`${ctx.server.baseUrl}/js/app.js`);
    assert.match(js.headers.get('content-type'), /javascript/);
  });

  test('admin creates a client and a device for it, and copies the token', async () => {
    const admin = await openUser({ name: 'admin', permissions: ['clipboard-read', 'clipboard-write'] });
    const { page } = admin;
    await b.logIn(page, ctx.admin.email, ctx.admin.password);
    await page.getByRole('heading', { name: 'Devices', level: 1 }).waitFor();

    // The client, through the users page.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).click();
    await page.getByRole('button', { name: 'New user' }).click();
    const userDialog = page.getByRole('dialog');
    await userDialog.getByLabel('Name').fill(state.client.name);
    await userDialog.getByLabel('Email').fill(state.client.email);
    await userDialog.getByLabel('Role').selectOption('client');
    await userDialog.getByLabel('Password').fill(state.client.password);
    await userDialog.getByRole('button', { name: 'Create user' }).click();
    await userDialog.waitFor({ state: 'detached' });
    await page.locator('#users-table tbody tr', { hasText: state.client.email }).waitFor();

    // Searching narrows the table.
    await page.getByLabel('Search users').fill('casey');
    await h.waitFor(async () => (await page.locator('#users-table tbody tr').count()) === 1, { message: 'search shows one user' });

    // The device, assigned to the client, through the devices page.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Devices' }).click();
    const createDevice = async (name, limit) => {
      await page.getByRole('button', { name: 'New device' }).first().click();
      const dialog = page.getByRole('dialog');
      await dialog.getByLabel('Name').fill(name);
      await dialog.getByLabel('Address').fill('12 Test Street');
      await dialog.getByLabel('Hourly limit (kWh)').fill(String(limit));
      await dialog.getByLabel('Reading type').selectOption('interval');
      await dialog.getByLabel('Owner').selectOption({ label: `${state.client.name} (${state.client.email})` });
      await dialog.getByRole('button', { name: 'Create device' }).click();
      const tokenDialog = page.getByRole('dialog', { name: 'Device created' });
      await tokenDialog.waitFor();
      const shown = await tokenDialog.getByLabel('Device token').inputValue();
      await tokenDialog.getByRole('button', { name: 'Copy' }).click();
      await tokenDialog.getByText('Copied to the clipboard.').waitFor();
      const copied = await page.evaluate(() => navigator.clipboard.readText());
      assert.equal(copied, shown, 'the copied token is the one shown');
      assert.ok(copied.length >= 16, 'a token was shown');
      await tokenDialog.getByRole('button', { name: 'Done' }).click();
      const row = page.locator('#devices-table tbody tr', { hasText: name });
      await row.waitFor();
      return { id: Number(await row.getAttribute('data-device-id')), token: copied };
    };
    state.device = await createDevice('Kitchen meter', 1);
    state.xssDevice = await createDevice(XSS_NAME, 0.5);

    // The token the admin copied is the device's credential.
    await postReadings(state.xssDevice.token, readingsNow([0.1]));
    admin.assertClean();
  });

  test('the client sees live bars, a red hour bar and the alert toast; another client sees nothing', async () => {
    const client = await openUser({ name: 'client', timezoneId: 'Europe/Bucharest' });
    const other = await openUser({ name: 'other client' });
    await b.logIn(client.page, state.client.email, state.client.password);
    await b.logIn(other.page, state.other.email, state.other.password);
    await other.page.getByRole('heading', { name: 'No devices yet' }).waitFor();

    const { page } = client;
    await awayFromHourEnd();
    await page.locator(`.device-card[data-device-id="${state.device.id}"] a`).click();
    await page.getByRole('heading', { name: 'Kitchen meter', level: 1 }).waitFor();
    await page.locator('.chart canvas').waitFor();
    const rows = await chartRows(page);
    assert.ok(rows.length >= 23 && rows.length <= 25, `a day has 23 to 25 hourly bars, got ${rows.length}`);
    assert.ok(rows.every((r) => r.kwh === 0), 'no energy before the first reading');

    const hourStart = Math.floor(Date.now() / 3600e3) * 3600e3;
    const thisHour = async () => (await chartRows(page)).find((r) => Date.parse(r.start) === hourStart);

    // Under the limit: the bar appears, in the normal colour.
    await postReadings(state.device.token, readingsNow([0.4]));
    await h.waitFor(async () => (await thisHour())?.kwh === 0.4, { timeout: LIVE_TIMEOUT, message: 'the hour bar shows 0.4 kWh' });
    assert.equal((await thisHour()).over, false);
    await h.waitFor(async () => (await countChartPixels(page, '--chart-bar')) > 20, { timeout: LIVE_TIMEOUT, message: 'a bar is drawn' });
    assert.equal(await countChartPixels(page, '--chart-over'), 0, 'nothing is red yet');

    // Over the limit: the bar turns red and the toast appears.
    await postReadings(state.device.token, readingsNow([0.8]));
    await h.waitFor(async () => (await thisHour())?.over === true, { timeout: LIVE_TIMEOUT, message: 'the hour bar is over the limit' });
    await h.waitFor(async () => (await countChartPixels(page, '--chart-over')) > 20, { timeout: LIVE_TIMEOUT, message: 'the hour bar is red' });
    const toast = page.locator('.toast-alert', { hasText: 'Kitchen meter' });
    await toast.waitFor({ timeout: LIVE_TIMEOUT });
    await page.locator('.bell .badge-count', { hasText: '1' }).waitFor();
    assert.match(await page.getByTestId('total').textContent(), /1[.,]20 kWh/);

    // The CSV of the shown day holds the readings.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download CSV' }).click(),
    ]);
    const csv = fs.readFileSync(await download.path(), 'utf8').trim().split(/\r?\n/);
    assert.equal(csv[0], 'ts,kwh');
    assert.equal(csv.length, 3, `two readings in the CSV: ${csv.join(' | ')}`);

    // The home card's bar is red too.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'My devices' }).click();
    await page.locator(`.device-card[data-device-id="${state.device.id}"] .usage-bar.over`).waitFor({ timeout: LIVE_TIMEOUT });

    // The other client: no toast, no badge, still no devices.
    await other.page.waitForTimeout(500);
    assert.equal(await other.page.locator('.toast-alert').count(), 0);
    assert.equal(await other.page.locator('.bell .badge-count:not([hidden])').count(), 0);
    assert.equal(await other.page.locator('.device-card').count(), 0);

    // Acknowledging clears the badge.
    await page.locator('.bell').click();
    await page.locator('tr.unacked').getByRole('button', { name: 'Acknowledge' }).click();
    await page.locator('tr.acked', { hasText: 'Kitchen meter' }).waitFor();
    await page.locator('.bell .badge-count[hidden]').waitFor({ state: 'attached' });

    client.assertClean();
    other.assertClean();
  });

  test('a device named like markup is shown as text', async () => {
    const client = await openUser({ name: 'client' });
    await b.logIn(client.page, state.client.email, state.client.password);
    const title = client.page.locator(`.device-card[data-device-id="${state.xssDevice.id}"] .card-title`);
    await title.waitFor();
    assert.equal(await title.textContent(), XSS_NAME);
    assert.equal(await client.page.locator('main img').count(), 0, 'no element was made from the name');
    await title.locator('a').click();
    await client.page.getByRole('heading', { name: XSS_NAME, level: 1 }).waitFor();
    assert.equal(await client.page.locator('img').count(), 0);
    client.assertClean();
  });

  test('the client cannot open the admin pages, nor the admin the client pages', async () => {
    const client = await openUser({ name: 'client' });
    await b.logIn(client.page, state.client.email, state.client.password);
    await client.page.locator('.device-card').first().waitFor();
    for (const hash of ['#/admin/users', '#/admin/devices', `#/admin/devices/${state.device.id}`, '#/admin/alerts']) {
      const before = client.requests.length;
      await client.page.goto(`/${hash}`);
      await client.page.getByRole('heading', { name: 'This page is not available to you' }).waitFor();
      const adminCalls = client.requests.slice(before).filter((url) => /\/api\/v1\/users/.test(url));
      assert.deepEqual(adminCalls, [], `${hash} made no admin API request`);
      assert.equal(await client.page.getByRole('link', { name: 'Users' }).count(), 0);
    }
    client.assertClean();

    const admin = await openUser({ name: 'admin' });
    await b.logIn(admin.page, ctx.admin.email, ctx.admin.password);
    await admin.page.goto(`/#/devices/${state.device.id}`);
    await admin.page.getByRole('heading', { name: 'This page is not available to you' }).waitFor();
    admin.assertClean();
  });

  test('after a network drop the client reconnects and gets the alert it missed', async () => {
    const client = await openUser({ name: 'client' });
    const { page } = client;
    await b.logIn(page, state.client.email, state.client.password);
    // Settled: the channel is up and every card has its figure (nothing in flight that
    // going offline would fail).
    await page.locator('body[data-live="online"]').waitFor();
    await h.waitFor(async () => (await page.locator('.usage-bar:not([aria-valuenow])').count()) === 0,
      { message: 'every card shows this hour' });

    await client.context.setOffline(true);
    await page.locator('#conn-banner:not([hidden])').waitFor({ timeout: LIVE_TIMEOUT });
    // 0.6 kWh is over the 0.5 kWh limit whatever this hour already holds.
    await postReadings(state.xssDevice.token, readingsNow([0.6]));
    await client.context.setOffline(false);

    await page.locator('#conn-banner').waitFor({ state: 'hidden', timeout: 20000 });
    await page.locator('body[data-live="online"]').waitFor();
    await page.locator('.toast-alert', { hasText: XSS_NAME }).waitFor({ timeout: LIVE_TIMEOUT });
    client.assertClean();
  });

  test('screenshots of the owner home, the device page and the admin devices table', async () => {
    const shots = [];
    for (const [size, viewport] of [['desktop', b.DESKTOP], ['phone', b.PHONE]]) {
      const client = await openUser({ name: `client ${size}`, viewport, timezoneId: 'Europe/Bucharest' });
      await b.logIn(client.page, state.client.email, state.client.password);
      await client.page.locator('.usage-bar.over').first().waitFor();
      shots.push(await b.screenshot(client.page, `owner-home-${size}.png`));
      await client.page.goto(`/#/devices/${state.device.id}`);
      await client.page.locator('.chart canvas').waitFor();
      await client.page.locator('.chart-loading').waitFor({ state: 'hidden' });
      shots.push(await b.screenshot(client.page, `device-${size}.png`));
      client.assertClean();

      const admin = await openUser({ name: `admin ${size}`, viewport });
      await b.logIn(admin.page, ctx.admin.email, ctx.admin.password);
      await admin.page.locator('#devices-table').waitFor();
      shots.push(await b.screenshot(admin.page, `admin-devices-${size}.png`));
      admin.assertClean();
    }
    const dark = await openUser({ name: 'client dark', colorScheme: 'dark', timezoneId: 'Europe/Bucharest' });
    await b.logIn(dark.page, state.client.email, state.client.password);
    await dark.page.goto(`/#/devices/${state.device.id}`);
    await dark.page.locator('.chart canvas').waitFor();
    await dark.page.locator('.chart-loading').waitFor({ state: 'hidden' });
    shots.push(await b.screenshot(dark.page, 'device-desktop-dark.png'));
    dark.assertClean();
    for (const file of shots) assert.ok(fs.statSync(file).size > 10000, `${file} has content`);
  });
});
