// The device page's Commands panel: send a command (a relay, the reporting
// interval, or a custom name with JSON params), see the device's recent
// commands, and watch each one's status change live ({"type":"command"} on
// the WebSocket); cancel one that is not answered yet.

import { h, mount } from '../dom.js';
import { api, ApiError, query } from '../api.js';
import { badge, toastError } from '../ui.js';
import { formatDateTime } from '../format.js';

const LIST_LIMIT = 20;
const FINAL = new Set(['succeeded', 'failed', 'expired', 'canceled']);
const STATUS_KIND = { queued: null, sent: 'accent', succeeded: 'success', failed: 'danger' };

// The presets of the "Command" select: what each sends.
const PRESETS = {
  'relay-off': () => ({ name: 'relay', params: { state: 'off' } }),
  'relay-on': () => ({ name: 'relay', params: { state: 'on' } }),
  interval: (form) => ({ name: 'interval', params: { seconds: Number(form.seconds.value) } }),
  custom: (form) => ({ name: form.name.value.trim(), params: parseParams(form.params.value) }),
};

function parseParams(text) {
  if (text.trim() === '') {
    return {};
  }
  try {
    const value = JSON.parse(text);
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      return value;
    }
  } catch {
    // answered below
  }
  throw new ApiError(422, { detail: 'Params must be a JSON object, like {"state": "off"}.', field: 'params' });
}

function describeOutcome(c) {
  if (c.error) {
    return c.error;
  }
  return c.result ? JSON.stringify(c.result) : '';
}

export function commandsPanel(deviceId, live) {
  const rows = new Map(); // command id → the newest command seen
  const list = h('ul', { class: 'mini-alerts command-list', dataset: { testid: 'commands' } });
  const kind = h('select', { name: 'kind', 'aria-label': 'Command' },
    h('option', { value: 'relay-off' }, 'Relay off'),
    h('option', { value: 'relay-on' }, 'Relay on'),
    h('option', { value: 'interval' }, 'Reporting interval'),
    h('option', { value: 'custom' }, 'Custom…'));
  const seconds = h('input', { name: 'seconds', type: 'number', min: '1', step: '1', value: '60', 'aria-label': 'Interval in seconds', hidden: true });
  const name = h('input', { name: 'name', maxlength: '64', placeholder: 'name', 'aria-label': 'Command name', autocomplete: 'off', spellcheck: 'false', hidden: true });
  const params = h('input', { name: 'params', placeholder: '{"key": "value"}', 'aria-label': 'Params (JSON)', autocomplete: 'off', spellcheck: 'false', hidden: true });
  const sendBtn = h('button', { class: 'btn btn-small', type: 'submit' }, 'Send');
  const errorEl = h('p', { class: 'field-error', role: 'alert', hidden: true });
  const form = h('form', { class: 'command-form', novalidate: true }, kind, seconds, name, params, sendBtn);

  function syncInputs() {
    seconds.hidden = kind.value !== 'interval';
    name.hidden = kind.value !== 'custom';
    params.hidden = kind.value !== 'custom';
  }

  function row(c) {
    const cancel = FINAL.has(c.status) ? null : h('button', { class: 'btn btn-small', type: 'button', on: { click: () => cancelCommand(c.id) } }, 'Cancel');
    return h('li', { class: 'mini-alert command-row', dataset: { id: c.id, status: c.status } },
      h('span', null, h('code', null, c.name), ' ', h('span', { class: 'muted' }, JSON.stringify(c.params))),
      badge(c.status, STATUS_KIND[c.status]),
      h('span', { class: 'muted' }, c.attempts === 1 ? '1 delivery' : `${c.attempts} deliveries`),
      h('span', { class: 'muted' }, formatDateTime(c.created_at)),
      h('span', { class: 'command-outcome' }, describeOutcome(c)),
      cancel);
  }

  function draw() {
    const items = [...rows.values()].sort((a, b) => b.id - a.id).slice(0, LIST_LIMIT);
    mount(list, items.length ? items.map(row) : h('li', { class: 'muted' }, 'No commands sent to this device.'));
  }

  // Keeps the newest state of each command: a message may overtake a page.
  function upsert(c) {
    const seen = rows.get(c.id);
    const rank = (x) => (FINAL.has(x.status) ? 1e9 : 0) + x.attempts;
    if (!seen || rank(c) >= rank(seen)) {
      rows.set(c.id, c);
    }
  }

  async function cancelCommand(id) {
    try {
      upsert(await api.post(`/commands/${id}/cancel`));
      draw();
    } catch (err) {
      toastError(err, 'Could not cancel the command');
    }
  }

  async function load() {
    try {
      const page = await api.get(`/devices/${deviceId}/commands${query({ limit: LIST_LIMIT })}`);
      page.items.forEach(upsert);
      draw();
    } catch (err) {
      mount(list, h('li', { class: 'muted' }, err.message));
    }
  }

  kind.addEventListener('change', syncInputs);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    errorEl.hidden = true;
    sendBtn.disabled = true;
    try {
      const body = PRESETS[kind.value](form);
      upsert(await api.post(`/devices/${deviceId}/commands`, body));
      draw();
    } catch (err) {
      errorEl.textContent = err.message;
      errorEl.hidden = false;
    } finally {
      sendBtn.disabled = false;
    }
  });

  const onCommand = (event) => {
    if (event.detail.device_id === deviceId) {
      upsert(event.detail);
      draw();
    }
  };
  live.addEventListener('command', onCommand);

  const el = h('section', { class: 'panel' },
    h('h2', { class: 'panel-title' }, 'Commands'),
    form, errorEl, list);
  return { el, load, destroy: () => live.removeEventListener('command', onCommand) };
}
