// Admin: users table with search, create, edit (including the role), delete.

import { h, icon, mount } from '../dom.js';
import { api, query } from '../api.js';
import { confirmDialog, emptyState, errorState, field, formDialog, pageHeader, spinner, toast, toastError } from '../ui.js';
import { formatDateTime } from '../format.js';
import { updateUser } from '../auth.js';

const PAGE = 50;

function roleSelect(value) {
  return h('select', { name: 'role' },
    h('option', { value: 'client', selected: value === 'client' }, 'Owner (client)'),
    h('option', { value: 'admin', selected: value === 'admin' }, 'Administrator'));
}

function roleTag(role) {
  return h('span', { class: ['tag', role === 'admin' ? 'tag-accent' : null] }, role === 'admin' ? 'Admin' : 'Owner');
}

function readUserForm(form) {
  const get = (name) => form.elements.namedItem(name).value;
  return { email: get('email').trim(), name: get('name').trim(), role: get('role'), password: get('password') };
}

function createUserDialog() {
  return formDialog('New user', {
    submitLabel: 'Create user',
    fields: [
      field('Name', h('input', { name: 'name', required: true, maxlength: '200', autocomplete: 'off' })),
      field('Email', h('input', { name: 'email', type: 'email', required: true, autocomplete: 'off' })),
      field('Role', roleSelect('client')),
      field('Password', h('input', { name: 'password', type: 'password', required: true, minlength: '10', autocomplete: 'new-password' }), 'At least 10 characters. Share it with the user over a safe channel.'),
    ],
    submit: (form) => api.post('/users', readUserForm(form)),
  });
}

function editUserDialog(user) {
  return formDialog(`Edit ${user.name}`, {
    fields: [
      field('Name', h('input', { name: 'name', required: true, maxlength: '200', value: user.name })),
      field('Email', h('input', { name: 'email', type: 'email', required: true, value: user.email })),
      field('Role', roleSelect(user.role)),
      field('New password', h('input', { name: 'password', type: 'password', minlength: '10', autocomplete: 'new-password' }), 'Leave empty to keep the current password.'),
    ],
    submit: (form) => {
      const values = readUserForm(form);
      const changes = {};
      for (const key of ['name', 'email', 'role']) {
        if (values[key] !== user[key]) {
          changes[key] = values[key];
        }
      }
      if (values.password) {
        changes.password = values.password;
      }
      return Object.keys(changes).length ? api.patch(`/users/${user.id}`, changes) : user;
    },
  });
}

export async function usersView(root, ctx) {
  const search = h('input', { type: 'search', name: 'q', placeholder: 'Search by name or email', 'aria-label': 'Search users', autocomplete: 'off' });
  const newBtn = h('button', { class: 'btn btn-primary', type: 'button' }, icon('plus'), 'New user');
  const tbody = h('tbody');
  const more = h('button', { class: 'btn', type: 'button', hidden: true }, 'Load more');
  const body = h('div');
  const state = { cursor: null, seq: 0 };

  function row(user) {
    const self = user.id === ctx.user.id;
    const edit = h('button', { class: 'btn btn-small', type: 'button' }, 'Edit');
    const del = h('button', { class: 'btn btn-small btn-danger-ghost', type: 'button', disabled: self, title: self ? 'You cannot delete your own account' : null }, 'Delete');
    const tr = h('tr', { dataset: { userId: user.id } },
      h('td', { dataset: { label: 'Name' } }, h('strong', null, user.name), self ? h('span', { class: 'muted' }, ' (you)') : null),
      h('td', { dataset: { label: 'Email' } }, user.email),
      h('td', { dataset: { label: 'Role' } }, roleTag(user.role)),
      h('td', { dataset: { label: 'Created' } }, formatDateTime(user.created_at)),
      h('td', { class: 'actions', dataset: { label: 'Actions' } }, edit, del));
    edit.addEventListener('click', async () => {
      const updated = await editUserDialog(user);
      if (updated && updated !== user) {
        tr.replaceWith(row(updated));
        if (self) {
          updateUser(updated);
        }
        toast(`Saved ${updated.name}.`, { kind: 'success' });
      }
    });
    del.addEventListener('click', async () => {
      const ok = await confirmDialog(`Delete ${user.name}?`,
        `${user.email} will no longer be able to log in. Their devices are kept, with their data, and become unassigned.`,
        { confirmLabel: 'Delete user' });
      if (!ok) {
        return;
      }
      try {
        await api.del(`/users/${user.id}`);
        tr.remove();
        toast(`Deleted ${user.name}.`, { kind: 'success' });
      } catch (err) {
        toastError(err, 'Could not delete the user');
      }
    });
    return tr;
  }

  async function load(append) {
    state.seq += 1;
    const seq = state.seq;
    if (!append) {
      mount(body, spinner('Loading users…'));
    }
    try {
      const page = await api.get(`/users${query({ q: search.value.trim(), limit: PAGE, cursor: append ? state.cursor : null })}`);
      if (seq !== state.seq || !ctx.isCurrent()) {
        return;
      }
      state.cursor = page.next_cursor;
      more.hidden = !state.cursor;
      if (!append) {
        tbody.replaceChildren();
      }
      page.items.forEach((u) => tbody.appendChild(row(u)));
      if (!tbody.children.length) {
        mount(body, emptyState('No users found', search.value ? 'No user matches this search.' : null));
        return;
      }
      mount(body, h('div', { class: 'table-wrap' },
        h('table', { class: 'table responsive', id: 'users-table' },
          h('thead', null, h('tr', null, ['Name', 'Email', 'Role', 'Created', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
          tbody)), h('div', { class: 'table-footer' }, more));
    } catch (err) {
      if (seq === state.seq) {
        mount(body, errorState(err, () => load(false)));
      }
    }
  }

  let debounce = 0;
  search.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => load(false), 250);
  });
  more.addEventListener('click', () => load(true));
  newBtn.addEventListener('click', async () => {
    const created = await createUserDialog();
    if (created) {
      toast(`Created ${created.name}.`, { kind: 'success' });
      load(false);
    }
  });

  mount(root, pageHeader('Users', newBtn),
    h('div', { class: 'filters' }, h('div', { class: 'search' }, icon('search'), search)),
    body);
  await load(false);
  return () => clearTimeout(debounce);
}
