// Device page: the day's hourly energy (or a month's daily energy) as a bar
// chart in the browser's time zone, with the limit, totals, a CSV export of
// the readings behind it, recent alerts, and editing. Used by owners
// (#/devices/7) and admins (#/admin/devices/7); admins may also change the
// address and the owner.

import { h, icon, mount } from '../dom.js';
import { api, query, request } from '../api.js';
import { barChart } from '../chart.js';
import { replaceQuery } from '../router.js';
import { acknowledge, onAlertsChange } from '../alerts.js';
import { badge, emptyState, errorState, spinner, toast, toastError } from '../ui.js';
import { editDeviceDialog } from './device-form.js';
import { commandsPanel } from './commands-panel.js';
import {
  addDays, addMonths, formatDateTime, formatDayMonth, formatLongDate, formatMonth, isoDate, isoMonth,
  kwh, number, parseLocalDate, rfc3339, startOfMonth, timeAgo, timeZone,
} from '../format.js';

const hourLabel = new Intl.DateTimeFormat(undefined, { hour: '2-digit', hourCycle: 'h23' });
const hourTitle = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZoneName: 'short' });
const dayLabel = new Intl.DateTimeFormat(undefined, { day: 'numeric' });
const dayTitle = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short' });

function buckets(answer) {
  return answer.hours || answer.buckets || [];
}

// The request for the shown range, and how to label its buckets.
function rangeFor(mode, date) {
  if (mode === 'month') {
    const from = startOfMonth(date);
    const to = addMonths(date, 1);
    return {
      from,
      to,
      params: { from: rfc3339(from), to: rfc3339(to), bucket: 'day', tz: timeZone },
      label: (start) => dayLabel.format(start),
      title: (start) => dayTitle.format(start),
    };
  }
  return {
    from: date,
    to: addDays(date, 1),
    params: { date: isoDate(date), tz: timeZone },
    label: (start) => hourLabel.format(start),
    title: (start) => {
      const end = new Date(start.getTime() + 3600 * 1000);
      return `${hourTitle.format(start)} – ${hourLabel.format(end)}:00`;
    },
  };
}

function stat(label, valueEl) {
  return h('div', { class: 'stat' }, h('span', { class: 'stat-label' }, label), valueEl);
}

// A visually hidden table with the chart's numbers, for screen readers (and
// for anyone who wants the figures rather than the bars).
function dataTable(rows, unitLabel) {
  return h('table', { class: 'sr-only chart-data' },
    h('caption', null, 'Energy per ', unitLabel.toLowerCase()),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, unitLabel), h('th', { scope: 'col' }, 'kWh'), h('th', { scope: 'col' }, 'Over limit'))),
    h('tbody', null, rows.map((r) => h('tr', { dataset: { start: r.start, over: r.over ? 'true' : 'false', kwh: r.kwh } },
      h('th', { scope: 'row' }, r.title), h('td', null, number(r.kwh)), h('td', null, r.over ? 'yes' : 'no')))));
}

