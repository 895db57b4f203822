'use strict';
// End-to-end tests of the support chat in the dashboard: a client and an admin, each in
// a browser context of its own, talk through the real server. The client types and the
// admin sees "typing…"; the client sends and the admin's inbox shows 1 unread and the
// message; the admin opens it and the client sees "Seen"; the admin answers and the
// client's badge and panel update; markup in a message shows as text; the panel works
// from the keyboard and at phone width. The tests run in order and share the users.

const assert = require('node:assert/strict');
const { after, before, describe, test } = require('node:test');

const h = require('../api/lib/harness');
const b = require('./lib/browser');

const LIVE_TIMEOUT = 5000;
const XSS_TEXT = '<img src=x onerror=alert(1)><script>alert(2)</script> & "quotes"';

const ctx = h.suite();
let browser;
let client; // {account, user (browser context)}
let admin;
const open = [];

async function openUser(options) {
  const user = await b.openUser(browser, ctx.server, options);
  open.push(user);
  return user;
}

// The client's panel, and the admin's row of the client's conversation in the inbox.
const panel = (page) => page.getByRole('dialog', { name: 'Support chat' });
const chatButton = (page) => page.getByRole('button', { name: /^Support chat/ });
const inboxRow = (page, name) => page.locator('.chat-inbox-list li', { hasText: name });

