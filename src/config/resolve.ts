// From validated settings and the machine plan to the values the server runs with. One rule,
// applied here only: an explicit flag (or IRIS_* env) beats the auto-tune plan, which beats the
// schema's default. Pure: the plan is passed in.

import { dedupeFilterBytes, defaultOwnerLimits, type OwnerLimits } from "../limits.ts";
import type { SettingKey, Settings } from "./schema.ts";

/** The plan's figures that can set a running value (a subset of tune/plan.ts's Plan). */
export interface PlanFigures {
  shards: number;
  maxConnections: number;
  fdCapConnections: number;
  spillBytes: number;
  refuseBytes: number;
  store: { maxRows: number; flushMs: number };
}

export interface Resolved {
  settings: Settings;
  shards: number;
  maxConnections: number;
  spillBytes: number;
  refuseBytes: number;
  ownerLimits: OwnerLimits;
}

const MiB = 1048576;

/** Overrides to hand the planner: what the operator fixed explicitly. */
export function planOverrides(s: Settings, explicit: Set<SettingKey>) {
  return {
    ...(explicit.has("maxConns") && s.maxConns ? { maxConnections: s.maxConns } : {}),
    ...(explicit.has("shards") && s.shards ? { shards: s.shards } : {}),
    ...(explicit.has("batchRows") ? { storeMaxRows: s.batchRows } : {}),
    ...(explicit.has("flushMs") ? { storeFlushMs: s.flushMs } : {}),
  };
}

/**
 * Without --auto-tune the plan still caps connections at what the open-files limit allows, so
 * the server refuses cleanly (503) instead of failing with EMFILE; everything else keeps its
 * default. With it, the plan sets every value the operator did not set.
 */
export function resolveSettings(s: Settings, explicit: Set<SettingKey>, plan: PlanFigures): Resolved {
  const auto = s.autoTune;
  const pick = <K extends SettingKey>(key: K, planned: Settings[K]): Settings[K] =>
    explicit.has(key) || !auto ? s[key] : planned;
  const shards = s.shards ?? (auto ? plan.shards : 1);
  const maxConnections = s.maxConns ?? (auto ? plan.maxConnections : plan.fdCapConnections);
  const settings: Settings = {
    ...s,
    shards,
    maxConns: maxConnections,
    flushMs: pick("flushMs", plan.store.flushMs),
    batchRows: pick("batchRows", plan.store.maxRows),
  };
  const spillBytes = s.spillMb ? s.spillMb * MiB : plan.spillBytes;
  return {
    settings,
    shards,
    maxConnections,
    spillBytes,
    refuseBytes: s.refuseMb ? s.refuseMb * MiB : plan.refuseBytes,
    ownerLimits: {
      ...defaultOwnerLimits,
      maxPending: s.maxPending,
      slowTimeoutMs: s.slowConsumerTimeout,
      pendingSpillMs: s.pendingSpillMs,
      dedupeWindowMs: s.dedupeWindow * 1000,
      dedupeFilterBytes: dedupeFilterBytes(spillBytes, shards),
      inboxTtlMs: s.inboxTtl * 1000,
    },
  };
}
