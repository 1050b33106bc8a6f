// Worker entry for a router shard: turns the supervisor's control messages (control.ts) into
// calls on its ShardHost, and reports back.

import { assertNever } from "../assert.ts";
import { isShardControl, type ShardControl, type ShardInit, type ShardReport } from "../control.ts";
import { configureLog, installCrashHandler, log } from "../observe/log.ts";
import { MetricsReader, shardSlot, SlotMetrics } from "../observe/metrics.ts";
import { ShardHost } from "./shard-host.ts";
import { profileAndLog } from "./thread-profile.ts";
import { startIdleCollection } from "../observe/idle-gc.ts";
import { ShardCluster } from "../cluster/shard-cluster.ts";
import { EarlyInbox } from "../cluster/early-inbox.ts";
import { alignStamps } from "../router/login-order.ts";

declare const self: Worker;

/** Longest chaos stall of the event loop (a test's mistake must not hang a shard for long). */
const STALL_MAX_MS = 30_000;

let host: ShardHost | null = null;
/** This shard's number (from init): names its profile reports. */
let index = -1;
installCrashHandler();
const report = (m: ShardReport) => postMessage(m);

function init(m: ShardInit, cluster?: ShardCluster): void {
  configureLog(m.settings.logLevel, `shard${m.index}`, m.settings.logFormat);
  alignStamps(m.stampDrift); // before any socket opens: its stamp orders logins across shards
  index = m.index;
  const metrics = new SlotMetrics(m.metrics, shardSlot(m.index));
  metrics.reset(); // a restarted shard starts its gauges from zero
  host = new ShardHost({
    index: m.index,
    shards: m.shards,
    settings: m.settings,
    metrics,
    reader: new MetricsReader(m.metrics),
    maxConnections: m.maxConnections,
    ownerLimits: m.ownerLimits,
    version: m.version,
    cluster,
  });
  for (const [k, port] of m.peers) host.mesh.setPeer(k, port);
  host.mesh.setWriter(m.writer);
  host.owner.startDedupeScan(); // the filter of the durable dedupe window, rebuilt from the store
  const owner = host.owner;
  const idle = startIdleCollection(() => owner.stats.routed); // a burst's garbage is given back once the shard goes quiet
  host.onSweptGarbage = () => idle.owe();
  try {
    const port = host.listen(m.port);
    const tcpPort = m.tcpPort !== undefined ? host.listenTcp(m.tcpPort) : undefined;
    report({ t: "listening", port, tcpPort });
  } catch (err) {
    report({ t: "fatal", error: (err as Error).message });
  }
}

/** Cluster mode: this shard joins before it listens (until NATS answers, the node is not ready). */
async function initCluster(m: ShardInit): Promise<void> {
  const early = new EarlyInbox(); // what other nodes send before the host exists (early-inbox.ts)
  const node = new MetricsReader(m.metrics); // every shard's slot: the node's logged-in connections
  const c = new ShardCluster(m.settings, m.index, m.shards, {
    local: (k, msg) => host?.mesh.post(k, msg),
    receive: (msgs) => host ? host.mesh.receive(msgs) : early.push(msgs),
    conns: () => node.sum("loggedIn"),
  });
  await c.start();
  init(m, c);
  const kept = early.take();
  if (kept.length > 0) host!.mesh.receive(kept);
  if (kept.length > 0 || early.dropped > 0) {
    log.info(`cluster: ${kept.length} messages kept while starting, ${early.dropped} dropped`);
  }
}

function control(m: ShardControl): void {
  switch (m.t) {
    case "init":
      if (!m.settings.cluster) return init(m); // the single node: exactly as before
      return void initCluster(m).catch((err) => report({ t: "fatal", error: (err as Error).message }));
    case "peer":
      return host?.peerConnected(m.k, m.port);
    case "down":
      return host?.peerDown(m.k);
    case "up":
      return host?.peerUp(m.k);
    case "writer":
      return host?.writerRestarted(m.port);
    case "inject":
      return host?.mesh.receive(m.items);
    case "tls":
      try {
        host?.reloadTls();
        log.info("tls certificate reloaded");
      } catch (err) {
        log.error("tls reload failed; keeping the old certificate", { error: err as Error });
      }
      return;
    case "gc":
      return Bun.gc(true); // asked under memory pressure: give freed memory back now, not eventually
    case "profile":
      return profileAndLog(`shard-${index}`, m);
    case "crash":
      setTimeout(() => {
        throw new Error("chaos: shard crash requested");
      }, 0);
      return;
    case "stall":
      return stall(m.ms);
    case "stop":
      host?.stopListening();
      return report({ t: "stopped" });
    case "finish":
      return void (host?.finish() ?? Promise.resolve()).then(() => report({ t: "finished" }));
    default:
      return assertNever(m, "shard control message");
  }
}

self.onmessage = (e: MessageEvent) => {
  if (isShardControl(e.data)) control(e.data);
  else log.warn("unknown control message", { type: typeof e.data });
};

/** Chaos: a busy event loop for `ms` (capped): no timer, socket or port message runs meanwhile. */
function stall(ms: number): void {
  const until = performance.now() + Math.min(Math.max(0, ms), STALL_MAX_MS);
  while (performance.now() < until) {
    // busy on purpose: what a thread starved of CPU, or stuck in a long computation, looks like
  }
}
