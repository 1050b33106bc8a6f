// The main thread: starts the storage writer, the WAL's checkpointer and N router shards, wires
// their ports (writer↔each shard, shard↔shard), restarts any that dies, and runs the graceful
// shutdown sequence.

import type { Settings } from "./config/schema.ts";
import {
  type CheckpointerControl,
  isWorkerReport,
  type ShardControl,
  type WorkerReport,
  type WriterControl,
} from "./control.ts";
import {
  CONTROL_REPLY_TIMEOUT_MS,
  CRASH_WINDOW_MS,
  dedupeRunFilterBytes,
  FORCED_GC_MIN_GAP_MS,
  GC_BAND_MAX_GAP_MS,
  GC_BAND_OF_SPILL,
  GC_PAYS_OF_SPILL,
  IMMEDIATE_RESTARTS,
  MEMORY_SAMPLE_EVERY_MS,
  type OwnerLimits,
  RESTART_BACKOFF_BASE_MS,
  RESTART_BACKOFF_MAX_MS,
  SHUTDOWN_DETACH_GRACE_MS,
  SHUTDOWN_STEP_TIMEOUT_MS,
  WRITER_MIGRATE_TIMEOUT_MS,
  WRITER_START_TIMEOUT_MS,
} from "./limits.ts";
import { errorEventMessage, log } from "./observe/log.ts";
import { stampDrift } from "./router/login-order.ts";
import { createMetricsBuffer, SLOT_MAIN, SlotMetrics } from "./observe/metrics.ts";
import { Pressure, type PressureLevel } from "./observe/signals.ts";

export interface SupervisorOptions {
  settings: Settings;
  spillBytes: number;
  refuseBytes: number;
  shards: number;
  maxConnections: number;
  ownerLimits: OwnerLimits;
  version: string;
}

const shardUrl = new URL("./host/shard-worker.ts", import.meta.url).href;
const writerUrl = new URL("./host/writer-worker.ts", import.meta.url).href;
const checkpointerUrl = new URL("./host/checkpoint-worker.ts", import.meta.url).href;

/**
 * When every thread collects (fed each memory sample). From GC_BAND_OF_SPILL of the spill
 * watermark up, at most every 2 s: JSC collects a busy worker only once its heap about doubled, so
 * its dead buffers alone took RSS to the watermark (chaos `slow-consumer`: 74–92 MiB of them per
 * shard when RSS reached 514 MiB against a 512 MiB spill mark), and it keeps freed memory mapped
 * for a while; RSS is what the watermarks and the kernel see. Below the spill mark a collection
 * must pay: if RSS did not fall by GC_PAYS_OF_SPILL of the spill mark by the next sample, what is
 * there is live, and the gap doubles (up to GC_BAND_MAX_GAP_MS), so a server that simply runs
 * there is not paused every 2 s for nothing. Above the refuse watermark, at every sample: a flood
 * of 64 KiB messages grew the shards' dead buffers by ~100 MiB a second (chaos `oom`), and 2 s let
 * RSS overshoot the watermark by a quarter. A shard's collection costs a few ms.
 */
export class GcPacer {
  private last = -Infinity;
  private bandGap = FORCED_GC_MIN_GAP_MS;
  /** RSS when the last collection below the spill mark was asked for (the next sample judges it); -1: none. */
  private judgeFrom = -1;

  constructor(private readonly w: Watermarks) {}

  /** One sample of RSS at `now` (ms): true when every thread collects now. */
  due(rss: number, now: number): boolean {
    const band = this.w.spillBytes * GC_BAND_OF_SPILL;
    if (this.judgeFrom >= 0) {
      const paid = this.judgeFrom - rss >= this.w.spillBytes * GC_PAYS_OF_SPILL;
      this.bandGap = paid ? FORCED_GC_MIN_GAP_MS : Math.min(this.bandGap * 2, GC_BAND_MAX_GAP_MS);
      this.judgeFrom = -1;
    }
    if (rss < band) {
      this.bandGap = FORCED_GC_MIN_GAP_MS;
      return false;
    }
    const refuse = rss >= this.w.refuseBytes;
    const gap = rss >= this.w.spillBytes ? FORCED_GC_MIN_GAP_MS : this.bandGap;
    if (!refuse && now - this.last <= gap) return false;
    this.last = now;
    if (rss < this.w.spillBytes) this.judgeFrom = rss;
    return true;
  }
}

