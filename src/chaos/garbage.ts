// Garbage for the "PID corruption" fault: values of mixed types, including near-misses shaped like
// real port messages with a wrong field, so validation is exercised past the first check.
// Deterministic for a seed, so a failing run can be replayed.

export function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    // xorshift32
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}

const realShapes: Record<string, unknown>[] = [
  { t: "route", to: "u", from: "v", id: "i", body: new Uint8Array(1), ts: 1, t0: 1, o: 0, c: 1 },
  { t: "deliver", user: "u", conn: 1, items: [], page: false },
  { t: "attach", user: "u", shard: 0, conn: 1, v0: false, resume: 0 },
  { t: "ack", user: "u", shard: 0, conn: 1, seq: 1 },
  { t: "append", rows: [], o: [], c: [] },
  { t: "fetch", user: "u", after: 0, limit: 10, gen: 1 },
  { t: "loaded", user: "u", seqBase: 1, seqLimit: 10, lastSeen: 0 },
  { t: "committed", n: 1 },
];

const oddValues: unknown[] = [
  null,
  undefined,
  0,
  -1,
  NaN,
  Infinity,
  2 ** 60,
  "",
  "route",
  "\u0000\uffff",
  true,
  [],
  {},
  new Uint8Array(3),
  new ArrayBuffer(4),
  new Date(0),
  new Map([[1, 2]]),
  new Set([1]),
  [1, "two", null],
  { t: null },
  { t: 42 },
  { t: "nonsense" },
  { __proto__: null },
];

export function garbageValue(rand: () => number): unknown {
  const r = rand();
  if (r < 0.4) return oddValues[Math.floor(rand() * oddValues.length)];
  if (r < 0.9) {
    // A real shape with one field replaced by something of the wrong type.
    const base = { ...realShapes[Math.floor(rand() * realShapes.length)]! };
    const keys = Object.keys(base).filter((k) => k !== "t");
    const k = keys[Math.floor(rand() * keys.length)];
    if (k) base[k] = oddValues[Math.floor(rand() * oddValues.length)];
    return base;
  }
  return Array.from({ length: 1 + Math.floor(rand() * 4) }, () => oddValues[Math.floor(rand() * oddValues.length)]);
}

export function garbageBatch(count: number, seed: number): unknown[] {
  const rand = prng(seed);
  return Array.from({ length: count }, () => garbageValue(rand));
}
