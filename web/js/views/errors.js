// Pages for unknown routes and for routes of the other role.

import { h, mount } from '../dom.js';
import { homeFor } from '../paths.js';

function message(root, ctx, title, text) {
  mount(root, h('section', { class: 'empty page-error' },
    h('h1', null, title),
    h('p', null, text),
    h('a', { class: 'btn btn-primary', href: homeFor(ctx.user) }, 'Go to my home page')));
}

export function notFoundView(root, ctx) {
  message(root, ctx, 'Page not found', 'There is nothing at this address.');
}

export function forbiddenView(root, ctx) {
  message(root, ctx, 'This page is not available to you',
    ctx.user.role === 'admin' ? 'This page belongs to device owners.' : 'This page is for administrators.');
}
