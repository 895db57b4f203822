// The support chat's pieces on screen: a conversation's thread (messages,
// "Seen", "typing…", the composer) used by the client's panel and the admin's
// conversation view alike, and the client's panel opened from the header.
// Message text goes into the page as text (h() makes text nodes), never as
// HTML: "<script>" in a message is shown as those characters.

import { h, icon, mount } from './dom.js';
import { ApiError } from './api.js';
import {
  draftOf, hasOlder, isMine, loadOlder, loadThread, messagesOf, myConversation, onChatChange, sendMessage, sendTyping,
  setDraft, showConversation, totalUnread, typingIn,
} from './chat.js';
import { formatDateTime, formatHour } from './format.js';
import { toast, toastError } from './ui.js';

function sameDay(a, b) {
  return a.toDateString() === b.toDateString();
}

function messageItem(m, { theirName }) {
  const at = new Date(m.created_at);
  const when = sameDay(at, new Date()) ? formatHour(at) : formatDateTime(m.created_at);
  const who = isMine(m) ? 'You' : theirName(m);
  return h('li', { class: ['chat-msg', isMine(m) ? 'mine' : 'theirs'], dataset: { messageId: m.id } },
    h('span', { class: 'sr-only' }, `${who}: `),
    h('p', { class: 'chat-text' }, m.text),
    h('span', { class: 'chat-meta' }, h('time', { datetime: m.created_at, title: formatDateTime(m.created_at) }, when)));
}

function sendError(err) {
  if (err instanceof ApiError && err.code === 'rate_limited') {
    return `You are sending messages too fast. Try again in ${err.retryAfter || 60} s.`;
  }
  return err instanceof ApiError ? err.message : 'The message could not be sent.';
}

// A conversation's thread. theirName(message) names the other side's sender.
// Returns {el, draw, focus}; draw() redraws from the chat state.
export function chatThread(id, { theirName }) {
  const log = h('ol', { class: 'chat-log', role: 'log', 'aria-label': 'Chat history', tabindex: '0' });
  const older = h('button', { class: 'btn btn-small chat-older', type: 'button', hidden: true }, 'Load earlier messages');
  const typingEl = h('p', { class: 'chat-typing', 'aria-live': 'polite' });
  const input = h('textarea', {
    class: 'chat-input', name: 'text', rows: 2, 'aria-label': 'Message', placeholder: 'Write a message…', value: draftOf(id),
  });
  const sendBtn = h('button', { class: 'btn btn-primary', type: 'submit' }, 'Send');
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const form = h('form', { class: 'chat-composer', novalidate: true }, input, sendBtn, error);

  older.addEventListener('click', () => loadOlder(id).catch((err) => toastError(err, 'Could not load earlier messages')));
  input.addEventListener('input', () => {
    setDraft(id, input.value);
    error.hidden = true;
    if (input.value.trim()) {
      sendTyping(id);
    }
  });
  // Enter sends, Shift+Enter starts a new line.
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const text = input.value;
    if (!text.trim()) {
      return;
    }
    sendBtn.disabled = true;
    try {
      await sendMessage(id, text);
      input.value = '';
      error.hidden = true;
    } catch (err) {
      error.textContent = sendError(err);
      error.hidden = false;
    } finally {
      sendBtn.disabled = false;
      input.focus();
    }
  });

  const draw = () => {
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    const messages = messagesOf(id);
    const items = messages.map((m) => messageItem(m, { theirName }));
    // "Seen" under this side's last message, once the other side read it.
    const lastMine = [...messages].reverse().find(isMine);
    if (lastMine && lastMine.read_at) {
      items.splice(messages.indexOf(lastMine) + 1, 0,
        h('li', { class: 'chat-seen', title: formatDateTime(lastMine.read_at) }, icon('check'), 'Seen'));
    }
    if (!messages.length) {
      items.push(h('li', { class: 'chat-empty muted' }, 'No messages yet. Say hello!'));
    }
    mount(log, items);
    older.hidden = !hasOlder(id);
    const who = typingIn(id);
    typingEl.textContent = who ? `${who} is typing…` : '';
    if (atBottom) {
      log.scrollTop = log.scrollHeight;
    }
  };

  draw();
  return {
    el: h('div', { class: 'chat-thread' }, older, log, typingEl, form),
    draw,
    focus: () => input.focus(),
    scrollToEnd: () => {
      log.scrollTop = log.scrollHeight;
    },
  };
}

// ---- the client's panel ------------------------------------------------------

let panel = null; // {el, stop, opener}

export function closeChatPanel({ restoreFocus = true } = {}) {
  if (!panel) {
    return;
  }
  const { el, stop, opener } = panel;
  panel = null;
  stop();
  showConversation(null);
  el.remove();
  if (opener) {
    opener.setAttribute('aria-expanded', 'false');
    if (restoreFocus && opener.isConnected) {
      opener.focus();
    }
  }
}

export function openChatPanel(opener) {
  const conv = myConversation();
  if (!conv) {
    toast('The support chat is not available right now. Try again in a moment.', { kind: 'info' });
    return;
  }
  if (panel) {
    panel.focus();
    return;
  }
  const thread = chatThread(conv.id, { theirName: () => 'Support' });
  const closeBtn = h('button', { class: 'icon-btn chat-close', type: 'button', 'aria-label': 'Close the chat' }, '×');
  const el = h('section', { id: 'chat-panel', class: 'chat-panel', role: 'dialog', 'aria-modal': 'false', 'aria-labelledby': 'chat-panel-title' },
    h('header', { class: 'chat-panel-head' },
      h('div', null,
        h('h2', { id: 'chat-panel-title' }, 'Support chat'),
        h('p', { class: 'muted' }, 'Questions about your meters? Write to the support team here.')),
      closeBtn),
    thread.el);
  closeBtn.addEventListener('click', () => closeChatPanel());
  el.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.stopPropagation();
      closeChatPanel();
    }
  });
  document.body.appendChild(el);
  panel = { el, stop: onChatChange(thread.draw), opener, focus: thread.focus };
  opener.setAttribute('aria-expanded', 'true');
  showConversation(conv.id);
  thread.focus();
  loadThread(conv.id)
    .then(() => {
      thread.scrollToEnd();
      showConversation(conv.id); // what the page loaded is read too
    })
    .catch((err) => toastError(err, 'Could not load the conversation'));
}

// The header's chat button, with the unread badge. Returns {el, stop}.
export function chatButton() {
  const count = h('span', { class: 'badge-count', hidden: true });
  const button = h('button', { class: 'icon-btn chat-btn', type: 'button', 'aria-expanded': 'false', 'aria-controls': 'chat-panel' },
    icon('chat'), count);
  const update = () => {
    const n = totalUnread();
    count.textContent = n > 99 ? '99+' : String(n);
    count.hidden = n === 0;
    const label = n === 0 ? 'Support chat' : `Support chat: ${n} unread`;
    button.setAttribute('aria-label', label);
    button.title = label;
  };
  button.addEventListener('click', () => (panel ? closeChatPanel() : openChatPanel(button)));
  update();
  return { el: button, stop: onChatChange(update) };
}
