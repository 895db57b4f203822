'use strict';
// ack_consumer.js: the broker scenario's ceiling consumer, in a process of its own so
// that it does not share the publisher's event loop: consumes QUEUE with PREFETCH
// unacknowledged messages at most and acks each at once without storing anything
// (acks of 64 at a time, with `multiple`, as Wattline's group acks do). Prints "ready"
// once consuming, and "done <ms since the epoch>" when it has acked EXPECTED messages.
//
//   node ack_consumer.js AMQP_URL QUEUE PREFETCH EXPECTED
const path = require('node:path');

const amqp = require(path.resolve(__dirname, '..', '..', '..', 'tests', 'node_modules', 'amqplib'));

async function main() {
  const [url, queue, prefetch, expected] = process.argv.slice(2);
  const conn = await amqp.connect(url);
  const ch = await conn.createChannel();
  await ch.prefetch(Number(prefetch), true);
  let acked = 0;
  let last = null;
  const flush = () => {
    if (last) ch.ack(last, true);
    last = null;
  };
  setInterval(flush, 2).unref();
  await ch.consume(queue, (msg) => {
    last = msg;
    acked++;
    if (acked % 64 === 0) flush();
    if (acked === Number(expected)) {
      flush();
      process.stdout.write(`done ${Date.now()}\n`);
    }
  });
  process.stdout.write('ready\n');
}

main().catch((err) => {
  process.stderr.write(`ack_consumer: ${err.stack || err.message}\n`);
  process.exit(2);
});
