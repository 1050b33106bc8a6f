import { describe, expect, test } from "bun:test";
import { DeadlineQueue, LoginDeadlines } from "../../src/gateway/login-deadlines.ts";

describe("login deadlines", () => {
  test("items come due in order, only once their deadline passed", () => {
    const q = new DeadlineQueue<string>();
    q.push("a", 10);
    q.push("b", 20);
    q.push("c", 20);
    expect(q.next()).toBe(10);
    expect(q.takeDue(9)).toEqual([]);
    expect(q.takeDue(10)).toEqual(["a"]);
    expect(q.next()).toBe(20);
    expect(q.takeDue(25)).toEqual(["b", "c"]);
    expect(q.next()).toBeNull();
    expect(q.size).toBe(0);
  });

  test("an out-of-order deadline waits behind the earlier ones and is never lost", () => {
    const q = new DeadlineQueue<string>();
    q.push("late", 50);
    q.push("early", 30);
    expect(q.takeDue(40)).toEqual([]);
    expect(q.takeDue(50)).toEqual(["late", "early"]);
  });

  test("compaction keeps every waiting item in order", () => {
    const q = new DeadlineQueue<number>();
    for (let i = 0; i < 5000; i++) q.push(i, i);
    const seen: number[] = [];
    for (let t = 0; t < 5000; t += 7) seen.push(...q.takeDue(t));
    for (let i = 5000; i < 6000; i++) q.push(i, i);
    seen.push(...q.takeDue(10_000));
    expect(seen).toEqual(Array.from({ length: 6000 }, (_, i) => i));
  });

  test("one timer expires each connection at its own deadline", async () => {
    const expired: string[] = [];
    const d = new LoginDeadlines<string>((x) => expired.push(x));
    const t0 = performance.now();
    d.add("first", 20);
    d.add("second", 300);
    while (expired.length === 0) await Bun.sleep(5);
    expect(expired).toEqual(["first"]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(19);
    while (expired.length === 1 && performance.now() - t0 < 5000) await Bun.sleep(5);
    expect(expired).toEqual(["first", "second"]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(299);
    expect(d.size).toBe(0);
  });

  test("the timer is armed for the head: a later entry never fires before it", async () => {
    const expired: string[] = [];
    let now = 0;
    const d = new LoginDeadlines<string>((x) => expired.push(x), () => now);
    d.add("long", 10_000);
    now = 5;
    d.add("short", 0); // due at 5, but queued behind "long"
    await Bun.sleep(30);
    expect(expired).toEqual([]);
    d.stop();
    expect(d.size).toBe(0);
  });
});
