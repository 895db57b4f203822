// The live channel: one WebSocket per tab, carrying alerts, the support
// chat's chat.* messages and, for the devices a view subscribed to, usage
// updates.
//
// - It authenticates with the current access token and the id of the newest
//   alert the tab has seen (`since_alert_id`), so after any drop the server
//   replays what was missed.
// - It sends a fresh `auth` message whenever the session refreshes its token,
//   so the server never closes it for an expired token (4401); if that happens
//   anyway (a sleeping laptop), it refreshes and reconnects.
// - It reconnects on its own with capped, jittered backoff, immediately when
//   the browser comes back online, and reports its state for the banner.

import { accessToken, refresh } from './auth.js';

const AUTH_FAILED = 4401;
const MAX_BACKOFF_MS = 15000;

export class LiveChannel extends EventTarget {
  constructor() {
    super();
    this.url = null;
    this.socket = null;
    this.status = 'idle'; // idle | connecting | online | reconnecting | offline
    this.attempt = 0;
    this.retryTimer = 0;
    this.subscriptions = new Map(); // device id → number of views interested
    this.sinceAlertId = () => null;
    this.onOnline = () => this.reconnectNow();
    this.onOffline = () => this.dropForOffline();
  }

  // Starts the channel. `sinceAlertId()` returns the newest alert id seen.
  start(url, sinceAlertId) {
    this.stop();
    this.url = url;
    this.sinceAlertId = sinceAlertId;
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
    this.connect();
  }

  stop() {
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    clearTimeout(this.retryTimer);
    this.url = null;
    this.attempt = 0;
    this.subscriptions.clear();
    this.closeSocket(1000);
    this.setStatus('idle');
  }

  // Returns a function that undoes the subscription.
  subscribe(deviceId) {
    const count = this.subscriptions.get(deviceId) || 0;
    this.subscriptions.set(deviceId, count + 1);
    if (count === 0) {
      this.sendIfReady({ type: 'subscribe', device_id: deviceId });
    }
    return () => this.unsubscribe(deviceId);
  }

  unsubscribe(deviceId) {
    const count = this.subscriptions.get(deviceId) || 0;
    if (count > 1) {
      this.subscriptions.set(deviceId, count - 1);
      return;
    }
    this.subscriptions.delete(deviceId);
    if (count === 1) {
      this.sendIfReady({ type: 'unsubscribe', device_id: deviceId });
    }
  }

  // Called when the session got a new access token.
  reauthenticate(token) {
    this.sendIfReady({ type: 'auth', token });
  }

  setStatus(status) {
    if (status !== this.status) {
      this.status = status;
      this.dispatchEvent(new CustomEvent('status', { detail: status }));
    }
  }

  connect() {
    const token = accessToken();
    if (!this.url || !token) {
      return;
    }
    if (!navigator.onLine) {
      // Wait for the 'online' event rather than failing attempt after attempt.
      this.setStatus('offline');
      return;
    }
    this.setStatus(this.attempt === 0 && this.status === 'idle' ? 'connecting' : 'reconnecting');
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.ready = false;
    socket.addEventListener('open', () => {
      const hello = { type: 'auth', token: accessToken() };
      const since = this.sinceAlertId();
      if (Number.isInteger(since)) {
        hello.since_alert_id = since;
      }
      socket.send(JSON.stringify(hello));
    });
    socket.addEventListener('message', (event) => this.handleMessage(socket, event.data));
    socket.addEventListener('close', (event) => this.handleClose(socket, event.code));
  }

  handleMessage(socket, data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message.type === 'ready') {
      if (!socket.ready) {
        socket.ready = true;
        this.attempt = 0;
        this.setStatus('online');
        for (const deviceId of this.subscriptions.keys()) {
          socket.send(JSON.stringify({ type: 'subscribe', device_id: deviceId }));
        }
      }
    } else if (message.type === 'alert' && message.alert) {
      this.dispatchEvent(new CustomEvent('alert', { detail: message.alert }));
    } else if ((message.type === 'forecast' && message.forecast) || message.type === 'device_status') {
      this.dispatchEvent(new CustomEvent(message.type, { detail: message }));
    } else if (message.type === 'usage') {
      this.dispatchEvent(new CustomEvent('usage', { detail: message }));
    } else if (message.type === 'command' && message.command) {
      this.dispatchEvent(new CustomEvent('command', { detail: message.command }));
    } else if (typeof message.type === 'string' && message.type.startsWith('chat.')) {
      this.dispatchEvent(new CustomEvent('chat', { detail: message }));
    } else if (message.type === 'error') {
      this.dispatchEvent(new CustomEvent('channel-error', { detail: message }));
    }
  }

  async handleClose(socket, code) {
    if (socket !== this.socket) {
      return; // a socket we already replaced or closed on purpose
    }
    this.socket = null;
    if (!this.url) {
      return;
    }
    if (code === AUTH_FAILED) {
      // The access token ran out while we could not re-auth (the tab slept).
      let ok = false;
      try {
        ok = await refresh();
      } catch {
        ok = true; // network trouble: keep trying with backoff
      }
      if (!ok || !this.url) {
        return; // the session is over; app.js stops the channel
      }
    }
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    clearTimeout(this.retryTimer);
    this.setStatus(navigator.onLine ? 'reconnecting' : 'offline');
    if (!navigator.onLine) {
      return;
    }
    const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt);
    this.attempt += 1;
    const delay = base / 2 + Math.random() * (base / 2);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (!this.url || (this.socket && this.socket.readyState <= WebSocket.OPEN)) {
      return;
    }
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    this.connect();
  }

  // The browser says the network is gone: the socket may linger half-open for
  // minutes, so close it now and show that we are waiting to reconnect.
  dropForOffline() {
    if (!this.url) {
      return;
    }
    clearTimeout(this.retryTimer);
    this.closeSocket(1000);
    this.setStatus('offline');
  }

  closeSocket(code) {
    const socket = this.socket;
    this.socket = null;
    if (!socket) {
      return;
    }
    if (socket.readyState === WebSocket.CONNECTING) {
      // Closing a socket mid-handshake makes the browser log an error; let
      // the handshake finish and close it then.
      socket.addEventListener('open', () => socket.close(code));
    } else if (socket.readyState === WebSocket.OPEN) {
      socket.close(code);
    }
  }

  // Sends a message when the session is ready; false when it could not.
  send(message) {
    return this.sendIfReady(message);
  }

  sendIfReady(message) {
    if (this.socket && this.socket.ready && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
      return true;
    }
    return false;
  }
}

export const live = new LiveChannel();
