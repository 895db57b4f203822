// The session: who is logged in and their tokens.
//
// The access token lives only in this module's memory. The refresh token is
// kept in memory too, and mirrored to sessionStorage so that reloading the tab
// keeps the user logged in. sessionStorage (not localStorage) because it is
// scoped to one tab and cleared when the tab closes; a refresh token is spent
// on every use, so tabs must not share one (two tabs refreshing with the same
// token would trip the server's reuse detection and end both sessions). The
// strict CSP (script-src 'self', no inline script) is what keeps foreign
// script away from it.
//
// Tokens are refreshed a minute before the access token expires; a refresh is
// single-flight, because presenting a spent refresh token revokes the login.

import { api, ApiError, setTokenSource } from './api.js';

const STORAGE_KEY = 'wattline.refresh';

const state = {
  user: null,
  accessToken: null,
  refreshToken: null,
  expiresAt: 0,
};

let refreshTimer = 0;
let inflight = null;
const listeners = new Set();

// Session events: 'login', 'tokens' (a fresh access token), 'logout' (with a
// reason: 'user' or 'expired').
export function onSession(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function emit(type, detail) {
  for (const listener of [...listeners]) {
    listener(type, detail);
  }
}

export function currentUser() {
  return state.user;
}

export function accessToken() {
  return state.accessToken;
}

function storeRefreshToken(token) {
  try {
    if (token) {
      sessionStorage.setItem(STORAGE_KEY, token);
    } else {
      sessionStorage.removeItem(STORAGE_KEY);
    }
  } catch {
    // Storage can be disabled; the session then simply does not survive a reload.
  }
}

function scheduleRefresh(expiresIn) {
  clearTimeout(refreshTimer);
  // A minute early, or at 80% of a short lifetime, never more often than every 5 s.
  const lead = Math.min(60, expiresIn * 0.2);
  const delay = Math.max(5, expiresIn - lead) * 1000;
  refreshTimer = setTimeout(() => {
    refresh().catch(() => {
      // refresh() already reported a lost session; a network error is retried
      // by the next API call's 401 path or the WebSocket's re-auth.
    });
  }, delay);
}

function applyTokens(answer) {
  state.accessToken = answer.access_token;
  state.refreshToken = answer.refresh_token;
  const expiresIn = Number(answer.expires_in) || 900;
  state.expiresAt = Date.now() + expiresIn * 1000;
  storeRefreshToken(answer.refresh_token);
  scheduleRefresh(expiresIn);
}

function clear() {
  clearTimeout(refreshTimer);
  state.user = null;
  state.accessToken = null;
  state.refreshToken = null;
  state.expiresAt = 0;
  storeRefreshToken(null);
}

export async function login(email, password) {
  const answer = await api.post('/auth/login', { email, password }, { auth: false });
  applyTokens(answer);
  state.user = answer.user || (await api.get('/me'));
  emit('login', state.user);
  return state.user;
}

async function doRefresh() {
  const token = state.refreshToken;
  if (!token) {
    return false;
  }
  try {
    const answer = await api.post('/auth/refresh', { refresh_token: token }, { auth: false });
    applyTokens(answer);
    if (answer.user) {
      state.user = answer.user;
    }
    emit('tokens', state.accessToken);
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
      // The login is over (expired, revoked, or the user was deleted).
      const hadUser = Boolean(state.user);
      clear();
      if (hadUser) {
        emit('logout', 'expired');
      }
      return false;
    }
    // Network trouble or 5xx: keep the session and try again shortly.
    scheduleRefresh(15);
    throw err;
  }
}

// Gets a fresh token pair; true on success, false when the session is over.
export function refresh() {
  if (!inflight) {
    inflight = doRefresh().finally(() => {
      inflight = null;
    });
  }
  return inflight;
}

// After a reload: trade the stored refresh token for a new session.
export async function restore() {
  let token = null;
  try {
    token = sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
  if (!token) {
    return null;
  }
  state.refreshToken = token;
  if (!(await refresh())) {
    return null;
  }
  try {
    state.user = await api.get('/me');
  } catch {
    clear();
    return null;
  }
  emit('login', state.user);
  return state.user;
}

export async function logout() {
  const token = state.refreshToken;
  clear();
  emit('logout', 'user');
  if (token) {
    try {
      await api.post('/auth/logout', { refresh_token: token }, { auth: false });
    } catch {
      // The tokens are gone from this tab either way; the server forgets the
      // refresh token when it expires.
    }
  }
}

// Applies an edit of the caller's own profile (PATCH /me answer).
export function updateUser(user) {
  state.user = user;
  emit('user', user);
}

setTokenSource({
  current: () => state.accessToken,
  refresh: () => refresh().catch(() => false),
});
