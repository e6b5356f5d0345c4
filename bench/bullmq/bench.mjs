// The BullMQ side of jobq's benchmark (see README.md here): the workloads of `jobq-bench`,
// run on BullMQ. Use ./run [a b c50 c1 d e f fspread ...], which starts a throw-away Redis.
// Directly: REDIS_PORT=<port of a throw-away Redis> node bench.mjs [parts ...]
// Each part is run RUNS (default 3) times; the Redis is FLUSHALLed before every run.
import { FlowProducer, Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';

// no default port: every run FLUSHALLs, so the Redis must be named on purpose
if (!process.env.REDIS_PORT) throw new Error('set REDIS_PORT to a throw-away Redis (it is flushed), or use ./run');
const connection = { host: process.env.REDIS_HOST || '127.0.0.1', port: +process.env.REDIS_PORT };
const QNAME = 'bench';
const N = +(process.env.N || 50000);
const RUNS = +(process.env.RUNS || 3);
const CHUNK = 1000;
const admin = new IORedis(connection);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ~100-byte JSON payload
const FILL = 'x'.repeat(40);
function payload(i) {
  return { i, user: `user_${i % 10000}`, action: 'send_email', body: FILL };
}

async function flush() { await admin.flushall(); }
async function usedMemory() {
  const info = await admin.info('memory');
  return +/used_memory:(\d+)/.exec(info)[1];
}
const REDIS_PID = +/process_id:(\d+)/.exec(await admin.info('server'))[1];

// ---- CPU accounting from /proc (ticks, CLK_TCK=100) ----
function procTicks(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return +f[11] + +f[12]; // utime + stime
}
function sysTicks() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + f[4];
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { idle, total, steal: f[7] };
}
function cpuStart() {
  const n0 = procTicks(process.pid), r0 = procTicks(REDIS_PID), s0 = sysTicks(), t0 = performance.now();
  return () => {
    const wall = (performance.now() - t0) / 1000;
    const n1 = procTicks(process.pid), r1 = procTicks(REDIS_PID), s1 = sysTicks();
    return {
      nodeCpuPct: Math.round(((n1 - n0) / 100 / wall) * 100),
      redisCpuPct: Math.round(((r1 - r0) / 100 / wall) * 100),
      sysBusyPct: Math.round((1 - (s1.idle - s0.idle) / (s1.total - s0.total)) * 200), // of 200% (2 cores), incl. steal
      stealPct: Math.round(((s1.steal - s0.steal) / (s1.total - s0.total)) * 200), // hypervisor steal, of 200%
    };
  };
}

function pct(sorted, p) {
  if (!sorted.length) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}
const r2 = (x) => Math.round(x * 100) / 100;

async function addBulkAll(q, n, opts = {}) {
  for (let b = 0; b < n; b += CHUNK) {
    const jobs = [];
    for (let i = b; i < Math.min(n, b + CHUNK); i++) jobs.push({ name: 'job', data: payload(i), opts });
    await q.addBulk(jobs);
  }
}

// Open-loop steady-rate sender: calls fn(i) at `rate`/s, not waiting for completion.
function steady(M, rate, fn) {
  const interval = 1000 / rate;
  return new Promise((res) => {
    const t0 = performance.now();
    let sent = 0;
    const ps = [];
    const tick = () => {
      const due = Math.min(M, Math.floor((performance.now() - t0) / interval) + 1);
      while (sent < due) ps.push(fn(sent++));
      if (sent < M) setTimeout(tick, 1);
      else res({ ps, sendSec: (performance.now() - t0) / 1000 });
    };
    tick();
  });
}
async function waitFor(cond, timeoutMs = 120000) {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error('timeout waiting');
    await sleep(5);
  }
}

