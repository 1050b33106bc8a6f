// A diagnostic probe of where a live message's time goes inside a shard (issue 14, paced p99),
// off unless IRIS_STAGE_PROBE=1 is in the environment. When on, each shard records, per second:
// the time from a send frame's read to its delivery's socket write (`wire`), how long the event
// loop was late for a 1 ms timer (`lag`: long turns, GC pauses, time without a core), and how many
// messages one outbox turn read and how long it lasted. One line per second goes to stderr. When
// off, callers test one `null` and pay nothing else.

import { threadId } from "node:worker_threads";

/** Upper bounds of the probe's buckets (ms); fine below 1 ms, where a quiet turn lives. */
const BOUNDS_MS = [
  0.02,
  0.05,
  0.1,
  0.2,
  0.3,
  0.5,
  0.75,
  1,
  1.5,
  2,
  3,
  5,
  7.5,
  10,
  15,
  20,
  30,
  50,
  75,
  100,
  200,
  500,
  1000,
];

/** A bucketed series that reports quantiles and resets (the probe's numbers are per second). */
export class ProbeSeries {
  private readonly counts = new Array<number>(BOUNDS_MS.length + 1).fill(0);
  private n = 0;
  private max = 0;
  private sum = 0;

  record(ms: number): void {
    let i = 0;
    while (i < BOUNDS_MS.length && ms > BOUNDS_MS[i]!) i++;
    this.counts[i]!++;
    this.n++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  /** The upper bound of the bucket holding quantile q (the max for the last bucket). */
  quantile(q: number): number {
    if (this.n === 0) return 0;
    const want = Math.ceil(q * this.n);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= want) return i < BOUNDS_MS.length ? Math.min(BOUNDS_MS[i]!, this.max) : this.max;
    }
    return this.max;
  }

  summary(): { n: number; mean: number; p50: number; p90: number; p99: number; max: number } {
    const r = {
      n: this.n,
      mean: this.n ? Math.round((this.sum / this.n) * 1000) / 1000 : 0,
      p50: this.quantile(0.5),
      p90: this.quantile(0.9),
      p99: this.quantile(0.99),
      max: Math.round(this.max * 1000) / 1000,
    };
    this.counts.fill(0);
    this.n = this.sum = this.max = 0;
    return r;
  }
}

/** How late a 1 ms timer may fire before it counts as lag (timer slack, not a stall). */
const LAG_TICK_MS = 1;

export class StageProbe {
  readonly wire = new ProbeSeries();
  readonly lag = new ProbeSeries();
  readonly turnMs = new ProbeSeries();
  readonly turnReads = new ProbeSeries();
  private turnStart = 0;
  private reads = 0;
  /** Read times (epoch ms) of the deliveries each connection has queued and not yet written. */
  private readonly queued = new Map<object, number[]>();

  constructor(private readonly label: string) {
    let last = performance.now();
    setInterval(() => {
      const now = performance.now();
      this.lag.record(Math.max(0, now - last - LAG_TICK_MS));
      last = now;
    }, LAG_TICK_MS);
    setInterval(() => this.report(), 1000);
  }

  /** A message read (before its handlers run). */
  read(now: number): void {
    if (this.reads++ === 0) this.turnStart = now;
  }

  /** The outbox's end-of-turn write ran. */
  turnEnd(now: number): void {
    if (this.reads === 0) return;
    this.turnMs.record(now - this.turnStart);
    this.turnReads.record(this.reads);
    this.reads = 0;
  }

  /** A live delivery read at `t0` (epoch ms) was queued for connection `s`. */
  queuedFor(s: object, t0: number): void {
    const q = this.queued.get(s);
    if (q) q.push(t0);
    else this.queued.set(s, [t0]);
  }

  /** Connection `s`'s queued frames were handed to its socket. */
  written(s: object): void {
    const q = this.queued.get(s);
    if (!q) return;
    this.queued.delete(s);
    const now = performance.timeOrigin + performance.now();
    for (const t0 of q) this.wire.record(now - t0);
  }

  private report(): void {
    const line = {
      probe: this.label,
      at: new Date().toISOString(),
      wire: this.wire.summary(),
      lag: this.lag.summary(),
      turnMs: this.turnMs.summary(),
      turnReads: this.turnReads.summary(),
    };
    process.stderr.write(`stage-probe ${JSON.stringify(line)}\n`);
  }
}

/** The shard's probe, or null (the default): created once per thread from the environment. */
export const stageProbe: StageProbe | null = process.env.IRIS_STAGE_PROBE === "1"
  ? new StageProbe(`thread${threadId}`)
  : null;
