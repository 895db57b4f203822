// The support chat's state in this tab: the conversations (a client's one,
// or every client's for an admin), the messages loaded for each, drafts, and
// who is typing. Fed by the REST API (loading, sending, marking read) and by
// the live channel's chat.* messages; views redraw on onChatChange().
//
// Messages are sent over REST: the answer is the stored message, and the
// live chat.message that follows (to every session, this one included) is
// recognised by its id. Typing goes over the live channel only.

import { api, listAll, query } from './api.js';
import { live } from './ws.js';

const TYPING_SHOW_MS = 4000; // how long "typing…" stays without a new chat.typing
const TYPING_SEND_MS = 1500; // the server passes one on per 2 s; more is wasted
const PAGE = 100;

let me = null; // the logged-in user, or null
const conversations = new Map(); // id → conversation, as the API renders it
const threads = new Map(); // conversation id → {messages: Map id → message, loaded, complete}
const typing = new Map(); // conversation id → {name, timer}
const drafts = new Map(); // conversation id → unsent text
const listeners = new Set();
let shown = null; // the conversation on screen: its new messages are read at once
let lastTypingSent = 0;
let wasOnline = false;

export function onChatChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function changed() {
  for (const listener of [...listeners]) {
    listener();
  }
}

function mySide() {
  return me && me.role === 'admin' ? 'admin' : 'client';
}

function thread(id) {
  let t = threads.get(id);
  if (!t) {
    t = { messages: new Map(), loaded: false, complete: false };
    threads.set(id, t);
  }
  return t;
}

// Adds or updates a message; true when it was not known yet.
function remember(message) {
  const t = thread(message.conversation_id);
  const known = t.messages.get(message.id);
  t.messages.set(message.id, known && known.read_at && !message.read_at ? { ...message, read_at: known.read_at } : message);
  const conv = conversations.get(message.conversation_id);
  if (conv && (!conv.last_message || message.id >= conv.last_message.id)) {
    conv.last_message = t.messages.get(message.id);
    conv.updated_at = message.created_at;
  }
  return !known;
}

export function isChatUser() {
  return me !== null;
}

export function myConversation() {
  return me && me.role === 'client' ? [...conversations.values()][0] || null : null;
}

export function conversation(id) {
  return conversations.get(id) || null;
}

// Most recently active first.
export function conversationList() {
  const key = (c) => (c.last_message ? c.last_message.id : 0);
  return [...conversations.values()].sort((a, b) => key(b) - key(a) || b.updated_at.localeCompare(a.updated_at) || b.id - a.id);
}

export function totalUnread() {
  let n = 0;
  for (const conv of conversations.values()) {
    n += conv.unread_count;
  }
  return n;
}

// Oldest first.
export function messagesOf(id) {
  const t = threads.get(id);
  return t ? [...t.messages.values()].sort((a, b) => a.id - b.id) : [];
}

export function hasOlder(id) {
  const t = threads.get(id);
  return Boolean(t && t.loaded && !t.complete);
}

export function isMine(message) {
  return message.sender_role === mySide();
}

export function typingIn(id) {
  const t = typing.get(id);
  return t ? t.name : null;
}

export function draftOf(id) {
  return drafts.get(id) || '';
}

export function setDraft(id, text) {
  if (text) {
    drafts.set(id, text);
  } else {
    drafts.delete(id);
  }
}

async function loadPage(id, beforeId) {
  const page = await api.get(`/conversations/${id}/messages${query({ limit: PAGE, before_id: beforeId })}`);
  const t = thread(id);
  page.items.forEach(remember);
  if (!page.next_cursor) {
    t.complete = true;
  }
  t.loaded = true;
}

// The newest page of a conversation, once (later ones come live).
export async function loadThread(id) {
  if (!thread(id).loaded) {
    await loadPage(id);
    changed();
  }
}

export async function loadOlder(id) {
  const oldest = messagesOf(id)[0];
  await loadPage(id, oldest ? oldest.id : undefined);
  changed();
}

// Admins: every conversation (the inbox). Clients: their own one.
export async function refreshConversations() {
  if (!me) {
    return;
  }
  const items = me.role === 'admin'
    ? (await listAll('/conversations')).items
    : [await api.get('/me/conversation')];
  // A conversation no longer listed went with its client.
  const listed = new Set(items.map((conv) => conv.id));
  for (const id of [...conversations.keys()]) {
    if (!listed.has(id)) {
      conversations.delete(id);
      threads.delete(id);
      drafts.delete(id);
    }
  }
  for (const conv of items) {
    const t = threads.get(conv.id);
    const cached = conversations.get(conv.id);
    // A message that came live is newer than this list may be.
    if (cached && cached.last_message && (!conv.last_message || cached.last_message.id > conv.last_message.id)) {
      conv.last_message = cached.last_message;
      conv.updated_at = cached.updated_at;
    }
    conversations.set(conv.id, conv);
    if (conv.last_message && t) {
      remember(conv.last_message);
    }
  }
  changed();
}