export async function deviceView(root, ctx) {
  const id = Number(ctx.params[0]);
  const isAdmin = ctx.user.role === 'admin';
  mount(root, spinner('Loading device…'));

  let device;
  try {
    device = await api.get(`/devices/${id}`);
  } catch (err) {
    if (ctx.isCurrent()) {
      mount(root, err.status === 404
        ? emptyState('Device not found', 'It may have been removed, or it is not one of your devices.', h('a', { class: 'btn', href: isAdmin ? '#/admin/devices' : '#/' }, 'Back to devices'))
        : errorState(err, () => deviceView(root, ctx)));
    }
    return undefined;
  }
  if (!ctx.isCurrent()) {
    return undefined;
  }

  const initialMode = ctx.query.get('view') === 'month' ? 'month' : 'day';
  const state = {
    mode: initialMode,
    date: parseLocalDate(ctx.query.get(initialMode === 'month' ? 'month' : 'date')) || parseLocalDate(isoDate(new Date())),
    rows: [],
    limit: device.max_hourly_kwh,
    loadSeq: 0,
  };
  if (state.mode === 'month') {
    state.date = startOfMonth(state.date);
  }

  // ---- page skeleton -----------------------------------------------------
  const title = h('h1', null);
  const meta = h('p', { class: 'page-subtitle muted' });
  const editBtn = h('button', { class: 'btn', type: 'button' }, 'Edit');
  const csvBtn = h('button', { class: 'btn', type: 'button' }, icon('download'), 'Download CSV');
  const dayTab = h('button', { class: 'seg', type: 'button' }, 'Day');
  const monthTab = h('button', { class: 'seg', type: 'button' }, 'Month');
  const prevBtn = h('button', { class: 'icon-btn', type: 'button' }, icon('chevronLeft'));
  const nextBtn = h('button', { class: 'icon-btn', type: 'button' }, icon('chevronRight'));
  const todayBtn = h('button', { class: 'btn btn-small', type: 'button' }, 'Today');
  const picker = h('input', { class: 'date-input', 'aria-label': 'Date' });
  const rangeTitle = h('h2', { class: 'range-title' });
  const totalValue = h('strong', { class: 'stat-value', dataset: { testid: 'total' } });
  const peakValue = h('strong', { class: 'stat-value' });
  const thirdLabel = h('span', { class: 'stat-label' });
  const thirdValue = h('strong', { class: 'stat-value' });
  const chartBox = h('div', { class: 'chart', dataset: { testid: 'chart' } });
  const chartNote = h('p', { class: 'chart-note muted', hidden: true });
  const tableSlot = h('div');
  const loadingEl = h('div', { class: 'chart-loading', hidden: true }, h('span', { class: 'spinner', 'aria-hidden': 'true' }));
  const alertsList = h('ul', { class: 'mini-alerts' });
  const commands = commandsPanel(id, ctx.live);

  mount(root,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: isAdmin ? '#/admin/devices' : '#/' }, isAdmin ? 'Devices' : 'My devices'), h('span', { 'aria-hidden': 'true' }, ' / '), h('span', { class: 'crumb-current' })),
    h('div', { class: 'page-header' }, title, h('div', { class: 'page-actions' }, editBtn, csvBtn)),
    meta,
    h('section', { class: 'panel' },
      h('div', { class: 'toolbar' },
        h('div', { class: 'segmented', role: 'group', 'aria-label': 'Period' }, dayTab, monthTab),
        h('div', { class: 'date-nav' }, prevBtn, picker, nextBtn, todayBtn)),
      rangeTitle,
      h('div', { class: 'stats' },
        stat('Total', totalValue),
        stat('Peak', peakValue),
        h('div', { class: 'stat' }, thirdLabel, thirdValue)),
      h('figure', { class: 'chart-figure' }, chartBox, loadingEl, chartNote, tableSlot)),
    h('section', { class: 'panel' },
      h('h2', { class: 'panel-title' }, 'Recent alerts'),
      alertsList),
    commands.el);

  const makeChart = (mode) => (mode === 'month'
    ? barChart(chartBox, { unit: 'Day', labelSteps: [1, 2, 3, 5, 7, 10] })
    : barChart(chartBox, { unit: 'Hour', labelSteps: [1, 2, 3, 4, 6, 12] }));
  let chart = makeChart(state.mode);

  function drawMeta() {
    title.textContent = device.name;
    root.querySelector('.crumb-current').textContent = device.name;
    mount(meta,
      h('span', null, icon('pin'), device.address || 'No address'),
      h('span', null, `Limit ${kwh(device.max_hourly_kwh)} per hour`),
      h('span', null, device.reading_type === 'interval' ? 'Interval meter' : 'Cumulative meter'),
      device.serial ? h('span', { class: 'serial' }, 'Serial ', h('code', null, device.serial)) : null,
      h('span', null, icon('clock'), `Last seen ${timeAgo(device.last_seen_at)}`),
      device.status === 'offline' ? h('span', { class: 'tag tag-warn' }, `Offline since ${timeAgo(device.last_seen_at)}`) : null,
      device.description ? h('span', { class: 'description' }, device.description) : null);
    document.title = `${device.name} · Wattline`;
  }

  function drawControls() {
    const month = state.mode === 'month';
    dayTab.setAttribute('aria-pressed', String(!month));
    monthTab.setAttribute('aria-pressed', String(month));
    picker.type = month ? 'month' : 'date';
    picker.value = month ? isoMonth(state.date) : isoDate(state.date);
    picker.max = month ? isoMonth(new Date()) : isoDate(new Date());
    prevBtn.setAttribute('aria-label', month ? 'Previous month' : 'Previous day');
    nextBtn.setAttribute('aria-label', month ? 'Next month' : 'Next day');
    const today = parseLocalDate(isoDate(new Date()));
    nextBtn.disabled = month ? state.date >= startOfMonth(today) : state.date >= today;
    rangeTitle.textContent = month ? formatMonth(state.date) : formatLongDate(state.date);
    replaceQuery(month ? { view: 'month', month: isoMonth(state.date) } : { date: isoDate(state.date) });
  }

  function drawData() {
    const month = state.mode === 'month';
    const total = state.rows.reduce((sum, r) => sum + r.kwh, 0);
    const peak = state.rows.reduce((best, r) => (!best || r.kwh > best.kwh ? r : best), null);
    totalValue.textContent = kwh(total);
    peakValue.textContent = peak && peak.kwh > 0 ? `${kwh(peak.kwh)} · ${month ? formatDayMonth(new Date(peak.start)) : `${peak.label}:00`}` : '—';
    if (month) {
      const days = state.rows.filter((r) => new Date(r.start) <= new Date()).length || 1;
      thirdLabel.textContent = 'Daily average';
      thirdValue.textContent = kwh(total / days);
    } else {
      const over = state.rows.filter((r) => r.over).length;
      thirdLabel.textContent = 'Hours over limit';
      thirdValue.textContent = String(over);
      thirdValue.classList.toggle('danger-text', over > 0);
    }
    chart.update({
      labels: state.rows.map((r) => r.label),
      titles: state.rows.map((r) => r.title),
      kwh: state.rows.map((r) => r.kwh),
      over: state.rows.map((r) => r.over),
      limit: month ? null : state.limit,
    });
    chartBox.dataset.buckets = String(state.rows.length);
    chartBox.dataset.over = String(state.rows.filter((r) => r.over).length);
    chartNote.hidden = total > 0;
    chartNote.textContent = month ? 'No energy recorded in this month.' : 'No energy recorded on this day.';
    mount(tableSlot, dataTable(state.rows, month ? 'Day' : 'Hour'));
  }

  async function load() {
    state.loadSeq += 1;
    const seq = state.loadSeq;
    const range = rangeFor(state.mode, state.date);
    loadingEl.hidden = false;
    try {
      const answer = await api.get(`/devices/${id}/consumption${query(range.params)}`);
      if (seq !== state.loadSeq || !ctx.isCurrent()) {
        return;
      }
      if (typeof answer.max_hourly_kwh === 'number') {
        state.limit = answer.max_hourly_kwh;
      }
      state.rows = buckets(answer).map((b) => {
        const start = new Date(b.start);
        return { start: b.start, kwh: b.kwh, over: Boolean(b.over_limit), label: range.label(start), title: range.title(start) };
      });
      drawData();
    } catch (err) {
      if (seq === state.loadSeq && ctx.isCurrent()) {
        toastError(err, 'Could not load the chart');
      }
    } finally {
      if (seq === state.loadSeq) {
        loadingEl.hidden = true;
      }
    }
  }

  function setMode(mode) {
    if (mode === state.mode) {
      return;
    }
    state.mode = mode;
    const today = parseLocalDate(isoDate(new Date()));
    if (mode === 'month') {
      state.date = startOfMonth(state.date);
    } else if (isoMonth(state.date) === isoMonth(today)) {
      state.date = today; // from this month's view, "day" means today
    }
    chart.destroy();
    chartBox.replaceChildren();
    chart = makeChart(mode);
    state.rows = [];
    drawControls();
    load();
  }

  function step(delta) {
    state.date = state.mode === 'month' ? addMonths(state.date, delta) : addDays(state.date, delta);
    drawControls();
    load();
  }

  dayTab.addEventListener('click', () => setMode('day'));
  monthTab.addEventListener('click', () => setMode('month'));
  prevBtn.addEventListener('click', () => step(-1));
  nextBtn.addEventListener('click', () => step(1));
  todayBtn.addEventListener('click', () => {
    const today = parseLocalDate(isoDate(new Date()));
    state.date = state.mode === 'month' ? startOfMonth(today) : today;
    drawControls();
    load();
  });
  picker.addEventListener('change', () => {
    const picked = parseLocalDate(picker.value);
    if (picked) {
      state.date = picked;
      drawControls();
      load();
    }
  });

  csvBtn.addEventListener('click', async () => {
    const range = rangeFor(state.mode, state.date);
    csvBtn.disabled = true;
    try {
      const res = await request('GET', `/devices/${id}/measurements${query({ from: rfc3339(range.from), to: rfc3339(range.to) })}`, { accept: 'text/csv', raw: true });
      const blob = await res.blob();
      const url = URL.createObjectURL(blob);
      const stamp = state.mode === 'month' ? isoMonth(state.date) : isoDate(state.date);
      const link = h('a', { href: url, download: `wattline-device-${id}-${stamp}.csv`, hidden: true });
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      toastError(err, 'Could not download the readings');
    } finally {
      csvBtn.disabled = false;
    }
  });

  editBtn.addEventListener('click', async () => {
    const updated = await editDeviceDialog(device, { isAdmin });
    if (updated) {
      device = updated;
      state.limit = device.max_hourly_kwh;
      drawMeta();
      toast('Device saved.', { kind: 'success' });
      load();
    }
  });

  // ---- recent alerts -----------------------------------------------------
  async function loadAlerts() {
    try {
      const page = await api.get(`/alerts${query({ device_id: id, limit: 5 })}`);
      if (!ctx.isCurrent()) {
        return;
      }
      if (!page.items.length) {
        mount(alertsList, h('li', { class: 'muted' }, 'No alerts for this device.'));
        return;
      }
      mount(alertsList, page.items.map((a) => {
        const ack = a.acknowledged_at ? badge('Acknowledged') : h('button', { class: 'btn btn-small', type: 'button', on: { click: async () => {
          try {
            await acknowledge(a.id);
          } catch (err) {
            toastError(err, 'Could not acknowledge');
          }
        } } }, 'Acknowledge');
        return h('li', { class: ['mini-alert', a.acknowledged_at ? null : 'unacked'] },
          h('span', null, `${number(a.hour_kwh)} kWh in the hour from ${formatDateTime(a.hour_start)}`),
          h('span', { class: 'muted' }, `limit ${kwh(a.max_hourly_kwh)}`),
          ack);
      }));
    } catch (err) {
      mount(alertsList, h('li', { class: 'muted' }, err.message));
    }
  }

  // ---- live updates ------------------------------------------------------
  // A usage message moves the bar of its hour at once; a debounced reload
  // then brings in what a message cannot say (a late reading re-dividing
  // earlier hours of a cumulative meter).
  let reloadTimer = 0;
  const onUsage = (event) => {
    const usage = event.detail;
    if (usage.device_id !== id) {
      return;
    }
    device.last_seen_at = new Date().toISOString();
    drawMeta();
    const shownFrom = rangeFor(state.mode, state.date);
    const ts = new Date(usage.last_ts || usage.hour_start);
    if (ts < shownFrom.from || ts >= shownFrom.to) {
      return;
    }
    if (state.mode === 'day') {
      const hourStart = new Date(usage.hour_start).getTime();
      const row = state.rows.find((r) => new Date(r.start).getTime() === hourStart);
      if (row) {
        row.kwh = usage.hour_kwh;
        row.over = usage.hour_kwh > state.limit;
        drawData();
      }
    }
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(load, 2500);
  };
  // An alert for this device: the chart reloads even if the usage message
  // that preceded it was coalesced away.
  const onAlert = (event) => {
    if (event.detail.device_id === id) {
      clearTimeout(reloadTimer);
      reloadTimer = setTimeout(load, 300);
    }
  };
  ctx.live.addEventListener('usage', onUsage);
  ctx.live.addEventListener('alert', onAlert);
  const unsubscribe = ctx.live.subscribe(id);
  const stopAlerts = onAlertsChange(() => loadAlerts());
  const tick = setInterval(drawMeta, 30000);

  drawMeta();
  drawControls();
  await Promise.all([load(), loadAlerts(), commands.load()]);

  return () => {
    ctx.live.removeEventListener('usage', onUsage);
    ctx.live.removeEventListener('alert', onAlert);
    unsubscribe();
    stopAlerts();
    commands.destroy();
    clearTimeout(reloadTimer);
    clearInterval(tick);
    chart.destroy();
    document.title = 'Wattline';
  };
}
