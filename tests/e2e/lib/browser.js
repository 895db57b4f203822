'use strict';
// Browser side of the end-to-end tests: Debian's Chromium driven by playwright-core
// (never a downloaded browser), one fresh context per user, and two watchdogs on every
// page: no request may leave for a host other than the test server, and the page may log
// no console error and throw no uncaught exception.
//
//   const b = require('./lib/browser');
//   const browser = await b.launch();
//   const user = await b.openUser(browser, server, { name: 'alice' });
//   await b.logIn(user.page, email, password);
//   ...
//   user.assertClean();          // no foreign request, no console error
//   await user.close();

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const ARTIFACTS = path.resolve(__dirname, '..', '..', 'artifacts');

const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

function launch() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's chromium package (apt-get install chromium)`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

// The origins the page may talk to: the server's HTTP origin and its WebSocket origin.
function allowedOrigins(server) {
  const ws = new URL(server.wsUrl);
  const wsAsHttp = `${ws.protocol === 'wss:' ? 'https:' : 'http:'}//${ws.host}`;
  return new Set([new URL(server.baseUrl).origin, wsAsHttp]);
}

function originOf(url) {
  const u = new URL(url);
  const scheme = u.protocol === 'wss:' ? 'https:' : u.protocol === 'ws:' ? 'http:' : u.protocol;
  return `${scheme}//${u.host}`;
}

// Opens a browser context for one user. Options: viewport, timezoneId, colorScheme,
// permissions (granted for the server's origin), expectedErrors (patterns of console
// errors a test provokes on purpose, such as the 401 of a wrong password).
async function openUser(browser, server, {
  name = 'user', viewport = DESKTOP, timezoneId, colorScheme = 'light', permissions = [], expectedErrors = [],
} = {}) {
  const context = await browser.newContext({
    baseURL: server.baseUrl,
    viewport,
    timezoneId,
    colorScheme,
    locale: 'en-GB',
    serviceWorkers: 'block',
  });
  if (permissions.length) {
    await context.grantPermissions(permissions, { origin: server.baseUrl });
  }
  const allowed = allowedOrigins(server);
  const foreign = [];
  const errors = [];
  const requests = [];
  // Anything not for the test server fails the test (and never leaves the machine).
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('data:') || url.startsWith('blob:') || allowed.has(originOf(url))) {
      requests.push(url);
      return route.continue();
    }
    foreign.push(url);
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  page.on('websocket', (ws) => {
    if (!allowed.has(originOf(ws.url()))) foreign.push(ws.url());
  });
  page.on('console', (message) => {
    const text = message.text();
    if (message.type() === 'error' && !expectedErrors.some((re) => re.test(text))) errors.push(`console: ${text}`);
  });
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('dialog', (dialog) => {
    errors.push(`unexpected ${dialog.type()} dialog: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });

  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));

  return {
    name,
    context,
    page,
    requests,
    sockets,
    // Asserts that nothing went to a foreign host and nothing was logged as an error.
    assertClean() {
      assert.deepEqual(foreign, [], `${name}: requests to hosts other than the test server`);
      assert.deepEqual(errors, [], `${name}: console errors or uncaught exceptions`);
    },
    close: () => context.close(),
  };
}

async function logIn(page, email, password) {
  await page.goto('/');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#topbar:not([hidden])').waitFor();
}

// Writes a screenshot under tests/artifacts/ (git-ignored); returns its path.
async function screenshot(page, fileName) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, fileName);
  // Finished transitions, so a bar is shown at its final width and colour.
  await page.screenshot({ path: file, fullPage: true, animations: 'disabled' });
  return file;
}

module.exports = { ARTIFACTS, DESKTOP, PHONE, launch, logIn, openUser, screenshot };
