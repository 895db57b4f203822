// DOM builder. Every view builds its markup through h(), which puts data in
// through text nodes and DOM properties only, never through HTML parsing: a
// device named "<img src=x onerror=alert(1)>" is shown as those characters.
// It also refuses inline event-handler attributes and the style attribute, so
// nothing built here can trip the server's Content-Security-Policy.

const SVG_NS = 'http://www.w3.org/2000/svg';

// Properties set as DOM properties rather than attributes: they reflect the
// live state (an input's value, a checkbox's checked flag).
const PROPERTIES = new Set(['value', 'checked', 'selected', 'disabled', 'hidden', 'required', 'readOnly', 'multiple']);

function setProp(el, key, value) {
  if (value === undefined || value === null || value === false) {
    return;
  }
  if (key === 'class') {
    el.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
  } else if (key === 'dataset') {
    for (const [k, v] of Object.entries(value)) {
      el.dataset[k] = String(v);
    }
  } else if (key === 'on') {
    for (const [event, handler] of Object.entries(value)) {
      el.addEventListener(event, handler);
    }
  } else if (key === 'for') {
    el.htmlFor = value;
  } else if (key === 'text') {
    el.textContent = String(value);
  } else if (PROPERTIES.has(key)) {
    el[key] = value;
  } else if (key === 'style' || key.startsWith('on') || key === 'innerHTML' || key === 'srcdoc') {
    throw new Error(`dom: refusing to set "${key}"`);
  } else {
    el.setAttribute(key, value === true ? '' : String(value));
  }
}

function append(el, child) {
  if (child === undefined || child === null || child === false) {
    return;
  }
  if (Array.isArray(child)) {
    child.forEach((c) => append(el, c));
  } else if (child instanceof Node) {
    el.appendChild(child);
  } else {
    el.appendChild(document.createTextNode(String(child)));
  }
}

// h('button', {class: 'btn', on: {click}}, 'Save') → <button class="btn">Save</button>
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    setProp(el, key, value);
  }
  append(el, children);
  return el;
}

// Replaces an element's children.
export function mount(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
  return parent;
}

// Small inline icons from fixed path data (never from user input).
const ICONS = {
  bell: 'M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1Z',
  bolt: 'M13 2 4 14h6l-1 8 9-12h-6z',
  chevronLeft: 'M15.4 7.4 14 6l-6 6 6 6 1.4-1.4L10.8 12z',
  chevronRight: 'M8.6 16.6 10 18l6-6-6-6-1.4 1.4 4.6 4.6z',
  download: 'M12 16 7 11l1.4-1.4 2.6 2.6V4h2v8.2l2.6-2.6L17 11zm-7 4v-2h14v2z',
  copy: 'M16 1H4a2 2 0 0 0-2 2v14h2V3h12zm3 4H8a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h11a2 2 0 0 0 2-2V7a2 2 0 0 0-2-2Zm0 16H8V7h11z',
  plus: 'M19 13h-6v6h-2v-6H5v-2h6V5h2v6h6z',
  user: 'M12 12a4 4 0 1 0-4-4 4 4 0 0 0 4 4Zm0 2c-2.7 0-8 1.3-8 4v2h16v-2c0-2.7-5.3-4-8-4Z',
  pin: 'M12 2a7 7 0 0 0-7 7c0 5.2 7 13 7 13s7-7.8 7-13a7 7 0 0 0-7-7Zm0 9.5A2.5 2.5 0 1 1 14.5 9 2.5 2.5 0 0 1 12 11.5Z',
  clock: 'M12 2a10 10 0 1 0 10 10A10 10 0 0 0 12 2Zm0 18a8 8 0 1 1 8-8 8 8 0 0 1-8 8Zm.5-13H11v6l5.2 3.2.8-1.3-4.5-2.7Z',
  search: 'M15.5 14h-.8l-.3-.3A6.5 6.5 0 1 0 14 15.5l.3.3v.8l5 5 1.5-1.5zm-6 0A4.5 4.5 0 1 1 14 9.5 4.5 4.5 0 0 1 9.5 14Z',
  chat: 'M20 2H4a2 2 0 0 0-2 2v18l4-4h14a2 2 0 0 0 2-2V4a2 2 0 0 0-2-2Zm0 14H5.2L4 17.2V4h16z',
  check: 'M9 16.2 4.8 12l-1.4 1.4L9 19 21 7l-1.4-1.4z',
};

export function icon(name, label) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', 'icon');
  svg.setAttribute('focusable', 'false');
  if (label) {
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', label);
  } else {
    svg.setAttribute('aria-hidden', 'true');
  }
  const path = document.createElementNS(SVG_NS, 'path');
  path.setAttribute('d', ICONS[name]);
  path.setAttribute('fill', 'currentColor');
  svg.appendChild(path);
  return svg;
}