// ---------------- parts ----------------
const parts = {
  // (a) queue.add one by one, Promise.all in batches of 1000
  async a() {
    await flush();
    const q = new Queue(QNAME, { connection });
    await q.waitUntilReady();
    await q.add('warmup', payload(-1));
    const stop = cpuStart();
    const t0 = performance.now();
    for (let b = 0; b < N; b += CHUNK) {
      const ps = [];
      for (let i = b; i < b + CHUNK; i++) ps.push(q.add('job', payload(i)));
      await Promise.all(ps);
    }
    const dt = (performance.now() - t0) / 1000;
    const cpu = stop();
    const waiting = await q.getWaitingCount();
    await q.close();
    if (waiting !== N + 1) throw new Error(`expected ${N + 1} waiting, got ${waiting}`);
    return { jobsPerSec: Math.round(N / dt), sec: r2(dt), ...cpu };
  },

  // (b) addBulk in chunks of 1000
  async b() {
    await flush();
    const q = new Queue(QNAME, { connection });
    await q.waitUntilReady();
    await q.add('warmup', payload(-1));
    const stop = cpuStart();
    const t0 = performance.now();
    await addBulkAll(q, N);
    const dt = (performance.now() - t0) / 1000;
    const cpu = stop();
    const waiting = await q.getWaitingCount();
    await q.close();
    if (waiting !== N + 1) throw new Error(`expected ${N + 1} waiting, got ${waiting}`);
    return { jobsPerSec: Math.round(N / dt), sec: r2(dt), ...cpu };
  },

  // (c) processing throughput, no-op async processor, removeOnComplete: true
  async c50() { return processing(50); },
  async c1() { return processing(1); },

  // (d) end-to-end latency add -> processor start, 2000 jobs at 500/s, worker concurrency 50
  async d() {
    await flush();
    const M = 2000, RATE = 500;
    const q = new Queue(QNAME, { connection });
    await q.waitUntilReady();
    const lat = [], addRtt = [];
    const w = new Worker(QNAME, async (job) => { lat.push(performance.now() - job.data.t); },
      { connection, concurrency: 50 });
    await w.waitUntilReady();
    await q.add('warmup', { ...payload(-1), t: performance.now() }, { removeOnComplete: true });
    await waitFor(() => lat.length === 1);
    lat.length = 0;
    await sleep(500);
    const stop = cpuStart();
    const { ps, sendSec } = await steady(M, RATE, (i) => {
      const t = performance.now();
      return q.add('job', { ...payload(i), t }, { removeOnComplete: true })
        .then(() => addRtt.push(performance.now() - t));
    });
    await Promise.all(ps);
    await waitFor(() => lat.length === M);
    const cpu = stop();
    await w.close(); await q.close();
    lat.sort((x, y) => x - y); addRtt.sort((x, y) => x - y);
    return {
      p50ms: r2(pct(lat, 50)), p99ms: r2(pct(lat, 99)), maxMs: r2(lat[lat.length - 1]),
      addRttP50ms: r2(pct(addRtt, 50)), addRttP99ms: r2(pct(addRtt, 99)),
      achievedRate: Math.round(M / sendSec), ...cpu,
    };
  },

  // (e) memory per waiting job
  async e() {
    await flush();
    const q = new Queue(QNAME, { connection });
    await q.waitUntilReady();
    await sleep(200);
    const before = await usedMemory();
    await addBulkAll(q, N);
    await sleep(500);
    const after = await usedMemory();
    const evMem = +(await admin.call('MEMORY', 'USAGE', `bull:${QNAME}:events`, 'SAMPLES', '0')) || 0;
    const evLen = await admin.xlen(`bull:${QNAME}:events`);
    const jobHash = +(await admin.call('MEMORY', 'USAGE', `bull:${QNAME}:100`));
    const waitList = +(await admin.call('MEMORY', 'USAGE', `bull:${QNAME}:wait`, 'SAMPLES', '0'));
    const sampleHash = await admin.hgetall(`bull:${QNAME}:100`);
    const waiting = await q.getWaitingCount();
    await q.close();
    if (waiting !== N) throw new Error(`expected ${N} waiting, got ${waiting}`);
    return {
      bytesPerJob: Math.round((after - before) / N),
      bytesPerJobExclEvents: Math.round((after - before - evMem) / N),
      deltaMB: r2((after - before) / 1048576), eventsStreamMB: r2(evMem / 1048576), eventsLen: evLen,
      jobHashBytes: jobHash, waitListBytesPerJob: r2(waitList / N),
      payloadBytes: JSON.stringify(payload(100)).length, sampleHashFields: Object.keys(sampleHash).join(','),
    };
  },

  // (f) delayed-job accuracy: 1000 jobs with delay 2000 ms, added in one burst (addBulk)
  async f() { return delayed('burst'); },
  // (f') same, but jobs added one at a time at 500/s (so due times are spread over 2 s)
  async fspread() { return delayed('spread'); },
  // (flow) jobq-bench's `flow` and `flowadd`: FLOW_N (default 10,000) no-op children under
  // one no-op parent, added as one flow (FlowProducer) and run at concurrency 50, against
  // the same number of plain jobs added by addBulk and run; Redis CPU per job / child
  async flow() { return flowOverhead(); },
};

