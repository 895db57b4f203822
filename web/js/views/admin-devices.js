// Admin: devices table. Create (the token is shown once), edit, assign or
// unassign the owner right in the table, rotate the token, delete.

import { h, icon, mount } from '../dom.js';
import { api, listAll } from '../api.js';
import { confirmDialog, emptyState, errorState, pageHeader, spinner, toast, toastError, tokenDialog } from '../ui.js';
import { kwh, timeAgo } from '../format.js';
import { createDeviceDialog, editDeviceDialog, loadOwners, ownerLabel } from './device-form.js';

function ownerPicker(device, owners, onChange) {
  const select = h('select', { class: 'owner-select', 'aria-label': `Owner of ${device.name}` },
    h('option', { value: '', selected: device.owner_id === null }, '— Unassigned —'),
    owners.map((u) => h('option', { value: String(u.id), selected: u.id === device.owner_id }, ownerLabel(u))));
  select.addEventListener('change', () => onChange(select));
  return select;
}

export async function devicesView(root, ctx) {
  const newBtn = h('button', { class: 'btn btn-primary', type: 'button' }, icon('plus'), 'New device');
  const filter = h('input', { type: 'search', placeholder: 'Filter by name, address or serial', 'aria-label': 'Filter devices', autocomplete: 'off' });
  const body = h('div');
  let devices = [];
  let owners = [];

  async function changeOwner(device, select) {
    const ownerId = select.value === '' ? null : Number(select.value);
    select.disabled = true;
    try {
      const updated = await api.patch(`/devices/${device.id}`, { owner_id: ownerId });
      Object.assign(device, updated);
      const owner = owners.find((u) => u.id === ownerId);
      toast(owner ? `${device.name} is now assigned to ${owner.name}.` : `${device.name} is unassigned.`, { kind: 'success' });
    } catch (err) {
      select.value = device.owner_id === null ? '' : String(device.owner_id);
      toastError(err, 'Could not change the owner');
    } finally {
      select.disabled = false;
    }
  }

  async function rotate(device) {
    const ok = await confirmDialog(`Rotate the token of ${device.name}?`,
      'The current token stops working at once. The device sends nothing until it is given the new token.',
      { confirmLabel: 'Rotate token' });
    if (!ok) {
      return;
    }
    try {
      const answer = await api.post(`/devices/${device.id}/token`);
      await tokenDialog('New device token', answer.token, `The new token for ${device.name}:`);
    } catch (err) {
      toastError(err, 'Could not rotate the token');
    }
  }

  async function remove(device) {
    const ok = await confirmDialog(`Delete ${device.name}?`,
      'The device, all its readings and all its alerts are deleted. This cannot be undone.',
      { confirmLabel: 'Delete device' });
    if (!ok) {
      return;
    }
    try {
      await api.del(`/devices/${device.id}`);
      devices = devices.filter((d) => d.id !== device.id);
      draw();
      toast(`Deleted ${device.name}.`, { kind: 'success' });
    } catch (err) {
      toastError(err, 'Could not delete the device');
    }
  }

  async function edit(device) {
    const updated = await editDeviceDialog(device, { isAdmin: true, owners });
    if (updated && updated !== device) {
      Object.assign(device, updated);
      draw();
      toast(`Saved ${device.name}.`, { kind: 'success' });
    }
  }

  function row(device) {
    const actions = [
      ['Edit', () => edit(device), 'btn-small'],
      ['Rotate token', () => rotate(device), 'btn-small'],
      ['Delete', () => remove(device), 'btn-small btn-danger-ghost'],
    ].map(([label, onClick, cls]) => h('button', { class: `btn ${cls}`, type: 'button', on: { click: onClick } }, label));
    return h('tr', { dataset: { deviceId: device.id } },
      h('td', { dataset: { label: 'Name' } }, h('a', { class: 'strong-link', href: `#/admin/devices/${device.id}` }, device.name)),
      h('td', { dataset: { label: 'Serial' } }, device.serial ? h('code', null, device.serial) : h('span', { class: 'muted' }, '—')),
      h('td', { dataset: { label: 'Owner' } }, ownerPicker(device, owners, (select) => changeOwner(device, select))),
      h('td', { dataset: { label: 'Address' } }, device.address || h('span', { class: 'muted' }, '—')),
      h('td', { class: 'num', dataset: { label: 'Limit / h' } }, kwh(device.max_hourly_kwh)),
      h('td', { dataset: { label: 'Type' } }, device.reading_type === 'interval' ? 'Interval' : 'Cumulative'),
      h('td', { dataset: { label: 'Last seen' } }, timeAgo(device.last_seen_at)),
      h('td', { class: 'actions', dataset: { label: 'Actions' } }, actions));
  }

  function draw() {
    const needle = filter.value.trim().toLowerCase();
    const shown = devices.filter((d) => !needle || d.name.toLowerCase().includes(needle) || (d.address || '').toLowerCase().includes(needle) || (d.serial || '').toLowerCase().includes(needle));
    if (!devices.length) {
      mount(body, emptyState('No devices yet', 'Create a device, then put its token on the meter.', newBtn.cloneNode(true)));
      body.querySelector('.empty .btn').addEventListener('click', create);
      return;
    }
    if (!shown.length) {
      mount(body, emptyState('No matching devices', 'No device name, address or serial contains this text.'));
      return;
    }
    mount(body, h('div', { class: 'table-wrap' },
      h('table', { class: 'table responsive', id: 'devices-table' },
        h('thead', null, h('tr', null, ['Name', 'Serial', 'Owner', 'Address', 'Limit / h', 'Type', 'Last seen', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', null, shown.map(row)))));
  }

  async function create() {
    const created = await createDeviceDialog(owners);
    if (!created) {
      return;
    }
    const { token, ...device } = created;
    devices.push(device);
    devices.sort((a, b) => a.name.localeCompare(b.name));
    draw();
    await tokenDialog('Device created', token, `${device.name} is ready. Give the meter this token:`);
  }

  newBtn.addEventListener('click', create);
  filter.addEventListener('input', draw);
  mount(root, pageHeader('Devices', newBtn), spinner('Loading devices…'));
  try {
    const [list, users] = await Promise.all([listAll('/devices'), loadOwners()]);
    devices = list.items.sort((a, b) => a.name.localeCompare(b.name));
    owners = users;
  } catch (err) {
    if (ctx.isCurrent()) {
      mount(root, pageHeader('Devices'), errorState(err, () => devicesView(root, ctx)));
    }
    return undefined;
  }
  if (!ctx.isCurrent()) {
    return undefined;
  }
  mount(root, pageHeader('Devices', newBtn),
    h('div', { class: 'filters' }, h('div', { class: 'search' }, icon('search'), filter)),
    body);
  draw();
  return undefined;
}
