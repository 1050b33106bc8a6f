// What a load-generator process does with its connections: open them, run groups of senders
// (windowed = closed loop, or paced = open loop) for a fixed time or message quota, drain a
// backlog to freshly logged-in users, and count everything per group. Runs inside a worker
// process (loadgen-worker.ts) but has no IPC of its own, so it can also run in-process.

import { Conn, type ConnEvents } from "./conn.ts";
import { Histogram } from "./histogram.ts";
import { Ledger } from "./ledger.ts";
import type {
  Counts,
  DrainCmd,
  DrainReply,
  GroupResult,
  GroupSpec,
  OpenCmd,
  OpenReply,
  RunCmd,
  RunReply,
  StatsReply,
} from "./loadgen-protocol.ts";
import { readId, readIdAt, readStamp, type SendTemplate, sendTemplate, type Stamp, stamp } from "./wire.ts";

const PACE_TICK_MS = 2;
/** A paced sender whose socket holds more than this is skipped (counted as shortfall). */
const PACE_BUFFER_LIMIT = 256 * 1024;

interface SenderState {
  conn: Conn;
  group: GroupState;
  to: string[];
  next: number;
  sent: number;
  inflight: number;
  sendTimes: Map<number, number> | null; // id → send time, when latency is measured to the ack
}

interface GroupState {
  spec: GroupSpec;
  latencyKind: "delivery" | "ack";
  total: Counts;
  measured: Counts;
  acks: { delivered: number; stored: number; duplicate: number };
  errors: number;
  hist: Histogram;
  perSec: { sent: number[]; delivered: number[]; acked: number[] };
  senders: SenderState[];
  paceSent: number;
  paceShortfall: number;
  rr: number;
  lastEventAt: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

function bump(a: number[], i: number, n = 1): void {
  while (a.length <= i) a.push(0);
  a[i]! += n;
}

export class Driver implements ConnEvents {
  readonly conns: Conn[] = [];
  /** Random per process: a body stamped elsewhere is never mistaken for one of ours. */
  readonly tag = (Math.random() * 0xffffffff) >>> 0;
  private senderOf: (SenderState | undefined)[] = [];
  private templates = new Map<string, SendTemplate>();
  private payload = 64;
  private proto: "v0" | "v1" = "v1";
  private nextId = 0;
  private sending = false;
  private t0 = 0;
  private warmEnd = 0;
  private end = 0;
  private readonly st: Stamp = { sentAt: 0, sender: 0, tag: 0 };
  private drainConns: Set<Conn> | null = null;
  private readonly ledger = new Ledger();
  private drainFirst = 0;
  private drainPerSec: number[] = [];
  private drainT0 = 0;
  readonly unexpectedCloses: Record<string, number> = {};
  readonly serverErrors: Record<string, number> = {};

  // ---- connection events ----

  deliver(c: Conn, v: DataView, off: number, len: number, idOff: number, idLen: number): void {
    const now = performance.now();
    this.drained(c, 1, now);
    this.counted(v, off, len, idOff, idLen, now);
  }

  deliverRun(c: Conn, v: DataView, off: number, len: number, n: number): void {
    const now = performance.now();
    this.drained(c, n, now);
    for (let i = 0; i < n; i++) this.counted(v, off + i * len, len, -1, 0, now);
  }

  /** `n` deliveries on `c` at `now`, if it is draining a backlog. */
  private drained(c: Conn, n: number, now: number): void {
    if (!this.drainConns?.has(c)) return;
    if (this.drainFirst === 0) this.drainFirst = now;
    bump(this.drainPerSec, Math.floor((now - this.drainT0) / 1000), n);
    if (c.delivered >= c.expect && c.doneAt === 0) c.doneAt = now;
  }

