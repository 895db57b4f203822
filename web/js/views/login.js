// Login page.

import { h, icon, mount } from '../dom.js';
import { login } from '../auth.js';
import { ApiError } from '../api.js';
import { field } from '../ui.js';
import { homeFor } from '../paths.js';

function loginErrorText(err) {
  if (!(err instanceof ApiError)) {
    return 'Something went wrong. Please try again.';
  }
  if (err.status === 401) {
    return 'Wrong email or password.';
  }
  if (err.status === 429) {
    const minutes = err.retryAfter ? Math.ceil(err.retryAfter / 60) : 15;
    return `Too many failed attempts. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`;
  }
  return err.message;
}

// Only an in-app path may be the target after login (no open redirect).
function nextTarget(query, user) {
  const next = query.get('next');
  return next && /^\/[a-z0-9/?=&%-]*$/i.test(next) ? `#${next}` : homeFor(user);
}

export function loginView(root, ctx) {
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const submit = h('button', { class: 'btn btn-primary btn-block', type: 'submit' }, 'Log in');
  const form = h('form', { class: 'form', novalidate: true },
    field('Email', email),
    field('Password', password),
    error,
    submit);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    if (!email.value.trim() || !password.value) {
      error.textContent = 'Enter your email and password.';
      error.hidden = false;
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Logging in…';
    try {
      const user = await login(email.value.trim(), password.value);
      location.hash = nextTarget(ctx.query, user);
    } catch (err) {
      error.textContent = loginErrorText(err);
      error.hidden = false;
      password.select();
    } finally {
      submit.disabled = false;
      submit.textContent = 'Log in';
    }
  });

  mount(root, h('section', { class: 'login' },
    h('div', { class: 'login-card' },
      h('div', { class: 'login-brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, icon('bolt')), 'Wattline'),
      h('h1', null, 'Log in'),
      h('p', { class: 'muted' }, 'Energy monitoring for your devices.'),
      form)));
  email.focus();
}