describe('support chat', () => {
  before(async () => {
    browser = await b.launch();
    const account = await h.createUser(ctx.server, { name: 'Casey Chat', role: 'client' });
    client = { account, user: await openUser({ name: 'client' }) };
    await b.logIn(client.user.page, account.email, account.password);
    admin = { user: await openUser({ name: 'admin' }) };
    await b.logIn(admin.user.page, ctx.admin.email, ctx.admin.password);
    await admin.user.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: /^Support/ }).click();
    await admin.user.page.getByRole('heading', { name: 'Support', level: 1 }).waitFor();
    // Both live channels are up before anything is said.
    for (const u of [client.user, admin.user]) {
      await u.page.waitForFunction(() => document.body.dataset.live === 'online');
    }
  });

  after(async () => {
    for (const user of open) await user.close().catch(() => {});
    if (browser) await browser.close();
  });

  test('the client types: the admin sees "typing…"', async () => {
    const page = client.user.page;
    await chatButton(page).click();
    await panel(page).waitFor();
    await page.getByLabel('Message').pressSequentially('Hello, my meter', { delay: 20 });
    const row = inboxRow(admin.user.page, 'Casey Chat');
    await row.getByText('typing…').waitFor({ timeout: LIVE_TIMEOUT });
  });

  test('the client sends: the admin\'s inbox shows 1 unread and the message', async () => {
    const page = client.user.page;
    await page.getByLabel('Message').pressSequentially(' stopped reporting.', { delay: 5 });
    await page.keyboard.press('Enter');
    await panel(page).locator('.chat-msg.mine', { hasText: 'Hello, my meter stopped reporting.' }).waitFor();
    assert.equal(await page.getByLabel('Message').inputValue(), '');
    const row = inboxRow(admin.user.page, 'Casey Chat');
    await row.locator('.chat-unread', { hasText: /^1$/ }).waitFor({ timeout: LIVE_TIMEOUT });
    await row.getByText('Hello, my meter stopped reporting.').waitFor();
    await admin.user.page.locator('.nav-count', { hasText: /^1$/ }).waitFor();
    // Not seen yet.
    assert.equal(await panel(page).getByText('Seen').count(), 0);
  });

  test('the admin opens it: the client sees "Seen"', async () => {
    const apage = admin.user.page;
    await inboxRow(apage, 'Casey Chat').getByRole('link').click();
    await apage.getByRole('heading', { name: 'Casey Chat', level: 2 }).waitFor();
    await apage.locator('.chat-conversation .chat-msg', { hasText: 'stopped reporting' }).waitFor();
    await panel(client.user.page).getByText('Seen').waitFor({ timeout: LIVE_TIMEOUT });
    await inboxRow(apage, 'Casey Chat').locator('.chat-unread').waitFor({ state: 'detached' });
  });

  test('the admin answers: the client\'s badge and panel update', async () => {
    const page = client.user.page;
    await page.keyboard.press('Escape'); // close the panel: the answer must show on the badge
    await panel(page).waitFor({ state: 'detached' });
    const apage = admin.user.page;
    const input = apage.locator('.chat-conversation').getByLabel('Message');
    await input.pressSequentially('We are looking into it', { delay: 20 });
    await input.press('Enter');
    await apage.locator('.chat-conversation .chat-msg.mine', { hasText: 'We are looking into it' }).waitFor();
    await page.getByRole('button', { name: 'Support chat: 1 unread' }).waitFor({ timeout: LIVE_TIMEOUT });
    await chatButton(page).click();
    await panel(page).locator('.chat-msg.theirs', { hasText: 'We are looking into it' }).waitFor();
    await page.getByRole('button', { name: 'Support chat', exact: true }).waitFor({ timeout: LIVE_TIMEOUT });
    // Reading it shows "Seen" on the admin's side.
    await apage.locator('.chat-conversation').getByText('Seen').waitFor({ timeout: LIVE_TIMEOUT });
  });

  test('the admin typing shows in the client\'s panel', async () => {
    const apage = admin.user.page;
    await h.sleep(2100); // the admin's last typing was passed on less than 2 s ago
    await apage.locator('.chat-conversation').getByLabel('Message').pressSequentially('One more thing', { delay: 20 });
    await panel(client.user.page).getByText('typing…').waitFor({ timeout: LIVE_TIMEOUT });
    await apage.locator('.chat-conversation').getByLabel('Message').fill('');
  });

  test('markup in a message shows as text, on both sides', async () => {
    const page = client.user.page;
    await page.getByLabel('Message').fill(XSS_TEXT);
    await page.getByRole('button', { name: 'Send' }).click();
    const mine = panel(page).locator('.chat-msg.mine .chat-text', { hasText: 'onerror' });
    await mine.waitFor();
    assert.equal(await mine.textContent(), XSS_TEXT);
    const theirs = admin.user.page.locator('.chat-conversation .chat-msg.theirs .chat-text', { hasText: 'onerror' });
    await theirs.waitFor({ timeout: LIVE_TIMEOUT });
    assert.equal(await theirs.textContent(), XSS_TEXT);
    for (const p of [page, admin.user.page]) {
      assert.equal(await p.locator('.chat-log img, .chat-log script').count(), 0);
    }
  });

  test('switching between clients keeps each conversation\'s messages', async () => {
    const other = await h.createUser(ctx.server, { name: 'Dana Other', role: 'client' });
    const tokens = await h.login(ctx.server, other.email, other.password);
    const conv = await h.api(ctx.server, 'GET', '/api/v1/me/conversation', { token: tokens.access_token });
    const res = await h.api(ctx.server, 'POST', `/api/v1/conversations/${conv.json.id}/messages`,
      { token: tokens.access_token, body: { text: 'Dana needs help' } });
    assert.equal(res.status, 201, res.text);
    const apage = admin.user.page;
    await inboxRow(apage, 'Dana Other').locator('.chat-unread', { hasText: /^1$/ }).waitFor({ timeout: LIVE_TIMEOUT });
    // Most recently active first.
    assert.match(await apage.locator('.chat-inbox-list li').first().textContent(), /Dana Other/);
    const draft = apage.locator('.chat-conversation').getByLabel('Message');
    await draft.fill('a draft for Casey');
    await inboxRow(apage, 'Dana Other').getByRole('link').click();
    await apage.getByRole('heading', { name: 'Dana Other', level: 2 }).waitFor();
    await apage.locator('.chat-conversation .chat-msg', { hasText: 'Dana needs help' }).waitFor();
    await inboxRow(apage, 'Casey Chat').getByRole('link').click();
    await apage.getByRole('heading', { name: 'Casey Chat', level: 2 }).waitFor();
    for (const text of ['stopped reporting', 'We are looking into it', 'onerror']) {
      await apage.locator('.chat-conversation .chat-msg', { hasText: text }).waitFor();
    }
    assert.equal(await apage.locator('.chat-conversation').getByLabel('Message').inputValue(), 'a draft for Casey');
  });

  test('phone width and keyboard: the panel opens, sends and closes without a mouse', async () => {
    const phone = await openUser({ name: 'client phone', viewport: b.PHONE });
    const { page } = phone;
    await b.logIn(page, client.account.email, client.account.password);
    await page.waitForFunction(() => document.body.dataset.live === 'online');
    const button = chatButton(page);
    await button.focus();
    await page.keyboard.press('Enter');
    await panel(page).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Message');
    // The whole screen, and the history is there.
    const box = await panel(page).boundingBox();
    assert.ok(box.width >= b.PHONE.width - 1 && box.height >= b.PHONE.height - 1, JSON.stringify(box));
    await panel(page).locator('.chat-msg', { hasText: 'We are looking into it' }).waitFor();
    await page.keyboard.type('Typed on the phone');
    await page.keyboard.press('Enter');
    await admin.user.page.locator('.chat-conversation .chat-msg', { hasText: 'Typed on the phone' })
      .waitFor({ timeout: LIVE_TIMEOUT });
    // The same client's other tab gets it too.
    await panel(client.user.page).locator('.chat-msg.mine', { hasText: 'Typed on the phone' })
      .waitFor({ timeout: LIVE_TIMEOUT });
    await b.screenshot(page, 'chat-client-phone.png');
    await page.keyboard.press('Escape');
    await panel(page).waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement.classList.contains('chat-btn')), true);
    await b.screenshot(admin.user.page, 'chat-admin.png');
    phone.assertClean();
  });

  test('no console errors and no foreign requests', () => {
    client.user.assertClean();
    admin.user.assertClean();
  });
});
