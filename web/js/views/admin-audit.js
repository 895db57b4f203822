// Admin: the audit log, newest first, with the API's filters (actor, action,
// target, time range) and "Load more". Entries are data from anyone (an email
// typed at the login form), so every value goes in as text.

import { h, mount } from '../dom.js';
import { api, query } from '../api.js';
import { emptyState, errorState, field, pageHeader, spinner } from '../ui.js';
import { formatDateTime, rfc3339 } from '../format.js';

const PAGE = 50;
const ACTIONS = ['user.create', 'user.update', 'user.delete', 'device.create', 'device.update',
  'device.delete', 'device.rotate_token', 'command.create', 'command.cancel', 'login.success',
  'login.failure'];
const TARGET_TYPES = ['user', 'device', 'command'];

function select(name, values) {
  return h('select', { name },
    h('option', { value: '' }, 'Any'),
    values.map((v) => h('option', { value: v }, v)));
}

// The form's values as the API's query parameters (empty ones left out).
function readFilters(form) {
  const get = (name) => form.elements.namedItem(name).value.trim();
  const time = (name) => (get(name) ? rfc3339(new Date(get(name))) : '');
  return {
    actor_id: get('actor_id'),
    action: get('action'),
    target_type: get('target_type'),
    target_id: get('target_id'),
    from: time('from'),
    to: time('to'),
  };
}

function entryRow(entry) {
  const target = entry.target_id === null ? entry.target_type : `${entry.target_type} #${entry.target_id}`;
  return h('tr', { dataset: { auditId: entry.id, action: entry.action } },
    h('td', { dataset: { label: 'Time' } }, h('time', { datetime: entry.at, title: entry.at }, formatDateTime(entry.at))),
    h('td', { dataset: { label: 'Actor' } }, entry.actor_id === null ? h('span', { class: 'muted' }, 'none') : `user #${entry.actor_id}`),
    h('td', { dataset: { label: 'Action' } }, h('span', { class: 'tag' }, entry.action)),
    h('td', { dataset: { label: 'Target' } }, target),
    h('td', { dataset: { label: 'Changes' } }, h('code', { class: 'audit-changes' }, JSON.stringify(entry.changes))),
    h('td', { dataset: { label: 'Address' } }, entry.client_addr ?? h('span', { class: 'muted' }, 'unknown')),
    h('td', { dataset: { label: 'Request id' } }, h('code', null, entry.request_id ?? '')));
}

export async function auditView(root, ctx) {
  const form = h('form', { class: 'filters', id: 'audit-filters' },
    field('Actor id', h('input', { name: 'actor_id', type: 'number', min: '1', step: '1', inputmode: 'numeric' })),
    field('Action', select('action', ACTIONS)),
    field('Target', select('target_type', TARGET_TYPES)),
    field('Target id', h('input', { name: 'target_id', type: 'number', min: '1', step: '1', inputmode: 'numeric' })),
    field('From', h('input', { name: 'from', type: 'datetime-local' })),
    field('To', h('input', { name: 'to', type: 'datetime-local' })),
    h('button', { class: 'btn btn-primary', type: 'submit' }, 'Apply'));
  const tbody = h('tbody');
  const more = h('button', { class: 'btn', type: 'button', hidden: true }, 'Load more');
  const body = h('div');
  const state = { cursor: null, seq: 0, filters: {} };

  async function load(append) {
    state.seq += 1;
    const seq = state.seq;
    if (!append) {
      mount(body, spinner('Loading the audit log…'));
    }
    try {
      const page = await api.get(`/audit${query({ ...state.filters, limit: PAGE, cursor: append ? state.cursor : null })}`);
      if (seq !== state.seq || !ctx.isCurrent()) {
        return;
      }
      state.cursor = page.next_cursor;
      more.hidden = !state.cursor;
      if (!append) {
        tbody.replaceChildren();
      }
      page.items.forEach((e) => tbody.appendChild(entryRow(e)));
      if (!tbody.children.length) {
        mount(body, emptyState('No entries', 'Nothing in the audit log matches these filters.'));
        return;
      }
      mount(body, h('div', { class: 'table-wrap' },
        h('table', { class: 'table responsive', id: 'audit-table' },
          h('thead', null, h('tr', null, ['Time', 'Actor', 'Action', 'Target', 'Changes', 'Address', 'Request id'].map((t) => h('th', { scope: 'col' }, t)))),
          tbody)), h('div', { class: 'table-footer' }, more));
    } catch (err) {
      if (seq === state.seq) {
        mount(body, errorState(err, () => load(false)));
      }
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    state.filters = readFilters(form);
    load(false);
  });
  form.addEventListener('change', (event) => {
    if (event.target.tagName === 'SELECT') {
      state.filters = readFilters(form);
      load(false);
    }
  });
  more.addEventListener('click', () => load(true));

  mount(root, pageHeader('Audit log'), form, body);
  await load(false);
}
