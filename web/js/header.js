// The top bar (brand, navigation, alert badge, user menu) and the connection
// banner that tells the user when live updates are interrupted.

import { h, icon, mount } from './dom.js';
import { logout } from './auth.js';
import { onAlertsChange, unacknowledgedCount, isTruncated, canAskNotificationPermission, askNotificationPermission } from './alerts.js';
import { parseHash } from './router.js';
import { alertsHrefFor, homeFor } from './paths.js';
import { toast } from './ui.js';
import { chatButton } from './chat-ui.js';
import { onChatChange, totalUnread } from './chat.js';

let stopBadge = null;
let stopChatBadge = null;
// Document-level listeners of the current header, removed when it is redrawn.
let headerListeners = new AbortController();

function navLinks(user) {
  if (user.role === 'admin') {
    return [
      { href: '#/admin/devices', label: 'Devices', match: /^\/admin\/devices/ },
      { href: '#/admin/users', label: 'Users', match: /^\/admin\/users/ },
      { href: '#/admin/alerts', label: 'Alerts', match: /^\/admin\/alerts/ },
      { href: '#/admin/chat', label: 'Support', match: /^\/admin\/chat/, chat: true },
      { href: '#/admin/audit', label: 'Audit', match: /^\/admin\/audit/ },
    ];
  }
  return [
    { href: '#/', label: 'My devices', match: /^\/(devices\/\d+)?$/ },
    { href: '#/alerts', label: 'Alerts', match: /^\/alerts/ },
  ];
}

function markActive(nav) {
  const { path } = parseHash();
  for (const link of nav.querySelectorAll('a')) {
    const active = link.matcher.test(path);
    link.classList.toggle('active', active);
    if (active) {
      link.setAttribute('aria-current', 'page');
    } else {
      link.removeAttribute('aria-current');
    }
  }
}

function alertBadge(user) {
  const count = h('span', { class: 'badge-count', hidden: true });
  const link = h('a', { class: 'icon-btn bell', href: alertsHrefFor(user) }, icon('bell'), count);
  const update = () => {
    const n = unacknowledgedCount();
    count.textContent = n > 99 ? '99+' : `${n}${isTruncated() ? '+' : ''}`;
    count.hidden = n === 0;
    link.setAttribute('aria-label', n === 0 ? 'Alerts: none unacknowledged' : `Alerts: ${n} unacknowledged`);
    link.title = link.getAttribute('aria-label');
  };
  update();
  stopBadge = onAlertsChange(update);
  return link;
}

// The admins' unread count next to the Support link.
function supportCount() {
  const count = h('span', { class: 'nav-count', hidden: true });
  const update = () => {
    const n = totalUnread();
    count.textContent = n > 99 ? '99+' : String(n);
    count.hidden = n === 0;
    count.setAttribute('aria-label', `${n} unread`);
  };
  update();
  stopChatBadge = onChatChange(update);
  return count;
}

function closeMenu(menu) {
  menu.open = false;
}

function userMenu(user) {
  const menu = h('details', { class: 'user-menu' });
  const initials = (user.name || user.email).trim().split(/\s+/).map((w) => w[0]).slice(0, 2).join('').toUpperCase();
  const items = [
    h('a', { class: 'menu-item', href: '#/account' }, 'Account settings'),
    h('a', { class: 'menu-item', href: '#/notifications' }, 'Notifications'),
  ];
  if (canAskNotificationPermission()) {
    const enable = h('button', { class: 'menu-item', type: 'button' }, 'Enable desktop notifications');
    enable.addEventListener('click', async () => {
      const answer = await askNotificationPermission();
      toast(answer === 'granted' ? 'Desktop notifications are on.' : 'Desktop notifications stay off.', { kind: 'info' });
      enable.remove();
    });
    items.push(enable);
  }
  items.push(h('button', { class: 'menu-item', type: 'button', on: { click: () => logout() } }, 'Log out'));
  menu.append(
    h('summary', { class: 'user-button', 'aria-label': `Account menu for ${user.name}` },
      h('span', { class: 'avatar', 'aria-hidden': 'true' }, initials || '?'),
      h('span', { class: 'user-name' }, user.name)),
    h('div', { class: 'menu-panel' },
      h('div', { class: 'menu-head' },
        h('strong', null, user.name),
        h('span', { class: 'muted' }, user.email),
        h('span', { class: ['tag', user.role === 'admin' ? 'tag-accent' : null] }, user.role === 'admin' ? 'Administrator' : 'Owner')),
      items));
  // Close on outside click, Escape, or after choosing an item.
  document.addEventListener('click', (event) => {
    if (!menu.contains(event.target)) {
      closeMenu(menu);
    }
  }, { signal: headerListeners.signal });
  menu.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && menu.open) {
      closeMenu(menu);
      menu.querySelector('summary').focus();
    }
  });
  menu.querySelector('.menu-panel').addEventListener('click', (event) => {
    if (event.target.closest('.menu-item')) {
      closeMenu(menu);
    }
  });
  return menu;
}

export function renderHeader(user) {
  const bar = document.getElementById('topbar');
  if (stopBadge) {
    stopBadge();
    stopBadge = null;
  }
  if (stopChatBadge) {
    stopChatBadge();
    stopChatBadge = null;
  }
  headerListeners.abort();
  headerListeners = new AbortController();
  if (!user) {
    mount(bar);
    bar.hidden = true;
    return;
  }
  const nav = h('nav', { class: 'nav', 'aria-label': 'Main' },
    navLinks(user).map((item) => {
      const a = h('a', { href: item.href }, item.label, item.chat ? supportCount() : null);
      a.matcher = item.match;
      return a;
    }));
  // Clients open their chat from the header; admins have the Support page.
  const chat = user.role === 'client' ? chatButton() : null;
  if (chat) {
    stopChatBadge = chat.stop;
  }
  mount(bar,
    h('a', { class: 'brand', href: homeFor(user) }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, icon('bolt')), h('span', null, 'Wattline')),
    nav,
    h('div', { class: 'topbar-actions' }, chat ? chat.el : null, alertBadge(user), userMenu(user)));
  bar.hidden = false;
  markActive(nav);
  document.addEventListener('routechange', () => markActive(nav), { signal: headerListeners.signal });
}

const BANNER_TEXT = {
  reconnecting: 'Live updates interrupted. Reconnecting…',
  offline: 'You are offline. Live updates resume when the connection is back.',
};

export function renderConnectionBanner(status) {
  const banner = document.getElementById('conn-banner');
  const text = BANNER_TEXT[status];
  banner.hidden = !text;
  banner.dataset.status = status;
  mount(banner, text ? [h('span', { class: 'spinner small', 'aria-hidden': 'true' }), h('span', null, text)] : []);
}
