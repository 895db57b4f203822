// Owner home: one card per device with this hour's energy against the
// device's limit, kept live from the WebSocket's `usage` messages.
//
// "This hour" is the current UTC clock hour, the hour the server's limit rule
// and `usage` messages are defined on (in every whole-hour time zone it is
// also the local hour).

import { h, icon, mount } from '../dom.js';
import { api, listAll, query } from '../api.js';
import { emptyState, errorState, pageHeader, spinner } from '../ui.js';
import { fixed, kwh, number, rfc3339, startOfUtcHour, timeAgo } from '../format.js';

const HOUR_MS = 3600 * 1000;

async function currentHourKwh(device, hourStart) {
  const q = query({ from: rfc3339(hourStart), to: rfc3339(new Date(hourStart.getTime() + HOUR_MS)), bucket: 'hour' });
  const answer = await api.get(`/devices/${device.id}/consumption${q}`);
  return answer.hours.reduce((sum, bucket) => sum + bucket.kwh, 0);
}

// One device card and the function that updates it.
function deviceCard(device) {
  const value = h('span', { class: 'usage-value' });
  const fill = h('div', { class: 'usage-fill' });
  const bar = h('div', { class: 'usage-bar', role: 'progressbar', 'aria-valuemin': '0' }, fill);
  const status = h('span', { class: 'tag', hidden: true });
  const lastSeen = h('span', { class: 'last-seen-text' });
  const card = h('article', { class: 'card device-card', dataset: { deviceId: device.id } },
    h('div', { class: 'card-head' },
      h('h2', { class: 'card-title' }, h('a', { class: 'stretched', href: `#/devices/${device.id}` }, device.name)),
      status),
    h('p', { class: 'card-meta' }, icon('pin'), h('span', { class: 'address' }, device.address || 'No address')),
    h('div', { class: 'usage' },
      h('div', { class: 'usage-label' }, h('span', null, 'This hour'), value),
      bar),
    h('p', { class: 'card-meta last-seen' }, icon('clock'), lastSeen));

  const state = { kwh: null, lastSeenAt: device.last_seen_at, status: device.status };
  bar.setAttribute('aria-label', `${device.name}: energy this hour`);

  function draw() {
    const limit = device.max_hourly_kwh;
    if (state.kwh === null) {
      value.textContent = `— / ${kwh(limit)}`;
      fill.style.width = '0%';
    } else {
      value.textContent = `${fixed(state.kwh)} / ${kwh(limit)}`;
      fill.style.width = `${Math.min(100, (state.kwh / limit) * 100)}%`;
      bar.setAttribute('aria-valuenow', String(state.kwh));
      bar.setAttribute('aria-valuetext', `${number(state.kwh)} of ${number(limit)} kWh`);
    }
    bar.setAttribute('aria-valuemax', String(limit));
    const over = state.kwh !== null && state.kwh > limit;
    const near = !over && state.kwh !== null && state.kwh > limit * 0.8;
    bar.classList.toggle('over', over);
    bar.classList.toggle('near', near);
    card.classList.toggle('is-over', over);
    // Over the limit says more than offline; offline (a meter that stopped
    // talking) says more than nothing.
    const offline = state.status === 'offline';
    card.classList.toggle('is-offline', offline);
    status.hidden = !over && !offline;
    status.className = over ? 'tag tag-danger' : 'tag tag-warn';
    status.textContent = over ? 'Over limit' : `Offline since ${timeAgo(state.lastSeenAt)}`;
    lastSeen.textContent = `Last seen ${timeAgo(state.lastSeenAt)}`;
  }

  return {
    card,
    device,
    draw,
    liveUpdates: 0,
    setKwh(value) {
      state.kwh = value;
      draw();
    },
    setStatus(value, lastSeenAt) {
      state.status = value;
      if (lastSeenAt) {
        state.lastSeenAt = lastSeenAt;
      }
      draw();
    },
    seen(at) {
      state.lastSeenAt = at;
      draw();
    },
  };
}

function summary(cards) {
  const over = cards.filter((c) => c.card.classList.contains('is-over')).length;
  const text = `${cards.length} device${cards.length === 1 ? '' : 's'}`;
  return over ? `${text} · ${over} over the limit this hour` : text;
}

