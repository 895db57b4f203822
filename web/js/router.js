// Hash router with a role guard. Routes are data: a pattern, the roles that may
// open it, and a view. A view is `render(root, ctx)`, which may return a
// cleanup function (unsubscribe, stop timers) called when the route changes.
// The guard runs before a view is rendered, so a client typing an admin URL
// never triggers a single admin API request.

import { mount } from './dom.js';

let routes = [];
let context = () => ({});
let current = { cleanup: null, token: 0, guard: null };

export function defineRoutes(table, makeContext) {
  routes = table;
  context = makeContext;
}

// "#/devices/7?view=month" → {path: "/devices/7", query: URLSearchParams}
export function parseHash(hash = location.hash) {
  const raw = hash.startsWith('#') ? hash.slice(1) : hash;
  const [path, search = ''] = raw.split('?');
  return { path: path || '/', query: new URLSearchParams(search) };
}

export function navigate(hash) {
  if (location.hash === hash) {
    render();
  } else {
    location.hash = hash;
  }
}

// Rewrites the query part of the current route without re-rendering (a view
// that changes its own date keeps its state; the URL stays shareable).
export function replaceQuery(params) {
  const { path } = parseHash();
  const q = new URLSearchParams(params).toString();
  history.replaceState(null, '', `#${path}${q ? `?${q}` : ''}`);
}

function match(path) {
  for (const route of routes) {
    const m = route.pattern.exec(path);
    if (m) {
      return { route, params: m.slice(1) };
    }
  }
  return null;
}

// Renders the route for the current hash. `guard(route)` returns null to go
// ahead, or {redirect} / {view} to divert.
export async function render(guard = current.guard) {
  const { path, query } = parseHash();
  const main = document.getElementById('main');
  teardown();
  const token = current.token;
  const found = match(path);
  const diverted = guard ? guard(found && found.route, path) : null;
  if (diverted && diverted.redirect) {
    location.replace(diverted.redirect);
    return;
  }
  const view = diverted && diverted.view ? diverted.view : found.route.view;
  const title = !diverted && found.route.title;
  document.title = title ? `${title} · Wattline` : 'Wattline';
  mount(main);
  window.scrollTo(0, 0);
  const ctx = { ...context(), params: found ? found.params : [], query, isCurrent: () => token === current.token };
  const cleanup = await view(main, ctx);
  // Keyboard and screen-reader users land on the new page, not on the link
  // they used (unless the view put the focus somewhere itself).
  if (token === current.token && !main.contains(document.activeElement) && !document.querySelector('dialog[open]')) {
    main.focus({ preventScroll: true });
  }
  if (typeof cleanup === 'function') {
    if (token === current.token) {
      current.cleanup = cleanup;
    } else {
      cleanup(); // the user navigated away while the view was loading
    }
  }
  document.dispatchEvent(new CustomEvent('routechange', { detail: { path } }));
}

// Runs the current view's cleanup now (on logout, before the session's state
// is torn down under it).
export function teardown() {
  current.token += 1;
  if (current.cleanup) {
    const cleanup = current.cleanup;
    current.cleanup = null;
    cleanup();
  }
}

export function startRouter(guard) {
  current.guard = guard;
  window.addEventListener('hashchange', () => render());
  return render();
}
