// The shard's Bloom filter of the dedupe window (router/sent-filter.ts): never a false "new" for a
// key accepted within the window (across grown filters and generations), few false "maybe seen",
// and memory within its bound (past it: more "maybe", still never a false "new").

import { describe, expect, test } from "bun:test";
import { filterImageProblem, firstCapacityFor, SentFilter, sentKeyHash } from "../../src/router/sent-filter.ts";

const WINDOW = 60_000;
const keyOf = (n: number) => sentKeyHash(`user-${n % 997}`, `user-${(n * 7) % 991}`, `m${n}`);

describe("sent filter", () => {
  test("every added key is found, past the first filter's capacity; unseen keys rarely are", () => {
    const f = new SentFilter(WINDOW);
    const now = 1_000_000;
    const N = 40_000; // more than the first filter holds (16,384): a second and third grow
    for (let n = 0; n < N; n++) f.add(...keyOf(n), now, now);
    let missed = 0;
    for (let n = 0; n < N; n++) if (!f.mightHave(...keyOf(n), now)) missed++;
    expect(missed).toBe(0);
    let falsePositives = 0;
    for (let n = N; n < 2 * N; n++) if (f.mightHave(...keyOf(n), now)) falsePositives++;
    expect(falsePositives / N).toBeLessThan(0.005); // ~0.05% per filter at 16 bits and 11 hashes
  });

  test("a key is kept for the whole window and dropped after it", () => {
    const f = new SentFilter(WINDOW);
    const t = 10 * WINDOW + 1;
    f.add(...keyOf(1), t, t);
    expect(f.mightHave(...keyOf(1), t + WINDOW - 1)).toBe(true);
    expect(f.expire(t + WINDOW - 1)).toBe(0);
    expect(f.mightHave(...keyOf(1), t + WINDOW - 1)).toBe(true);
    const later = t + 3 * WINDOW;
    expect(f.expire(later)).toBe(1);
    expect(f.mightHave(...keyOf(1), later)).toBe(false);
    f.add(...keyOf(2), t, later); // already older than the window: not worth keeping
    expect(f.mightHave(...keyOf(2), later)).toBe(false);
  });

  test("keys of every live generation are found as generations start and expire", () => {
    const f = new SentFilter(WINDOW);
    const t = 10 * WINDOW; // generations are half a window long
    f.add(...keyOf(1), t, t);
    f.add(...keyOf(2), t + WINDOW / 2, t + WINDOW / 2); // a second generation starts
    expect([f.mightHave(...keyOf(1), t + WINDOW / 2), f.mightHave(...keyOf(2), t + WINDOW / 2)]).toEqual([true, true]);
    const now = t + WINDOW + WINDOW / 2; // the first generation is wholly older than the window
    expect(f.expire(now)).toBe(1);
    f.add(...keyOf(3), now, now); // a third starts after the expiry
    expect([f.mightHave(...keyOf(1), now), f.mightHave(...keyOf(2), now), f.mightHave(...keyOf(3), now)])
      .toEqual([false, true, true]);
  });

  test("bounded: a generation stops growing at its share of the bytes and still finds every key", () => {
    const first = 32 * 1024; // 16,384 keys at 16 bits
    // Three generations' shares of 3 x 96 KiB: the first filter and the second (64 KiB), not a third.
    const bound = 3 * 3 * first;
    const f = new SentFilter(WINDOW, bound);
    const free = new SentFilter(WINDOW);
    const now = 1_000_000;
    const N = 150_000; // past 114,688: unbounded, a fourth filter grows
    for (let n = 0; n < N; n++) {
      f.add(...keyOf(n), now, now);
      free.add(...keyOf(n), now, now);
    }
    expect(f.bytes).toBe(3 * first);
    expect(free.bytes).toBeGreaterThan(bound); // unbounded, the same keys grew filters past it
    expect(f.overfilled).toBe(N - 16_384 - 32_768);
    expect(free.overfilled).toBe(0);
    let missed = 0;
    for (let n = 0; n < N; n++) if (!f.mightHave(...keyOf(n), now)) missed++;
    expect(missed).toBe(0);
    // The price: more false "maybe"s (store lookups) than the unbounded filter's.
    let boundedMaybe = 0, freeMaybe = 0;
    for (let n = N; n < 2 * N; n++) {
      if (f.mightHave(...keyOf(n), now)) boundedMaybe++;
      if (free.mightHave(...keyOf(n), now)) freeMaybe++;
    }
    expect(boundedMaybe).toBeGreaterThan(freeMaybe);
    // A new generation grows within its own share; the full one's keys are found beside it.
    const later = now + WINDOW / 2;
    for (let n = N; n < N + 20_000; n++) f.add(...keyOf(n), later, later);
    expect(f.bytes).toBe(6 * first);
    expect(f.overfilled).toBe(N - 16_384 - 32_768);
    expect(f.mightHave(...keyOf(1), later)).toBe(true);
    expect(f.mightHave(...keyOf(N + 19_999), later)).toBe(true);
  });

  test("a new generation's first filter is sized for the keys the last one took: one filter while the load holds", () => {
    const f = new SentFilter(WINDOW);
    const t = 10 * WINDOW;
    const filtersPerGen = () => f.image(t + 2 * WINDOW / 2).gens.map((g) => g.filters.map((x) => x.capacity));
    for (let n = 0; n < 40_000; n++) f.add(...keyOf(n), t, t); // grown by doubling: 16,384 + 32,768
    const next = t + WINDOW / 2;
    for (let n = 40_000; n < 100_000; n++) f.add(...keyOf(n), next, next); // 60,000 keys: one filter of 65,536
    expect(filtersPerGen()).toEqual([[16_384, 32_768], [65_536]]);
    const third = next + WINDOW / 2;
    for (let n = 100_000; n < 170_000; n++) f.add(...keyOf(n), third, third); // 70,000: past its first filter
    expect(f.image(third).gens.map((g) => g.filters.map((x) => x.capacity))).toEqual([
      [16_384, 32_768],
      [65_536],
      [65_536, 131_072],
    ]);
    let missed = 0;
    for (let n = 0; n < 170_000; n++) if (!f.mightHave(...keyOf(n), third)) missed++;
    expect(missed).toBe(0);
  });

  test("a first filter's size: the next power of two, or what the generation's share holds best", () => {
    const KiB = 1024; // a filter takes 2 bytes a key (16 bits)
    expect(firstCapacityFor(0, Infinity)).toBe(16_384);
    expect(firstCapacityFor(16_384, Infinity)).toBe(16_384);
    expect(firstCapacityFor(40_000, Infinity)).toBe(65_536);
    expect(firstCapacityFor(1e12, Infinity)).toBe(2 ** 26); // bit positions stay within a 2^30 mask
    // 96 KiB holds 16,384 + 32,768 keys as a chain, 32,768 as one filter: the chain.
    expect(firstCapacityFor(150_000, 96 * KiB)).toBe(16_384);
    // 128 KiB holds 65,536 keys as one filter, 49,152 as a chain: one filter.
    expect(firstCapacityFor(150_000, 128 * KiB)).toBe(65_536);
    expect(firstCapacityFor(50_000, 128 * KiB)).toBe(65_536);
  });

  test("an image carries every key into another filter, beside keys that filter took first", () => {
    const now = 10 * WINDOW;
    const a = new SentFilter(WINDOW);
    const N = 50_000; // three filters in the current generation (16,384 + 32,768 + ...)
    for (let n = 0; n < N; n++) a.add(...keyOf(n), now, now);
    for (let n = N; n < N + 100; n++) a.add(...keyOf(n), now - WINDOW / 2, now); // the generation before
    const image = a.image(now);
    expect(filterImageProblem(image, WINDOW)).toBeNull();
    expect(image.gens.map((g) => g.filters.length).sort()).toEqual([1, 3]);

    const b = new SentFilter(WINDOW);
    b.add(...keyOf(-1), now, now); // taken before the image came (the start's first sends)
    const bytes = b.adopt(image, now);
    expect(bytes).toBe(a.bytes);
    let missed = 0;
    for (let n = -1; n < N + 100; n++) if (!b.mightHave(...keyOf(n), now)) missed++;
    expect(missed).toBe(0);
    let maybe = 0;
    for (let n = 2 * N; n < 3 * N; n++) if (b.mightHave(...keyOf(n), now)) maybe++;
    expect(maybe / N).toBeLessThan(0.005);
    // Keys after the image go on into the filters (the generation it started empty became the image's).
    for (let n = 3 * N; n < 3 * N + 1000; n++) b.add(...keyOf(n), now - WINDOW / 2, now);
    for (let n = 3 * N; n < 3 * N + 1000; n++) expect(b.mightHave(...keyOf(n), now)).toBe(true);
  });

  test("an image's generations already out of the window are not taken", () => {
    const t = 10 * WINDOW;
    const a = new SentFilter(WINDOW);
    a.add(...keyOf(1), t, t);
    const image = a.image(t);
    const b = new SentFilter(WINDOW);
    const later = t + 3 * WINDOW;
    expect(b.adopt(image, later)).toBe(0);
    expect(b.bytes).toBe(0);
    expect(b.mightHave(...keyOf(1), later)).toBe(false);
  });

  test("an image made otherwise is named, not read", () => {
    const a = new SentFilter(WINDOW);
    a.add(...keyOf(1), 1000, 1000);
    const image = a.image(1000);
    expect(filterImageProblem(image, WINDOW * 2)).toContain("dedupe window");
    expect(filterImageProblem({ ...image, hashes: 7 }, WINDOW)).toContain("hashes");
    const part = image.gens[0]!.filters[0]!;
    const cut = { ...image, gens: [{ g: image.gens[0]!.g, filters: [{ ...part, bits: part.bits.subarray(1) }] }] };
    expect(filterImageProblem(cut, WINDOW)).toContain("words");
    const odd = { ...image, gens: [{ g: image.gens[0]!.g, filters: [{ ...part, capacity: 3 }] }] };
    expect(filterImageProblem(odd, WINDOW)).toContain("capacity");
    const noKeys = { ...image, gens: [{ g: image.gens[0]!.g, filters: [{ ...part, n: -1 }] }] };
    expect(filterImageProblem(noKeys, WINDOW)).toContain("keys");
  });
});
