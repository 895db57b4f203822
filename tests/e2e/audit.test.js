'use strict';
// End-to-end: the Audit page in Chromium. An admin renames a user on the Users page, opens
// the Audit page from the navigation, finds the entry of that change (and of its own
// login), filters by action, and loads more; a client is refused the page. A login failure
// with markup in the email shows as text.
const assert = require('node:assert/strict');
const { after, before, describe, test } = require('node:test');

const h = require('../api/lib/harness');
const b = require('./lib/browser');

const ctx = h.suite();
const HOSTILE = '<img src=x onerror=alert(1)>@example.test';
let browser;

describe('audit page', () => {
  before(async () => {
    browser = await b.launch();
  });
  after(async () => {
    if (browser) await browser.close();
  });

  test('an admin sees the entry of a change it just made, and filters by action', async () => {
    const client = await h.createUser(ctx.server, { name: 'Robin', role: 'client' });
    const clientEmail = client.email;
    const clientId = (await h.login(ctx.server, client.email, client.password)).user.id;
    const failed = await h.api(ctx.server, 'POST', '/api/v1/auth/login',
      { body: { email: HOSTILE, password: 'wrong-password-1' } });
    assert.equal(failed.status, 401);
    // More entries than one page (50): renames of the client through the API.
    for (let i = 0; i < 50; i++) {
      const res = await h.api(ctx.server, 'PATCH', `/api/v1/users/${clientId}`,
        { token: ctx.admin.token, body: { name: `Robin ${i}` } });
      assert.equal(res.status, 200);
    }

    const admin = await b.openUser(browser, ctx.server, { name: 'admin' });
    try {
      const { page } = admin;
      await b.logIn(page, ctx.admin.email, ctx.admin.password);
      await page.getByRole('heading', { name: 'Devices', level: 1 }).waitFor();

      // The change, through the Users page.
      const nav = page.getByRole('navigation', { name: 'Main' });
      await nav.getByRole('link', { name: 'Users' }).click();
      const row = page.locator('#users-table tbody tr', { hasText: clientEmail });
      await row.getByRole('button', { name: 'Edit' }).click();
      const dialog = page.getByRole('dialog');
      await dialog.getByLabel('Name').fill('Robin Renamed');
      await dialog.getByRole('button', { name: 'Save' }).click();
      await dialog.waitFor({ state: 'detached' });

      await nav.getByRole('link', { name: 'Audit' }).click();
      await page.getByRole('heading', { name: 'Audit log', level: 1 }).waitFor();
      const newest = page.locator('#audit-table tbody tr').first();
      await newest.waitFor();
      assert.equal(await newest.getAttribute('data-action'), 'user.update');
      const text = await newest.innerText();
      assert.match(text, /Robin Renamed/);
      assert.match(text, new RegExp(`user #${clientId}`));
      assert.match(text, new RegExp(`user #${ctx.admin.user.id}`));
      assert.match(text, /127\.0\.0\.1/);
      await b.screenshot(page, 'admin-audit-desktop.png');

      // The first page holds 50 entries; Load more brings the rest.
      const rows = page.locator('#audit-table tbody tr');
      assert.equal(await rows.count(), 50);
      await page.getByRole('button', { name: 'Load more' }).click();
      await h.waitFor(async () => (await rows.count()) > 50, { message: 'a second page' });

      // Filtering by action: only failed logins, the hostile email shown as text.
      await page.getByLabel('Action').selectOption('login.failure');
      await h.waitFor(async () => {
        const actions = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.action));
        return actions.length === 1 && actions[0] === 'login.failure';
      }, { message: 'only the failed login' });
      assert.match(await rows.first().innerText(), /<img src=x onerror=alert\(1\)>@example\.test/);
      assert.equal(await page.locator('#audit-table img').count(), 0);

      // By target: the client's user, every change and login of it.
      await page.getByLabel('Action').selectOption('');
      await page.getByLabel('Target', { exact: true }).selectOption('user');
      await page.getByLabel('Target id').fill(String(clientId));
      await page.getByRole('button', { name: 'Apply' }).click();
      await h.waitFor(async () => {
        const targets = await page.locator('#audit-table td[data-label="Target"]').allInnerTexts();
        return targets.length === 50 && targets.every((t) => t === `user #${clientId}`) &&
          await rows.first().getAttribute('data-action') === 'user.update';
      }, { message: 'a page of the client user entries only' });
      admin.assertClean();
    } finally {
      await admin.close();
    }
  });

  test('a client cannot open the Audit page', async () => {
    const client = await h.createUser(ctx.server, { role: 'client' });
    const user = await b.openUser(browser, ctx.server, { name: 'client' });
    try {
      const { page } = user;
      await b.logIn(page, client.email, client.password);
      await page.goto('/#/admin/audit');
      await page.getByRole('heading', { name: 'This page is not available to you' }).waitFor();
      assert.equal(await page.locator('#audit-table').count(), 0);
      assert.ok(!user.requests.some((url) => url.includes('/api/v1/audit')),
        'the guard refused before any request');
      user.assertClean();
    } finally {
      await user.close();
    }
  });
});