export async function sendMessage(id, text) {
  const message = await api.post(`/conversations/${id}/messages`, { text });
  remember(message);
  drafts.delete(id);
  changed();
  return message;
}

// Called as the user types: tells the other side, at most every 1.5 s.
export function sendTyping(id) {
  const now = Date.now();
  if (now - lastTypingSent >= TYPING_SEND_MS && live.send({ type: 'chat.typing', conversation_id: id })) {
    lastTypingSent = now;
  }
}

// Marks what the other side wrote as read, if anything is unread.
async function markRead(id) {
  const conv = conversations.get(id);
  const unread = messagesOf(id).filter((m) => !isMine(m) && !m.read_at);
  if (!conv || (!conv.unread_count && !unread.length)) {
    return;
  }
  const newest = messagesOf(id).filter((m) => !isMine(m)).pop();
  if (!newest) {
    return;
  }
  conv.unread_count = 0;
  const at = new Date().toISOString();
  unread.forEach((m) => thread(id).messages.set(m.id, { ...m, read_at: at }));
  changed();
  try {
    await api.post(`/conversations/${id}/read`, { up_to_id: newest.id });
  } catch {
    // Read state is a courtesy: the next view of the conversation tries again.
  }
}

// The conversation now on screen (null: none). While it is shown in a
// visible tab, what arrives in it is read.
export function showConversation(id) {
  shown = id;
  if (id !== null && document.visibilityState === 'visible') {
    markRead(id);
  }
}

function setTyping(id, name) {
  const old = typing.get(id);
  clearTimeout(old && old.timer);
  if (name === null) {
    typing.delete(id);
    return;
  }
  const timer = setTimeout(() => {
    typing.delete(id);
    changed();
  }, TYPING_SHOW_MS);
  typing.set(id, { name, timer });
}

// The reader's side's messages are not what it read: the other side's are.
function applyRead(msg) {
  const conv = conversations.get(msg.conversation_id);
  const clientId = conv ? conv.user.id : me.id;
  const readerSide = msg.reader_id === clientId ? 'client' : 'admin';
  const t = threads.get(msg.conversation_id);
  if (t) {
    for (const [id, m] of t.messages) {
      if (m.sender_role !== readerSide && id <= msg.up_to_id && !m.read_at) {
        t.messages.set(id, { ...m, read_at: msg.read_at });
      }
    }
  }
  if (conv && conv.last_message && conv.last_message.sender_role !== readerSide && conv.last_message.id <= msg.up_to_id) {
    conv.last_message = { ...conv.last_message, read_at: conv.last_message.read_at || msg.read_at };
  }
}

async function receive(msg) {
  if (!me) {
    return;
  }
  if (msg.type === 'chat.message' || msg.type === 'chat.sent') {
    const m = msg.message;
    // A client's first message may be in a conversation this tab has not
    // seen: the list read now counts the message already.
    const fresh = !conversations.has(m.conversation_id);
    if (fresh) {
      await refreshConversations();
    }
    const conv = conversations.get(m.conversation_id);
    if (remember(m) && !isMine(m) && conv && !fresh) {
      conv.unread_count += 1;
      setTyping(m.conversation_id, null); // they stopped typing: they sent it
      if (shown === m.conversation_id && document.visibilityState === 'visible') {
        markRead(m.conversation_id);
      }
    }
  } else if (msg.type === 'chat.typing') {
    if (!conversations.has(msg.conversation_id)) {
      await refreshConversations(); // a client typing its first message
    }
    setTyping(msg.conversation_id, msg.name);
  } else if (msg.type === 'chat.read') {
    applyRead(msg);
  } else {
    return;
  }
  changed();
}

// After a reconnect the channel may have missed messages: read them again.
async function resync() {
  await refreshConversations();
  for (const [id, t] of threads) {
    if (t.loaded) {
      await loadPage(id);
    }
  }
  changed();
}

live.addEventListener('chat', (event) => {
  receive(event.detail).catch(() => {});
});
live.addEventListener('status', (event) => {
  const online = event.detail === 'online';
  if (online && wasOnline === 'lost' && me) {
    resync().catch(() => {});
  }
  wasOnline = online ? true : wasOnline ? 'lost' : false;
});
document.addEventListener('visibilitychange', () => {
  if (shown !== null && document.visibilityState === 'visible') {
    markRead(shown);
  }
});

export async function startChat(user) {
  stopChat();
  me = user;
  await refreshConversations();
}

export function stopChat() {
  me = null;
  shown = null;
  wasOnline = false;
  conversations.clear();
  threads.clear();
  drafts.clear();
  for (const t of typing.values()) {
    clearTimeout(t.timer);
  }
  typing.clear();
  changed();
}
