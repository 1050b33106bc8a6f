// Quantiles from a bucketed histogram (upper bounds + counts, the last bucket open-ended). Pure, so
// the admin API (cumulative counts) and the console (per-second differences) share it.

/**
 * The q-quantile (0 < q < 1), interpolated linearly inside its bucket; the open last bucket
 * reports its lower bound. Null when the histogram is empty.
 */
export function quantileFromBuckets(boundsMs: readonly number[], counts: readonly number[], q: number): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total <= 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i]!;
    if (n > 0 && below + n >= rank) {
      const lo = i === 0 ? 0 : boundsMs[i - 1]!;
      if (i >= boundsMs.length) return lo;
      return lo + (boundsMs[i]! - lo) * ((rank - below) / n);
    }
    below += n;
  }
  return boundsMs[boundsMs.length - 1]!;
}
