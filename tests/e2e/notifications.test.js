'use strict';
// End-to-end: the Notifications page in Chromium. A client saves preferences, adds a
// webhook (a Node receiver on loopback: the server runs with WEBHOOK_ALLOW_PRIVATE=1),
// copies its secret shown once, sees the webhook's deliveries after an alert, and sees a
// forecast arrive as a warning toast, apart from the alert toast.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const http = require('node:http');
const { after, before, describe, test } = require('node:test');

const h = require('../api/lib/harness');
const b = require('./lib/browser');

const ctx = h.suite({ server: { env: { WEBHOOK_ALLOW_PRIVATE: '1' } } });
const HOUR = 3600 * 1000;
let browser, receiver, got = [];

describe('notifications page', () => {
  before(async () => {
    browser = await b.launch();
    receiver = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        got.push({ headers: req.headers, body: Buffer.concat(chunks).toString() });
        res.writeHead(200).end();
      });
    });
    await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  });
  after(async () => {
    if (browser) await browser.close();
    if (receiver) receiver.close();
  });

  test('preferences, a webhook with its secret shown once, deliveries, forecast toast', async () => {
    const account = await h.createUser(ctx.server, { role: 'client' });
    const me = (await h.login(ctx.server, account.email, account.password)).user;
    const res = await h.api(ctx.server, 'POST', '/api/v1/devices', { token: ctx.admin.token,
      body: { name: 'Boiler', max_hourly_kwh: 10, reading_type: 'interval', owner_id: me.id } });
    assert.equal(res.status, 201, res.text);
    const device = res.json;

    const user = await b.openUser(browser, ctx.server, { name: 'client', permissions: ['clipboard-read', 'clipboard-write'] });
    try {
      const { page } = user;
      await b.logIn(page, account.email, account.password);
      await page.goto('/#/notifications');
      await page.getByRole('heading', { name: 'Notifications', level: 1 }).waitFor();

      // Preferences: forecasts to webhooks too.
      const forecastHook = page.getByRole('checkbox', { name: 'Forecasts: Webhooks' });
      assert.equal(await forecastHook.isChecked(), false, 'the default');
      await forecastHook.check();
      await page.getByRole('button', { name: 'Save preferences' }).click();
      await page.getByText('Your notification preferences were saved.').waitFor();
      const prefs = await h.api(ctx.server, 'GET', '/api/v1/me/notifications',
        { token: (await h.login(ctx.server, account.email, account.password)).access_token });
      assert.equal(prefs.json.forecast.webhook, true);

      // A webhook: the secret is shown once, with a copy button.
      const url = `http://127.0.0.1:${receiver.address().port}/hook`;
      await page.getByLabel('URL').fill(url);
      await page.getByRole('checkbox', { name: 'Forecasts', exact: true }).check();
      await page.getByRole('button', { name: 'Add webhook' }).click();
      const dialog = page.getByRole('dialog', { name: 'Webhook secret' });
      await dialog.waitFor();
      const secret = await dialog.getByLabel('Webhook secret').inputValue();
      assert.match(secret, /^whsec_/);
      await dialog.getByRole('button', { name: 'Copy' }).click();
      await dialog.getByText('Copied to the clipboard.').waitFor();
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
      await dialog.getByRole('button', { name: 'Done' }).click();
      const card = page.locator('li.webhook', { hasText: url });
      await card.waitFor();
      await card.getByText('Active').waitFor();

      // An alert: delivered, signed with the secret, listed among the deliveries.
      const hourAgo = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;
      await h.api(ctx.server, 'POST', '/api/v1/measurements', { token: device.token,
        body: { ts: new Date(hourAgo + 60000).toISOString(), kwh: 50 } });
      await h.waitFor(() => got.length >= 1, { timeout: 5000 });
      const [t, v1] = got[0].headers['wattline-signature'].match(/^t=(\d+),v1=([0-9a-f]{64})$/).slice(1);
      assert.equal(crypto.createHmac('sha256', secret).update(`${t}.${got[0].body}`).digest('hex'), v1);
      await card.getByRole('button', { name: 'Deliveries' }).click();
      await card.locator('table.deliveries tbody tr').first().waitFor();
      assert.match(await card.locator('table.deliveries tbody tr').first().innerText(), /alert[\s\S]*200/);

      // A forecast in the current hour: a warning toast, not an alert toast.
      const now = Date.now();
      const hourStart = Math.floor(now / HOUR) * HOUR;
      const at = Math.max(now, hourStart + 16 * 60000);
      if (at - now <= 4 * 60000 && at - hourStart <= 58.5 * 60000) {
        // Under the 10 kWh limit so far, over it once projected to the full hour.
        const soFar = Math.round(10 * (1 + (at - hourStart) / HOUR) / 2 * 1000) / 1000;
        await h.api(ctx.server, 'POST', '/api/v1/measurements', { token: device.token,
          body: { ts: new Date(at).toISOString(), kwh: soFar } });
        const toast = page.locator('.toast-warning', { hasText: 'Forecast: Boiler may go over its limit' });
        await toast.waitFor({ timeout: 5000 });
        assert.equal(await page.locator('.toast-alert', { hasText: 'Forecast' }).count(), 0);
      }
      user.assertClean();
    } finally {
      await user.close();
    }
  });
});
