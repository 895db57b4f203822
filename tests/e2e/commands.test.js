'use strict';
// End-to-end test of the device page's Commands panel (issue 16): the owner sends
// "relay off", sees it queued, then sent when a test device polls, then succeeded when
// the device answers, all live over the WebSocket; a custom command with JSON params is
// canceled from the panel; the over-limit command is set in the edit dialog.

const assert = require('node:assert/strict');
const { after, before, describe, test } = require('node:test');

const h = require('../api/lib/harness');
const b = require('./lib/browser');

const LIVE_TIMEOUT = 5000;

const ctx = h.suite();
let browser;
let owner; // {email, password, token}
let device; // {id, token}
const open = [];

function row(page, id) {
  return page.locator(`[data-testid="commands"] li[data-id="${id}"]`);
}

async function statusOf(page, id) {
  return row(page, id).getAttribute('data-status', { timeout: LIVE_TIMEOUT });
}

async function newestCommandId() {
  const res = await h.api(ctx.server, 'GET', `/api/v1/devices/${device.id}/commands?limit=1`,
    { token: owner.token });
  return res.json.items[0]?.id;
}

describe('commands panel', () => {
  before(async () => {
    browser = await b.launch();
    const account = await h.createUser(ctx.server, { email: 'cmd@example.test', name: 'Cmd Owner', role: 'client' });
    const tokens = await h.login(ctx.server, account.email, account.password);
    owner = { ...account, token: tokens.access_token, id: tokens.user.id };
    const res = await ctx.api('POST', '/api/v1/devices', { token: ctx.admin.token,
      body: { name: 'Boiler', max_hourly_kwh: 2, reading_type: 'interval', owner_id: owner.id } });
    assert.equal(res.status, 201, res.text);
    device = { id: res.json.id, token: res.json.token };
  });

  after(async () => {
    for (const user of open) await user.close().catch(() => {});
    if (browser) await browser.close();
  });

  test('send relay off: queued, then sent, then succeeded, live', async () => {
    const user = await b.openUser(browser, ctx.server, { name: 'owner' });
    open.push(user);
    const { page } = user;
    await b.logIn(page, owner.email, owner.password);
    await page.goto(`/#/devices/${device.id}`);
    await page.getByRole('heading', { name: 'Boiler', level: 1 }).waitFor();
    await page.getByRole('heading', { name: 'Commands' }).waitFor();
    await page.getByText('No commands sent to this device.').waitFor();

    await page.getByLabel('Command', { exact: true }).selectOption('relay-off');
    await page.getByRole('button', { name: 'Send' }).click();
    await h.waitFor(async () => (await newestCommandId()) !== undefined, { message: 'the command exists' });
    const id = await newestCommandId();
    await row(page, id).waitFor({ timeout: LIVE_TIMEOUT });
    assert.equal(await statusOf(page, id), 'queued');
    assert.match(await row(page, id).textContent(), /relay.*"state":"off"/);

    // The device polls: the row turns sent.
    const polled = await h.api(ctx.server, 'GET', '/api/v1/device/commands?wait=0', { token: device.token });
    assert.deepEqual(polled.json.items.map((c) => c.id), [id]);
    await h.waitFor(async () => (await statusOf(page, id)) === 'sent', { timeout: LIVE_TIMEOUT, message: 'sent' });

    // It answers: succeeded, with the result shown.
    const answer = await h.api(ctx.server, 'POST', `/api/v1/device/commands/${id}/result`,
      { token: device.token, body: { status: 'succeeded', result: { state: 'off' } } });
    assert.equal(answer.status, 200, answer.text);
    await h.waitFor(async () => (await statusOf(page, id)) === 'succeeded', { timeout: LIVE_TIMEOUT, message: 'succeeded' });
    assert.equal(await row(page, id).getByRole('button', { name: 'Cancel' }).count(), 0);
    user.assertClean();
  });

  test('a custom command with JSON params, canceled from the panel; bad JSON is refused', async () => {
    const { page } = open[0];
    await page.getByLabel('Command', { exact: true }).selectOption('custom');
    await page.getByLabel('Command name').fill('set.mode');
    await page.getByLabel('Params (JSON)').fill('[1, 2]');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByText('Params must be a JSON object').waitFor();
    await page.getByLabel('Params (JSON)').fill('{"mode": "eco"}');
    await page.getByRole('button', { name: 'Send' }).click();
    await h.waitFor(async () => {
      const id = await newestCommandId();
      return id && (await row(page, id).count()) === 1;
    }, { message: 'the custom command is listed' });
    const id = await newestCommandId();
    assert.match(await row(page, id).textContent(), /set\.mode.*"mode":"eco"/);
    await row(page, id).getByRole('button', { name: 'Cancel' }).click();
    await h.waitFor(async () => (await statusOf(page, id)) === 'canceled', { timeout: LIVE_TIMEOUT, message: 'canceled' });
    open[0].assertClean();
  });

  test('the owner sets the over-limit command in the edit dialog', async () => {
    const { page } = open[0];
    await page.getByRole('button', { name: 'Edit' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Over-limit command').fill('{"name": "relay", "params": {"state": "off"}}');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'detached' });
    const got = await h.api(ctx.server, 'GET', `/api/v1/devices/${device.id}`, { token: owner.token });
    assert.deepEqual(got.json.over_limit_command, { name: 'relay', params: { state: 'off' } });
    open[0].assertClean();
  });
});