// Redis CPU seconds so far (utime + stime of the server process).
function redisCpuSecs() { return procTicks(REDIS_PID) / 100; }

// Runs one worker per queue of `names` (BullMQ has no worker of several queues), each at
// concurrency 50, until `done(job)` says so; returns the seconds from their start.
async function runUntil(names, done) {
  let finish;
  const finished = new Promise((r) => (finish = r));
  const workers = names.map((name) => new Worker(name, async () => {}, { connection, concurrency: 50, autorun: false }));
  for (const w of workers) {
    w.on('completed', (job) => { if (done(job)) finish(); });
    w.on('failed', (j, e) => { console.error('failed', e); });
    await w.waitUntilReady();
  }
  const t0 = performance.now();
  for (const w of workers) w.run();
  await finished;
  const secs = (performance.now() - t0) / 1000;
  await Promise.all(workers.map((w) => w.close()));
  return secs;
}

async function flowOverhead() {
  const M = +(process.env.FLOW_N || 10000);
  const per = (s) => Math.round((s / M) * 1e6 * 10) / 10;
  // plain: M jobs added by addBulk, then run
  await flush();
  const q = new Queue('plain', { connection });
  await q.waitUntilReady();
  let c0 = redisCpuSecs(), t0 = performance.now();
  for (let b = 0; b < M; b += CHUNK) {
    const jobs = [];
    for (let i = b; i < Math.min(M, b + CHUNK); i++) jobs.push({ name: 'job', data: payload(i) });
    await q.addBulk(jobs);
  }
  const plainAdd = { secs: (performance.now() - t0) / 1000, cpu: redisCpuSecs() - c0 };
  let done = 0;
  c0 = redisCpuSecs();
  const plainSecs = await runUntil(['plain'], () => ++done === M);
  const plainCpu = redisCpuSecs() - c0;
  await q.close();
  // flow: the parent and its M children on one queue, as jobq-bench's `flow`
  await flush();
  const fp = new FlowProducer({ connection });
  const children = [];
  for (let i = 0; i < M; i++) children.push({ name: 'job', queueName: 'flowc', data: payload(i) });
  c0 = redisCpuSecs(); t0 = performance.now();
  const tree = await fp.add({ name: 'parent', queueName: 'flowc', data: { children: M }, children });
  const flowAdd = { secs: (performance.now() - t0) / 1000, cpu: redisCpuSecs() - c0 };
  c0 = redisCpuSecs();
  const flowSecs = await runUntil(['flowc'], (job) => job.id === tree.job.id);
  const flowCpu = redisCpuSecs() - c0;
  await fp.close();
  return {
    plainMs: Math.round(plainSecs * 1000), plainRedisUsPerJob: per(plainCpu),
    flowMs: Math.round(flowSecs * 1000), flowRedisUsPerChild: per(flowCpu),
    ratioTime: r2(flowSecs / plainSecs), ratioRedis: r2(flowCpu / plainCpu),
    plainAddMs: Math.round(plainAdd.secs * 1000), plainAddRedisUsPerJob: per(plainAdd.cpu),
    flowAddMs: Math.round(flowAdd.secs * 1000), flowAddRedisUsPerChild: per(flowAdd.cpu),
  };
}