export interface Watermarks {
  spillBytes: number;
  refuseBytes: number;
}

/**
 * Restart backoff by crashes in the last 10 s: immediate for the first three (an external kill is
 * not a crash loop), then doubling from 50 ms, capped at 5 s, so a thread that crashes on start
 * is visible in logs and /metrics instead of spinning.
 */
export function restartDelay(recentCrashes: number): number {
  if (recentCrashes <= IMMEDIATE_RESTARTS) return 0;
  return Math.min(RESTART_BACKOFF_BASE_MS * 2 ** (recentCrashes - IMMEDIATE_RESTARTS - 1), RESTART_BACKOFF_MAX_MS);
}

type ReportOf<T extends WorkerReport["t"]> = Extract<WorkerReport, { t: T }>;

/** A supervised worker: its control channel, its reports, and its recent crashes. */
export class Thread<C extends ShardControl | WriterControl | CheckpointerControl> {
  worker: Worker | null = null;
  crashes: number[] = []; // timestamps of recent crashes, for backoff
  private waiters: { t: WorkerReport["t"]; resolve: (m: WorkerReport) => void }[] = [];

  constructor(readonly name: string) {}

  attach(w: Worker, onExit: () => void, onOther: (m: WorkerReport) => void): void {
    this.worker = w;
    w.onmessage = (e) => {
      const m: unknown = e.data;
      if (!isWorkerReport(m)) return log.warn("unknown report from worker", { thread: this.name });
      // A fatal report answers whatever the supervisor waits for (but "closed").
      const i = this.waiters.findIndex((x) => x.t === m.t || (m.t === "fatal" && x.t !== "closed"));
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(m);
      else onOther(m);
    };
    w.addEventListener(
      "error",
      (e) => log.error(`${this.name} threw`, { error: errorEventMessage((e as ErrorEvent).message) }),
    );
    w.addEventListener("close", () => {
      if (this.worker === w) {
        this.worker = null;
        onExit();
      }
    });
  }

