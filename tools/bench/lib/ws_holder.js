'use strict';
// ws_holder.js: idle WebSocket sessions for the scale scenario, in a process of its own
// (one event loop and heap per ~12,500 sockets, away from the bench's timing). Reads
// the owners' access tokens from TOKENS_FILE (one a line). For each "open N" line on
// stdin it opens N more authenticated sessions from LOCAL_ADDRESS, round robin over the
// tokens, PARALLEL handshakes at a time, and prints one JSON line:
//   {"open": sessions open now, "failed": failures so far, "error": the first failure,
//    "closed": sessions the server closed after they were ready, "codes": {code: count}}
// A failure does not stop the batch (the scenario reports how many were reached and
// why not more) unless 200 fail in a row. Exits, closing everything, when stdin ends.
//
//   node ws_holder.js WS_URL TOKENS_FILE LOCAL_ADDRESS PARALLEL
const fs = require('node:fs');
const readline = require('node:readline');

const { openSession } = require('./ws');

const GIVE_UP_AFTER = 200; // failures in a row: the server takes no more

async function main() {
  const [url, tokensFile, localAddress, parallelText] = process.argv.slice(2);
  const tokens = fs.readFileSync(tokensFile, 'utf8').split('\n').filter(Boolean);
  const parallel = Number(parallelText);
  const sessions = [];
  let opened = 0;
  let failed = 0;
  let inRow = 0;
  let firstError = null;

  async function openMore(n) {
    let next = 0;
    async function worker() {
      while (next < n && inRow < GIVE_UP_AFTER) {
        next++;
        const token = tokens[opened++ % tokens.length];
        try {
          sessions.push(await openSession(url, { token, owner: null, localAddress }));
          inRow = 0;
        } catch (err) {
          failed++;
          inRow++;
          firstError ??= err.message;
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(parallel, n) }, worker));
  }

  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    const m = /^open (\d+)$/.exec(line.trim());
    if (!m) continue;
    await openMore(Number(m[1]));
    const codes = {};
    for (const s of sessions) {
      if (s.closedCode !== null) codes[s.closedCode] = (codes[s.closedCode] ?? 0) + 1;
    }
    const closed = Object.values(codes).reduce((a, b) => a + b, 0);
    process.stdout.write(`${JSON.stringify({ open: sessions.length - closed, failed,
      error: firstError, closed, codes })}\n`);
  }
  process.exit(0); // the kernel closes the sockets
}

main().catch((err) => {
  process.stderr.write(`ws_holder: ${err.stack || err.message}\n`);
  process.exit(2);
});
