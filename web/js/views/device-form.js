// Device create/edit dialogs. Input names are the API's member names, so a
// problem's `field` lands next to the right input.

import { h } from '../dom.js';
import { api, ApiError, listAll } from '../api.js';
import { field, formDialog } from '../ui.js';

// Users an admin can assign devices to, sorted by name.
export async function loadOwners() {
  const { items } = await listAll('/users');
  return items.sort((a, b) => a.name.localeCompare(b.name));
}

export function ownerLabel(user) {
  return `${user.name} (${user.email})`;
}

function ownerSelect(users, selectedId) {
  return h('select', { name: 'owner_id' },
    h('option', { value: '', selected: selectedId === null }, '— Unassigned —'),
    users.map((u) => h('option', { value: String(u.id), selected: u.id === selectedId }, ownerLabel(u))));
}

function limitInput(value) {
  return h('input', { type: 'number', name: 'max_hourly_kwh', step: 'any', inputmode: 'decimal', required: true, value: value === undefined ? '' : String(value) });
}

// The form's values as API members; `names` are the inputs to read.
function readForm(form, names) {
  const out = {};
  for (const name of names) {
    const el = form.elements.namedItem(name);
    if (!el) {
      continue;
    }
    if (name === 'max_hourly_kwh') {
      out[name] = el.value.trim() === '' ? null : Number(el.value);
    } else if (name === 'owner_id' || name === 'offline_after_s') {
      out[name] = el.value === '' ? null : Number(el.value);
    } else if (name === 'over_limit_command') {
      out[name] = parseOverLimit(el.value);
    } else if (name === 'serial') {
      out[name] = el.value.trim() === '' ? null : el.value.trim();
    } else {
      out[name] = el.value.trim();
    }
  }
  return out;
}

// The meter's own identifier (admins only): what an MQTT login or a broker
// message may name the device by. Empty means none (null).
const SERIAL_HINT = 'The meter\'s own identifier, for MQTT and broker messages: up to 64 letters, digits, _ or -, not only digits. Leave empty for none.';

function serialInput(value) {
  return h('input', { name: 'serial', maxlength: '64', pattern: '[A-Za-z0-9_\\-]*[A-Za-z_\\-][A-Za-z0-9_\\-]*', autocomplete: 'off', spellcheck: 'false', value: value || '' });
}

// The load-shedding action: a command queued each time the device's hour
// goes over its limit. Written as the command's JSON; empty means none.
const OVER_LIMIT_HINT = 'A command sent to the device each time an hour goes over the limit, e.g. {"name": "relay", "params": {"state": "off"}}. Leave empty for none.';

function parseOverLimit(text) {
  if (text.trim() === '') {
    return null;
  }
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new ApiError(422, { detail: 'Write the command as JSON: {"name": "relay", "params": {"state": "off"}}.', field: 'over_limit_command' });
  }
  return value;
}

function overLimitInput(value) {
  return h('input', { name: 'over_limit_command', autocomplete: 'off', spellcheck: 'false', placeholder: '{"name": "relay", "params": {"state": "off"}}', value: value ? JSON.stringify(value) : '' });
}

const OFFLINE_HINT = 'Report the device offline after this much silence: 60 to 604800 seconds (a week). Leave empty for never.';

function offlineInput(value) {
  return h('input', { type: 'number', name: 'offline_after_s', min: '60', max: '604800', step: '1', inputmode: 'numeric', value: value ? String(value) : '' });
}

function checkLimit(values) {
  const limit = values.max_hourly_kwh;
  if (limit !== undefined && !(Number.isFinite(limit) && limit > 0)) {
    throw new ApiError(422, { detail: 'The limit must be a number greater than 0.', field: 'max_hourly_kwh' });
  }
}

// Edits a device; resolves with the updated device, or undefined if cancelled.
// An owner may change the name, description and limit; an admin also the
// address, the serial and the owner.
export async function editDeviceDialog(device, { isAdmin, owners }) {
  const users = isAdmin ? owners || (await loadOwners()) : [];
  const names = isAdmin
    ? ['name', 'description', 'address', 'serial', 'max_hourly_kwh', 'offline_after_s', 'over_limit_command', 'owner_id']
    : ['name', 'description', 'max_hourly_kwh', 'offline_after_s', 'over_limit_command'];
  return formDialog(`Edit ${device.name}`, {
    fields: [
      field('Name', h('input', { name: 'name', required: true, maxlength: '200', value: device.name })),
      field('Description', h('textarea', { name: 'description', rows: '2', maxlength: '1000', value: device.description || '' })),
      isAdmin ? field('Address', h('input', { name: 'address', maxlength: '500', value: device.address || '' })) : null,
      isAdmin ? field('Serial', serialInput(device.serial), SERIAL_HINT) : null,
      field('Hourly limit (kWh)', limitInput(device.max_hourly_kwh), 'An alert is raised when one clock hour uses more than this.'),
      field('Offline after (seconds)', offlineInput(device.offline_after_s), OFFLINE_HINT),
      field('Over-limit command', overLimitInput(device.over_limit_command), OVER_LIMIT_HINT),
      isAdmin ? field('Owner', ownerSelect(users, device.owner_id)) : null,
    ],
    submit: async (form) => {
      const values = readForm(form, names);
      checkLimit(values);
      // Send only what changed: an unchanged member costs nothing and cannot fail.
      const changes = {};
      for (const name of names) {
        const before = device[name] === undefined ? null : device[name];
        const after = values[name];
        const same = name === 'over_limit_command'
          ? JSON.stringify(before) === JSON.stringify(after)
          : (before ?? '') === (after ?? '');
        if (!same) {
          changes[name] = after;
        }
      }
      if (Object.keys(changes).length === 0) {
        return device;
      }
      return api.patch(`/devices/${device.id}`, changes);
    },
  });
}

// Creates a device (admin); resolves with the answer (device plus token).
export function createDeviceDialog(owners) {
  return formDialog('New device', {
    submitLabel: 'Create device',
    fields: [
      field('Name', h('input', { name: 'name', required: true, maxlength: '200' })),
      field('Description', h('textarea', { name: 'description', rows: '2', maxlength: '1000' })),
      field('Address', h('input', { name: 'address', maxlength: '500' })),
      field('Serial', serialInput(null), SERIAL_HINT),
      field('Hourly limit (kWh)', limitInput(), 'An alert is raised when one clock hour uses more than this.'),
      field('Over-limit command', overLimitInput(null), OVER_LIMIT_HINT),
      field('Reading type', h('select', { name: 'reading_type' },
        h('option', { value: 'cumulative', selected: true }, 'Cumulative (meter register)'),
        h('option', { value: 'interval' }, 'Interval (energy since the previous reading)')),
      'Fixed once the device is created.'),
      field('Owner', ownerSelect(owners, null)),
    ],
    submit: async (form) => {
      const values = readForm(form, ['name', 'description', 'address', 'serial', 'max_hourly_kwh', 'over_limit_command', 'reading_type', 'owner_id']);
      checkLimit(values);
      const body = { name: values.name, max_hourly_kwh: values.max_hourly_kwh, reading_type: values.reading_type };
      if (values.description) {
        body.description = values.description;
      }
      if (values.address) {
        body.address = values.address;
      }
      if (values.serial) {
        body.serial = values.serial;
      }
      if (values.over_limit_command) {
        body.over_limit_command = values.over_limit_command;
      }
      if (values.owner_id !== null) {
        body.owner_id = values.owner_id;
      }
      return api.post('/devices', body);
    },
  });
}
