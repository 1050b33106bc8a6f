import { describe, expect, test } from "bun:test";
import { IdleCollector, WorkGate } from "../../src/observe/idle-gc.ts";

const MB = 1024 * 1024;
const policy = { burstBytes: 4 * MB, quietBytes: MB / 4 };

describe("idle collection", () => {
  test("a burst that has ended is collected once", () => {
    const c = new IdleCollector(10 * MB, policy);
    expect(c.look(13 * MB)).toBe(false); // growing, below a burst
    expect(c.look(16 * MB)).toBe(false); // a burst, still growing
    expect(c.look(16 * MB + 1000)).toBe(true); // quiet now: collect
    c.collected(11 * MB);
    expect(c.look(11 * MB)).toBe(false); // the floor moved: nothing to give back
    expect(c.look(11 * MB + 1000)).toBe(false);
  });

  test("steady growth (sustained load) is left to JSC's own collector", () => {
    const c = new IdleCollector(10 * MB, policy);
    for (let i = 1; i <= 20; i++) expect(c.look(10 * MB + i * MB)).toBe(false);
  });

  test("small idle growth never triggers a collection", () => {
    const c = new IdleCollector(10 * MB, policy);
    for (let i = 1; i <= 100; i++) expect(c.look(10 * MB + i * 20_000)).toBe(false);
  });

  test("a look across one of JSC's own collections is busy, not quiet", () => {
    const c = new IdleCollector(10 * MB, policy);
    expect(c.look(16 * MB)).toBe(false);
    expect(c.look(15 * MB)).toBe(false); // JSC collected some: the thread is allocating
    expect(c.look(15 * MB + 1000)).toBe(true); // and then it went quiet
  });

  test("a collection by JSC itself lowers the floor", () => {
    const c = new IdleCollector(10 * MB, policy);
    expect(c.look(15 * MB)).toBe(false);
    expect(c.look(8 * MB)).toBe(false); // JSC collected: the burst's garbage is gone
    expect(c.look(8 * MB + 1000)).toBe(false);
    expect(c.look(12 * MB + 1000)).toBe(false); // a new burst, growing
    expect(c.look(12 * MB + 2000)).toBe(true);
  });

  test("memory let go without the heap growing (owe) is collected at the next quiet look, once", () => {
    const c = new IdleCollector(10 * MB, policy);
    expect(c.look(10 * MB)).toBe(false); // idle, no burst: nothing to collect
    c.owe();
    expect(c.look(10 * MB + 500_000)).toBe(false); // still busy (grew past quiet)
    expect(c.look(10 * MB + 500_100)).toBe(true); // quiet: the owed collection runs
    c.collected(6 * MB);
    expect(c.look(6 * MB + 100)).toBe(false); // paid: not again
    expect(c.look(6 * MB + 200)).toBe(false);
  });

  test("the work gate says moved while the counter moves, then still", () => {
    const g = new WorkGate();
    expect(g.moved(0)).toBe(true); // the first look: unknown, counts as working
    expect(g.moved(5)).toBe(true);
    expect(g.moved(9)).toBe(true);
    expect(g.moved(9)).toBe(false); // no work since the last look: the heap may be looked at
    expect(g.moved(9)).toBe(false);
    expect(g.moved(10)).toBe(true);
  });

  test("a shrink is due once, after enough still looks following a collection", () => {
    const c = new IdleCollector(10 * MB, { ...policy, shrinkStillLooks: 3, stillBytes: 10_000 });
    expect(c.shrinkDue()).toBe(false); // nothing collected yet
    expect(c.look(16 * MB)).toBe(false);
    expect(c.look(16 * MB + 1000)).toBe(true);
    c.collected(11 * MB);
    expect(c.look(11 * MB)).toBe(false);
    expect(c.look(11 * MB + 1000)).toBe(false);
    expect(c.shrinkDue()).toBe(false); // two still looks
    expect(c.look(11 * MB + 2000)).toBe(false);
    expect(c.shrinkDue()).toBe(true); // three
    expect(c.shrinkDue()).toBe(false); // once
    for (let i = 0; i < 10; i++) c.look(11 * MB + 3000 + i);
    expect(c.shrinkDue()).toBe(false); // no new collection, no new shrink
  });

  test("traffic after a collection puts the shrink off until the thread is still again", () => {
    const c = new IdleCollector(10 * MB, { ...policy, shrinkStillLooks: 2, stillBytes: 10_000 });
    c.look(16 * MB);
    expect(c.look(16 * MB)).toBe(true);
    c.collected(11 * MB);
    expect(c.look(11 * MB)).toBe(false); // still: 1
    expect(c.look(12 * MB)).toBe(false); // busy: back to 0
    expect(c.look(12 * MB + 1000)).toBe(false); // still: 1
    expect(c.look(12 * MB + 101_000)).toBe(false); // light traffic: quiet for a collection, not still
    expect(c.shrinkDue()).toBe(false);
    expect(c.look(11 * MB)).toBe(false); // JSC collected on its own: busy
    expect(c.look(11 * MB)).toBe(false);
    expect(c.look(11 * MB)).toBe(false);
    expect(c.shrinkDue()).toBe(true);
  });

  test("without a shrink policy a shrink is never due", () => {
    const c = new IdleCollector(10 * MB, policy);
    c.look(16 * MB);
    expect(c.look(16 * MB)).toBe(true);
    c.collected(11 * MB);
    for (let i = 0; i < 10; i++) c.look(11 * MB);
    expect(c.shrinkDue()).toBe(false);
  });
});
