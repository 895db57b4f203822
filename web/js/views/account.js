// Account settings: the caller's name and password (PATCH /me).

import { h, mount } from '../dom.js';
import { api } from '../api.js';
import { updateUser } from '../auth.js';
import { clearFormErrors, field, pageHeader, showFormError, toast } from '../ui.js';

function section(title, form) {
  return h('section', { class: 'panel narrow' }, h('h2', { class: 'panel-title' }, title), form);
}

function formWith(fields, submitLabel, onSubmit) {
  const submit = h('button', { class: 'btn btn-primary', type: 'submit' }, submitLabel);
  const form = h('form', { class: 'form', novalidate: true }, fields, h('p', { class: 'form-error', role: 'alert', hidden: true }), h('div', { class: 'form-actions' }, submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    submit.disabled = true;
    try {
      await onSubmit(form);
    } catch (err) {
      showFormError(form, err);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export function accountView(root, ctx) {
  const name = h('input', { name: 'name', required: true, maxlength: '200', value: ctx.user.name, autocomplete: 'name' });
  const profile = formWith([field('Email', h('input', { type: 'email', value: ctx.user.email, readOnly: true }), 'Ask an administrator to change your email.'), field('Name', name)], 'Save name', async () => {
    const user = await api.patch('/me', { name: name.value.trim() });
    updateUser(user);
    toast('Your name was saved.', { kind: 'success' });
  });

  const current = h('input', { type: 'password', name: 'current_password', required: true, autocomplete: 'current-password' });
  const next = h('input', { type: 'password', name: 'password', required: true, minlength: '10', autocomplete: 'new-password' });
  const password = formWith([field('Current password', current), field('New password', next, 'At least 10 characters.')], 'Change password', async (form) => {
    await api.patch('/me', { password: next.value, current_password: current.value });
    form.reset();
    toast('Your password was changed.', { kind: 'success' });
  });

  mount(root, pageHeader('Account'), section('Profile', profile), section('Password', password));
}
