// Worker entry for the WAL's checkpointer (store/checkpointer.ts): a second connection on the
// store's file that copies the WAL into it between the writer's commits, so the writer does not.
// It reads the WAL index's header every CHECKPOINT_WATCH_MS (store/wal-index.ts) and passes when
// the planner says so.
// The supervisor starts it once the writer is ready (the schema is migrated by then) and closes it
// before the writer closes the file, so the writer stays the last connection and removes the WAL.

import type { Database } from "bun:sqlite";
import { assertNever } from "../assert.ts";
import { type CheckpointerControl, type CheckpointerReport, isCheckpointerControl } from "../control.ts";
import { describeError } from "../observe/errors.ts";
import { configureLog, installCrashHandler, log } from "../observe/log.ts";
import { SLOT_CHECKPOINTER, SlotMetrics } from "../observe/metrics.ts";
import { CHECKPOINT_WATCH_MS } from "../limits.ts";
import { Checkpointer, openCheckpointDb, PassPlanner } from "../store/checkpointer.ts";
import { copiedByOthers, type WalIndex, WalIndexReader } from "../store/wal-index.ts";

declare const self: Worker;

const report = (m: CheckpointerReport) => postMessage(m);
installCrashHandler();

let db: Database | null = null;
let index: WalIndexReader | null = null;
let timer: ReturnType<typeof setInterval> | null = null;

function init(m: Extract<CheckpointerControl, { t: "init" }>): void {
  configureLog(m.logLevel, "checkpointer", m.logFormat);
  let opened;
  try {
    opened = openCheckpointDb(m.path);
  } catch (e) {
    return report({ t: "fatal", error: describeError(e) });
  }
  db = opened.conn;
  const metrics = new SlotMetrics(m.metrics, SLOT_CHECKPOINTER);
  const checkpointer = new Checkpointer(opened.db);
  const planner = new PassPlanner(opened.passPages, opened.limitPages);
  index = new WalIndexReader(m.path);
  // The index as last seen after our own pass or look: what others copied is counted from it.
  let seen: WalIndex | null = null;
  const watch = () => {
    if (db === null || index === null) return;
    const look = index.read();
    if (look !== null) {
      metrics.set("walPages", look.frames);
      metrics.set("walCopiedPages", look.copied);
      if (seen !== null) metrics.add("walWriterCopiedPages", copiedByOthers(seen, look));
    }
    seen = look;
    const now = performance.now();
    if (!planner.due(look, now)) return;
    const r = checkpointer.pass();
    planner.passed(r, now);
    seen = index.read();
    metrics.add("walCheckpointPasses");
    metrics.add("walCheckpointMsSum", r.ms);
    if (r.t === "passed") {
      metrics.set("walPages", r.wal.walPages);
      metrics.set("walCopiedPages", r.wal.copiedPages);
    } else {
      metrics.add("walCheckpointErrors");
      log.warn("WAL checkpoint failed; the writer's own checkpoint stays in charge", { error: describeError(r.error) });
    }
  };
  timer = setInterval(watch, CHECKPOINT_WATCH_MS);
  report({ t: "checkpointing" });
}

function control(m: CheckpointerControl): void {
  switch (m.t) {
    case "init":
      return init(m);
    case "close":
      if (timer) clearInterval(timer);
      timer = null;
      index?.close();
      index = null;
      db?.close();
      db = null;
      return report({ t: "closed" });
    default:
      return assertNever(m, "checkpointer control message");
  }
}

self.onmessage = (e: MessageEvent) => {
  if (isCheckpointerControl(e.data)) control(e.data);
  else log.warn("unknown control message", { type: typeof e.data });
};