  /** One delivered body: its sender's group counts it (and its latency, for delivery groups). */
  private counted(v: DataView, off: number, len: number, idOff: number, idLen: number, now: number): void {
    if (!readStamp(v, off, len, this.st) || this.st.tag !== this.tag) return;
    // Counted even after the run's senders are gone: a late duplicate must still show.
    if (idOff >= 0) this.ledger.got(readIdAt(v, idOff, idLen));
    const s = this.senderOf[this.st.sender];
    if (!s) return;
    const g = s.group;
    g.total.delivered++;
    g.lastEventAt = now;
    if (now >= this.warmEnd && now < this.end) g.measured.delivered++;
    bump(g.perSec.delivered, Math.floor((now - this.t0) / 1000));
    if (g.latencyKind === "delivery") {
      if (this.st.sentAt >= this.warmEnd && this.st.sentAt < this.end) g.hist.record((now - this.st.sentAt) * 1000);
      s.inflight--;
      this.refill(s);
    }
  }

  sent(c: Conn, status: number, frame: Uint8Array, idOff: number, idLen: number): void {
    const s = this.senderOf[c.i];
    if (!s) return;
    const g = s.group;
    if (status === 1) g.acks.delivered++;
    else if (status === 2) g.acks.stored++;
    else if (status === 3) g.acks.duplicate++;
    const now = performance.now();
    g.total.acked++;
    if (now >= this.warmEnd && now < this.end) g.measured.acked++;
    bump(g.perSec.acked, Math.floor((now - this.t0) / 1000));
    if (g.latencyKind === "ack" && s.sendTimes) {
      g.lastEventAt = now;
      const id = readId(frame, idOff, idLen);
      const at = s.sendTimes.get(id);
      if (at !== undefined) {
        s.sendTimes.delete(id);
        if (at >= this.warmEnd && at < this.end) g.hist.record((now - at) * 1000);
        s.inflight--;
        this.refill(s);
      }
    }
  }

  serverError(c: Conn, what: string, id?: string): void {
    // Group by code and the start of the reason so a flood of one error stays one line.
    const key = what.slice(0, 120);
    this.serverErrors[key] = (this.serverErrors[key] ?? 0) + 1;
    const s = this.senderOf[c.i];
    if (!s) return;
    s.group.errors++;
    // A refused send (e.g. INBOX_FULL) is final: free its window slot like an ack would.
    if (id === undefined) return;
    if (s.sendTimes && !s.sendTimes.delete(readId(new TextEncoder().encode(id), 0, id.length))) return;
    s.inflight--;
    this.refill(s);
  }

  closed(_c: Conn, code: number, reason: string): void {
    const k = `${code} ${reason}`.trim();
    this.unexpectedCloses[k] = (this.unexpectedCloses[k] ?? 0) + 1;
  }

  // ---- commands ----

  async open(cmd: OpenCmd): Promise<OpenReply> {
    this.proto = cmd.proto;
    this.payload = cmd.payload;
    const firstIndex = this.conns.length;
    const t0 = performance.now();
    const errors: Record<string, number> = {};
    let opened = 0;
    let failed = 0;
    const failedAt: number[] = [];
    let next = 0;
    const one = async () => {
      while (next < cmd.users.length) {
        const k = next++;
        const user = cmd.users[k]!;
        const c = new Conn(this.conns.length, user, cmd.proto, cmd.payload, this, cmd.bundles ?? false);
        this.conns.push(c);
        try {
          await c.connect(cmd.target, cmd.timeoutMs);
          opened++;
        } catch (e) {
          failed++;
          failedAt.push(k);
          const m = (e as Error).message;
          errors[m] = (errors[m] ?? 0) + 1;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(cmd.concurrency, cmd.users.length)) }, one));
    return {
      firstIndex,
      opened,
      failed,
      failedAt,
      errors: Object.entries(errors).map(([m, n]) => `${n}x ${m}`),
      ms: performance.now() - t0,
    };
  }

  private template(to: string): SendTemplate {
    let t = this.templates.get(to);
    if (!t) {
      t = sendTemplate(this.proto, to, this.payload);
      this.templates.set(to, t);
    }
    return t;
  }

