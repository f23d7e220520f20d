// P4's peer: N BullMQ delayed jobs all due at one instant, a no-op worker.
//
// node bullmq_burst.mjs PORT N CONCURRENCY LEAD_MS
//
// Must sit beside a node_modules holding bullmq (benches/peers.sh copies it
// into its scratch folder). Adds the N jobs with `delay` pointing at one
// instant LEAD_MS after the start, starts one worker with CONCURRENCY, and
// takes each job's lag as the processor's start minus the due instant.
// Jobs keep BullMQ's defaults (completed jobs are kept, as Herald keeps its
// history). Prints one line:
//   RESULT n=N throughput=JOBS_PER_S p50=MS p99=MS max=MS added_before_due_ms=MS
import { Queue, Worker } from 'bullmq';

const [port, n, concurrency, leadMs] = process.argv.slice(2).map(Number);
const connection = { host: '127.0.0.1', port };
const queue = new Queue('p4', { connection });
await queue.obliterate({ force: true });

const due = Date.now() + leadMs;
const chunk = 1000;
for (let start = 0; start < n; start += chunk) {
  const jobs = [];
  for (let i = start; i < Math.min(n, start + chunk); i++) {
    jobs.push({ name: 'noop', data: { i }, opts: { delay: Math.max(0, due - Date.now()) } });
  }
  await queue.addBulk(jobs);
}
const addedBeforeDue = due - Date.now();

const lags = [];
let resolveDone;
const done = new Promise((resolve) => { resolveDone = resolve; });
const worker = new Worker('p4', async () => {
  lags.push(Date.now() - due);
  if (lags.length === n) resolveDone();
}, { connection, concurrency });

await done;
const last = Math.max(...lags);
// The last processor start is not the last completion: wait for BullMQ to
// record every job so the throughput counts finished work.
while ((await queue.getCompletedCount()) < n) {
  await new Promise((r) => setTimeout(r, 5));
}
const finished = Date.now() - due;
await worker.close();
await queue.close();

lags.sort((a, b) => a - b);
const q = (p) => lags[Math.round((lags.length - 1) * p)];
console.log(
  `RESULT n=${n} throughput=${Math.round(n / (finished / 1000))} p50=${q(0.5)} p99=${q(0.99)} max=${last} added_before_due_ms=${addedBeforeDue}`,
);
