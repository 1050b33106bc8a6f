// One router shard (runs in a Worker): its own Bun.serve on the shared port (kernel reusePort
// spreads connections), the sessions on it, and the owner actor for the users hashed to it.
// Outbound port traffic is batched: one postMessage per destination per tick.

import type { Server, ServerWebSocket, Socket, TCPSocketListener } from "bun";
import type { Settings } from "../config/schema.ts";
import { createHttpApp, type WsData } from "../gateway/http.ts";
import { type Session, Sessions, type Transport } from "../gateway/session.ts";
import { log } from "../observe/log.ts";
import { MetricsReader, SLOT_MAIN, type SlotMetrics } from "../observe/metrics.ts";
import { Owner, type OwnerLimits } from "./owner.ts";
import { isShardMsg, type ShardMsg, type WriterReq } from "./wire.ts";

export interface ShardOptions {
  index: number;
  shards: number;
  settings: Settings;
  metrics: SlotMetrics;
  reader: MetricsReader;
  maxConnections: number;
  ownerLimits: OwnerLimits;
  version: string;
}

const OWNER_TYPES = new Set(["route", "att", "det", "ack", "flow", "stq", "loaded", "rows", "rej", "cmt"]);

export class Shard {
  readonly sessions: Sessions;
  readonly owner: Owner;
  private readonly peers: (MessagePort | null)[];
  private writer: MessagePort | null = null;
  private readonly outbox = new Map<number, ShardMsg[]>();
  private writerOut: WriterReq[] = [];
  private flushScheduled = false;
  private readonly local: ShardMsg[] = [];
  private dispatching = false;
  private server: Server<WsData> | null = null;
  private tcp: TCPSocketListener<{ s: Session | null }> | null = null;
  private sweepTimer: ReturnType<typeof setInterval> | null = null;
  /** Upgrades admitted whose socket has not opened yet: counted so bursts cannot overshoot. */
  private admitting = 0;
  private statsTimer: ReturnType<typeof setInterval> | null = null;
  private housekeepingTimer: ReturnType<typeof setInterval> | null = null;

  private publishOwnerStats(): void {
    const st = this.owner.stats;
    const m = this.o.metrics;
    m.set("routedOwner", st.routed);
    m.set("storedOwner", st.stored);
    m.set("duplicates", st.duplicates);
  }

  constructor(private readonly o: ShardOptions) {
    this.peers = new Array(o.shards).fill(null);
    this.owner = new Owner({
      self: o.index,
      toShard: (k, m) => this.post(k, m),
      toWriter: (m) => this.toWriter(m),
      now: () => Date.now(),
      underPressure: () => o.reader.at(SLOT_MAIN, "memPressure") >= 1,
    }, o.ownerLimits);
    this.sessions = new Sessions({
      index: o.index,
      shards: o.shards,
      settings: o.settings,
      metrics: o.metrics,
      reader: o.reader,
      post: (k, m) => this.post(k, m),
    });
    this.sweepTimer = setInterval(() => this.owner.sweep(60_000), 30_000);
    // Owner counters live in plain fields (hot path); publish them to shared metrics periodically.
    this.statsTimer = setInterval(() => this.publishOwnerStats(), 250);
    this.housekeepingTimer = setInterval(() => {
      const pressure = o.reader.at(SLOT_MAIN, "memPressure");
      this.sessions.housekeeping(pressure);
      this.owner.spillStalePending(pressure >= 1 ? 0 : o.ownerLimits.pendingSpillMs);
      this.owner.cutSlowConsumers();
    }, 1000);
  }

  // ---- ports ----

  setPeer(k: number, port: MessagePort): void {
    this.peers[k] = port;
    port.onmessage = (e) => this.receive(e.data);
  }

  setWriter(port: MessagePort): void {
    this.writer = port;
    port.onmessage = (e) => this.receive(e.data);
  }

  /** Validates a batch from any port; garbage is counted and dropped, never thrown. */
  receive(batch: unknown): void {
    if (!Array.isArray(batch)) {
      this.garbage(batch);
      return;
    }
    for (const m of batch) {
      if (isShardMsg(m)) this.dispatch(m);
      else this.garbage(m);
    }
  }

