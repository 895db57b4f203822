// The tab's alert state: the loaded alerts, the unacknowledged count for the
// header badge, the newest id seen (the WebSocket's since_alert_id), and the
// live notification (toast, and the browser's Notification API when the user
// allowed it) for every alert that arrives over the channel.

import { api, listAll } from './api.js';
import { toast } from './ui.js';
import { kwh, number, formatHour } from './format.js';

const alerts = new Map(); // id → alert
let maxId = null;
let truncated = false;
let deviceHref = (id) => `#/devices/${id}`;
const listeners = new Set();

export function onAlertsChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function changed() {
  for (const listener of [...listeners]) {
    listener();
  }
}

function remember(alert) {
  alerts.set(alert.id, alert);
  if (maxId === null || alert.id > maxId) {
    maxId = alert.id;
  }
}

export function newestAlertId() {
  return maxId;
}

export function unacknowledgedCount() {
  let n = 0;
  for (const alert of alerts.values()) {
    if (!alert.acknowledged_at) {
      n += 1;
    }
  }
  return n;
}

// True when there are more alerts on the server than were loaded.
export function isTruncated() {
  return truncated;
}

// Unacknowledged first, newest first within each group.
export function sortedAlerts(filter = () => true) {
  return [...alerts.values()].filter(filter).sort((a, b) => {
    const ackA = a.acknowledged_at ? 1 : 0;
    const ackB = b.acknowledged_at ? 1 : 0;
    return ackA - ackB || b.id - a.id;
  });
}

// Loads the alerts list (the newest 5,000 at most). Sets maxId to the newest
// id even when there are none yet (0), so the channel replays anything raised
// between this request and its connection.
export async function loadAlerts(options = {}) {
  if (options.deviceHref) {
    deviceHref = options.deviceHref;
  }
  const result = await listAll('/alerts');
  alerts.clear();
  maxId = 0;
  result.items.forEach(remember);
  truncated = result.truncated;
  changed();
}

// Fetches alerts newer than the newest one known, without notifying. Admins
// use it: the channel only carries alerts to a device's owner.
export async function pollNewAlerts() {
  if (maxId === null) {
    return;
  }
  const { items } = await listAll('/alerts', { since_id: maxId });
  if (items.length) {
    items.forEach(remember);
    changed();
  }
}

export function resetAlerts() {
  alerts.clear();
  maxId = null;
  truncated = false;
  changed();
}

export async function acknowledge(id) {
  const updated = await api.post(`/alerts/${id}/ack`);
  remember(updated);
  changed();
  return updated;
}

function describe(alert) {
  const hour = formatHour(new Date(alert.hour_start));
  return `${number(alert.hour_kwh)} kWh in the hour from ${hour}, over the ${kwh(alert.max_hourly_kwh)} limit.`;
}

function notifyBrowser(alert) {
  if (!('Notification' in window) || Notification.permission !== 'granted') {
    return;
  }
  try {
    const n = new Notification(`Wattline: ${alert.device_name}`, { body: describe(alert), tag: `wattline-alert-${alert.id}` });
    n.addEventListener('click', () => {
      window.focus();
      location.hash = deviceHref(alert.device_id);
    });
  } catch {
    // Some platforms only allow notifications from a service worker.
  }
}

// An alert from the WebSocket (live, or replayed after a reconnect).
export function receiveAlert(alert) {
  if (alerts.has(alert.id)) {
    return; // replayed after a reconnect, already known
  }
  remember(alert);
  changed();
  toast(describe(alert), {
    kind: 'alert',
    title: `Limit exceeded: ${alert.device_name}`,
    action: { label: 'View device', href: deviceHref(alert.device_id) },
  });
  notifyBrowser(alert);
}

export function canAskNotificationPermission() {
  return 'Notification' in window && Notification.permission === 'default';
}

export async function askNotificationPermission() {
  if (!canAskNotificationPermission()) {
    return Notification.permission;
  }
  return Notification.requestPermission();
}
