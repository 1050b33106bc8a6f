// Worker entry for a router shard. Protocol with the supervisor:
//   ← {t:"init", index, shards, settings, metrics, port, peers:[[k,port]], writer, maxConnections,
//      ownerLimits, version, tcpPort?}            → {t:"listening", port, tcpPort?}
//   ← {t:"peer", k, port} | {t:"down", k} | {t:"up", k} | {t:"writer", port}
//   ← {t:"inject", items}   chaos: garbage as if it came from a peer port
//   ← {t:"stop"}   → {t:"stopped"}    stop accepting, close clients with 1001
//   ← {t:"finish"} → {t:"finished"}   move unacked deliveries to the store, say bye to the writer

import type { Settings } from "../config/schema.ts";
import { configureLog, log } from "../observe/log.ts";
import { MetricsReader, shardSlot, SlotMetrics } from "../observe/metrics.ts";
import type { OwnerLimits } from "./owner.ts";
import { Shard } from "./shard.ts";

declare const self: Worker;

let shard: Shard | null = null;

self.onmessage = async (e: MessageEvent) => {
  const m = e.data as Record<string, unknown> | null;
  if (typeof m !== "object" || m === null) return;
  switch (m.t) {
    case "init": {
      const settings = m.settings as Settings;
      const index = m.index as number;
      configureLog(settings.logLevel, `shard${index}`);
      const buf = m.metrics as SharedArrayBuffer;
      const metrics = new SlotMetrics(buf, shardSlot(index));
      metrics.reset(); // a restarted shard starts its gauges from zero
      shard = new Shard({
        index,
        shards: m.shards as number,
        settings,
        metrics,
        reader: new MetricsReader(buf),
        maxConnections: m.maxConnections as number,
        ownerLimits: m.ownerLimits as OwnerLimits,
        version: m.version as string,
      });
      for (const [k, port] of m.peers as [number, MessagePort][]) shard.setPeer(k, port);
      shard.setWriter(m.writer as MessagePort);
      try {
        const port = await shard.listen(m.port as number);
        const tcpPort = typeof m.tcpPort === "number" ? shard.listenTcp(m.tcpPort) : undefined;
        postMessage({ t: "listening", port, tcpPort });
      } catch (err) {
        postMessage({ t: "fatal", error: (err as Error).message });
      }
      break;
    }
    case "peer":
      shard?.setPeer(m.k as number, m.port as MessagePort);
      break;
    case "down":
      shard?.peerDown(m.k as number);
      break;
    case "up":
      shard?.peerUp(m.k as number);
      break;
    case "writer":
      shard?.writerRestarted(m.port as MessagePort);
      break;
    case "inject":
      shard?.receive(m.items);
      break;
    case "gc":
      Bun.gc(true); // asked under memory pressure: give freed memory back now, not eventually
      break;
    case "crash":
      setTimeout(() => {
        throw new Error("chaos: shard crash requested");
      }, 0);
      break;
    case "stop":
      shard?.stopListening();
      postMessage({ t: "stopped" });
      break;
    case "finish":
      shard?.finish();
      postMessage({ t: "finished" });
      break;
    default:
      log.warn("unknown control message", { t: String(m.t) });
  }
};
