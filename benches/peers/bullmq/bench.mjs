// End-to-end no-op jobs through BullMQ, the same work as the Redis job
// store's criterion benchmark (benches/benches/jobs_redis.rs): submit JOBS
// jobs in bulk chunks of CHUNK while one worker with CONCURRENCY slots
// claims, runs a no-op handler and records each completion; time from the
// first submission to the last completion. Completed jobs are kept, as the
// mechops store keeps them (retention prunes them later).
//
//   REDIS_URL=redis://127.0.0.1:6379 JOBS=20000 node bench.mjs
//
// Prints one line per round and a median: "bullmq: N jobs/s".
import { Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';

const url = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const options = { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
// BullMQ under ESM takes client instances: one for the queue, one for the worker.
const connect = () => new IORedis(options);
const JOBS = Number(process.env.JOBS ?? 20000);
const CHUNK = Number(process.env.CHUNK ?? 500);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64);
const ROUNDS = Number(process.env.ROUNDS ?? 5);

async function round(n) {
  const name = `bench-${process.pid}-${n}`;
  const queueConnection = connect();
  const workerConnection = connect();
  const queue = new Queue(name, { connection: queueConnection });
  let done = 0;
  let finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  const worker = new Worker(name, async () => null, { connection: workerConnection, concurrency: CONCURRENCY });
  worker.on('completed', () => { if (++done === JOBS) finish(); });
  await worker.waitUntilReady();
  const started = process.hrtime.bigint();
  for (let i = 0; i < JOBS; i += CHUNK) {
    const jobs = [];
    for (let j = i; j < Math.min(JOBS, i + CHUNK); j++) jobs.push({ name: 'noop', data: {} });
    await queue.addBulk(jobs);
  }
  await finished;
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  queueConnection.disconnect();
  workerConnection.disconnect();
  return JOBS / secs;
}

const rates = [];
for (let n = 0; n < ROUNDS; n++) {
  const rate = await round(n);
  rates.push(rate);
  console.log(`round ${n + 1}: ${Math.round(rate)} jobs/s`);
}
rates.sort((a, b) => a - b);
console.log(`bullmq: ${Math.round(rates[Math.floor(rates.length / 2)])} jobs/s (median of ${ROUNDS}, ${JOBS} jobs, concurrency ${CONCURRENCY})`);
process.exit(0);
