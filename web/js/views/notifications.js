// Notification settings: which event reaches which channel (GET/PUT
// /me/notifications), and the caller's webhooks: add one (its secret is shown
// once, with a copy button), list, delete, and each one's recent deliveries.

import { h, mount } from '../dom.js';
import { api } from '../api.js';
import { formatDateTime } from '../format.js';
import { clearFormErrors, confirmDialog, emptyState, errorState, field, pageHeader, showFormError, spinner, toast, toastError, tokenDialog } from '../ui.js';

const EVENTS = [
  ['alert', 'Alerts', 'An hour went over its device\'s limit.'],
  ['forecast', 'Forecasts', 'An hour is on course to go over its limit.'],
  ['command', 'Commands', 'A device command changed status.'],
  ['device_status', 'Device status', 'A device went offline or came back.'],
];
const CHANNELS = [['websocket', 'This dashboard'], ['webhook', 'Webhooks']];

function section(title, ...children) {
  return h('section', { class: 'panel' }, h('h2', { class: 'panel-title' }, title), ...children);
}

function prefsForm(prefs) {
  const boxes = {};
  const rows = EVENTS.map(([event, label, hint]) => h('tr', null,
    h('th', { scope: 'row' }, h('strong', null, label), h('br'), h('small', { class: 'hint' }, hint)),
    CHANNELS.map(([channel, channelLabel]) => {
      const box = h('input', { type: 'checkbox', name: `${event}.${channel}`, 'aria-label': `${label}: ${channelLabel}` });
      box.checked = Boolean(prefs[event] && prefs[event][channel]);
      boxes[`${event}.${channel}`] = box;
      return h('td', { class: 'check' }, box);
    })));
  const submit = h('button', { class: 'btn btn-primary', type: 'submit' }, 'Save preferences');
  const form = h('form', { class: 'form', novalidate: true },
    h('div', { class: 'table-wrap' }, h('table', { class: 'table prefs-grid' },
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Event'),
        CHANNELS.map(([, label]) => h('th', { scope: 'col', class: 'check' }, label)))),
      h('tbody', null, rows))),
    h('p', { class: 'hint' }, 'Alerts are always kept in the Alerts list, whatever you choose here.'),
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    h('div', { class: 'form-actions' }, submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    const body = {};
    for (const [name] of EVENTS) {
      body[name] = {};
      for (const [channel] of CHANNELS) {
        body[name][channel] = boxes[`${name}.${channel}`].checked;
      }
    }
    submit.disabled = true;
    try {
      await api.put('/me/notifications', body);
      toast('Your notification preferences were saved.', { kind: 'success' });
    } catch (err) {
      showFormError(form, err);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function deliveriesTable(items) {
  if (!items.length) {
    return h('p', { class: 'hint' }, 'Nothing delivered yet.');
  }
  return h('div', { class: 'table-wrap' }, h('table', { class: 'table deliveries' },
    h('thead', null, h('tr', null, ['When', 'Event', 'Event id', 'Attempt', 'Status', 'Error'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', null, items.map((d) => h('tr', { dataset: { deliveryId: d.id } },
      h('td', null, formatDateTime(d.at)),
      h('td', null, d.event),
      h('td', { class: 'num' }, String(d.event_id)),
      h('td', { class: 'num' }, String(d.attempt)),
      h('td', null, h('span', { class: ['tag', d.error ? 'tag-danger' : 'tag-accent'] }, d.status_code === null ? 'no answer' : String(d.status_code))),
      h('td', { class: 'error' }, d.error || ''))))));
}

function webhookRow(hook, reload) {
  const details = h('div', { class: 'webhook-deliveries', hidden: true });
  const toggle = h('button', { class: 'btn btn-small', type: 'button' }, 'Deliveries');
  toggle.addEventListener('click', async () => {
    if (!details.hidden) {
      details.hidden = true;
      return;
    }
    mount(details, spinner());
    details.hidden = false;
    try {
      const page = await api.get(`/me/webhooks/${hook.id}/deliveries?limit=20`);
      mount(details, deliveriesTable(page.items));
    } catch (err) {
      mount(details, errorState(err));
    }
  });
  const remove = h('button', { class: 'btn btn-small btn-danger-ghost', type: 'button' }, 'Delete');
  remove.addEventListener('click', async () => {
    const ok = await confirmDialog('Delete this webhook?', `${hook.url} stops receiving events; deliveries not yet made are dropped.`);
    if (!ok) {
      return;
    }
    try {
      await api.del(`/me/webhooks/${hook.id}`);
      toast('The webhook was deleted.', { kind: 'success' });
      reload();
    } catch (err) {
      toastError(err, 'Could not delete the webhook');
    }
  });
  return h('li', { class: 'card webhook', dataset: { webhookId: hook.id } },
    h('div', { class: 'card-head' },
      h('h3', { class: 'card-title' }, hook.url),
      h('span', { class: ['tag', hook.active ? 'tag-accent' : 'tag-danger'] }, hook.active ? 'Active' : 'Inactive')),
    h('p', { class: 'card-meta' }, `Events: ${hook.events.join(', ')} · added ${formatDateTime(hook.created_at)}`),
    h('div', { class: 'form-actions' }, toggle, remove),
    details);
}

function addWebhookForm(reload) {
  const url = h('input', { type: 'url', name: 'url', required: true, maxlength: '2048', placeholder: 'https://example.com/hooks/wattline' });
  const boxes = EVENTS.map(([event, label]) => {
    const box = h('input', { type: 'checkbox', name: 'events', value: event });
    box.checked = event === 'alert' || event === 'device_status';
    return [box, h('label', null, box, label)];
  });
  const events = h('div', { class: 'field' }, h('span', { class: 'label' }, 'Events'),
    h('div', { class: 'webhook-events', role: 'group', 'aria-label': 'Events' }, boxes.map(([, label]) => label)),
    h('small', { class: 'field-error', id: 'events-error', hidden: true }));
  const submit = h('button', { class: 'btn btn-primary', type: 'submit' }, 'Add webhook');
  const form = h('form', { class: 'form', novalidate: true },
    field('URL', url, 'Each event is POSTed here, signed with the secret shown once after you add it.'),
    events,
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    h('div', { class: 'form-actions' }, submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    submit.disabled = true;
    try {
      const hook = await api.post('/me/webhooks', {
        url: url.value.trim(),
        events: boxes.filter(([box]) => box.checked).map(([box]) => box.value),
      });
      form.reset();
      reload();
      await tokenDialog('Webhook secret', hook.secret, `Deliveries to ${hook.url} carry Wattline-Signature, an HMAC-SHA256 made with this secret:`, {
        label: 'Webhook secret',
        warning: 'This secret is shown only once. Store it with your receiver now; to replace it, delete the webhook and add it again.',
      });
    } catch (err) {
      showFormError(form, err);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export function notificationsView(root) {
  const list = h('ul', { class: 'webhook-list card-grid' });
  const prefsHost = h('div', null, spinner());

  async function loadWebhooks() {
    try {
      const page = await api.get('/me/webhooks?limit=100');
      mount(list, page.items.length
        ? page.items.map((hook) => webhookRow(hook, loadWebhooks))
        : emptyState('No webhooks yet', 'Add one to hear of events when no dashboard is open.'));
    } catch (err) {
      mount(list, errorState(err, loadWebhooks));
    }
  }

  async function loadPrefs() {
    try {
      mount(prefsHost, prefsForm(await api.get('/me/notifications')));
    } catch (err) {
      mount(prefsHost, errorState(err, loadPrefs));
    }
  }

  mount(root,
    pageHeader('Notifications'),
    section('What reaches you where', prefsHost),
    section('Add a webhook', addWebhookForm(loadWebhooks)),
    section('Your webhooks', list));
  loadPrefs();
  loadWebhooks();
}
