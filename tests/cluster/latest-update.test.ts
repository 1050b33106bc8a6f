import { describe, expect, test } from "bun:test";
import { LatestUpdate } from "../../src/cluster/latest-update.ts";

/** An apply whose async lookup takes `delays[value]` ms, recording what applied, in order. */
function recorder(delays: Record<string, number>) {
  const applied: string[] = [];
  const errors: unknown[] = [];
  const u = new LatestUpdate<string>(async (v) => {
    await new Promise((r) => setTimeout(r, delays[v] ?? 0));
    if (v === "boom") throw new Error("lookup failed");
    applied.push(v);
  }, (e) => errors.push(e));
  return { u, applied, errors };
}

describe("LatestUpdate (member lists applied newest last)", () => {
  test("an older list whose lookup is slow never overwrites a newer one", async () => {
    // The startup race: [1,2] needs a slow ordinal lookup, [1,2,3] arrives meanwhile.
    const { u, applied } = recorder({ "1,2": 30, "1,2,3": 1 });
    void u.push("1,2");
    void u.push("1,2,3");
    await u.settled();
    expect(applied[applied.length - 1]).toBe("1,2,3");
    expect(applied).toEqual(["1,2,3"]); // the overtaken one is skipped, not applied late
  });

  test("updates made after one applied still apply, in order", async () => {
    const { u, applied } = recorder({});
    await u.push("a");
    await u.push("b");
    void u.push("c");
    await u.settled();
    expect(applied).toEqual(["a", "b", "c"]);
  });

  test("a failed update is reported and later ones still apply", async () => {
    const { u, applied, errors } = recorder({});
    await u.push("boom");
    await u.push("after");
    expect(errors.length).toBe(1);
    expect(applied).toEqual(["after"]);
  });

  test("settled waits for updates queued while it waits", async () => {
    const { u, applied } = recorder({ x: 10, y: 10 });
    void u.push("x");
    const done = u.settled();
    setTimeout(() => void u.push("y"), 2);
    await done;
    expect(applied).toEqual(["x", "y"]); // x had begun; y waited for it
  });
});
