// The replaced NestJS service's producer: {"links": url} values, no key.
//
// usage: node kjs_produce.js BOOTSTRAP TOPIC < values (one JSON per line)
// Sends every line as one record with acks from all in-sync replicas and
// prints {"partition", "offset"} per record.
'use strict';
const readline = require('readline');
const { Kafka, logLevel } = require('kafkajs');

const [bootstrap, topic] = process.argv.slice(2);
const kafka = new Kafka({ clientId: 'ytk-test-kafkajs', brokers: bootstrap.split(','),
                          logLevel: logLevel.ERROR });
const producer = kafka.producer();

async function main() {
  const values = [];
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (line.trim()) {
      values.push(line);
    }
  }
  await producer.connect();
  for (const value of values) {
    const [meta] = await producer.send({ topic, acks: -1, messages: [{ value }] });
    process.stdout.write(JSON.stringify({ partition: meta.partition,
                                          offset: Number(meta.baseOffset) }) + '\n');
  }
  await producer.disconnect();
}

main().catch((err) => {
  process.stderr.write('ERROR ' + err.name + ': ' + err.message + '\n');
  process.exit(1);
});
