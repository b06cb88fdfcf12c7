// BullMQ, the peer of the Redis job store benchmark
// (benches/benches/jobs_redis.rs), doing the same work against the same
// server.
//
// Throughput (the default): submit JOBS jobs in bulk chunks of CHUNK while
// one worker with CONCURRENCY slots claims, runs a no-op handler and
// records each completion; time from the first submission to the last
// completion. Completed jobs are kept, as the mechops store keeps them
// (retention prunes them later). Prints one line per round and a median:
// "bullmq: N jobs/s".
//
// Latency (MODE=latency): SAMPLES jobs, one at a time, each submitted to an
// idle worker; the time from just before `queue.add` to the handler's
// start. Prints "bullmq latency: p50 X us, p99 Y us, max Z us".
//
//   REDIS_URL=redis://127.0.0.1:6379 JOBS=20000 node bench.mjs
//   REDIS_URL=redis://127.0.0.1:6379 MODE=latency SAMPLES=1000 node bench.mjs
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
const SAMPLES = Number(process.env.SAMPLES ?? 1000);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

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

async function latency() {
  const name = `latency-${process.pid}`;
  const queueConnection = connect();
  const workerConnection = connect();
  const queue = new Queue(name, { connection: queueConnection });
  let onStart = () => {};
  const worker = new Worker(name, async () => { onStart(process.hrtime.bigint()); return null; },
    { connection: workerConnection, concurrency: 4 });
  await worker.waitUntilReady();
  const warmup = 20;
  const samples = [];
  for (let i = 0; i < SAMPLES + warmup; i++) {
    const started = new Promise((resolve) => { onStart = resolve; });
    const t0 = process.hrtime.bigint();
    await queue.add('noop', {});
    const t1 = await started;
    if (i >= warmup) samples.push(Number(t1 - t0) / 1000);
    // Let the worker finish the job and go idle again.
    await sleep(2);
  }
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  queueConnection.disconnect();
  workerConnection.disconnect();
  samples.sort((a, b) => a - b);
  const at = (q) => Math.round(samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]);
  console.log(`bullmq latency: p50 ${at(0.5)} us, p99 ${at(0.99)} us, max ${Math.round(samples[samples.length - 1])} us (${SAMPLES} samples)`);
}

if (process.env.MODE === 'latency') {
  await latency();
} else {
  const rates = [];
  for (let n = 0; n < ROUNDS; n++) {
    const rate = await round(n);
    rates.push(rate);
    console.log(`round ${n + 1}: ${Math.round(rate)} jobs/s`);
  }
  rates.sort((a, b) => a - b);
  console.log(`bullmq: ${Math.round(rates[Math.floor(rates.length / 2)])} jobs/s (median of ${ROUNDS}, ${JOBS} jobs, concurrency ${CONCURRENCY})`);
}
process.exit(0);