  private garbageLogged = 0;
  private garbage(v: unknown): void {
    this.o.metrics.add("garbage");
    // Log the first few and then every 1000th so a flood cannot flood the log too.
    const n = this.o.metrics.get("garbage");
    if (this.garbageLogged < 5 || n % 1000 === 0) {
      this.garbageLogged++;
      log.warn("dropped invalid port message", { shard: this.o.index, total: n, type: typeof v });
    }
  }

  /** Same-shard messages run here without a thread hop, trampolined so handlers never re-enter. */
  private dispatch(m: ShardMsg): void {
    this.local.push(m);
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      for (let i = 0; i < this.local.length; i++) {
        const msg = this.local[i]!;
        try {
          if (OWNER_TYPES.has(msg.t)) this.owner.handle(msg);
          else this.sessions.handle(msg);
        } catch (e) {
          // A bug on one message must not take the shard (and its connections) down.
          log.error("message handler failed", { t: msg.t, error: e as Error });
        }
      }
    } finally {
      this.local.length = 0;
      this.dispatching = false;
    }
  }

  post(k: number, m: ShardMsg): void {
    if (k === this.o.index) return this.dispatch(m);
    let q = this.outbox.get(k);
    if (!q) this.outbox.set(k, q = []);
    q.push(m);
    this.scheduleFlush();
  }

  private toWriter(m: WriterReq): void {
    this.writerOut.push(m);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const [k, q] of this.outbox) {
      if (q.length === 0) continue;
      const port = this.peers[k];
      if (port) {
        port.postMessage(q);
        this.o.metrics.add("crossShardMsgs", q.length);
      } // else: peer is down; its owner state is rebuilt on restart, senders retry unacked sends
      this.outbox.set(k, []);
    }
    if (this.writerOut.length && this.writer) {
      this.writer.postMessage(this.writerOut);
      this.writerOut = [];
    }
    this.o.metrics.set("storeBacklogBytes", this.owner.unconfirmedBytes);
  }

  // ---- supervisor events ----

  peerDown(k: number): void {
    this.peers[k] = null;
    this.outbox.delete(k);
    this.owner.shardDown(k);
  }

  peerUp(k: number): void {
    this.sessions.reattachOwnedBy(k);
  }

  writerRestarted(port: MessagePort): void {
    this.setWriter(port);
    this.owner.writerRestarted();
  }

  // ---- listeners ----

  async listen(port: number): Promise<number> {
    const s = this.o.settings;
    const reader = this.o.reader;
    const app = createHttpApp({
      settings: s,
      sessions: this.sessions,
      reader,
      ready: () => reader.at(SLOT_MAIN, "ready") === 1,
      admit: () => this.admit(),
      unadmit: () => {
        if (this.admitting > 0) this.admitting--;
      },
      maxConnections: this.o.maxConnections,
      version: this.o.version,
    });
    const sessions = this.sessions;
    const slow = s.slowConsumerBytes;
    this.server = Bun.serve<WsData>({
      hostname: s.host,
      port,
      reusePort: true,
      fetch: app.fetch,
      websocket: {
        maxPayloadLength: s.maxPayload + 1024,
        // Never let Bun drop a frame: we pause at slowConsumerBytes and serve from the store.
        backpressureLimit: Math.max(slow * 64, 64 * 1024 * 1024),
        closeOnBackpressureLimit: false,
        idleTimeout: 120,
        perMessageDeflate: false,
        open: (ws: ServerWebSocket<WsData>) => {
          if (this.admitting > 0) this.admitting--;
          ws.data.s = sessions.open(wsTransport(ws), false);
        },
        message(ws: ServerWebSocket<WsData>, data: string | Buffer) {
          const sess = ws.data.s;
          if (sess) {
            sessions.onData(
              sess,
              typeof data === "string" ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
            );
          }
        },
        drain(ws: ServerWebSocket<WsData>) {
          if (ws.data.s) sessions.onDrain(ws.data.s);
        },
        close(ws: ServerWebSocket<WsData>) {
          if (ws.data.s) sessions.onClose(ws.data.s);
        },
      },
    });
    return this.server.port ?? port;
  }

  /** Raw TCP listener for seed (v0) clients; runs on shard 0 only. */
  listenTcp(port: number): number {
    const sessions = this.sessions;
    this.tcp = Bun.listen<{ s: Session | null }>({
      hostname: this.o.settings.host,
      port,
      data: { s: null },
      socket: {
        open: (sock) => {
          const why = this.admit();
          if (why) {
            sock.end(); // v0 has no error frame: refuse by closing
            return;
          }
          this.admitting--;
          sock.data = { s: sessions.open(new TcpTransport(sock), true) };
        },
        data(sock, chunk) {
          if (sock.data.s) {
            sessions.onData(sock.data.s, new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          }
        },
        drain(sock) {
          const s = sock.data.s;
          if (!s) return;
          (s.t as TcpTransport).flush();
          sessions.onDrain(s);
        },
        close(sock) {
          if (sock.data.s) sessions.onClose(sock.data.s);
        },
        error(sock) {
          if (sock.data.s) sessions.onClose(sock.data.s);
        },
      },
    });
    return this.tcp.port;
  }

  /** Reserves a connection slot, or says why not (the caller answers 503). */
  admit(): string | null {
    const r = this.o.reader;
    let why: string | null = null;
    if (r.at(SLOT_MAIN, "ready") !== 1) why = "server is not ready";
    else if (r.at(SLOT_MAIN, "memPressure") >= 2) why = "server is under memory pressure";
    else if (r.sum("conns") + this.admitting >= this.o.maxConnections) {
      why = `server at capacity (${this.o.maxConnections} connections)`;
    }
    if (why) {
      this.o.metrics.add("rejectedUpgrades");
      return why;
    }
    this.admitting++;
    return null;
  }

  /** Shutdown step 1: stop accepting and close every client with a reason. */
  stopListening(): void {
    this.server?.stop(false);
    this.tcp?.stop(false);
    this.sessions.closeAll(1001, "server shutting down");
  }

  /** Shutdown step 2: owners push unacked deliveries to the store, then say goodbye to the writer. */
  finish(): void {
    this.owner.releaseAll();
    this.toWriter({ t: "bye", shard: this.o.index });
    this.flush();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.statsTimer) clearInterval(this.statsTimer);
    if (this.housekeepingTimer) clearInterval(this.housekeepingTimer);
    this.publishOwnerStats();
  }
}

