// The supervisor's handle on one worker thread (src/supervisor.ts, Thread): a wait that timed out
// must not take a later report meant for the next wait (a shard restart that timed out once then
// timed out on every retry: its "listening" went to the dead wait), and a worker that did not
// answer in time is ended before its replacement starts.

import { describe, expect, test } from "bun:test";
import type { ShardControl, WorkerReport } from "../../src/control.ts";
import { Thread } from "../../src/supervisor.ts";

/** Just what Thread uses of a Worker. */
class FakeWorker {
  onmessage: ((e: { data: unknown }) => void) | null = null;
  terminated = false;
  private readonly listeners = new Map<string, (e: unknown) => void>();
  addEventListener(type: string, f: (e: unknown) => void): void {
    this.listeners.set(type, f);
  }
  postMessage(): void {}
  terminate(): void {
    this.terminated = true;
    this.listeners.get("close")?.({});
  }
  report(m: WorkerReport): void {
    this.onmessage?.({ data: m });
  }
}

const listening: WorkerReport = { t: "listening", port: 1234, tcpPort: undefined };

describe("supervisor Thread", () => {
  test("a timed-out wait leaves the list: the next report goes to the next wait", async () => {
    const th = new Thread<ShardControl>("shard1");
    const w = new FakeWorker();
    let exits = 0;
    th.attach(w as unknown as Worker, () => exits++, () => {});
    await expect(th.waitFor("listening", 20)).rejects.toThrow(/no listening within 20 ms/);
    const next = th.waitFor("listening", 1000);
    w.report(listening);
    expect(await next).toEqual(listening);
    expect(exits).toBe(0);
  });

  test("abandon ends the worker without counting its close as a crash", () => {
    const th = new Thread<ShardControl>("shard1");
    const w = new FakeWorker();
    let exits = 0;
    th.attach(w as unknown as Worker, () => exits++, () => {});
    th.abandon();
    expect(w.terminated).toBe(true);
    expect(th.worker).toBeNull();
    expect(exits).toBe(0);
  });

  test("a worker that closes by itself is a crash (onExit runs once)", () => {
    const th = new Thread<ShardControl>("shard1");
    const w = new FakeWorker();
    let exits = 0;
    th.attach(w as unknown as Worker, () => exits++, () => {});
    w.terminate();
    expect(exits).toBe(1);
    expect(th.worker).toBeNull();
  });
});
