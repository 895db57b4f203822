'use strict';
// ws: many authenticated WebSocket sessions on Wattline's /ws channel, from this one
// process (the `ws` package from tests/node_modules).

const path = require('node:path');
const { performance } = require('node:perf_hooks');

const WebSocket = require(path.resolve(__dirname, '..', '..', '..', 'tests', 'node_modules', 'ws'));

const READY_TIMEOUT_MS = 20000;

// Opens one session, authenticates and resolves once the server says ready.
// onMessage(session, msg, receivedAt) sees every later message (receivedAt from
// performance.now(), taken before parsing). localAddress: the loopback source address
// (one has only ~28,000 ephemeral ports towards one server port).
function openSession(url, { token, owner, onMessage, localAddress }) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, localAddress });
    const session = { ws, owner, ready: false, closedCode: null };
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('WebSocket session not ready in time'));
    }, READY_TIMEOUT_MS);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', token })));
    ws.on('message', (data) => {
      const at = performance.now();
      let msg;
      try {
        msg = JSON.parse(String(data));
      } catch {
        return;
      }
      if (!session.ready) {
        if (msg.type === 'ready') {
          session.ready = true;
          clearTimeout(timer);
          resolve(session);
        }
        return;
      }
      if (onMessage) onMessage(session, msg, at);
    });
    ws.on('error', () => {}); // shows up as a close
    ws.on('close', (code) => {
      session.closedCode = code;
      if (!session.ready) {
        clearTimeout(timer);
        reject(new Error(`WebSocket session closed before ready (code ${code})`));
      }
    });
  });
}

// Opens count sessions, session i for owners[i % owners.length], at most
// `parallel` handshakes at a time. Resolves to the sessions (in order).
async function openSessions(url, owners, count, { parallel = 100, onMessage } = {}) {
  const sessions = new Array(count);
  let next = 0;
  async function worker() {
    while (next < count) {
      const i = next++;
      const owner = owners[i % owners.length];
      sessions[i] = await openSession(url, { token: owner.token, owner, onMessage });
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
  } catch (err) {
    closeSessions(sessions.filter(Boolean));
    throw err;
  }
  return sessions;
}

// Closes the sessions and resolves once every socket is gone.
function closeSessions(sessions) {
  return Promise.all(sessions.map((s) => new Promise((resolve) => {
    if (s.ws.readyState === WebSocket.CLOSED) {
      resolve();
      return;
    }
    s.ws.once('close', resolve);
    s.ws.close(1000);
    setTimeout(() => s.ws.terminate(), 5000).unref();
  })));
}

// How many of the sessions the server has closed.
function closedCount(sessions) {
  return sessions.filter((s) => s.closedCode !== null).length;
}

module.exports = { closeSessions, closedCount, openSession, openSessions };