async function processing(concurrency) {
  await flush();
  const q = new Queue(QNAME, { connection });
  await q.waitUntilReady();
  await addBulkAll(q, N, { removeOnComplete: true });
  let first = 0, last = 0, done = 0, resolve;
  const finished = new Promise((r) => (resolve = r));
  const w = new Worker(QNAME, async () => {}, { connection, concurrency, autorun: false });
  w.on('completed', () => {
    const t = performance.now();
    if (done === 0) first = t;
    last = t;
    if (++done === N) resolve();
  });
  w.on('failed', (j, e) => { console.error('failed', e); });
  await w.waitUntilReady();
  const stop = cpuStart();
  const t0 = performance.now();
  w.run();
  await finished;
  const cpu = stop();
  const dt = (last - first) / 1000;
  await w.close();
  const counts = await q.getJobCounts('waiting', 'active', 'completed', 'failed');
  const dbsize = await admin.dbsize();
  await q.close();
  if (counts.waiting || counts.active || counts.completed || counts.failed) throw new Error('leftover ' + JSON.stringify(counts));
  return {
    jobsPerSec: Math.round((N - 1) / dt), sec: r2(dt),
    jobsPerSecFromStart: Math.round(N / ((last - t0) / 1000)), leftoverKeys: dbsize, ...cpu,
  };
}

async function delayed(mode) {
  await flush();
  const M = 1000, DELAY = 2000;
  const q = new Queue(QNAME, { connection });
  await q.waitUntilReady();
  const err = [];
  const w = new Worker(QNAME, async (job) => { err.push(Date.now() - (job.timestamp + job.opts.delay)); },
    { connection, concurrency: 50 });
  await w.waitUntilReady();
  await q.add('warmup', payload(-1), { delay: 100, removeOnComplete: true });
  await waitFor(() => err.length === 1);
  err.length = 0;
  await sleep(500);
  const stop = cpuStart();
  if (mode === 'burst') {
    const jobs = [];
    for (let i = 0; i < M; i++) jobs.push({ name: 'job', data: payload(i), opts: { delay: DELAY, removeOnComplete: true } });
    await q.addBulk(jobs);
  } else {
    const { ps } = await steady(M, 500, (i) => q.add('job', payload(i), { delay: DELAY, removeOnComplete: true }));
    await Promise.all(ps);
  }
  await waitFor(() => err.length === M, 30000);
  const cpu = stop();
  await w.close(); await q.close();
  err.sort((x, y) => x - y);
  return { p50ms: pct(err, 50), p99ms: pct(err, 99), minMs: err[0], maxMs: err[err.length - 1], ...cpu };
}

// ---------------- driver ----------------
function summarize(runs) {
  const out = {};
  for (const k of Object.keys(runs[0])) {
    const v = runs.map((r) => r[k]);
    if (v.every((x) => typeof x === 'number')) {
      const s = [...v].sort((x, y) => x - y);
      out[k] = { median: s[Math.floor(s.length / 2)], min: s[0], max: s[s.length - 1] };
    } else out[k] = v[0];
  }
  return out;
}

const want = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(parts);
const all = {};
for (const p of want) {
  const runs = [];
  for (let r = 0; r < RUNS; r++) {
    const res = await parts[p]();
    console.log(`[${p}] run ${r + 1}:`, JSON.stringify(res));
    runs.push(res);
  }
  all[p] = { runs, summary: summarize(runs) };
  console.log(`[${p}] summary:`, JSON.stringify(all[p].summary));
  fs.writeFileSync(`results-${p}.json`, JSON.stringify(all[p], null, 2));
}
await flush();
await admin.quit();
