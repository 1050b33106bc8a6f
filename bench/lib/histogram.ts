// A log-linear (HDR-style) latency histogram in microseconds: exact 1 µs buckets below 128 µs,
// then 128 linear sub-buckets per power of two, so every bucket is within 1/128 (0.8%) of its
// values, from 1 µs to 60 s in 2,560 counters. Histograms from different worker processes merge
// by adding counters, which is why a fixed bucket layout is used instead of sampling.

export const SUB_BITS = 7;
const SUB = 1 << SUB_BITS; // 128 sub-buckets per octave
export const MAX_US = 60_000_000; // 60 s: anything slower is clamped into the last bucket
const OCTAVES = Math.ceil(Math.log2(MAX_US)) - SUB_BITS + 1;
export const BUCKETS = OCTAVES * SUB;

/** Index of the bucket holding `us` (clamped to [0, MAX_US]). */
export function bucketIndex(us: number): number {
  const v = Math.floor(Math.min(Math.max(us, 0), MAX_US));
  if (v < SUB) return v;
  const e = Math.floor(Math.log2(v));
  const shift = e - SUB_BITS;
  // Math.log2 can be off by one ulp at exact powers of two; the sub index corrects for it.
  let sub = Math.floor(v / 2 ** shift);
  let s = shift;
  if (sub >= 2 * SUB) {
    s++;
    sub = Math.floor(v / 2 ** s);
  } else if (sub < SUB) {
    s--;
    sub = Math.floor(v / 2 ** s);
  }
  return Math.min((s + 1) * SUB + (sub - SUB), BUCKETS - 1);
}

/** Smallest value (µs) that lands in bucket `i`. */
export function bucketLow(i: number): number {
  if (i < SUB) return i;
  const shift = Math.floor(i / SUB) - 1;
  return ((i % SUB) + SUB) * 2 ** shift;
}

/** One past the largest value (µs) that lands in bucket `i`. */
export function bucketHigh(i: number): number {
  if (i < SUB) return i + 1;
  const shift = Math.floor(i / SUB) - 1;
  return bucketLow(i) + 2 ** shift;
}

/** Latency summary in milliseconds (what results files and summaries carry). */
export interface LatencySummary {
  count: number;
  minMs: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

/** Sparse, JSON-safe form for IPC between worker processes and for results files. */
export interface HistogramJson {
  count: number;
  min: number;
  max: number;
  sum: number;
  buckets: [number, number][];
}

export class Histogram {
  readonly counts = new Float64Array(BUCKETS);
  count = 0;
  min = Infinity;
  max = 0;
  sum = 0;

  record(us: number, n = 1): void {
    if (!(us >= 0)) return; // NaN or negative: a clock bug upstream, not a latency
    this.counts[bucketIndex(us)]! += n;
    this.count += n;
    this.sum += us * n;
    if (us < this.min) this.min = us;
    if (us > this.max) this.max = us;
  }

  merge(o: Histogram): this {
    for (let i = 0; i < BUCKETS; i++) this.counts[i]! += o.counts[i]!;
    this.count += o.count;
    this.sum += o.sum;
    if (o.min < this.min) this.min = o.min;
    if (o.max > this.max) this.max = o.max;
    return this;
  }

  /**
   * Value (µs) at percentile `p` (0..100): the upper edge of the bucket holding the p-th value,
   * clamped to the exact min and max, so percentiles never under-report.
   */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil((Math.min(Math.max(p, 0), 100) / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(Math.max(bucketHigh(i), this.min), this.max);
    }
    return this.max;
  }

  summary(): LatencySummary {
    const ms = (us: number) => Math.round(us) / 1000;
    if (this.count === 0) return { count: 0, minMs: 0, meanMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0 };
    return {
      count: this.count,
      minMs: ms(this.min),
      meanMs: ms(this.sum / this.count),
      p50Ms: ms(this.percentile(50)),
      p90Ms: ms(this.percentile(90)),
      p99Ms: ms(this.percentile(99)),
      p999Ms: ms(this.percentile(99.9)),
      maxMs: ms(this.max),
    };
  }

  toJSON(): HistogramJson {
    const buckets: [number, number][] = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]! > 0) buckets.push([i, this.counts[i]!]);
    return { count: this.count, min: this.count ? this.min : 0, max: this.max, sum: this.sum, buckets };
  }

  static fromJSON(j: HistogramJson): Histogram {
    const h = new Histogram();
    for (const [i, n] of j.buckets) if (i >= 0 && i < BUCKETS) h.counts[i] = n;
    h.count = j.count;
    h.sum = j.sum;
    h.max = j.max;
    h.min = j.count ? j.min : Infinity;
    return h;
  }
}

/** Merges any number of serialized histograms (from workers) into one. */
export function mergeAll(parts: HistogramJson[]): Histogram {
  const h = new Histogram();
  for (const p of parts) h.merge(Histogram.fromJSON(p));
  return h;
}