function wsTransport(ws: ServerWebSocket<WsData>): Transport {
  return {
    send: (d) => ws.send(d),
    buffered: () => ws.getBufferedAmount(),
    close: (code, reason) => ws.close(code, reason),
  };
}

/** TCP has no message framing or send queue of its own: keep what the kernel did not take. */
class TcpTransport implements Transport {
  private queue: Uint8Array[] = [];
  private queued = 0;
  private closed = false;
  constructor(private readonly sock: Socket<{ s: Session | null }>) {}
  send(d: string | Uint8Array): number {
    if (this.closed) return 0;
    const b = typeof d === "string" ? new TextEncoder().encode(d) : d;
    if (this.queued > 0) {
      this.queue.push(b);
      this.queued += b.byteLength;
      return -1;
    }
    const n = this.sock.write(b);
    if (n < 0) return 0;
    if (n < b.byteLength) {
      this.queue.push(b.subarray(n));
      this.queued += b.byteLength - n;
      return -1;
    }
    return n;
  }
  flush(): void {
    while (this.queue.length) {
      const b = this.queue[0]!;
      const n = this.sock.write(b);
      if (n <= 0) return;
      this.queued -= n;
      if (n < b.byteLength) {
        this.queue[0] = b.subarray(n);
        return;
      }
      this.queue.shift();
    }
  }
  buffered(): number {
    return this.queued;
  }
  close(_code: number, _reason: string): void {
    this.closed = true;
    this.sock.end();
  }
}
