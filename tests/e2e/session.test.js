'use strict';
// End-to-end tests of the dashboard's session handling against the real server, with
// short-lived access tokens: the page refreshes them before they expire (its API calls
// and its WebSocket carry on without a reconnect), a reload keeps the login, the access
// token is never stored, and logging out ends the login on the server too.

const assert = require('node:assert/strict');
const { after, before, describe, test } = require('node:test');

const h = require('../api/lib/harness');
const b = require('./lib/browser');

// The server's shortest allowed access-token lifetime: the test outlives one.
const TTL_SECONDS = 60;
const ctx = h.suite({ server: { env: { ACCESS_TOKEN_TTL: String(TTL_SECONDS) } } });
let browser;
let client;
let device;

describe('session', () => {
  // Inside the describe block: the harness's own root hooks (the cluster and the
  // server) have finished by the time these run.
  before(async () => {
    browser = await b.launch();
    client = await h.createUser(ctx.server, { email: 'sam@example.test', name: 'Sam Session', role: 'client' });
    const tokens = await h.login(ctx.server, client.email, client.password);
    const res = await h.api(ctx.server, 'POST', '/api/v1/devices', {
      token: ctx.admin.token,
      body: { name: 'Boiler', max_hourly_kwh: 1, reading_type: 'interval', owner_id: tokens.user.id },
    });
    assert.equal(res.status, 201, res.text);
    device = res.json;
  });

  after(async () => {
    if (browser) await browser.close();
  });

  test('a wrong password is refused with a message', async () => {
    const user = await b.openUser(browser, ctx.server, { expectedErrors: [/status of 401/] });
    await user.page.goto('/');
    await user.page.getByLabel('Email').fill(client.email);
    await user.page.getByLabel('Password').fill('not-the-password');
    await user.page.getByRole('button', { name: 'Log in' }).click();
    await user.page.getByText('Wrong email or password.').waitFor();
    assert.equal(await user.page.locator('#topbar').isHidden(), true);
    user.assertClean();
    await user.close();
  });

  test('tokens are refreshed before they expire; the WebSocket stays up', async () => {
    const user = await b.openUser(browser, ctx.server);
    const { page } = user;
    await b.logIn(page, client.email, client.password);
    await page.locator(`.device-card[data-device-id="${device.id}"]`).waitFor();

    // Only the refresh token is kept, and only in this tab's sessionStorage.
    const stored = await page.evaluate(() => ({
      local: Object.keys(localStorage),
      session: Object.keys(sessionStorage),
      cookie: document.cookie,
    }));
    assert.deepEqual(stored, { local: [], session: ['wattline.refresh'], cookie: '' });

    // Outlive the first access token (and then some).
    await page.waitForTimeout((TTL_SECONDS + 5) * 1000);
    assert.equal(user.sockets.length, 1, 'the WebSocket was never reopened');
    assert.equal(await page.locator('#conn-banner').isHidden(), true);

    // The live channel still delivers: an alert raised now arrives as a toast.
    const res = await h.api(ctx.server, 'POST', '/api/v1/measurements', {
      token: device.token, body: { kwh: 1.5 },
    });
    assert.equal(res.status, 200, res.text);
    await page.locator('.toast-alert', { hasText: 'Boiler' }).waitFor({ timeout: 5000 });
    await page.locator(`.device-card[data-device-id="${device.id}"] .usage-bar.over`).waitFor({ timeout: 5000 });

    // And the API still answers with the refreshed token.
    await page.locator(`.device-card[data-device-id="${device.id}"] a`).click();
    await page.locator('.chart canvas').waitFor();
    await page.locator('.mini-alert.unacked').waitFor();
    user.assertClean();
    await user.close();
  });

  test('a reload keeps the login; logging out ends it', async () => {
    const user = await b.openUser(browser, ctx.server);
    const { page } = user;
    await b.logIn(page, client.email, client.password);
    await page.locator('.device-card').first().waitFor();
    await page.reload();
    await page.locator('.device-card').first().waitFor();

    const refreshToken = await page.evaluate(() => sessionStorage.getItem('wattline.refresh'));
    await page.locator('summary.user-button').click();
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('button', { name: 'Log in' }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    await page.reload();
    await page.getByRole('button', { name: 'Log in' }).waitFor();

    const res = await h.api(ctx.server, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: refreshToken } });
    assert.equal(res.status, 401, 'the logged-out refresh token no longer works');
    user.assertClean();
    await user.close();
  });

  test('the dashboard can be used from the keyboard alone', async () => {
    const user = await b.openUser(browser, ctx.server);
    const { page } = user;
    await page.goto('/');
    await page.getByLabel('Email').waitFor();
    // The login form has the focus: type, Tab, type, Enter.
    await page.keyboard.type(client.email);
    await page.keyboard.press('Tab');
    await page.keyboard.type(client.password);
    await page.keyboard.press('Enter');
    await page.locator(`.device-card[data-device-id="${device.id}"]`).waitFor();
    // Tab to the device card and open it.
    let focused = '';
    for (let i = 0; i < 20 && focused !== 'Boiler'; i++) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => (document.activeElement.closest('.device-card') ? document.activeElement.textContent : ''));
    }
    assert.equal(focused, 'Boiler', 'the device card is reachable with Tab');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Boiler', level: 1 }).waitFor();
    // A dialog opens and closes from the keyboard, giving the focus back.
    await page.getByRole('button', { name: 'Edit' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('dialog').waitFor();
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Edit');
    user.assertClean();
    await user.close();
  });

  test('a page asked for before logging in opens after it', async () => {
    const user = await b.openUser(browser, ctx.server);
    const { page } = user;
    await page.goto(`/#/devices/${device.id}`);
    await page.getByLabel('Email').fill(client.email);
    await page.getByLabel('Password').fill(client.password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Boiler', level: 1 }).waitFor();
    user.assertClean();
    await user.close();
  });
});
