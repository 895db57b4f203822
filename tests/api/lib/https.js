'use strict';
// https: requests and WebSocket sessions that verify the server's certificate against a
// given CA (the tests' own development CA; without one, the system store). Nothing here
// turns verification off.
//
//   const hs = require('./lib/https');
//   const client = hs.client(baseUrl, { ca });            // ca: PEM text
//   const res = await client.api('GET', '/api/v1/config', { token, body, headers });
//       -> {status, headers, json, text}  (headers: Node's lower-case object)
//   const ws = await hs.wsSession(wsUrl, token, { ca });  // authenticated; ws.ready
//   client.close();                                        // drops kept-alive sockets
//   await hs.handshake({ port, ca, version: 'TLSv1.2' })  // -> the negotiated protocol
//   await hs.waitForHandshake(port, { ca })               // polls until a handshake works
//
// harness.api() uses fetch, which trusts only the system store (plus
// NODE_EXTRA_CA_CERTS, fixed at process start): these tests make their CA per run.

const https = require('node:https');
const tls = require('node:tls');
const wsc = require('./wsclient');

const DEFAULT_TIMEOUT_MS = 10000;

// One HTTPS request. Rejects on any network or TLS error (err.code says which, e.g.
// UNABLE_TO_VERIFY_LEAF_SIGNATURE, CERT_HAS_EXPIRED, ECONNRESET) and on timeout.
function request(url, { method = 'GET', ca, agent, token, body, headers = {},
  timeout = DEFAULT_TIMEOUT_MS, servername, tlsOptions = {} } = {}) {
  const sendHeaders = { ...headers };
  if (token) sendHeaders.authorization = `Bearer ${token}`;
  let payload = null;
  if (body !== undefined) {
    const raw = typeof body === 'string' || body instanceof Uint8Array;
    payload = raw ? body : JSON.stringify(body);
    if (!raw && !Object.keys(sendHeaders).some((k) => k.toLowerCase() === 'content-type')) {
      sendHeaders['content-type'] = 'application/json';
    }
    sendHeaders['content-length'] = Buffer.byteLength(payload);
  }
  const options = { method, headers: sendHeaders, agent: agent ?? false, ...tlsOptions };
  if (ca !== undefined) options.ca = ca;
  if (servername !== undefined) options.servername = servername;
  return new Promise((resolve, reject) => {
    const req = https.request(url, options, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        if (text !== '') {
          try {
            json = JSON.parse(text);
          } catch {
            json = null;
          }
        }
        resolve({ status: res.statusCode, headers: res.headers, json, text });
      });
    });
    req.setTimeout(timeout, () => {
      const err = new Error(`${method} ${url}: no answer within ${timeout} ms`);
      err.code = 'ETIMEDOUT';
      req.destroy(err);
    });
    req.on('error', reject);
    req.end(payload ?? undefined);
  });
}

// Requests against one base URL sharing a keep-alive agent that trusts `ca` only.
function client(baseUrl, { ca, keepAlive = true } = {}) {
  const agent = new https.Agent({ ca, keepAlive, maxSockets: 64 });
  return {
    baseUrl,
    agent,
    api: (method, urlPath, options = {}) =>
      request(baseUrl + urlPath, { ...options, method, ca, agent }),
    close: () => agent.destroy(),
  };
}

// Logs in through `api` (a client's api function); throws unless 200.
async function login(api, email, password) {
  const res = await api('POST', '/api/v1/auth/login', { body: { email, password } });
  if (res.status !== 200) throw new Error(`login ${email}: HTTP ${res.status}: ${res.text}`);
  return res.json;
}

// Opens a WebSocket that verifies the server against `ca`, authenticates with `token`
// and waits for `ready` (kept as client.ready).
async function wsSession(url, token, { ca, timeout } = {}) {
  const c = await wsc.open(url, { ca });
  c.send({ type: 'auth', token });
  c.ready = await c.next('ready', timeout);
  return c;
}

// One TLS handshake with 127.0.0.1:port, verifying against `ca`, offering exactly
// `version` when given (TLSv1 .. TLSv1.3). Resolves to the negotiated protocol; rejects
// with the handshake's error. Security level 0 lets the client offer TLS 1.0 and 1.1
// at all (OpenSSL 3 refuses them at its default level): then a refusal is the server's.
function handshake({ port, host = '127.0.0.1', ca, version, servername,
  timeout = DEFAULT_TIMEOUT_MS }) {
  const options = { host, port, ca, ciphers: 'DEFAULT@SECLEVEL=0', ALPNProtocols: ['http/1.1'] };
  if (version) {
    options.minVersion = version;
    options.maxVersion = version;
  }
  if (servername) options.servername = servername;
  return new Promise((resolve, reject) => {
    const socket = tls.connect(options);
    socket.setTimeout(timeout, () => {
      const err = new Error(`TLS handshake with ${host}:${port}: no answer within ${timeout} ms`);
      err.code = 'ETIMEDOUT';
      socket.destroy(err);
    });
    socket.once('secureConnect', () => {
      const protocol = socket.getProtocol();
      socket.end();
      resolve(protocol);
    });
    socket.once('error', reject);
  });
}

// Polls until a verified handshake with port succeeds: the HTTP listener answering
// /healthz does not mean the WebSocket listener, which has its own port, is up yet.
async function waitForHandshake(port, { ca, timeout = 15000 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await handshake({ port, ca, timeout: 2000 });
    } catch (err) {
      if (Date.now() >= deadline) {
        throw new Error(`no TLS handshake with port ${port} within ${timeout} ms: ${err.message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

module.exports = { client, handshake, login, request, waitForHandshake, wsSession };
