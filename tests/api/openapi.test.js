'use strict';
// docs/openapi.json against the running server, so that the description cannot drift:
//   - the document served at /api/v1/openapi.json is the one in the repository;
//   - its operations are exactly the routes of server/routes.c, with the security, request
//     body and standard answers the route table implies, and every problem `code` the C
//     sources can produce is one the document knows (WebSocket error codes too);
//   - real calls (every route unauthenticated, then a tour of the API as an admin, a client
//     and a device) answer only documented statuses, content types and headers, with
//     bodies that validate against the documented schemas;
//   - the WebSocket messages validate against the `x-websocket` schemas.
// The schemas are checked by a small JSON Schema validator below (the subset the document
// uses); a keyword it does not know fails the test instead of passing silently.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./lib/harness');
const wsc = require('./lib/wsclient');

const { describe, before, after } = test;
const ctx = h.suite();

const SOURCE = (...parts) => fs.readFileSync(path.join(h.REPO_ROOT, ...parts), 'utf8');
const HOUR = 3600 * 1000;
const iso = (ms) => new Date(ms).toISOString();

// ---------------------------------------------------------------------------------------
// The server's side: the route table and the codes the sources produce

const ACCESS_SCHEME = {
  ACCESS_ANYONE: null,
  ACCESS_USER: 'userBearer',
  ACCESS_ADMIN: 'userBearer',
  ACCESS_DEVICE: 'deviceBearer',
};