export async function homeView(root, ctx) {
  const subtitle = h('p', { class: 'page-subtitle muted' });
  const grid = h('div', { class: 'card-grid' });
  mount(root, pageHeader('My devices'), subtitle, spinner('Loading your devices…'));

  let devices;
  try {
    devices = (await listAll('/devices')).items;
  } catch (err) {
    mount(root, pageHeader('My devices'), errorState(err, () => homeView(root, ctx)));
    return undefined;
  }
  if (!ctx.isCurrent()) {
    return undefined;
  }
  if (devices.length === 0) {
    mount(root, pageHeader('My devices'),
      emptyState('No devices yet', 'When an administrator assigns a meter to your account, it shows up here with its live usage.'));
    return undefined;
  }

  devices.sort((a, b) => a.name.localeCompare(b.name));
  const cards = devices.map(deviceCard);
  const byId = new Map(cards.map((c) => [c.device.id, c]));
  const refreshSummary = () => {
    subtitle.textContent = summary(cards);
  };
  cards.forEach((c) => {
    c.draw();
    grid.appendChild(c.card);
  });
  mount(root, pageHeader('My devices'), subtitle, grid);
  refreshSummary();

  let hourStart = startOfUtcHour();
  const loadCard = async (c) => {
    // A usage message that lands while the request is out is newer than its answer.
    const updatesBefore = c.liveUpdates;
    let value = null;
    try {
      value = await currentHourKwh(c.device, hourStart);
    } catch {
      // Leave the bar empty ("—"); live usage fills it when readings arrive.
    }
    if (c.liveUpdates === updatesBefore) {
      c.setKwh(value);
    }
  };
  const loadHour = () => Promise.all(cards.map(loadCard)).then(refreshSummary);

  // Live usage: only the current hour moves the bar; a late reading for an
  // earlier hour does not.
  const onUsage = (event) => {
    const usage = event.detail;
    const c = byId.get(usage.device_id);
    if (!c) {
      return;
    }
    const start = new Date(usage.hour_start).getTime();
    if (start > hourStart.getTime()) {
      // A new hour began before our timer noticed: every bar starts over.
      hourStart = new Date(start);
      loadHour();
    }
    if (start === hourStart.getTime()) {
      c.liveUpdates += 1;
      c.setKwh(usage.hour_kwh);
    }
    c.seen(new Date().toISOString());
    refreshSummary();
  };
  // An alert means the hour moved; if its usage message was coalesced away,
  // the alert still brings the card up to date.
  const onAlert = (event) => {
    const c = byId.get(event.detail.device_id);
    if (c && new Date(event.detail.hour_start).getTime() === hourStart.getTime()) {
      loadCard(c).then(refreshSummary);
    }
  };
  // A device went offline or came back (js/notices.js).
  const onStatus = (event) => {
    const c = byId.get(event.detail.device_id);
    if (c) {
      c.setStatus(event.detail.status, event.detail.last_seen_at);
    }
  };
  ctx.live.addEventListener('usage', onUsage);
  ctx.live.addEventListener('alert', onAlert);
  document.addEventListener('wattline:device-status', onStatus);
  const unsubscribes = devices.map((d) => ctx.live.subscribe(d.id));

  // The hour turns: start every bar from the new hour's energy.
  let hourTimer = 0;
  const armHourTimer = () => {
    const next = startOfUtcHour().getTime() + HOUR_MS;
    hourTimer = setTimeout(() => {
      hourStart = startOfUtcHour();
      loadHour();
      armHourTimer();
    }, next - Date.now() + 1000);
  };
  armHourTimer();
  // "Last seen 3 minutes ago" keeps counting.
  const tick = setInterval(() => cards.forEach((c) => c.draw()), 30000);

  loadHour();
  return () => {
    ctx.live.removeEventListener('usage', onUsage);
    ctx.live.removeEventListener('alert', onAlert);
    document.removeEventListener('wattline:device-status', onStatus);
    unsubscribes.forEach((undo) => undo());
    clearTimeout(hourTimer);
    clearInterval(tick);
  };
}
