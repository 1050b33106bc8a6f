// Worker entry for the storage writer: turns the supervisor's control messages (control.ts) into
// calls on the Writer, and reports back.

import { assertNever } from "../assert.ts";
import { isWriterControl, type WriterControl, type WriterInit, type WriterReport } from "../control.ts";
import { EXPIRE_EVERY_MAX_MS, EXPIRE_EVERY_MIN_MS } from "../limits.ts";
import { describeError } from "../observe/errors.ts";
import { configureLog, installCrashHandler, log } from "../observe/log.ts";
import { MetricsReader, SLOT_WRITER, SlotMetrics } from "../observe/metrics.ts";
import { Signals } from "../observe/signals.ts";
import { InboxStore } from "../store/inbox-store.ts";
import { Writer } from "../store/writer.ts";
import { profileAndLog } from "./thread-profile.ts";
import { startIdleCollection } from "../observe/idle-gc.ts";

declare const self: Worker;

/** How often the writer looks at the disk-full signal. */
const RECLAIM_POLL_MS = 250;

let writer: Writer | null = null;
let store: InboxStore | null = null;
const report = (m: WriterReport) => postMessage(m);
installCrashHandler();

function init(m: WriterInit): void {
  configureLog(m.logLevel, "writer", m.logFormat);
  try {
    store = InboxStore.open(m.path, {
      maxInboxPerUser: m.maxInbox,
      ttlMs: m.ttlMs,
      runFilterBytes: m.runFilterBytes,
      onMigrate: (from, to) => report({ t: "migrating", from, to }),
    });
  } catch (e) {
    return report({ t: "fatal", error: describeError(e) });
  }
  const metrics = new SlotMetrics(m.metrics, SLOT_WRITER);
  const w = new Writer(store, metrics, {
    flushMs: m.flushMs,
    batchRows: m.batchRows,
    dedupeWindowMs: m.dedupeWindowMs,
  });
  writer = w;
  startIdleCollection(); // as in the shards: a burst's garbage is given back once quiet
  w.expectedShards = m.shards;
  w.onAllBye = () => report({ t: "drained" });
  // Inbox TTL and the dedupe window expire on the same timer, at a tenth of the shorter one.
  const shortest = Math.min(m.ttlMs > 0 ? m.ttlMs : Infinity, m.dedupeWindowMs);
  const every = Math.min(EXPIRE_EVERY_MAX_MS, Math.max(EXPIRE_EVERY_MIN_MS, shortest / 10));
  setInterval(() => w.expire(Date.now()), every);
  // Below the disk reserve (the main thread's statfs) or after failed commits: free WAL space.
  const signals = new Signals(new MetricsReader(m.metrics));
  setInterval(() => {
    if (signals.storeFull()) w.reclaimDisk(Date.now());
  }, RECLAIM_POLL_MS);
  log.debug("storage writer ready", { path: m.path, rows: store.totalCount() });
  report({ t: "ready", rows: store.totalCount() });
}

function control(m: WriterControl): void {
  switch (m.t) {
    case "init":
      return init(m);
    case "port":
      return writer?.setPort(m.shard, m.port);
    case "gc":
      return Bun.gc(true);
    case "profile":
      return profileAndLog("writer", m);
    case "expect":
      if (writer) writer.expectedShards = m.shards;
      return;
    case "inject":
      return writer?.inject(m.shard, m.items);
    case "close":
      writer?.flush();
      store?.close();
      return report({ t: "closed" });
    default:
      return assertNever(m, "writer control message");
  }
}

self.onmessage = (e: MessageEvent) => {
  if (isWriterControl(e.data)) control(e.data);
  else log.warn("unknown control message", { type: typeof e.data });
};
