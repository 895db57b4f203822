// Entry point: loads the server's configuration, restores the session, draws
// the header, wires the live channel to the alert state, and starts the router.

import { api } from './api.js';
import { currentUser, onSession, restore } from './auth.js';
import { live } from './ws.js';
import { loadAlerts, newestAlertId, pollNewAlerts, receiveAlert, resetAlerts } from './alerts.js';
import { defineRoutes, navigate, parseHash, startRouter, teardown } from './router.js';
import { renderHeader, renderConnectionBanner } from './header.js';
import { toast, toastError } from './ui.js';
import { homeFor, deviceHrefFor } from './paths.js';
import { loginView } from './views/login.js';
import { homeView } from './views/home.js';
import { deviceView } from './views/device.js';
import { alertsView } from './views/alerts.js';
import { usersView } from './views/admin-users.js';
import { devicesView } from './views/admin-devices.js';
import { accountView } from './views/account.js';
import { adminChatView } from './views/admin-chat.js';
import { auditView } from './views/admin-audit.js';
import { startChat, stopChat } from './chat.js';
import { closeChatPanel } from './chat-ui.js';
import { notificationsView } from './views/notifications.js';
import { receiveDeviceStatus, receiveForecast } from './notices.js';
import { forbiddenView, notFoundView } from './views/errors.js';

const ROUTES = [
  { pattern: /^\/login$/, public: true, title: 'Log in', view: loginView },
  { pattern: /^\/$/, roles: ['client'], title: 'My devices', view: homeView },
  { pattern: /^\/devices\/(\d+)$/, roles: ['client'], view: deviceView },
  { pattern: /^\/alerts$/, roles: ['client'], title: 'Alerts', view: alertsView },
  { pattern: /^\/admin\/devices$/, roles: ['admin'], title: 'Devices', view: devicesView },
  { pattern: /^\/admin\/devices\/(\d+)$/, roles: ['admin'], view: deviceView },
  { pattern: /^\/admin\/users$/, roles: ['admin'], title: 'Users', view: usersView },
  { pattern: /^\/admin\/alerts$/, roles: ['admin'], title: 'All alerts', view: alertsView },
  { pattern: /^\/admin\/chat$/, roles: ['admin'], title: 'Support', view: adminChatView },
  { pattern: /^\/admin\/chat\/(\d+)$/, roles: ['admin'], title: 'Support', view: adminChatView },
  { pattern: /^\/admin\/audit$/, roles: ['admin'], title: 'Audit log', view: auditView },
  { pattern: /^\/account$/, roles: ['client', 'admin'], title: 'Account', view: accountView },
  { pattern: /^\/notifications$/, roles: ['client', 'admin'], title: 'Notifications', view: notificationsView },
];

const config = { wsUrl: null, version: null };
const ADMIN_POLL_MS = 30000;
let adminPoll = 0;

function guard(route, path) {
  const user = currentUser();
  if (route && route.public) {
    return user ? { redirect: homeFor(user) } : null;
  }
  if (!user) {
    const next = path && path !== '/' ? `?next=${encodeURIComponent(path)}` : '';
    return { redirect: `#/login${next}` };
  }
  if (!route) {
    return { view: notFoundView };
  }
  if (!route.roles.includes(user.role)) {
    // The bare root is everyone's landing page; anything else is refused
    // outright rather than silently translated.
    return path === '/' ? { redirect: homeFor(user) } : { view: forbiddenView };
  }
  return null;
}

async function startSession(user) {
  renderHeader(user, config);
  try {
    await loadAlerts({ deviceHref: deviceHrefFor(user) });
  } catch (err) {
    toastError(err, 'Could not load alerts');
  }
  if (currentUser() !== user) {
    return; // logged out while the alerts loaded
  }
  try {
    await startChat(user);
  } catch (err) {
    toastError(err, 'Could not load the support chat');
  }
  if (currentUser() !== user) {
    return;
  }
  if (config.wsUrl) {
    live.start(config.wsUrl, newestAlertId);
  }
  if (user.role === 'admin') {
    // Admins see every alert but are notified of none: keep the badge current.
    adminPoll = setInterval(() => pollNewAlerts().catch(() => {}), ADMIN_POLL_MS);
  }
}

function endSession(reason) {
  teardown();
  clearInterval(adminPoll);
  live.stop();
  closeChatPanel({ restoreFocus: false });
  stopChat();
  resetAlerts();
  renderHeader(null, config);
  if (reason === 'expired') {
    toast('Your session has ended. Please log in again.', { kind: 'info' });
  }
  const { path } = parseHash();
  if (path !== '/login') {
    navigate('#/login');
  }
}

async function loadConfig() {
  try {
    const answer = await api.get('/config', { auth: false });
    config.wsUrl = answer.ws_url || null;
    config.version = answer.version || null;
  } catch (err) {
    toastError(err, 'Live updates are unavailable');
  }
}

function wireSkipLink() {
  // The skip link must not go through the hash router.
  document.querySelector('.skip-link').addEventListener('click', (event) => {
    event.preventDefault();
    document.getElementById('main').focus();
  });
}

async function boot() {
  wireSkipLink();
  live.addEventListener('alert', (event) => receiveAlert(event.detail));
  live.addEventListener('forecast', (event) => receiveForecast(event.detail.forecast));
  live.addEventListener('device_status', (event) => receiveDeviceStatus(event.detail));
  live.addEventListener('status', (event) => {
    // Also exposed on <body> for styling hooks and for the end-to-end tests.
    document.body.dataset.live = event.detail;
    renderConnectionBanner(event.detail);
  });
  onSession((type, detail) => {
    if (type === 'login') {
      startSession(detail);
    } else if (type === 'tokens') {
      live.reauthenticate(detail);
    } else if (type === 'user') {
      renderHeader(detail, config);
    } else if (type === 'logout') {
      endSession(detail);
    }
  });
  defineRoutes(ROUTES, () => ({ user: currentUser(), live, config }));
  await loadConfig();
  try {
    await restore();
  } catch {
    // The server could not be reached: start at the login page.
  }
  await startRouter(guard);
}

boot();
