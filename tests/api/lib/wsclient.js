'use strict';
// wsclient: a WebSocket test client for Wattline's /ws channel (the `ws` package).
//
//   const c = await wsc.open(server.wsUrl);
//   c.send({ type: 'auth', token });
//   const ready = await c.next('ready');      // the next message of that type
//   const code = await c.closed;              // resolves to the close code
//
// Every message is kept in c.messages (parsed), so a test can also assert on what
// did NOT arrive: c.received('alert').

const WebSocket = require('ws');

const DEFAULT_TIMEOUT_MS = 5000;

class Client {
  constructor(ws) {
    this.ws = ws;
    this.messages = [];
    this.waiters = [];
    this.closeCode = null;
    this.closeReason = '';
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = String(reason);
        resolve(code);
        this.flushWaiters();
      });
    });
    ws.on('error', () => {}); // a refused or reset socket shows up as a close
    ws.on('message', (data, isBinary) => {
      let msg;
      try {
        msg = JSON.parse(isBinary ? data : String(data));
      } catch {
        msg = { type: '(unparsable)', raw: String(data) };
      }
      this.messages.push(msg);
      this.flushWaiters();
    });
    this.cursor = 0; // messages before this index were consumed by next()
  }

  send(obj) {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  // All messages of a type received so far.
  received(type) {
    return this.messages.filter((m) => m.type === type);
  }

  flushWaiters() {
    for (const w of [...this.waiters]) w.check();
  }

  // The next not-yet-consumed message (of `type`, when given; others of other types are
  // skipped and stay in c.messages). Rejects on timeout or when the socket closes first.
  next(type, timeout = DEFAULT_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      const waiter = {
        check: () => {
          while (this.cursor < this.messages.length) {
            const msg = this.messages[this.cursor++];
            if (!type || msg.type === type) {
              done();
              resolve(msg);
              return;
            }
          }
          if (this.closeCode !== null) {
            done();
            reject(new Error(`socket closed (${this.closeCode}) while waiting for ${type || 'a message'}`));
          }
        },
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${type || 'message'} within ${timeout} ms; got ${JSON.stringify(this.messages.slice(-5))}`));
      }, timeout);
      const done = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
      };
      this.waiters.push(waiter);
      waiter.check();
    });
  }

  // Resolves to the close code, or rejects if the socket is still open after timeout.
  async closedWithin(timeout = DEFAULT_TIMEOUT_MS) {
    let timer;
    const expired = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`socket still open after ${timeout} ms`)), timeout);
    });
    try {
      return await Promise.race([this.closed, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  get isOpen() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  close() {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.close(1000);
    }
    return this.closed;
  }

  terminate() {
    this.ws.terminate();
    return this.closed;
  }
}

// Opens a connection; resolves once it is open (rejects if the handshake fails).
function open(url, options = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...options });
    const client = new Client(ws);
    ws.once('open', () => resolve(client));
    ws.once('unexpected-response', (req, res) => reject(new Error(`handshake answered ${res.statusCode}`)));
    ws.once('error', (err) => reject(err));
  });
}

// Opens, authenticates and waits for ready. Resolves to the client.
async function session(url, token, { since } = {}) {
  const c = await open(url);
  const auth = { type: 'auth', token };
  if (since !== undefined) auth.since_alert_id = since;
  c.send(auth);
  c.ready = await c.next('ready');
  return c;
}

module.exports = { open, session, Client };
