// The order a dedupe run is built in (store/sent-runs.ts byHash): by (hash, id) exactly as a
// comparator sort gives it, with keys recorded twice, and with 32-bit hashes that collide (the
// native sort orders those only by position; their group is put in order by the full hash).

import { describe, expect, test } from "bun:test";
import { byHash, type LogEntry, logEntry } from "../../src/store/sent-runs.ts";

const reference = (es: LogEntry[]) => es.slice().sort((a, b) => a.h - b.h || a.id - b.id);

describe("run order", () => {
  test("real keys, some recorded twice, in id order: the same order as the comparator sort", () => {
    const es: LogEntry[] = [];
    for (let i = 0; i < 5000; i++) es.push(logEntry(100 + i, `u${i % 97}`, `s${i % 13}`, `m${i % 4000}`, i + 1, i));
    const out = byHash(es);
    expect(out).toEqual(reference(es));
    expect(es[0]!.id).toBe(100); // the input keeps its order
  });

  test("equal 32-bit hashes with different full hashes and ids are ordered by (h, id)", () => {
    const e = (id: number, h1: number, low: number): LogEntry => ({
      id,
      recipient: "r",
      sender: "s",
      msgId: `m${id}`,
      seq: id,
      ts: 0,
      h1,
      h2: low,
      h: h1 * 2 ** 21 + low,
    });
    // In id order; h1 = 7 for four of them, whose low bits run against their ids; two share h entirely.
    const es = [e(1, 9, 5), e(2, 7, 40), e(3, 7, 3), e(4, 2 ** 32 - 1, 1), e(5, 7, 40), e(6, 7, 0), e(7, 0, 9)];
    const out = byHash(es);
    expect(out.map((x) => x.id)).toEqual([7, 6, 3, 2, 5, 1, 4]);
    expect(out).toEqual(reference(es));
  });

  test("empty and single runs", () => {
    expect(byHash([])).toEqual([]);
    const one = [logEntry(1, "a", "b", "c", 1, 0)];
    expect(byHash(one)).toEqual(one);
  });
});