  private sendOne(s: SenderState): void {
    const g = s.group;
    const to = s.to[s.next++ % s.to.length]!;
    const id = ++this.nextId;
    const now = performance.now();
    s.conn.send(stamp(this.template(to), id, now, s.conn.i, this.tag));
    s.sendTimes?.set(id, now);
    s.sent++;
    s.inflight++;
    g.total.sent++;
    if (now >= this.warmEnd && now < this.end) g.measured.sent++;
    bump(g.perSec.sent, Math.floor((now - this.t0) / 1000));
  }

  private refill(s: SenderState): void {
    const m = s.group.spec.mode;
    if (!this.sending || m.kind !== "window" || !s.conn.open) return;
    const quota = s.group.spec.quota;
    while (s.inflight < m.window && (quota === null || s.sent < quota)) this.sendOne(s);
  }

  private paceTick(g: GroupState, now: number): void {
    const m = g.spec.mode;
    if (m.kind !== "pace" || g.senders.length === 0) return;
    let due = Math.floor((m.rate * (now - this.t0)) / 1000) - g.paceSent;
    // After a stall (GC, CPU contention) do not burst more than 50 ms worth; count the rest.
    const cap = Math.max(1, Math.ceil(m.rate * 0.05));
    if (due > cap) {
      g.paceShortfall += due - cap;
      g.paceSent += due - cap;
      due = cap;
    }
    const quota = g.spec.quota;
    for (let k = 0; k < due; k++) {
      g.paceSent++;
      let sent = false;
      for (let tries = 0; tries < g.senders.length && !sent; tries++) {
        const s = g.senders[g.rr++ % g.senders.length]!;
        if (!s.conn.open || s.conn.buffered() > PACE_BUFFER_LIMIT || (quota !== null && s.sent >= quota)) continue;
        this.sendOne(s);
        sent = true;
      }
      if (!sent) g.paceShortfall++;
    }
  }

  async run(cmd: RunCmd): Promise<RunReply> {
    this.payload = cmd.payload;
    this.templates.clear();
    this.senderOf = [];
    // liveOnly: users whose connection is still open here (a server may have closed some).
    const live = cmd.liveOnly ? new Set(this.conns.filter((c) => c.open).map((c) => c.user)) : null;
    const groups: GroupState[] = cmd.groups.map((spec) => {
      const latencyKind = spec.mode.ackOn === "sent" ? "ack" : "delivery";
      const g: GroupState = {
        spec,
        latencyKind,
        total: { sent: 0, delivered: 0, acked: 0 },
        measured: { sent: 0, delivered: 0, acked: 0 },
        acks: { delivered: 0, stored: 0, duplicate: 0 },
        errors: 0,
        hist: new Histogram(),
        perSec: { sent: [], delivered: [], acked: [] },
        senders: [],
        paceSent: 0,
        paceShortfall: 0,
        rr: 0,
        lastEventAt: 0,
      };
      for (const spec0 of spec.senders) {
        const sp = live ? { c: spec0.c, to: spec0.to.filter((u) => live.has(u)) } : spec0;
        const conn = this.conns[sp.c];
        if (!conn) throw new Error(`no connection ${sp.c}`);
        if (live && (!conn.open || sp.to.length === 0)) continue;
        if (sp.to.length === 0) throw new Error(`sender ${sp.c} has no targets`);
        const s: SenderState = {
          conn,
          group: g,
          to: sp.to,
          next: 0,
          sent: 0,
          inflight: 0,
          sendTimes: latencyKind === "ack" ? new Map() : null,
        };
        g.senders.push(s);
        this.senderOf[sp.c] = s;
      }
      return g;
    });
    this.ledger.start(this.nextId);
    this.t0 = performance.now() + (cmd.startAt - Date.now());
    this.warmEnd = this.t0 + cmd.warmupMs;
    this.end = this.warmEnd + cmd.measureMs;
    await sleep(this.t0 - performance.now());
    this.sending = true;
    for (const g of groups) for (const s of g.senders) this.refill(s);
    const ticker = setInterval(() => {
      const now = performance.now();
      for (const g of groups) this.paceTick(g, now);
    }, PACE_TICK_MS);
    const allQuota = groups.every((g) => g.spec.quota !== null);
    const inflight = () => groups.reduce((n, g) => n + g.senders.reduce((m, s) => m + s.inflight, 0), 0);
    const quotaDone = () => groups.every((g) => g.senders.every((s) => s.sent >= g.spec.quota! || !s.conn.open));
    let stopAt = this.end;
    while (performance.now() < this.end) {
      if (allQuota && quotaDone() && inflight() === 0) {
        stopAt = performance.now();
        break;
      }
      await sleep(5);
    }
    this.sending = false;
    clearInterval(ticker);
    const drainUntil = performance.now() + cmd.drainMs;
    while (inflight() > 0 && performance.now() < drainUntil) await sleep(5);
    const measuredMs = Math.max(0, Math.min(stopAt, this.end) - this.warmEnd);
    this.senderOf = []; // late acks and deliveries no longer count (except in the ledger)
    // A duplicate would arrive after its first copy: give it time to show before counting.
    await sleep(cmd.settleMs ?? 0);
    return {
      ledger: this.ledger.tally(this.nextId),
      groups: groups.map((g): GroupResult => ({
        name: g.spec.name,
        latencyKind: g.latencyKind,
        total: g.total,
        measured: { ...g.measured, ms: measuredMs },
        acks: g.acks,
        errors: g.errors,
        hist: g.hist.toJSON(),
        perSec: g.perSec,
        inflightLeft: g.senders.reduce((m, s) => m + s.inflight, 0),
        paceShortfall: g.paceShortfall,
        elapsedMs: g.lastEventAt > 0 ? g.lastEventAt - this.t0 : 0,
      })),
    };
  }