// R(...), Q(...), QR(...) (may read from the replica), H(...) and HA(...) lines of server/routes.c: [{method, path, handler,
// access, body, hashing}]; H and HA routes run on the password hashing workers (HA's
// sixth argument is an admission check run before that).
function serverRoutes() {
  const text = SOURCE('server', 'routes.c');
  const re = new RegExp(String.raw`^\s*([RQH][AR]?)\(\s*"([A-Z]+)"\s*,\s*"([^"]+)"\s*,\s*(\w+)\s*,` +
    String.raw`\s*(ACCESS_\w+)\s*,\s*(BODY_\w+)\s*(?:,\s*\w+\s*)?\)`, 'gm');
  const routes = [...text.matchAll(re)].map(([, kind, method, p, handler, access, body]) =>
    ({ method, path: p, handler, access, body, hashing: kind.startsWith('H') }));
  // The table must be fully understood: every entry line was matched.
  const entries = (text.match(/^\s*[RQH][AR]?\(\s*"/gm) || []).length;
  assert.equal(routes.length, entries, 'a route table line the parser did not understand');
  assert.ok(routes.length >= 20, `only ${routes.length} routes parsed from server/routes.c`);
  return routes;
}

// The problem codes the HTTP sources name: every literal code passed to
// response_problem(), and the code the domain status table gives every status passed by
// name to response_status() (a status computed at run time maps through the same table).
function serverProblemCodes() {
  const files = ['server', 'api', 'handlers'].flatMap((dir) =>
    fs.readdirSync(path.join(h.REPO_ROOT, dir)).filter((f) => f.endsWith('.c'))
      .map((f) => `${dir}/${f}`));
  const table = new Map([...SOURCE('api', 'handler.c')
    .matchAll(/\[(STATUS_\w+)\]\s*=\s*\{\s*\d+\s*,\s*"(\w+)"/g)].map((m) => [m[1], m[2]]));
  assert.ok(table.size >= 6, 'the status table of api/handler.c was not found');
  const codes = new Set();
  for (const file of files) {
    const text = SOURCE(file);
    for (const [, code] of text.matchAll(/response_problem\(\s*[^,]+,[^,]+,\s*"(\w+)"/g)) {
      codes.add(code);
    }
    for (const [, status] of text.matchAll(/response_status\(\s*[^,]+,\s*(STATUS_\w+)\s*\)/g)) {
      if (status !== 'STATUS_OK') codes.add(table.get(status));
    }
    // A code the scan cannot read would hide from it: only the two known indirections.
    for (const [, arg] of text.matchAll(/response_problem\(\s*[^,]+,[^,]+,\s*([^\s",][^,]*),/g)) {
      assert.ok(['const char *code', 'STATUS_TABLE[st].code'].includes(arg.trim()),
        `${file}: response_problem() with a code the test cannot read: ${arg}`);
    }
  }
  return codes;
}

// The codes the WebSocket hub sends in {"type": "error"} messages, from any module of live/.
function hubErrorCodes() {
  const calls = fs.readdirSync(path.join(h.REPO_ROOT, 'live')).filter((f) => f.endsWith('.c'))
    .flatMap((f) => [...SOURCE('live', f).matchAll(/send_error\(\s*h\s*,\s*\w+\s*,\s*"(\w+)"/g)]);
  return new Set(calls.map((m) => m[1]));
}

// The close codes the hub and the WebSocket transport use.
function hubCloseCodes() {
  const header = SOURCE('live', 'hub.h');
  return new Set([...header.matchAll(/HUB_CLOSE_CODE_\w+\s*=\s*(\d+)/g)].map((m) => m[1]));
}

// ---------------------------------------------------------------------------------------
// A JSON Schema validator for the subset the document uses

const ANNOTATIONS = new Set(['description', 'title', 'example', 'examples', 'default',
  'deprecated', 'readOnly', 'writeOnly', 'format', '$comment']);
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;
const FORMATS = {
  'date-time': (v) => RFC3339.test(v) && !Number.isNaN(Date.parse(v)),
  date: (v) => /^\d{4}-\d\d-\d\d$/.test(v) && !Number.isNaN(Date.parse(`${v}T00:00:00Z`)),
};

function typeOf(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function typeMatches(value, type) {
  const actual = typeOf(value);
  return actual === type || (type === 'number' && actual === 'integer');
}

function resolvePointer(doc, ref) {
  assert.ok(ref.startsWith('#/'), `only local $refs are supported: ${ref}`);
  let node = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    assert.ok(node && Object.prototype.hasOwnProperty.call(node, key), `unresolvable $ref ${ref}`);
    node = node[key];
  }
  return node;
}

// Errors of value against schema, as "at: message" strings (empty: valid).
function validate(doc, schema, value, at = '$') {
  if (schema === true || schema === undefined) return [];
  if (schema === false) return [`${at}: no value is allowed here`];
  const errors = [];
  const err = (msg) => errors.push(`${at}: ${msg}`);
  for (const [key, arg] of Object.entries(schema)) {
    if (ANNOTATIONS.has(key) || key.startsWith('x-')) continue;
    switch (key) {
      case '$ref':
        errors.push(...validate(doc, resolvePointer(doc, arg), value, at));
        break;
      case 'type': {
        const types = Array.isArray(arg) ? arg : [arg];
        if (!types.some((t) => typeMatches(value, t))) {
          err(`expected ${types.join('|')}, got ${typeOf(value)}`);
        }
        break;
      }
      case 'const':
        if (JSON.stringify(value) !== JSON.stringify(arg)) err(`expected ${JSON.stringify(arg)}`);
        break;
      case 'enum':
        if (!arg.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
          err(`${JSON.stringify(value)} is not one of ${JSON.stringify(arg)}`);
        }
        break;
      case 'required':
        if (typeOf(value) === 'object') {
          for (const name of arg) if (!(name in value)) err(`missing member ${name}`);
        }
        break;
      case 'properties':
        if (typeOf(value) === 'object') {
          for (const [name, sub] of Object.entries(arg)) {
            if (name in value) errors.push(...validate(doc, sub, value[name], `${at}.${name}`));
          }
        }
        break;
      case 'additionalProperties':
        if (typeOf(value) === 'object') {
          const known = new Set(Object.keys(schema.properties || {}));
          for (const name of Object.keys(value)) {
            if (known.has(name)) continue;
            if (arg === false) err(`undocumented member ${name}`);
            else errors.push(...validate(doc, arg, value[name], `${at}.${name}`));
          }
        }
        break;
      case 'dependentRequired':
        if (typeOf(value) === 'object') {
          for (const [name, needs] of Object.entries(arg)) {
            if (!(name in value)) continue;
            for (const need of needs) if (!(need in value)) err(`${name} needs ${need}`);
          }
        }
        break;
      case 'items':
        if (Array.isArray(value)) {
          value.forEach((item, i) => errors.push(...validate(doc, arg, item, `${at}[${i}]`)));
        }
        break;
      case 'minItems':
        if (Array.isArray(value) && value.length < arg) err(`fewer than ${arg} items`);
        break;
      case 'maxItems':
        if (Array.isArray(value) && value.length > arg) err(`more than ${arg} items`);
        break;
      case 'minimum':
        if (typeof value === 'number' && value < arg) err(`${value} < ${arg}`);
        break;
      case 'maximum':
        if (typeof value === 'number' && value > arg) err(`${value} > ${arg}`);
        break;
      case 'exclusiveMinimum':
        if (typeof value === 'number' && value <= arg) err(`${value} <= ${arg}`);
        break;
      case 'minLength':
        if (typeof value === 'string' && [...value].length < arg) err(`shorter than ${arg}`);
        break;
      case 'maxLength':
        if (typeof value === 'string' && [...value].length > arg) err(`longer than ${arg}`);
        break;
      case 'pattern':
        if (typeof value === 'string' && !new RegExp(arg, 'u').test(value)) {
          err(`does not match ${arg}`);
        }
        break;
      case 'allOf':
        arg.forEach((sub) => errors.push(...validate(doc, sub, value, at)));
        break;
      case 'anyOf': {
        const results = arg.map((sub) => validate(doc, sub, value, at));
        if (!results.some((r) => r.length === 0)) {
          err(`matches none of anyOf: ${results.map((r) => r.join('; ')).join(' | ')}`);
        }
        break;
      }
      case 'oneOf': {
        const results = arg.map((sub) => validate(doc, sub, value, at));
        const matching = results.filter((r) => r.length === 0).length;
        if (matching !== 1) {
          const why = results.map((r) => r.join('; ')).join(' | ');
          err(`matches ${matching} of oneOf (exactly 1 wanted): ${why}`);
        }
        break;
      }
      default:
        throw new Error(`the test's validator does not support the keyword "${key}" (at ${at})`);
    }
  }
  if (schema.format && typeof value === 'string' && FORMATS[schema.format] &&
      !FORMATS[schema.format](value)) {
    err(`not a ${schema.format}: ${value}`);
  }
  return errors;
}

function assertValid(doc, schema, value, what) {
  const errors = validate(doc, schema, value);
  assert.deepEqual(errors, [], `${what} does not match the document:\n${JSON.stringify(value)}`);
}

// The validator itself must be able to fail, or the checks below prove nothing.
test('the schema validator rejects what it should', () => {
  const doc = { components: { schemas: { A: { type: 'object', additionalProperties: false,
    required: ['a'], properties: { a: { type: ['integer', 'null'], minimum: 1 } } } } } };
  const A = { $ref: '#/components/schemas/A' };
  assert.deepEqual(validate(doc, A, { a: 1 }), []);
  assert.deepEqual(validate(doc, A, { a: null }), []);
  assert.equal(validate(doc, A, { a: 0 }).length, 1);
  assert.equal(validate(doc, A, { a: 1.5 }).length, 1);
  assert.equal(validate(doc, A, { a: 1, b: 2 }).length, 1);
  assert.equal(validate(doc, A, {}).length, 1);
  assert.equal(validate(doc, { oneOf: [{ type: 'integer' }, { type: 'number' }] }, 3).length, 1);
  assert.deepEqual(validate(doc, { oneOf: [{ type: 'integer' }, { type: 'string' }] }, 3), []);
  assert.equal(validate(doc, { anyOf: [{ const: 'a' }, { enum: ['b'] }] }, 'c').length, 1);
  assert.equal(validate(doc, { type: 'string', format: 'date-time' }, '2026-13-01').length, 1);
  assert.equal(validate(doc, { type: 'array', items: { type: 'string' } }, ['a', 1]).length, 1);
  assert.throws(() => validate(doc, { if: {} }, 1), /does not support/);
});

// ---------------------------------------------------------------------------------------
// The document's side

let spec; // the document as the server serves it
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function documentedOperations() {
  const ops = [];
  for (const [p, item] of Object.entries(spec.paths)) {
    for (const method of METHODS) {
      if (item[method]) ops.push({ method: method.toUpperCase(), path: p, op: item[method], item });
    }
  }
  return ops;
}

function operation(method, template) {
  const item = spec.paths[template];
  assert.ok(item, `${template} is not documented`);
  const op = item[method.toLowerCase()];
  assert.ok(op, `${method} ${template} is not documented`);
  return op;
}

// A response object, with a $ref to components/responses followed.
function deref(node) {
  return node && node.$ref ? resolvePointer(spec, node.$ref) : node;
}

const mediaType = (contentType) => String(contentType || '').split(';')[0].trim().toLowerCase();

// The documented content entry for an actual Content-Type (media type parameters aside).
function documentedContent(response, contentType) {
  const wanted = mediaType(contentType);
  const entry = Object.entries(response.content || {}).find(([key]) => mediaType(key) === wanted);
  return entry ? entry[1] : null;
}

// Headers an answer may carry only where the document says so.
const CONTROLLED_HEADERS = ['location', 'retry-after', 'www-authenticate', 'cache-control',
  'content-disposition'];

// Checks one real answer against the documented operation; returns res for chaining.
function check(res, method, template) {
  const op = operation(method, template);
  const documented = deref(op.responses[String(res.status)]);
  assert.ok(documented, `${method} ${template} answered ${res.status}, which is not documented ` +
    `(documented: ${Object.keys(op.responses).join(', ')}): ${res.text.slice(0, 300)}`);
  const what = `${method} ${template} ${res.status}`;

  const headers = documented.headers || {};
  const lower = Object.fromEntries(Object.entries(headers)
    .map(([name, header]) => [name.toLowerCase(), deref(header)]));
  const isCsv = mediaType(res.headers.get('content-type')) === 'text/csv';
  assert.ok(lower['x-request-id'], `${what}: X-Request-Id is not documented`);
  for (const name of CONTROLLED_HEADERS) {
    const value = res.headers.get(name);
    const csvOnly = name === 'content-disposition' && !isCsv;
    if (value === null) {
      assert.ok(!lower[name] || csvOnly, `${what}: the documented header ${name} is missing`);
      continue;
    }
    assert.ok(lower[name], `${what}: the header ${name}: ${value} is not documented`);
    const typed = lower[name].schema?.type === 'integer' ? Number(value) : value;
    assertValid(spec, lower[name].schema, typed, `${what} header ${name}`);
  }
  assertValid(spec, lower['x-request-id'].schema, res.headers.get('x-request-id'),
    `${what} X-Request-Id`);

  if (!documented.content) {
    assert.equal(res.text, '', `${what}: a body where the document has none`);
    return res;
  }
  const content = documentedContent(documented, res.headers.get('content-type'));
  assert.ok(content, `${what}: Content-Type ${res.headers.get('content-type')} is not documented ` +
    `(documented: ${Object.keys(documented.content).join(', ')})`);
  if (mediaType(res.headers.get('content-type')).endsWith('json')) {
    assert.notEqual(res.json, null, `${what}: the body is not JSON: ${res.text.slice(0, 200)}`);
    assertValid(spec, content.schema, res.json, what);
  } else {
    assertValid(spec, content.schema, res.text, what);
  }
  return res;
}

// The documented path template a request path falls under (query string aside).
function templateFor(urlPath) {
  const bare = urlPath.split('?')[0];
  const matches = Object.keys(spec.paths).filter((template) => new RegExp(
    `^${template.replace(/[.]/g, '\\.').replace(/\{\w+\}/g, '[^/]+')}$`).test(bare));
  assert.equal(matches.length, 1, `${bare} matches documented paths ${JSON.stringify(matches)}`);
  return matches[0];
}

// A request, checked against the operation it falls under; resolves to the answer.
async function call(method, urlPath, options) {
  return check(await ctx.api(method, urlPath, options), method, templateFor(urlPath));
}

// A problem answer outside any operation (404 for unknown paths, 405): the Problem schema.
function checkGlobalProblem(res, status, code) {
  assert.equal(res.status, status, res.text);
  assert.equal(mediaType(res.headers.get('content-type')), 'application/problem+json');
  assertValid(spec, { $ref: '#/components/schemas/Problem' }, res.json, `${status} problem`);
  assert.equal(res.json.code, code);
  assert.ok(spec.info.description.includes(`\`${code}\``), `${code} is not described`);
}

// ---------------------------------------------------------------------------------------

// The document as the server serves it, fetched once by the first group that needs it
// (a root-level hook would race the suite's own server start).
async function loadSpec() {
  if (spec) return;
  const res = await ctx.api('GET', '/api/v1/openapi.json');
  assert.equal(res.status, 200, res.text);
  assert.equal(mediaType(res.headers.get('content-type')), 'application/json');
  assert.ok(res.json && res.json.paths, 'the server did not serve a JSON document');
  spec = res.json;
}

describe('the document and the route table', () => {
  before(loadSpec);

  test('the server serves docs/openapi.json as it is in the repository', () => {
    assert.deepEqual(spec, JSON.parse(SOURCE('docs', 'openapi.json')));
    assert.match(spec.openapi, /^3\.1\./);
  });

  test('every route is documented and every documented operation is a route', () => {
    const routes = serverRoutes().map((r) => `${r.method} ${r.path}`).sort();
    const documented = documentedOperations().map((o) => `${o.method} ${o.path}`).sort();
    assert.deepEqual(documented, routes);
  });

  test('each operation has the route\'s security, body and standard answers', () => {
    for (const route of serverRoutes()) {
      const op = operation(route.method, route.path);
      const where = `${route.method} ${route.path}`;
      const scheme = ACCESS_SCHEME[route.access];
      assert.notEqual(scheme, undefined, `${where}: unknown access ${route.access}`);
      const security = op.security ?? spec.security;
      assert.deepEqual(security, scheme ? [{ [scheme]: [] }] : [], `${where}: security`);
      const codesOf = (status) => {
        const r = deref(op.responses[status]);
        assert.ok(r, `${where}: ${status} is not documented`);
        const schema = r.content?.['application/problem+json']?.schema;
        const codes = schema?.allOf?.find((s) => s.properties?.code)?.properties.code.enum;
        assert.ok(codes, `${where}: ${status} does not list its problem codes`);
        return codes;
      };
      if (scheme) {
        assert.ok(codesOf('401').includes('invalid_token'), `${where}: 401 invalid_token`);
        assert.ok(codesOf('401').includes('unauthorized'), `${where}: 401 unauthorized`);
        assert.ok(codesOf('503').includes('unavailable'), `${where}: 503 unavailable`);
      }
      if (route.access === 'ACCESS_ADMIN') {
        assert.ok(codesOf('403').includes('forbidden'), `${where}: 403 forbidden`);
      } else if (op.responses['403']) {
        assert.ok(!codesOf('403').includes('forbidden'), `${where}: not an admin route`);
      }
      if (route.body.startsWith('BODY_JSON')) { // BODY_JSON_BULK: the same, a larger cap
        assert.equal(op.requestBody?.required, true, `${where}: the body is required`);
        assert.deepEqual(Object.keys(op.requestBody.content), ['application/json'], where);
        assert.deepEqual(codesOf('400'), ['malformed_json'], `${where}: 400`);
        assert.deepEqual(codesOf('413'), ['body_too_large'], `${where}: 413`);
        assert.deepEqual(codesOf('415'), ['unsupported_media_type'], `${where}: 415`);
      } else if (route.body === 'BODY_FORM') { // RabbitMQ's auth backend: form bodies
        assert.equal(op.requestBody?.required, true, `${where}: the body is required`);
        assert.deepEqual(Object.keys(op.requestBody.content),
          ['application/x-www-form-urlencoded'], where);
        assert.deepEqual(codesOf('400'), ['malformed_form'], `${where}: 400`);
        assert.deepEqual(codesOf('413'), ['body_too_large'], `${where}: 413`);
        assert.deepEqual(codesOf('415'), ['unsupported_media_type'], `${where}: 415`);
      } else {
        assert.equal(op.requestBody, undefined, `${where}: takes no body`);
      }
      // H(...) routes run on the hashing workers, whose short queue answers 503 busy.
      if (route.hashing) {
        assert.ok(codesOf('503').includes('busy'), `${where}: 503 busy`);
      }
      const params = [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      const item = spec.paths[route.path];
      const documentedParams = [...(item.parameters || []), ...(op.parameters || [])]
        .map(deref).filter((p) => p.in === 'path').map((p) => p.name);
      assert.deepEqual(documentedParams.sort(), params.sort(), `${where}: path parameters`);
    }
  });

  test('every problem code the sources produce is a documented code', () => {
    const documented = new Set(spec.components.schemas.Problem.properties.code.enum);
    const produced = serverProblemCodes();
    assert.ok(produced.size >= 20, `only ${produced.size} codes found in the sources`);
    assert.deepEqual([...produced].filter((c) => !documented.has(c)).sort(), []);
    // ... and the document lists no code nothing produces.
    assert.deepEqual([...documented].filter((c) => !produced.has(c)).sort(), []);
  });

  test('the WebSocket section names the path, error codes and close codes the server uses', () => {
    const xws = spec['x-websocket'];
    assert.ok(xws, 'no x-websocket member');
    const wsPath = SOURCE('server', 'ws.h').match(/#define\s+WS_PATH\s+"([^"]+)"/)[1];
    assert.equal(xws.path, wsPath);
    const maxMessage = SOURCE('server', 'ws.h')
      .match(/#define\s+WS_MAX_MESSAGE\s+\((\d+) \* (\d+)\)/);
    assert.equal(xws.limits.maxMessageBytes, Number(maxMessage[1]) * Number(maxMessage[2]));
    const errorEnum = xws.serverMessages.error.properties.code.enum;
    assert.deepEqual([...hubErrorCodes()].sort(), [...errorEnum].sort());
    assert.deepEqual(Object.keys(xws.errorCodes).sort(), [...errorEnum].sort());
    // The hub's own close codes; the WebSocket library adds 1007 (checked live below).
    assert.deepEqual([...hubCloseCodes(), '1007'].sort(), Object.keys(xws.closeCodes).sort());
    for (const code of [...hubCloseCodes(), ...errorEnum]) {
      assert.ok(spec.info.description.includes(code), `info.description does not mention ${code}`);
    }
    // The rows of the inbound message table: {"type", kinds, in_handler}.
    const inbound = [...SOURCE('live', 'protocol.c')
      .matchAll(/\{\s*"([\w.]+)"\s*,\s*KIND_BIT_[\w\s|]+,\s*in_\w+\s*\}/g)].map((m) => m[1]);
    assert.deepEqual(inbound.sort(), Object.keys(xws.clientMessages).sort());
  });
});

// ---------------------------------------------------------------------------------------
// Real calls

describe('every route, called without credentials', () => {
  before(loadSpec);

  test('answers a documented status with a documented body', async () => {
    for (const route of serverRoutes()) {
      const urlPath = route.path.replace(/\{\w+\}/g, '1');
      const res = await ctx.api(route.method, urlPath);
      check(res, route.method, route.path);
      if (route.access !== 'ACCESS_ANYONE') {
        assert.equal(res.status, 401, `${route.method} ${route.path}`);
      } else if (route.body.startsWith('BODY_JSON')) {
        assert.equal(res.status, 415, `${route.method} ${route.path}`);
      }
    }
  });
});

describe('a tour of the API', () => {
  let client; // {id, token, email, password}
  let cumulative; // a device of the client's, with its token
  let interval; // an admin-owned interval device, with its token
  const hourAgo = Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR;

  before(async () => {
    await loadSpec();
    const account = await h.createUser(ctx.server, { role: 'client' });
    const res = await call('POST', '/api/v1/auth/login',
      { body: { email: account.email, password: account.password } });
    assert.equal(res.status, 200);
    client = { ...account, id: res.json.user.id, token: res.json.access_token,
      refreshToken: res.json.refresh_token };
  });

  test('auth: login, refresh, logout and their failures', async () => {
    const bad = await call('POST', '/api/v1/auth/login',
      { body: { email: client.email, password: 'not the password' } });
    assert.equal(bad.status, 401);
    assert.equal(bad.json.code, 'invalid_credentials');
    await call('POST', '/api/v1/auth/login', { body: { email: client.email } });
    const json = { 'content-type': 'application/json' };
    for (const body of ['{"email": ', '{"email": "a", "email": "b", "password": "x"}',
      '{"email": 1e999, "password": "x"}']) {
      const malformed = await call('POST', '/api/v1/auth/login', { body, headers: json });
      assert.equal(malformed.status, 400, body);
    }

    const refreshed = await call('POST', '/api/v1/auth/refresh',
      { body: { refresh_token: client.refreshToken } });
    assert.equal(refreshed.status, 200, refreshed.text);
    const spent = await call('POST', '/api/v1/auth/refresh',
      { body: { refresh_token: client.refreshToken } });
    assert.equal(spent.status, 401);
    const out = await call('POST', '/api/v1/auth/logout',
      { body: { refresh_token: refreshed.json.refresh_token } });
    assert.equal(out.status, 204);
  });

  test('users: me, the admin routes and their failures', async () => {
    const me = await call('GET', '/api/v1/me', { token: client.token });
    assert.equal(me.status, 200);
    const expired = await call('GET', '/api/v1/me', { token: 'not.a.jwt' });
    assert.equal(expired.json.code, 'invalid_token');
    const patched = await call('PATCH', '/api/v1/me',
      { token: client.token, body: { name: 'Renamed' } });
    assert.equal(patched.status, 200, patched.text);
    const role = await call('PATCH', '/api/v1/me',
      { token: client.token, body: { role: 'admin' } });
    assert.equal(role.status, 403);
    const wrong = await call('PATCH', '/api/v1/me', { token: client.token,
      body: { password: 'a new password 1', current_password: 'not it at all' } });
    assert.equal(wrong.json.code, 'invalid_current_password');

    const admin = ctx.admin.token;
    const forbidden = await call('GET', '/api/v1/users', { token: client.token });
    assert.equal(forbidden.status, 403);
    const list = await call('GET', '/api/v1/users?limit=1', { token: admin });
    assert.equal(list.status, 200);
    assert.equal(typeof list.json.next_cursor, 'string');
    await call('GET', `/api/v1/users?cursor=${list.json.next_cursor}`, { token: admin });
    const badCursor = await call('GET', '/api/v1/users?cursor=%21', { token: admin });
    assert.equal(badCursor.status, 400);

    const newUser = { name: 'Doc', password: 'long enough pw', role: 'client' };
    const created = await call('POST', '/api/v1/users', { token: admin,
      body: { ...newUser, email: 'openapi-user@example.test' } });
    assert.equal(created.status, 201, created.text);
    const taken = await call('POST', '/api/v1/users', { token: admin,
      body: { ...newUser, email: 'OPENAPI-user@example.test' } });
    assert.equal(taken.json.code, 'email_taken');
    const short = await call('POST', '/api/v1/users', { token: admin,
      body: { email: 'x@example.test', name: 'Doc', password: 'short', role: 'client' } });
    assert.equal(short.status, 422);
    const id = created.json.id;
    await call('GET', `/api/v1/users/${id}`, { token: admin });
    await call('PATCH', `/api/v1/users/${id}`, { token: admin, body: { role: 'admin' } });
    const unknown = await call('PATCH', `/api/v1/users/${id}`, { token: admin, body: { nick: 'x' } });
    assert.equal(unknown.json.code, 'unknown_field');
    const self = await call('DELETE', `/api/v1/users/${ctx.admin.user.id}`, { token: admin });
    assert.equal(self.json.code, 'cannot_delete_self');
    const gone = await call('DELETE', `/api/v1/users/${id}`, { token: admin });
    assert.equal(gone.status, 204);
    const missing = await call('GET', `/api/v1/users/${id}`, { token: admin });
    assert.equal(missing.status, 404);
  });

  test('devices: create, list, read, change, rotate and their failures', async () => {
    const admin = ctx.admin.token;
    const made = await call('POST', '/api/v1/devices', { token: admin,
      body: { name: 'Doc meter', max_hourly_kwh: 2.5, owner_id: client.id } });
    assert.equal(made.status, 201, made.text);
    cumulative = made.json;
    const other = await call('POST', '/api/v1/devices', { token: admin,
      body: { name: 'Doc interval', max_hourly_kwh: 1, reading_type: 'interval',
        owner_id: ctx.admin.user.id, description: 'd', address: 'a' } });
    interval = other.json;

    const invalid = await call('POST', '/api/v1/devices', { token: admin,
      body: { name: 'x', max_hourly_kwh: -1 } });
    assert.equal(invalid.status, 422);
    assert.equal(invalid.json.field, 'max_hourly_kwh');
    const noOwner = await call('POST', '/api/v1/devices', { token: admin,
      body: { name: 'x', max_hourly_kwh: 1, owner_id: 999999999 } });
    assert.equal(noOwner.status, 422);
    const wrongType = await call('POST', '/api/v1/devices', { token: admin,
      body: 'name=x', headers: { 'content-type': 'text/plain' } });
    assert.equal(wrongType.status, 415);
    const notAdmin = await call('POST', '/api/v1/devices', { token: client.token,
      body: { name: 'x', max_hourly_kwh: 1 } });
    assert.equal(notAdmin.status, 403);

    const page = await call('GET', '/api/v1/devices?limit=1', { token: admin });
    assert.equal(typeof page.json.next_cursor, 'string');
    await call('GET', `/api/v1/devices?cursor=${page.json.next_cursor}`, { token: admin });
    await call('GET', `/api/v1/devices?owner_id=${client.id}`, { token: client.token });
    const badLimit = await call('GET', '/api/v1/devices?limit=0', { token: admin });
    assert.equal(badLimit.json.code, 'invalid_query');
    const badCursor = await call('GET', '/api/v1/devices?cursor=zzz', { token: admin });
    assert.equal(badCursor.json.code, 'invalid_cursor');

    await call('GET', `/api/v1/devices/${cumulative.id}`, { token: client.token });
    const notYours = await call('GET', `/api/v1/devices/${interval.id}`, { token: client.token });
    assert.equal(notYours.status, 404);
    const renamed = await call('PATCH', `/api/v1/devices/${cumulative.id}`,
      { token: client.token, body: { name: 'Doc meter 2', max_hourly_kwh: 3 } });
    assert.equal(renamed.status, 200);
    const address = await call('PATCH', `/api/v1/devices/${cumulative.id}`,
      { token: client.token, body: { address: 'elsewhere' } });
    assert.equal(address.json.code, 'forbidden_field');
    const immutable = await call('PATCH', `/api/v1/devices/${cumulative.id}`,
      { token: admin, body: { reading_type: 'interval' } });
    assert.equal(immutable.json.code, 'immutable_field');

    const spare = await call('POST', '/api/v1/devices', { token: admin,
      body: { name: 'Spare', max_hourly_kwh: 1 } });
    const rotated = await call('POST', `/api/v1/devices/${spare.json.id}/token`, { token: admin });
    assert.equal(rotated.status, 200);
    const deleted = await call('DELETE', `/api/v1/devices/${spare.json.id}`, { token: admin });
    assert.equal(deleted.status, 204);
    await call('POST', `/api/v1/devices/${spare.json.id}/token`, { token: admin });
  });

  test('ingestion: one reading, a batch, and what is refused', async () => {
    const ingest = (device, body) =>
      call('POST', '/api/v1/measurements', { token: device.token, body });
    const one = await ingest(cumulative, { ts: iso(hourAgo), meter_kwh: 100 });
    assert.equal(one.status, 200, one.text);
    const batch = await ingest(cumulative, { measurements: [
      { ts: iso(hourAgo + 30 * 60 * 1000), meter_kwh: 101.5 },
      { ts: iso(hourAgo + 90 * 60 * 1000), meter_kwh: 103.25 },
      { ts: iso(hourAgo + 90 * 60 * 1000), meter_kwh: 103.25 },
    ] });
    assert.deepEqual(batch.json, { accepted: 2, duplicates: 1 });
    const over = await ingest(interval, { ts: iso(hourAgo), kwh: 5 });
    assert.equal(over.status, 200);

    const otherMember = await ingest(interval, { measurements: [{ kwh: 1 }, { meter_kwh: 1 }] });
    assert.equal(otherMember.json.field, 'measurements[1].meter_kwh');
    const extra = await ingest(interval, { measurements: [{ kwh: 1 }], more: 1 });
    assert.equal(extra.json.code, 'unknown_field');
    const userToken = await call('POST', '/api/v1/measurements',
      { token: client.token, body: { kwh: 1 } });
    assert.equal(userToken.status, 401);
  });

  test('consumption and readings: both forms, CSV, and what is refused', async () => {
    const base = `/api/v1/devices/${cumulative.id}`;
    const as = { token: client.token };
    const day = new Date(hourAgo).toISOString().slice(0, 10);
    const dayForm = await call('GET', `${base}/consumption?date=${day}`, as);
    assert.equal(dayForm.status, 200, dayForm.text);
    assert.equal(dayForm.json.date, day);
    for (const bucket of ['hour', 'day', 'month']) {
      const range = await call('GET', `${base}/consumption?from=${iso(hourAgo - 24 * HOUR)}` +
        `&to=${iso(hourAgo + 24 * HOUR)}&bucket=${bucket}&tz=Europe/Bucharest`, as);
      assert.equal(range.status, 200, range.text);
      assert.equal(range.json.bucket, bucket);
    }
    const mixed = await call('GET', `${base}/consumption?date=${day}&bucket=day`, as);
    assert.equal(mixed.status, 400);
    const zone = await call('GET', `${base}/consumption?date=${day}&tz=Mars/Olympus_Mons`, as);
    assert.equal(zone.status, 422);
    const tooMany = await call('GET',
      `${base}/consumption?from=2000-01-01T00:00:00Z&to=2020-01-01T00:00:00Z`, as);
    assert.equal(tooMany.json.code, 'too_many_buckets');

    const readings = await call('GET', `${base}/measurements?limit=2`, as);
    assert.equal(readings.json.items.length, 2);
    await call('GET', `${base}/measurements?cursor=${readings.json.next_cursor}`, as);
    const intervalReadings = await call('GET', `/api/v1/devices/${interval.id}/measurements`,
      { token: ctx.admin.token });
    assert.ok('kwh' in intervalReadings.json.items[0]);
    const csv = await call('GET', `${base}/measurements`, { ...as, headers: { accept: 'text/csv' } });
    assert.equal(csv.text.split('\n')[0], 'ts,meter_kwh');
    const backwards = await call('GET',
      `${base}/measurements?from=${iso(hourAgo)}&to=${iso(hourAgo)}`, as);
    assert.equal(backwards.status, 422);
  });

  test('alerts: list and acknowledge', async () => {
    const admin = { token: ctx.admin.token };
    const alerts = await h.waitFor(async () => {
      const res = await call('GET', `/api/v1/alerts?device_id=${interval.id}`, admin);
      return res.json.items.length > 0 && res.json;
    }, { message: 'an alert for the interval device' });
    const acked = await call('POST', `/api/v1/alerts/${alerts.items[0].id}/ack`, admin);
    assert.equal(acked.status, 200);
    const notYours = await call('POST', `/api/v1/alerts/${alerts.items[0].id}/ack`,
      { token: client.token });
    assert.equal(notYours.status, 404);
    const full = await call('GET', '/api/v1/alerts?limit=1', admin);
    await call('GET', `/api/v1/alerts?cursor=${full.json.next_cursor}&since_id=0`, admin);
    const bad = await call('GET', '/api/v1/alerts?since_id=-1', { token: client.token });
    assert.equal(bad.status, 400);
  });

  test('chat: conversations, messages, reads and their failures', async () => {
    const admin = { token: ctx.admin.token };
    const mine = await call('GET', '/api/v1/me/conversation', { token: client.token });
    assert.equal(mine.status, 200, mine.text);
    const conv = mine.json.id;
    const base = `/api/v1/conversations/${conv}`;
    const notClient = await call('GET', '/api/v1/me/conversation', admin);
    assert.equal(notClient.status, 404);
    const sent = await call('POST', `${base}/messages`,
      { token: client.token, body: { text: 'Hello <b>support</b>' } });
    assert.equal(sent.status, 201, sent.text);
    await call('GET', sent.headers.get('location'), admin);
    await call('POST', `${base}/messages`, { ...admin, body: { text: 'Hi!' } });
    const tooLong = await call('POST', `${base}/messages`,
      { token: client.token, body: { text: 'x'.repeat(4001) } });
    assert.equal(tooLong.status, 422);
    const page = await call('GET', `${base}/messages?limit=1`, { token: client.token });
    await call('GET', `${base}/messages?cursor=${page.json.next_cursor}`, { token: client.token });
    await call('GET', `${base}/messages?before_id=${sent.json.id}`, admin);
    const badBefore = await call('GET', `${base}/messages?before_id=x`, admin);
    assert.equal(badBefore.status, 400);
    const list = await call('GET', '/api/v1/conversations?limit=1&unread=true', admin);
    assert.equal(list.status, 200, list.text);
    await call('GET', '/api/v1/conversations?cursor=zzz', admin);
    const forbidden = await call('GET', '/api/v1/conversations', { token: client.token });
    assert.equal(forbidden.status, 403);
    const read = await call('POST', `${base}/read`, { ...admin, body: { up_to_id: sent.json.id } });
    assert.equal(read.status, 204);
    const badRead = await call('POST', `${base}/read`, { ...admin, body: { up_to: 1 } });
    assert.equal(badRead.status, 422);
    const other = await h.createUser(ctx.server, { role: 'client' });
    const otherToken = (await h.login(ctx.server, other.email, other.password)).access_token;
    const notYours = await call('GET', `${base}/messages`, { token: otherToken });
    assert.equal(notYours.status, 404);
    for (let i = 0; i < 30; i++) {
      await ctx.api('POST', `${base}/messages`, { token: client.token, body: { text: `m${i}` } });
    }
    const limited = await call('POST', `${base}/messages`,
      { token: client.token, body: { text: 'one too many' } });
    assert.equal(limited.status, 429);
  });

  test('operations, and the answers any request may get', async () => {
    for (const p of ['/healthz', '/readyz', '/metrics', '/api/v1/config', '/api/v1/openapi.json']) {
      assert.equal((await call('GET', p)).status, 200);
    }
    checkGlobalProblem(await ctx.api('GET', '/api/v1/nothing-here'), 404, 'not_found');
    const res = await ctx.api('DELETE', '/api/v1/me', { token: client.token });
    checkGlobalProblem(res, 405, 'method_not_allowed');
    assert.equal(res.headers.get('allow'), 'GET, HEAD, PATCH');
  });
});

// ---------------------------------------------------------------------------------------
// The WebSocket channel

describe('the broker auth routes, with AMQP_URL set', () => {
  before(loadSpec);

  test('answer documented statuses and bodies: allow/deny, 400, 404, 415', async (t) => {
    const server = await h.startServer({ databaseUrl: ctx.pg.url,
      env: { AMQP_URL: 'amqp://u:p@127.0.0.1:1/%2f' } });
    t.after(() => server.stop());
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const ask = (kind, body, headers = form) =>
      h.api(server, 'POST', `/api/v1/broker/auth/${kind}`, { body, headers });
    for (const kind of ['user', 'vhost', 'resource', 'topic']) {
      const template = `/api/v1/broker/auth/${kind}`;
      const denied = check(await ask(kind, 'username=7&vhost=other'), 'POST', template);
      assert.equal(denied.status, 200, denied.text);
      assert.equal(denied.text, 'deny');
      assert.equal(check(await ask(kind, 'a=%zz'), 'POST', template).status, 400);
      assert.equal(check(await ask(kind, '{}', { 'content-type': 'application/json' }), 'POST',
        template).status, 415);
    }
    const allowed = check(await ask('vhost', 'username=7&vhost=%2F&ip=127.0.0.1'), 'POST',
      '/api/v1/broker/auth/vhost');
    assert.equal(allowed.text, 'allow');
    // Without AMQP_URL (the suite's server): 404, as documented.
    const off = await ctx.api('POST', '/api/v1/broker/auth/user',
      { body: 'username=7&password=x', headers: form });
    assert.equal(check(off, 'POST', '/api/v1/broker/auth/user').status, 404);
  });
});

describe('the WebSocket messages', () => {
  before(loadSpec);

  const sockets = [];
  after(async () => {
    await Promise.all(sockets.map((c) => c.terminate()));
  });

  function assertMessage(kind, msg) {
    const xws = spec['x-websocket'];
    assertValid(spec, xws[kind === 'server' ? 'serverMessage' : 'clientMessage'], msg,
      `WebSocket ${kind} message ${msg.type}`);
  }

  test('ready, error, usage and alert validate against x-websocket', async () => {
    const device = await ctx.api('POST', '/api/v1/devices', { token: ctx.admin.token,
      body: { name: 'WS doc meter', max_hourly_kwh: 1, reading_type: 'interval',
        owner_id: ctx.admin.user.id } });
    assert.equal(device.status, 201, device.text);
    const config = await call('GET', '/api/v1/config');

    const c = await wsc.open(config.json.ws_url);
    sockets.push(c);
    const auth = { type: 'auth', token: ctx.admin.token };
    assertMessage('client', auth);
    c.send(auth);
    assertMessage('server', await c.next('ready'));

    c.send('not json');
    const malformed = await c.next('error');
    assertMessage('server', malformed);
    assert.equal(malformed.code, 'malformed');
    c.send({ type: 'dance' });
    assertMessage('server', await c.next('error'));
    c.send({ type: 'subscribe', device_id: 'seven' });
    assertMessage('server', await c.next('error'));
    c.send({ type: 'subscribe', device_id: 999999999 });
    const missing = await c.next('error');
    assertMessage('server', missing);
    assert.equal(missing.code, 'not_found');

    const subscribe = { type: 'subscribe', device_id: device.json.id };
    assertMessage('client', subscribe);
    c.send(subscribe);
    await h.sleep(300); // the subscription is checked by the hub's worker
    const now = Date.now() - 1000;
    const res = await ctx.api('POST', '/api/v1/measurements',
      { token: device.json.token, body: { ts: iso(now), kwh: 2 } });
    assert.equal(res.status, 200, res.text);
    assertMessage('server', await c.next('usage', 10000));
    // next('usage') may have stepped over the alert: it stays in c.messages.
    const alert = c.received('alert')[0] ?? await c.next('alert', 10000);
    assertMessage('server', alert);
    const unsubscribe = { type: 'unsubscribe', device_id: device.json.id };
    assertMessage('client', unsubscribe);
    c.send(unsubscribe);
    for (const msg of c.messages) assertMessage('server', msg);
  });

  test('the chat messages validate against x-websocket', async () => {
    const account = await h.createUser(ctx.server, { role: 'client' });
    const token = (await h.login(ctx.server, account.email, account.password)).access_token;
    const conv = (await ctx.api('GET', '/api/v1/me/conversation', { token })).json.id;
    const config = await ctx.api('GET', '/api/v1/config');
    const client = await wsc.session(config.json.ws_url, token);
    const admin = await wsc.session(config.json.ws_url, ctx.admin.token);
    sockets.push(client, admin);
    const send = { type: 'chat.send', conversation_id: conv, text: 'hi', client_msg_id: 'c1' };
    assertMessage('client', send);
    client.send(send);
    assertMessage('server', await client.next('chat.sent'));
    const message = await admin.next('chat.message');
    assertMessage('server', message);
    const typing = { type: 'chat.typing', conversation_id: conv };
    assertMessage('client', typing);
    client.send(typing);
    assertMessage('server', await admin.next('chat.typing'));
    const read = { type: 'chat.read', conversation_id: conv, up_to_id: message.message.id };
    assertMessage('client', read);
    admin.send(read);
    assertMessage('server', await client.next('chat.read'));
    client.send({ type: 'chat.send', conversation_id: 999999999, text: 'x', client_msg_id: 2 });
    assertMessage('server', await client.next('error'));
    client.send({ type: 'chat.send', conversation_id: conv, text: '' });
    assertMessage('server', await client.next('error'));
    for (let i = 0; i < 30; i++) {
      client.send({ type: 'chat.send', conversation_id: conv, text: `m${i}`, client_msg_id: i });
    }
    const limited = await client.next('error', 10000);
    assert.equal(limited.code, 'rate_limited');
    assertMessage('server', limited);
    for (const msg of [...client.messages, ...admin.messages]) assertMessage('server', msg);
  });

  // Opens a socket, sends raw, and checks the close against x-websocket.closeCodes.
  async function closesWith(raw, expected) {
    const config = await ctx.api('GET', '/api/v1/config');
    const c = await wsc.open(config.json.ws_url);
    sockets.push(c);
    if (Buffer.isBuffer(raw)) c.ws.send(raw, { binary: false });
    else c.send(raw);
    const code = await c.closedWithin(5000);
    assert.equal(code, expected);
    const documented = spec['x-websocket'].closeCodes[String(code)];
    assert.ok(documented, `close code ${code} is not documented`);
    assert.ok(documented.reasons.includes(c.closeReason),
      `close reason "${c.closeReason}" is not documented`);
  }

  test('a first message that is not auth closes with 4401', () =>
    closesWith({ type: 'subscribe', device_id: 1 }, 4401));

  test('a message over 64 KiB closes with 1009', () =>
    closesWith({ type: 'auth', token: 'x'.repeat(spec['x-websocket'].limits.maxMessageBytes) },
      1009));

  test('a text frame that is not UTF-8 closes with 1007', () =>
    closesWith(Buffer.from([0xff, 0xfe, 0x7b]), 1007));
});
