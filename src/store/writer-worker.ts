// Worker entry for the storage writer. Protocol with the supervisor:
//   ← {t:"init", path, maxInbox, ttlMs, flushMs, batchRows, metrics, logLevel, shards}  → {t:"ready"}
//   ← {t:"port", shard, port}   a shard's request port (again after that shard restarts)
//   ← {t:"inject", shard, items} chaos: garbage as if it came from a shard port
//   ← {t:"close"}               after every shard said bye: flush, close the file → {t:"closed"}
//   → {t:"drained"}             every shard said bye and all was committed

import { configureLog, type Level, log } from "../observe/log.ts";
import { SLOT_WRITER, SlotMetrics } from "../observe/metrics.ts";
import { InboxStore } from "./inbox-store.ts";
import { Writer } from "./writer.ts";

declare const self: Worker;

let writer: Writer | null = null;
let store: InboxStore | null = null;

self.onmessage = (e: MessageEvent) => {
  const m = e.data as Record<string, unknown> | null;
  if (typeof m !== "object" || m === null) return;
  switch (m.t) {
    case "init": {
      configureLog(m.logLevel as Level, "writer");
      store = InboxStore.open(m.path as string, { maxInboxPerUser: m.maxInbox as number, ttlMs: m.ttlMs as number });
      const metrics = new SlotMetrics(m.metrics as SharedArrayBuffer, SLOT_WRITER);
      writer = new Writer(store, metrics, { flushMs: m.flushMs as number, batchRows: m.batchRows as number });
      writer.expectedShards = m.shards as number;
      writer.onAllBye = () => postMessage({ t: "drained" });
      const ttlMs = m.ttlMs as number;
      if (ttlMs > 0) setInterval(() => writer!.expire(Date.now()), Math.min(60_000, Math.max(1000, ttlMs / 10)));
      log.debug("storage writer ready", { path: m.path as string, rows: store.totalCount() });
      postMessage({ t: "ready", rows: store.totalCount() });
      break;
    }
    case "port":
      writer?.setPort(m.shard as number, m.port as MessagePort);
      break;
    case "gc":
      Bun.gc(true);
      break;
    case "expect":
      if (writer) writer.expectedShards = m.shards as number;
      break;
    case "inject":
      writer?.inject(m.shard as number, m.items);
      break;
    case "close":
      writer?.flush();
      store?.close();
      postMessage({ t: "closed" });
      break;
  }
};
