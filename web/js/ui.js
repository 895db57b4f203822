// Shared UI pieces: toasts, dialogs, form helpers, loading and empty states.

import { h, icon } from './dom.js';
import { ApiError } from './api.js';

const TOAST_MS = { info: 5000, success: 4000, error: 8000, alert: 12000, warning: 10000 };

// toast('Saved', {kind: 'success'}); kind 'alert' and 'error' are announced
// assertively. `action` is {label, href} for a link inside the toast.
export function toast(message, { kind = 'info', title, action } = {}) {
  const host = document.getElementById('toasts');
  const close = h('button', { class: 'toast-close', type: 'button', 'aria-label': 'Dismiss' }, '×');
  const el = h(
    'div',
    { class: ['toast', `toast-${kind}`], role: kind === 'error' || kind === 'alert' ? 'alert' : 'status' },
    h('div', { class: 'toast-body' },
      title ? h('strong', { class: 'toast-title' }, title) : null,
      h('span', { class: 'toast-message' }, message),
      action ? h('a', { class: 'toast-action', href: action.href }, action.label) : null),
    close,
  );
  let timer = 0;
  const dismiss = () => {
    clearTimeout(timer);
    el.classList.add('leaving');
    setTimeout(() => el.remove(), 200);
  };
  const arm = () => {
    timer = setTimeout(dismiss, TOAST_MS[kind] || 5000);
  };
  close.addEventListener('click', dismiss);
  if (action) {
    el.querySelector('.toast-action').addEventListener('click', dismiss);
  }
  // Hovering or focusing a toast keeps it open long enough to read.
  el.addEventListener('mouseenter', () => clearTimeout(timer));
  el.addEventListener('mouseleave', arm);
  el.addEventListener('focusin', () => clearTimeout(timer));
  host.appendChild(el);
  while (host.children.length > 5) {
    host.firstElementChild.remove();
  }
  arm();
  return dismiss;
}

// Reports a failed request: the problem's detail is what the user reads.
export function toastError(err, context) {
  const message = err instanceof ApiError ? err.message : 'Something went wrong.';
  toast(message, { kind: 'error', title: context });
}

export function spinner(label = 'Loading…') {
  return h('div', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', null, label));
}

export function emptyState(title, text, action) {
  return h('div', { class: 'empty' }, icon('bolt'), h('h2', null, title), text ? h('p', null, text) : null, action || null);
}

export function errorState(err, retry) {
  return h('div', { class: 'empty error-state', role: 'alert' },
    h('h2', null, 'Could not load this page'),
    h('p', null, err instanceof ApiError ? err.message : 'Something went wrong.'),
    retry ? h('button', { class: 'btn', type: 'button', on: { click: retry } }, 'Try again') : null);
}

export function pageHeader(title, ...actions) {
  return h('div', { class: 'page-header' }, h('h1', null, title), actions.length ? h('div', { class: 'page-actions' }, actions) : null);
}

// A labelled form field. `input` is the control element; its id ties the label.
let fieldSeq = 0;
export function field(label, input, hint) {
  if (!input.id) {
    fieldSeq += 1;
    input.id = `f${fieldSeq}`;
  }
  const hintEl = hint ? h('small', { class: 'hint', id: `${input.id}-hint` }, hint) : null;
  if (hintEl) {
    input.setAttribute('aria-describedby', hintEl.id);
  }
  return h('div', { class: 'field' },
    h('label', { for: input.id }, label),
    input,
    hintEl,
    h('small', { class: 'field-error', id: `${input.id}-error`, hidden: true }));
}

// Shows a problem that names a field next to that field; otherwise in the
// form's own error box.
export function showFormError(form, err) {
  clearFormErrors(form);
  const name = err instanceof ApiError && err.field ? err.field : null;
  const input = name ? form.elements.namedItem(name) : null;
  if (input && input.id) {
    const slot = form.querySelector(`#${CSS.escape(input.id)}-error`);
    slot.textContent = err.message;
    slot.hidden = false;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
    return;
  }
  const box = form.querySelector('.form-error');
  box.textContent = err instanceof ApiError ? err.message : 'Something went wrong.';
  box.hidden = false;
}

export function clearFormErrors(form) {
  form.querySelectorAll('.field-error, .form-error').forEach((el) => {
    el.textContent = '';
    el.hidden = true;
  });
  form.querySelectorAll('[aria-invalid]').forEach((el) => el.removeAttribute('aria-invalid'));
}

let dialogSeq = 0;

// Opens a modal <dialog>. `build(close)` returns the dialog's content. The
// dialog is removed from the document when it closes; resolves with the value
// passed to close().
export function openDialog(title, build, { wide = false } = {}) {
  return new Promise((resolve) => {
    const heading = h('h2', { class: 'dialog-title' }, title);
    const dialog = h('dialog', { class: ['dialog', wide ? 'dialog-wide' : null] });
    dialogSeq += 1;
    heading.id = `dialog-title-${dialogSeq}`;
    dialog.setAttribute('aria-labelledby', heading.id);
    let result;
    const close = (value) => {
      result = value;
      dialog.close();
    };
    dialog.append(heading, build(close));
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(result);
    });
    document.body.appendChild(dialog);
    dialog.showModal();
  });
}

