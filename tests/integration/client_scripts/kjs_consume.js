// A kafkajs consumer group member with eachMessage, as a NestJS service has.
//
// usage: node kjs_consume.js BOOTSTRAP TOPIC GROUP N TIMEOUT_SECONDS
// Prints one JSON line per record; exits 0 after N records, 1 on timeout,
// 3 when the consumer crashes (e.g. KafkaJSNotImplemented for a codec),
// with the error on stderr.
'use strict';
const { Kafka, logLevel } = require('kafkajs');

const [bootstrap, topic, group, nArg, timeoutArg] = process.argv.slice(2);
const n = Number(nArg);
const kafka = new Kafka({
  clientId: 'ytk-test-kafkajs',
  brokers: bootstrap.split(','),
  logLevel: logLevel.NOTHING,
  retry: { retries: 3, restartOnFailure: async () => false },
});
const consumer = kafka.consumer({ groupId: group });
let got = 0;
let ending = false;

function end(code, why) {
  if (ending) {
    return;
  }
  ending = true;
  if (why) {
    process.stderr.write(why + '\n');
  }
  consumer.disconnect().catch(() => {}).finally(() => process.exit(code));
  setTimeout(() => process.exit(code), 10000).unref();
}

setTimeout(() => end(1, 'timeout: ' + got + ' of ' + n + ' records'),
           Number(timeoutArg) * 1000).unref();
consumer.on(consumer.events.CRASH, (e) => {
  const err = e.payload.error;
  end(3, 'CRASH ' + err.name + ': ' + err.message);
});

async function main() {
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const value = JSON.parse(message.value.toString());
      const headers = {};
      for (const [k, v] of Object.entries(message.headers || {})) {
        headers[k] = v.toString();
      }
      process.stdout.write(JSON.stringify({
        partition, offset: Number(message.offset),
        key: message.key === null ? null : message.key.toString(),
        headers, links: value.links, value,
      }) + '\n');
      got += 1;
      if (got >= n) {
        setImmediate(() => end(0));
      }
    },
  });
}

main().catch((err) => end(3, 'ERROR ' + err.name + ': ' + err.message));
