// Alerts list: unacknowledged first, with an acknowledge button. Owners see
// their devices' alerts (live, from the channel); admins see every alert.

import { h, icon, mount } from '../dom.js';
import {
  acknowledge, askNotificationPermission, canAskNotificationPermission, isTruncated, loadAlerts, onAlertsChange, sortedAlerts,
} from '../alerts.js';
import { confirmDialog, emptyState, errorState, pageHeader, spinner, toast, toastError } from '../ui.js';
import { formatDateTime, kwh, number, timeAgo } from '../format.js';
import { deviceHrefFor } from '../paths.js';
import { loadOwners } from './device-form.js';

function cell(label, ...content) {
  return h('td', { dataset: { label } }, content);
}

function alertRow(alert, { deviceHref, owners }) {
  const ackCell = alert.acknowledged_at
    ? h('span', { class: 'tag', title: formatDateTime(alert.acknowledged_at) }, icon('check'), 'Acknowledged')
    : h('button', { class: 'btn btn-small btn-primary', type: 'button', dataset: { action: 'ack' } }, 'Acknowledge');
  if (!alert.acknowledged_at) {
    ackCell.addEventListener('click', async () => {
      ackCell.disabled = true;
      try {
        await acknowledge(alert.id);
      } catch (err) {
        ackCell.disabled = false;
        toastError(err, 'Could not acknowledge the alert');
      }
    });
  }
  const owner = owners ? owners.get(alert.owner_id) : null;
  return h('tr', { class: alert.acknowledged_at ? 'acked' : 'unacked', dataset: { alertId: alert.id } },
    cell('Device', h('a', { href: deviceHref(alert.device_id) }, alert.device_name)),
    owners ? cell('Owner', owner ? owner.name : h('span', { class: 'muted' }, 'Unassigned')) : null,
    cell('Hour', formatDateTime(alert.hour_start)),
    // Three decimals: 2.004 kWh over a 2 kWh limit must not read as 2.00.
    cell('Energy', h('span', { class: 'danger-text' }, `${number(alert.hour_kwh)} kWh`)),
    cell('Limit', kwh(alert.max_hourly_kwh)),
    cell('Raised', h('span', { title: formatDateTime(alert.created_at) }, timeAgo(alert.created_at))),
    cell('Status', ackCell));
}

export async function alertsView(root, ctx) {
  const isAdmin = ctx.user.role === 'admin';
  const deviceHref = deviceHrefFor(ctx.user);
  const onlyOpen = h('input', { type: 'checkbox', id: 'only-open' });
  const refreshBtn = h('button', { class: 'btn', type: 'button' }, 'Refresh');
  const ackAllBtn = h('button', { class: 'btn', type: 'button', hidden: true }, icon('check'), 'Acknowledge all');
  const notifyBtn = canAskNotificationPermission()
    ? h('button', { class: 'btn', type: 'button' }, icon('bell'), 'Desktop notifications')
    : null;
  const body = h('div');
  const header = pageHeader(isAdmin ? 'All alerts' : 'Alerts', notifyBtn, ackAllBtn, refreshBtn);
  let owners = null;

  const draw = () => {
    ackAllBtn.hidden = sortedAlerts((a) => !a.acknowledged_at).length < 2;
    const items = sortedAlerts((a) => !onlyOpen.checked || !a.acknowledged_at);
    if (!items.length) {
      mount(body, emptyState(onlyOpen.checked ? 'Nothing to acknowledge' : 'No alerts',
        'An alert appears here when a device uses more than its hourly limit.'));
      return;
    }
    mount(body,
      h('div', { class: 'table-wrap' },
        h('table', { class: 'table responsive' },
          h('thead', null, h('tr', null,
            ['Device', isAdmin ? 'Owner' : null, 'Hour', 'Energy', 'Limit', 'Raised', 'Status'].filter(Boolean).map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', null, items.map((a) => alertRow(a, { deviceHref, owners }))))),
      isTruncated() ? h('p', { class: 'muted' }, 'Showing the newest 5,000 alerts.') : null);
  };

  const reload = async () => {
    refreshBtn.disabled = true;
    try {
      await loadAlerts();
    } catch (err) {
      toastError(err, 'Could not load alerts');
    } finally {
      refreshBtn.disabled = false;
    }
  };

  mount(root, header, spinner('Loading alerts…'));
  try {
    const [users] = await Promise.all([isAdmin ? loadOwners() : null, loadAlerts()]);
    owners = users ? new Map(users.map((u) => [u.id, u])) : null;
  } catch (err) {
    if (ctx.isCurrent()) {
      mount(root, header, errorState(err, () => alertsView(root, ctx)));
    }
    return undefined;
  }
  if (!ctx.isCurrent()) {
    return undefined;
  }
  mount(root, header,
    h('div', { class: 'filters' }, h('label', { class: 'check' }, onlyOpen, 'Unacknowledged only')),
    body);
  onlyOpen.addEventListener('change', draw);
  ackAllBtn.addEventListener('click', async () => {
    const open = sortedAlerts((a) => !a.acknowledged_at);
    const ok = await confirmDialog(`Acknowledge ${open.length} alerts?`, 'They move to the acknowledged part of the list.',
      { confirmLabel: 'Acknowledge all', danger: false });
    if (!ok) {
      return;
    }
    ackAllBtn.disabled = true;
    try {
      // A few at a time: fast, without flooding the server.
      for (let i = 0; i < open.length; i += 4) {
        await Promise.all(open.slice(i, i + 4).map((a) => acknowledge(a.id)));
      }
      toast(`Acknowledged ${open.length} alerts.`, { kind: 'success' });
    } catch (err) {
      toastError(err, 'Could not acknowledge every alert');
    } finally {
      ackAllBtn.disabled = false;
    }
  });
  refreshBtn.addEventListener('click', reload);
  if (notifyBtn) {
    notifyBtn.addEventListener('click', async () => {
      const answer = await askNotificationPermission();
      toast(answer === 'granted' ? 'Desktop notifications are on.' : 'Desktop notifications stay off.');
      notifyBtn.remove();
    });
  }
  draw();
  return onAlertsChange(draw);
}
