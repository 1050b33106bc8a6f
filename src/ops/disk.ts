// Free-space reserve on the data dir. The main thread reads statfs a few times a second and
// publishes free bytes and a "store full" flag that every owner reads before it stores a message:
// below the reserve, sends that would be stored get STORE_FULL (the SDK retries them, same id),
// while acks, deletes and live delivery go on, and deletes free space again.

import { statfsSync } from "node:fs";
import { log } from "../observe/log.ts";
import type { SlotMetrics } from "../observe/metrics.ts";
import { describeError } from "../observe/errors.ts";

const MiB = 1048576;
/** How often free space is read: a flood fills disks fast, statfs is one cheap syscall. */
export const DISK_POLL_MS = 200;
/** Reserve when none is given: RESERVE_FRACTION of the file system, within these bounds. */
const RESERVE_FRACTION = 0.05;
const RESERVE_MIN_BYTES = 64 * MiB; // a full WAL (64 MiB at the default checkpoint size) fits
const RESERVE_MAX_BYTES = 1024 * MiB;
/** On a tiny file system the reserve never takes more than this share of it. */
const RESERVE_MAX_FRACTION = 0.25;

export interface DiskSpace {
  totalBytes: number;
  /** Bytes an unprivileged writer can still use (f_bavail). */
  freeBytes: number;
}

export function readDiskSpace(path: string): DiskSpace {
  const s = statfsSync(path);
  return { totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize };
}

/** The planned reserve: 5% of the file system, at least 64 MiB, at most 1 GiB, never over 25% of it. */
export function planReserveBytes(totalBytes: number): number {
  const want = Math.min(Math.max(totalBytes * RESERVE_FRACTION, RESERVE_MIN_BYTES), RESERVE_MAX_BYTES);
  return Math.floor(Math.min(want, totalBytes * RESERVE_MAX_FRACTION) / MiB) * MiB;
}

/** Explicit --min-free-mb wins (0 = off); otherwise the plan from the disk size. */
export function reserveBytes(minFreeMb: number | undefined, totalBytes: number): number {
  return minFreeMb !== undefined ? minFreeMb * MiB : planReserveBytes(totalBytes);
}

export type DiskState = "ok" | "full";

export function diskState(freeBytes: number, reserve: number): DiskState {
  return reserve > 0 && freeBytes < reserve ? "full" : "ok";
}

/** Polls the data dir's file system and publishes `diskFreeBytes` and `storeFull` (main slot). */
export class DiskMonitor {
  private timer: ReturnType<typeof setInterval> | null = null;
  private state: DiskState = "ok";
  private failedReads = 0;

  constructor(
    private readonly path: string,
    private readonly reserve: number,
    private readonly metrics: SlotMetrics,
  ) {
    metrics.set("diskReserveBytes", reserve);
  }

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), DISK_POLL_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private sample(): void {
    let space: DiskSpace;
    try {
      space = readDiskSpace(this.path);
      this.failedReads = 0;
    } catch (e) {
      // Cannot tell: keep the last state (the writer's own errors still protect senders).
      if (this.failedReads++ === 0) {
        log.warn("cannot read free disk space", { path: this.path, error: describeError(e) });
      }
      return;
    }
    this.metrics.set("diskFreeBytes", space.freeBytes);
    const next = diskState(space.freeBytes, this.reserve);
    if (next === this.state) return;
    this.state = next;
    this.metrics.set("storeFull", next === "full" ? 1 : 0);
    const fields = { path: this.path, freeMb: Math.floor(space.freeBytes / MiB), reserveMb: this.reserve / MiB };
    if (next === "full") log.error("disk nearly full: new sends that would be stored get STORE_FULL", fields);
    else log.warn("disk space back above the reserve: storing again", fields);
  }
}

/** Sizes the reserve from the data dir's file system and starts polling it. */
export function startDiskMonitor(dataDir: string, minFreeMb: number | undefined, metrics: SlotMetrics): DiskMonitor {
  let total = 0;
  try {
    total = readDiskSpace(dataDir).totalBytes;
  } catch (e) {
    log.warn("cannot read the data dir's disk size; no free-space reserve", { path: dataDir, error: describeError(e) });
  }
  const reserve = total > 0 || minFreeMb !== undefined ? reserveBytes(minFreeMb, total) : 0;
  log.info("disk reserve", {
    path: dataDir,
    reserveMb: reserve / MiB,
    diskMb: Math.floor(total / MiB),
    source: minFreeMb !== undefined ? "--min-free-mb" : "plan",
  });
  const m = new DiskMonitor(dataDir, reserve, metrics);
  m.start();
  return m;
}