  /**
   * Resolves with the report `t`, or with a "fatal" report; rejects after the timeout. A timed-out
   * wait leaves the list: else it took the next report of its kind, meant for a later wait (a shard
   * restart that timed out once then timed out on every retry, its "listening" swallowed, and its
   * users' messages waited for good: god-mode, session 18).
   */
  waitFor<T extends WorkerReport["t"]>(t: T, timeoutMs = CONTROL_REPLY_TIMEOUT_MS): Promise<ReportOf<T | "fatal">> {
    return new Promise((resolve, reject) => {
      const waiter = { t, resolve: (m: WorkerReport) => (clearTimeout(timer), resolve(m as ReportOf<T | "fatal">)) };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`${this.name}: no ${t} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /**
   * Ends a worker that did not answer in time. It may still be alive (slow, or stalled) and must
   * not run beside its replacement: a shard on the shared port with stale peers, or a second
   * writer on the store. Its close is then not a crash to restart from (the caller restarts).
   */
  abandon(): void {
    const w = this.worker;
    this.worker = null;
    this.waiters = [];
    w?.terminate();
  }

  post(m: C, transfer: Transferable[] = []): void {
    this.worker?.postMessage(m, transfer);
  }

  /** Records a crash now; returns how many happened within the crash window. */
  crashed(): number {
    const now = Date.now();
    this.crashes = this.crashes.filter((t) => now - t < CRASH_WINDOW_MS);
    this.crashes.push(now);
    return this.crashes.length;
  }
}

export class Supervisor {
  readonly metricsBuf: SharedArrayBuffer;
  private readonly metrics: SlotMetrics;
  private readonly writer = new Thread<WriterControl>("writer");
  private readonly checkpointer = new Thread<CheckpointerControl>("checkpointer");
  private readonly shards: Thread<ShardControl>[];
  private stopping = false;
  port = 0;
  tcpPort: number | undefined;

  constructor(private readonly o: SupervisorOptions) {
    this.metricsBuf = createMetricsBuffer(o.shards);
    this.metrics = new SlotMetrics(this.metricsBuf, SLOT_MAIN);
    this.shards = Array.from({ length: o.shards }, (_, i) => new Thread<ShardControl>(`shard${i}`));
    this.gcPacer = new GcPacer(o);
  }

  async start(): Promise<void> {
    await this.startWriter();
    await this.startCheckpointer();
    // Shard 0 binds first (the port may be 0 = pick one); the rest join it with reusePort.
    this.port = this.o.settings.port;
    for (let i = 0; i < this.shards.length; i++) await this.startShard(i);
    this.metrics.set("ready", 1);
    this.memoryTimer = setInterval(() => this.sampleMemory(), MEMORY_SAMPLE_EVERY_MS);
    this.sampleMemory();
  }

  private memoryTimer: ReturnType<typeof setInterval> | null = null;

  /** Publishes RSS and the pressure level every shard reads (spill at 1, refuse at 2). */
  private sampleMemory(): void {
    const rss = process.memoryUsage.rss();
    const level: PressureLevel = rss >= this.o.refuseBytes
      ? Pressure.REFUSE
      : rss >= this.o.spillBytes
      ? Pressure.SPILL
      : Pressure.NONE;
    if (level !== this.metrics.get("memPressure")) {
      log.warn("memory pressure changed", { level, rssMb: Math.round(rss / 1048576) });
    }
    this.metrics.set("rssBytes", rss);
    this.metrics.set("memPressure", level);
    this.metrics.set("spillBytes", this.o.spillBytes); // for the admin API and console
    this.metrics.set("refuseBytes", this.o.refuseBytes);
    const now = performance.now();
    if (this.gcPacer.due(rss, now)) {
      for (const t of [...this.shards, this.writer]) t.post({ t: "gc" });
      Bun.gc(true);
    }
  }
  private readonly gcPacer: GcPacer;

  private async startWriter(): Promise<void> {
    const s = this.o.settings;
    const w = new Worker(writerUrl);
    let migrating = false;
    this.writer.attach(w, () => this.onWriterExit(), (m) => {
      if (m.t === "drained") this.writerDrained?.();
      else if (m.t === "migrating") {
        migrating = true;
        log.info("migrating the store's schema; a large store takes a while", { from: m.from, to: m.to });
      }
    });
    this.writer.post({
      t: "init",
      path: `${s.dataDir}/iris.db`,
      maxInbox: s.maxInbox,
      ttlMs: s.inboxTtl * 1000,
      dedupeWindowMs: s.dedupeWindow * 1000,
      runFilterBytes: dedupeRunFilterBytes(this.o.spillBytes),
      flushMs: s.flushMs,
      batchRows: s.batchRows,
      metrics: this.metricsBuf,
      logLevel: s.logLevel,
      logFormat: s.logFormat,
      shards: this.o.shards,
    });
    // A migration gets its own, longer wait (WRITER_MIGRATE_TIMEOUT_MS) once the writer said so.
    const r = await this.writer.waitFor("ready", WRITER_START_TIMEOUT_MS).catch((e) => {
      if (!migrating) throw e;
      return this.writer.waitFor("ready", WRITER_MIGRATE_TIMEOUT_MS);
    });
    if (r.t === "fatal") {
      this.writer.abandon(); // a failed open is not a crash: no restart loop
      throw new Error(`storage writer could not start: ${r.error}`);
    }
    log.info("storage ready", { path: `${s.dataDir}/iris.db`, inboxRows: r.rows });
  }

  private writerDrained: (() => void) | null = null;

  /**
   * The WAL's checkpointer (store/checkpointer.ts). Not needed for correctness: without it the
   * writer's own autocheckpoint does the copying, so a failure to start is logged, not fatal.
   */
  private async startCheckpointer(): Promise<void> {
    const s = this.o.settings;
    const w = new Worker(checkpointerUrl);
    this.checkpointer.attach(w, () => this.onCheckpointerExit(), () => {});
    this.checkpointer.post({
      t: "init",
      path: `${s.dataDir}/iris.db`,
      metrics: this.metricsBuf,
      logLevel: s.logLevel,
      logFormat: s.logFormat,
    });
    const r = await this.checkpointer.waitFor("checkpointing").catch((e: Error) => ({ t: "fatal", error: e.message }));
    if (r.t === "fatal") {
      this.checkpointer.abandon(); // not a crash: no restart loop; the writer checkpoints alone
      log.warn("WAL checkpointer did not start; the writer checkpoints alone", { error: r.error });
    }
  }

  private onCheckpointerExit(): void {
    if (this.stopping) return;
    const delay = restartDelay(this.checkpointer.crashed());
    log.warn("WAL checkpointer died; restarting", { delayMs: delay });
    setTimeout(() => {
      if (!this.stopping) void this.startCheckpointer();
    }, delay);
  }

  private async startShard(i: number): Promise<void> {
    const s = this.o.settings;
    const th = this.shards[i]!;
    const w = new Worker(shardUrl);
    th.attach(w, () => this.onShardExit(i), (m) => log.warn("unexpected shard report", { shard: i, t: m.t }));
    const transfer: Transferable[] = [];
    // Writer channel.
    const wc = new MessageChannel();
    this.writer.post({ t: "port", shard: i, port: wc.port1 }, [wc.port1]);
    transfer.push(wc.port2);
    // A channel to every live peer.
    const peers: [number, MessagePort][] = [];
    for (let k = 0; k < this.shards.length; k++) {
      if (k === i || !this.shards[k]!.worker) continue;
      const ch = new MessageChannel();
      this.shards[k]!.post({ t: "peer", k: i, port: ch.port1 }, [ch.port1]);
      peers.push([k, ch.port2]);
      transfer.push(ch.port2);
    }
    th.post({
      t: "init",
      index: i,
      shards: this.shards.length,
      settings: s,
      metrics: this.metricsBuf,
      port: this.port,
      peers,
      writer: wc.port2,
      maxConnections: this.o.maxConnections,
      ownerLimits: this.o.ownerLimits,
      version: this.o.version,
      tcpPort: i === 0 ? s.tcpPort : undefined,
      stampDrift: stampDrift(),
    }, transfer);
    const r = await th.waitFor("listening");
    if (r.t === "fatal") throw new Error(`shard ${i} could not listen: ${r.error}`);
    this.port = r.port;
    if (r.tcpPort !== undefined) this.tcpPort = r.tcpPort;
  }

  private onShardExit(i: number): void {
    if (this.stopping) return;
    this.metrics.add("shardRestarts");
    const recent = this.shards[i]!.crashed();
    const delay = restartDelay(recent);
    log.error("shard died; restarting", { shard: i, recentCrashes: recent, delayMs: delay });
    const diedAt = performance.now();
    for (let k = 0; k < this.shards.length; k++) if (k !== i) this.shards[k]!.post({ t: "down", k: i });
    setTimeout(async () => {
      if (this.stopping) return;
      try {
        await this.startShard(i);
        for (let k = 0; k < this.shards.length; k++) if (k !== i) this.shards[k]!.post({ t: "up", k: i });
        this.recordRestart(performance.now() - diedAt);
        log.info("shard restarted", { shard: i, ms: Math.round(performance.now() - diedAt) });
      } catch (e) {
        log.error("shard restart failed", { shard: i, error: e as Error });
        this.shards[i]!.abandon();
        this.onShardExit(i);
      }
    }, delay);
  }

  private onWriterExit(): void {
    if (this.stopping) return;
    this.metrics.add("writerRestarts");
    const delay = restartDelay(this.writer.crashed());
    log.error("storage writer died; restarting", { delayMs: delay });
    this.metrics.set("ready", 0);
    const diedAt = performance.now();
    setTimeout(async () => {
      try {
        await this.startWriter();
        for (let i = 0; i < this.shards.length; i++) {
          const th = this.shards[i]!;
          if (!th.worker) continue;
          const ch = new MessageChannel();
          this.writer.post({ t: "port", shard: i, port: ch.port1 }, [ch.port1]);
          th.post({ t: "writer", port: ch.port2 }, [ch.port2]);
        }
        this.metrics.set("ready", 1);
        this.recordRestart(performance.now() - diedAt);
        log.info("storage writer restarted", { ms: Math.round(performance.now() - diedAt) });
      } catch (e) {
        log.error("storage writer restart failed", { error: e as Error });
        this.writer.abandon();
        this.onWriterExit();
      }
    }, delay);
  }

  private recordRestart(ms: number): void {
    this.metrics.set("lastRestartMs", ms);
    if (ms > this.metrics.get("maxRestartMs")) this.metrics.set("maxRestartMs", ms);
  }

  /** SIGHUP: every shard re-reads the certificate and swaps its listeners (open connections stay). */
  reloadTls(): void {
    for (const t of this.shards) t.post({ t: "tls" });
  }

  /** SIGUSR2: every shard and the writer sample their JS stacks for `ms` and write a report into `dir`. */
  profile(ms: number, dir: string): number {
    const threads = [...this.shards, this.writer];
    for (const t of threads) t.post({ t: "profile", ms, dir });
    return threads.length;
  }

  /** Chaos hooks (only reachable when --chaos is on). */
  killShard(i: number): boolean {
    const w = this.shards[i]?.worker;
    if (!w) return false;
    w.terminate();
    return true;
  }
  killWriter(): boolean {
    const w = this.writer.worker;
    if (!w) return false;
    w.terminate();
    return true;
  }
  /** Makes the shard throw an uncaught error (the "throws" failure, as opposed to terminate). */
  /** Chaos: blocks shard i's event loop for `ms`. */
  stallShard(i: number, ms: number): boolean {
    const th = this.shards[i];
    if (!th?.worker) return false;
    th.post({ t: "stall", ms });
    return true;
  }
  crashShard(i: number): boolean {
    const th = this.shards[i];
    if (!th?.worker) return false;
    th.post({ t: "crash" });
    return true;
  }
  /** A raw value posted to the shard as an inter-thread message (not wrapped in a batch). */
  injectShardRaw(i: number, value: unknown): boolean {
    const th = this.shards[i];
    if (!th?.worker) return false;
    try {
      th.post({ t: "inject", items: value });
    } catch {
      return false; // some values cannot be cloned at all; that is the sender's problem
    }
    return true;
  }
  injectShard(i: number, items: unknown[]): boolean {
    const th = this.shards[i];
    if (!th?.worker) return false;
    th.post({ t: "inject", items });
    return true;
  }
  injectWriter(shard: number, items: unknown[]): boolean {
    if (!this.writer.worker) return false;
    this.writer.post({ t: "inject", shard, items });
    return true;
  }

  /** SIGTERM/SIGINT: stop accepting, close clients with a reason, flush the store, exit. */
  async shutdown(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.metrics.set("ready", 0);
    if (this.memoryTimer) clearInterval(this.memoryTimer);
    const live = this.shards.filter((t) => t.worker);
    await Promise.all(
      live.map((t) => (t.post({ t: "stop" }), t.waitFor("stopped", SHUTDOWN_STEP_TIMEOUT_MS).catch(() => null))),
    );
    // Give close handlers a moment to post their detaches before owners release everything.
    await new Promise((r) => setTimeout(r, SHUTDOWN_DETACH_GRACE_MS));
    const drained = new Promise<void>((resolve) => (this.writerDrained = resolve));
    this.writer.post({ t: "expect", shards: live.length });
    await Promise.all(
      live.map((t) => (t.post({ t: "finish" }), t.waitFor("finished", SHUTDOWN_STEP_TIMEOUT_MS).catch(() => null))),
    );
    await Promise.race([drained, new Promise((r) => setTimeout(r, SHUTDOWN_STEP_TIMEOUT_MS))]);
    // The checkpointer's connection first: the writer's close, as the last one, removes the WAL.
    this.checkpointer.post({ t: "close" });
    await this.checkpointer.waitFor("closed", SHUTDOWN_STEP_TIMEOUT_MS).catch(() => null);
    this.checkpointer.worker?.terminate();
    this.writer.post({ t: "close" });
    await this.writer.waitFor("closed", SHUTDOWN_STEP_TIMEOUT_MS).catch(() => null);
    for (const t of [...this.shards, this.writer]) t.worker?.terminate();
  }
}