// A form dialog. `fields` builds the form's inner fields; `submit(form)`
// performs the request and returns the value to resolve with; its errors are
// shown inside the dialog, which stays open.
export function formDialog(title, { fields, submit, submitLabel = 'Save', danger = false }) {
  return openDialog(title, (close) => {
    const submitBtn = h('button', { class: ['btn', danger ? 'btn-danger' : 'btn-primary'], type: 'submit' }, submitLabel);
    const form = h('form', { class: 'form', novalidate: true },
      fields,
      h('p', { class: 'form-error', role: 'alert', hidden: true }),
      h('div', { class: 'dialog-actions' },
        h('button', { class: 'btn', type: 'button', on: { click: () => close(undefined) } }, 'Cancel'),
        submitBtn));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearFormErrors(form);
      if (!form.checkValidity()) {
        const bad = [...form.elements].find((el) => el.validity && !el.validity.valid);
        showFormError(form, new ApiError(422, { detail: bad.validationMessage, field: bad.name }));
        return;
      }
      submitBtn.disabled = true;
      try {
        close(await submit(form));
      } catch (err) {
        showFormError(form, err);
      } finally {
        submitBtn.disabled = false;
      }
    });
    return form;
  });
}

// A yes/no question; resolves true when confirmed.
export async function confirmDialog(title, message, { confirmLabel = 'Delete', danger = true } = {}) {
  const answer = await openDialog(title, (close) => h('div', null,
    h('p', null, message),
    h('div', { class: 'dialog-actions' },
      h('button', { class: 'btn', type: 'button', on: { click: () => close(false) } }, 'Cancel'),
      h('button', { class: ['btn', danger ? 'btn-danger' : 'btn-primary'], type: 'button', on: { click: () => close(true) } }, confirmLabel))));
  return answer === true;
}

// Shows a secret once (a device token, a webhook secret), with a copy button.
export function tokenDialog(title, token, intro, {
  label = 'Device token',
  warning = 'This token is shown only once. Store it on the device now; rotate the token if it is lost.',
} = {}) {
  return openDialog(title, (close) => {
    const input = h('input', { class: 'token-value', type: 'text', readOnly: true, value: token, 'aria-label': label, spellcheck: 'false' });
    const status = h('span', { class: 'copy-status', role: 'status' });
    const copy = h('button', { class: 'btn btn-primary', type: 'button', on: { click: async () => {
      status.textContent = (await copyText(token, input)) ? 'Copied to the clipboard.' : 'Select the token and copy it by hand.';
    } } }, icon('copy'), 'Copy');
    input.addEventListener('focus', () => input.select());
    return h('div', null,
      h('p', null, intro),
      h('p', { class: 'callout callout-warn' }, warning),
      h('div', { class: 'token-row' }, input, copy),
      status,
      h('div', { class: 'dialog-actions' }, h('button', { class: 'btn', type: 'button', on: { click: () => close() } }, 'Done')));
  }, { wide: true });
}

export async function copyText(text, fallbackInput) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard API (insecure origin, permission denied): select the text
    // so that Ctrl+C works.
    if (fallbackInput) {
      fallbackInput.focus();
      fallbackInput.select();
    }
    return false;
  }
}

export function badge(text, kind) {
  return h('span', { class: ['tag', kind ? `tag-${kind}` : null] }, text);
}
