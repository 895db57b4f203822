// Fetch wrapper for the Wattline API. It adds the access token, turns RFC 9457
// problem documents into ApiError, and on a 401 asks the session for a fresh
// token once and retries, so an access token that expired while the tab slept
// costs the user nothing.

export const API_BASE = '/api/v1';

export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(problem.detail || problem.title || `Request failed (${status})`);
    this.name = 'ApiError';
    this.status = status;
    this.code = problem.code || null;
    this.field = problem.field || null;
    this.title = problem.title || null;
    this.retryAfter = retryAfter;
  }
}

// The session (auth.js) registers itself here; api.js must not import it,
// because the session itself talks to the API.
let tokens = {
  current: () => null,
  refresh: async () => false,
};

export function setTokenSource(source) {
  tokens = source;
}

async function readProblem(res) {
  const type = res.headers.get('Content-Type') || '';
  if (type.includes('json')) {
    try {
      return await res.json();
    } catch {
      // A broken error body still leaves us the status line.
    }
  }
  return { title: res.statusText || `HTTP ${res.status}` };
}

function retryAfterSeconds(res) {
  const value = Number(res.headers.get('Retry-After'));
  return Number.isFinite(value) && value > 0 ? value : null;
}

async function send(method, path, { body, accept, auth }) {
  const headers = { Accept: accept || 'application/json' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
  }
  const token = auth ? tokens.current() : null;
  if (token) {
    headers.Authorization = `Bearer ${token}`;
  }
  try {
    return await fetch(API_BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, { title: 'Network error', detail: 'Cannot reach the Wattline server. Check your connection.' });
  }
}

// request('GET', '/devices') → parsed JSON (or null for 204; the raw Response
// when opts.raw is set, for CSV downloads). Throws ApiError.
export async function request(method, path, opts = {}) {
  const auth = opts.auth !== false;
  if (auth && !tokens.current()) {
    // Logged out (or never logged in): no point asking the server.
    throw new ApiError(401, { title: 'Unauthorized', detail: 'Please log in.' });
  }
  let res = await send(method, path, { ...opts, auth });
  if (res.status === 401 && auth && (await tokens.refresh())) {
    res = await send(method, path, { ...opts, auth });
  }
  if (!res.ok) {
    throw new ApiError(res.status, await readProblem(res), retryAfterSeconds(res));
  }
  if (opts.raw) {
    return res;
  }
  if (res.status === 204) {
    return null;
  }
  return res.json();
}

export const api = {
  get: (path, opts) => request('GET', path, opts),
  post: (path, body, opts) => request('POST', path, { ...opts, body }),
  patch: (path, body, opts) => request('PATCH', path, { ...opts, body }),
  put: (path, body, opts) => request('PUT', path, { ...opts, body }),
  del: (path, opts) => request('DELETE', path, opts),
};

// Builds a query string from an object, skipping empty values.
export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') {
      q.set(key, String(value));
    }
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

// Follows next_cursor until the list ends or `max` items were read.
export async function listAll(path, params = {}, max = 5000) {
  const items = [];
  let cursor = null;
  do {
    const page = await api.get(path + query({ ...params, limit: 1000, cursor }));
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return { items, truncated: Boolean(cursor) };
}
