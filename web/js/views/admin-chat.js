// Admins' support inbox: every client's conversation, most recently active
// first, with unread counts and "typing…", next to the open conversation.
// The conversations and their messages live in chat.js, so switching from
// one client to another and back loses neither messages nor drafts. On a
// phone the two panes take turns: the list, or the conversation with a way
// back to the list.

import { h, mount } from '../dom.js';
import { conversation, conversationList, isMine, loadThread, onChatChange, refreshConversations, showConversation, typingIn } from '../chat.js';
import { chatThread } from '../chat-ui.js';
import { emptyState, errorState, pageHeader, spinner, toastError } from '../ui.js';
import { formatDateTime, timeAgo } from '../format.js';

const INBOX_REFRESH_MS = 30000;

function inboxRow(conv, selected) {
  const last = conv.last_message;
  const who = typingIn(conv.id);
  const preview = who
    ? h('span', { class: 'chat-row-typing' }, 'typing…')
    : last ? `${isMine(last) ? 'You: ' : ''}${last.text}` : h('span', { class: 'muted' }, 'No messages yet');
  const unread = conv.unread_count > 0
    ? h('span', { class: 'chat-unread', 'aria-label': `${conv.unread_count} unread` }, String(conv.unread_count))
    : null;
  return h('li', { dataset: { conversationId: conv.id } },
    h('a', {
      class: ['chat-row', conv.unread_count > 0 ? 'has-unread' : null],
      href: `#/admin/chat/${conv.id}`,
      'aria-current': conv.id === selected ? 'page' : null,
    },
    h('span', { class: 'chat-row-head' },
      h('strong', { class: 'chat-row-name' }, conv.user.name),
      h('time', { class: 'chat-row-time muted', datetime: conv.updated_at, title: formatDateTime(conv.updated_at) }, timeAgo(conv.updated_at)),
      unread),
    h('span', { class: 'chat-row-email muted' }, conv.user.email),
    h('span', { class: 'chat-preview' }, preview)));
}

export async function adminChatView(root, ctx) {
  const selected = ctx.params[0] ? Number(ctx.params[0]) : null;
  mount(root, pageHeader('Support'), spinner('Loading conversations…'));
  try {
    await refreshConversations();
  } catch (err) {
    mount(root, pageHeader('Support'), errorState(err, () => adminChatView(root, ctx)));
    return undefined;
  }
  if (!ctx.isCurrent()) {
    return undefined;
  }
  const list = h('ul', { class: 'chat-inbox-list' });
  const inbox = h('section', { class: 'chat-inbox', 'aria-label': 'Conversations' }, list);
  const pane = h('section', { class: 'chat-conversation', 'aria-label': 'Conversation' });
  const refreshBtn = h('button', { class: 'btn', type: 'button' }, 'Refresh');
  refreshBtn.addEventListener('click', () => refreshConversations().catch((err) => toastError(err, 'Could not refresh')));
  mount(root, pageHeader('Support', refreshBtn), h('div', { class: ['chat-layout', selected ? 'has-selection' : null] }, inbox, pane));

  const drawInbox = () => {
    const items = conversationList();
    mount(list, items.length
      ? items.map((conv) => inboxRow(conv, selected))
      : h('li', null, emptyState('No conversations yet', 'When a client writes to support, the conversation appears here.')));
  };

  let thread = null;
  const conv = selected ? conversation(selected) : null;
  if (!selected) {
    mount(pane, h('p', { class: 'chat-pick muted' }, 'Choose a conversation to read and answer it.'));
  } else if (!conv) {
    mount(pane, emptyState('No such conversation', 'It may have been removed with its client.'),
      h('a', { class: 'btn', href: '#/admin/chat' }, 'All conversations'));
  } else {
    thread = chatThread(conv.id, { theirName: () => conv.user.name });
    mount(pane,
      h('header', { class: 'chat-conversation-head' },
        h('a', { class: 'chat-back', href: '#/admin/chat' }, '← All conversations'),
        h('h2', null, conv.user.name),
        h('span', { class: 'muted' }, conv.user.email)),
      thread.el);
    showConversation(conv.id);
    try {
      await loadThread(conv.id);
    } catch (err) {
      toastError(err, 'Could not load the conversation');
    }
    if (!ctx.isCurrent()) {
      return undefined;
    }
    thread.scrollToEnd();
    showConversation(conv.id); // what the page loaded is read too
    thread.focus();
  }
  drawInbox();
  // Another admin's reads are not sent to this one (the support side reads as
  // one, and reads go to the other side only): the counts are re-read now and then.
  const poll = setInterval(() => refreshConversations().catch(() => {}), INBOX_REFRESH_MS);
  const stop = onChatChange(() => {
    drawInbox();
    if (thread) {
      thread.draw();
    }
  });
  return () => {
    clearInterval(poll);
    stop();
    showConversation(null);
  };
}