  /** Logs the users in and times how long until each received `expect` messages. */
  async drain(cmd: DrainCmd): Promise<DrainReply> {
    this.drainConns = new Set();
    this.drainFirst = 0;
    this.drainPerSec = [];
    this.drainT0 = performance.now();
    const t0 = this.drainT0;
    const before = this.conns.length;
    // Mark the connections before they log in: deliveries start right after LOGIN_OK.
    const opening = this.open({
      t: "open",
      target: cmd.target,
      proto: cmd.proto,
      users: cmd.users,
      concurrency: cmd.users.length,
      bundles: cmd.bundles ?? false,
      timeoutMs: Math.min(cmd.timeoutMs, 30_000),
      payload: cmd.payload,
    });
    for (let i = before; i < this.conns.length; i++) {
      this.conns[i]!.expect = cmd.expect;
      this.drainConns.add(this.conns[i]!);
    }
    const opened = await opening;
    const loginMs = performance.now() - t0;
    if (opened.failed > 0) throw new Error(`drain login failed: ${opened.errors.join("; ")}`);
    const mine = [...this.drainConns];
    const deadline = t0 + cmd.timeoutMs;
    while (performance.now() < deadline && !mine.every((c) => c.delivered >= cmd.expect)) await sleep(2);
    const complete = mine.every((c) => c.delivered >= cmd.expect);
    const doneAt = complete ? Math.max(...mine.map((c) => c.doneAt || performance.now())) : performance.now();
    // Flush the final cumulative ack so the server can delete the drained rows.
    for (const c of mine) c.ackNow();
    this.drainConns = null;
    return {
      loginMs,
      firstMs: this.drainFirst ? this.drainFirst - t0 : -1,
      doneMs: doneAt - t0,
      delivered: mine.reduce((n, c) => n + c.delivered, 0),
      complete,
      outOfOrder: mine.reduce((n, c) => n + c.outOfOrder, 0),
      perSec: this.drainPerSec,
    };
  }

  stats(): StatsReply {
    return {
      conns: this.conns.length,
      open: this.conns.filter((c) => c.open).length,
      unexpectedCloses: this.unexpectedCloses,
      serverErrors: this.serverErrors,
      outOfOrder: this.conns.reduce((n, c) => n + c.outOfOrder, 0),
    };
  }

  async closeAll(): Promise<void> {
    for (const c of this.conns) c.close();
    const until = performance.now() + 3000;
    while (this.conns.some((c) => c.open) && performance.now() < until) await sleep(10);
    this.conns.length = 0;
    this.senderOf = [];
  }
}
