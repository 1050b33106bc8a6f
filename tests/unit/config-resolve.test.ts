// "An explicit flag beats the plan, which beats the default": the one function that applies it,
// and the disconnect table clients decide on.

import { describe, expect, test } from "bun:test";
import { loadSettings } from "../../src/config/load.ts";
import { type PlanFigures, resolveSettings } from "../../src/config/resolve.ts";
import { defaultSettings } from "../../src/config/schema.ts";
import { dedupeRunFilterBytes } from "../../src/limits.ts";
import { Disconnects, shouldReconnect } from "../../src/protocol/disconnect.ts";

const plan: PlanFigures = {
  shards: 3,
  maxConnections: 5000,
  fdCapConnections: 900,
  spillBytes: 111,
  refuseBytes: 222,
  store: { maxRows: 4096, flushMs: 7 },
};
const resolve = (argv: string[]) => {
  const { settings, explicit } = loadSettings(argv, {});
  return resolveSettings(settings, explicit, plan);
};

describe("resolveSettings", () => {
  test("without --auto-tune: defaults, with connections capped by the fd limit", () => {
    const r = resolve([]);
    expect(r.shards).toBe(1);
    expect(r.maxConnections).toBe(900);
    expect(r.settings.flushMs).toBe(defaultSettings.flushMs);
    expect(r.settings.batchRows).toBe(defaultSettings.batchRows);
    expect(r.spillBytes).toBe(111); // watermarks always come from the plan unless given
  });
  test("with --auto-tune: the plan sets what the operator did not", () => {
    const r = resolve(["--auto-tune"]);
    expect([r.shards, r.maxConnections, r.settings.flushMs, r.settings.batchRows]).toEqual([3, 5000, 7, 4096]);
  });
  test("explicit flags beat the plan", () => {
    const r = resolve(["--auto-tune", "--shards", "2", "--max-conns", "10", "--flush-ms", "1", "--spill-mb", "1"]);
    expect([r.shards, r.maxConnections, r.settings.flushMs, r.settings.batchRows]).toEqual([2, 10, 1, 4096]);
    expect(r.spillBytes).toBe(1048576);
  });
  test("env counts as explicit too", () => {
    const { settings, explicit } = loadSettings(["--auto-tune"], { IRIS_BATCH_ROWS: "64" });
    expect(resolveSettings(settings, explicit, plan).settings.batchRows).toBe(64);
  });
  test("owner limits take the operator's values", () => {
    const r = resolve(["--max-pending", "7", "--slow-consumer-timeout", "9", "--pending-spill-ms", "11"]);
    expect(r.ownerLimits).toMatchObject({ maxPending: 7, slowTimeoutMs: 9, pendingSpillMs: 11 });
  });
  test("each shard's dedupe filter gets an eighth of the spill watermark, shared by the shards, at least 8 MiB", () => {
    const MiB = 1024 * 1024;
    expect(resolve(["--spill-mb", "4096", "--shards", "2"]).ownerLimits.dedupeFilterBytes).toBe(256 * MiB);
    expect(resolve(["--spill-mb", "4096"]).ownerLimits.dedupeFilterBytes).toBe(512 * MiB);
    expect(resolve(["--spill-mb", "64"]).ownerLimits.dedupeFilterBytes).toBe(8 * MiB);
    // The writer's filters of the dedupe runs: another eighth, for the one writer.
    expect(dedupeRunFilterBytes(4096 * MiB)).toBe(512 * MiB);
    expect(dedupeRunFilterBytes(64 * MiB)).toBe(8 * MiB);
  });
});

describe("disconnects", () => {
  test("kinds a client cannot tell apart (same close and error code) agree on reconnecting", () => {
    const advice = new Map<string, boolean>();
    for (const d of Object.values(Disconnects)) {
      const key = `${d.close}/${d.code}`;
      expect(advice.get(key) ?? d.reconnect).toBe(d.reconnect);
      advice.set(key, d.reconnect);
      expect(shouldReconnect(d.close, d.code)).toBe(d.reconnect);
    }
  });
  test("clients give up on a replaced login or a refused one, and come back after anything else", () => {
    expect(shouldReconnect(4001, "REPLACED")).toBe(false);
    expect(shouldReconnect(1008, "AUTH_FAILED")).toBe(false);
    expect(shouldReconnect(1008, "RATE_LIMITED")).toBe(true);
    expect(shouldReconnect(1001, "SHUTTING_DOWN")).toBe(true);
    expect(shouldReconnect(4003, "SERVER_BUSY")).toBe(true);
    expect(shouldReconnect(1006, undefined)).toBe(true);
  });
});
