// Client traffic for fault tests: N SDK clients sending to random peers at a steady rate. Every
// message id is unique, so the verdict is exact: sent, acked by the server, delivered to the
// application, lost (acked but never delivered), duplicated (delivered to the app twice) and
// reordered (a first delivery whose number n in "<sender>-<n>" is below one its recipient already
// got from that sender: ids grow per Traffic, and the SDK sends to a recipient in order).

import { IrisClient, type SendStatus } from "../../src/client/index.ts";
import { SenderOrder } from "./sender-order.ts";

/** Of a settle's budget, what is kept for reading the offline inboxes after waiting for acks. */
const READ_RESERVE_MS = 20_000;

export interface TrafficOptions {
  url: string;
  users: number;
  /** Each client sends one message every `intervalMs` (jittered). */
  intervalMs: number;
  prefix?: string;
  payloadBytes?: number;
  resendAfterMs?: number;
  /** Fraction of recipients that are offline (never connect): their inboxes are read at the end. */
  offlineFraction?: number;
  /** Exact number of offline recipients (overrides offlineFraction). */
  offlineUsers?: number;
  /** Send only to the offline recipients (a flood into stored inboxes). */
  offlineOnly?: boolean;
  /** Stop sending once this many messages were sent in total. */
  maxMessages?: number;
}

export interface Verdict {
  sent: number;
  acked: number;
  delivered: number;
  lost: number;
  duplicated: number;
  /** First deliveries that came after a later send of the same sender to the same recipient. */
  reordered: number;
  failed: number;
  reconnects: number;
  unackedAtEnd: number;
}

export class Traffic {
  readonly clients: IrisClient[] = [];
  private readonly offline: string[] = [];
  private timers: ReturnType<typeof setInterval>[] = [];
  /** Jittered first ticks not yet due: stop() cancels them too, or a client would start late. */
  private starters: ReturnType<typeof setTimeout>[] = [];
  /** Acked sends, "sender/id" → recipient, send and ack times, status (the evidence of a loss). */
  private readonly acked = new Map<string, { to: string; at: number; ackedAt: number; status: SendStatus }>();
  /** Sends not answered yet, "sender/id" → recipient and send time (for the evidence of a stuck send). */
  private readonly open = new Map<string, { to: string; at: number }>();
  private readonly received = new Map<string, number>();
  /** Per-sender order of first deliveries (its examples are the evidence of a reorder). */
  readonly order = new SenderOrder();
  /** Every client by its user, readers of offline inboxes too (for the evidence of a loss). */
  private readonly byName = new Map<string, IrisClient>();
  private sent = 0;
  private failed = 0;
  private seq = 0;
  private readonly pad: string;
  /** Milliseconds from send() to the server's ack, one per acked send (for latency quantiles). */
  readonly ackLatencies: number[] = [];
  readonly statuses: Record<SendStatus, number> = { delivered: 0, stored: 0, duplicate: 0 };

  constructor(private readonly o: TrafficOptions) {
    this.pad = "x".repeat(Math.max(0, (o.payloadBytes ?? 32) - 16));
  }

  private name(i: number): string {
    return `${this.o.prefix ?? "t"}${i}`;
  }

  private track(c: IrisClient, user: string): IrisClient {
    c.onMessage((m) => {
      const key = `${m.from}/${m.id}`;
      const times = (this.received.get(key) ?? 0) + 1;
      this.received.set(key, times);
      if (times === 1) this.order.see(user, m.from, m.id);
    });
    return c;
  }

  async connect(): Promise<void> {
    const nOffline = this.o.offlineUsers ?? Math.floor(this.o.users * (this.o.offlineFraction ?? 0));
    for (let i = 0; i < nOffline; i++) this.offline.push(this.name(this.o.users + i));
    const batch = 50;
    for (let i = 0; i < this.o.users; i += batch) {
      const group: Promise<void>[] = [];
      for (let j = i; j < Math.min(i + batch, this.o.users); j++) {
        const c = this.track(
          new IrisClient({
            url: this.o.url,
            user: this.name(j),
            resendAfterMs: this.o.resendAfterMs ?? 1000,
            maxReconnectDelayMs: 500,
          }),
          this.name(j),
        );
        this.clients.push(c);
        this.byName.set(this.name(j), c);
        group.push(c.connect());
      }
      await Promise.all(group);
    }
  }

  start(): void {
    const targets = this.o.offlineOnly ? [...this.offline] : [
      ...this.clients.map((_, i) => this.name(i)),
      ...this.offline,
    ];
    this.clients.forEach((c, i) => {
      const me = this.name(i);
      const tick = () => {
        if (this.o.maxMessages !== undefined && this.sent >= this.o.maxMessages) return this.stop();
        let to = targets[Math.floor(Math.random() * targets.length)]!;
        if (to === me) to = targets[(targets.indexOf(me) + 1) % targets.length]!;
        const id = `${me}-${++this.seq}`;
        this.sent++;
        const t0 = performance.now();
        const key = `${me}/${id}`;
        const at = Date.now();
        this.open.set(key, { to, at });
        c.send(to, `${id}:${this.pad}`, { id }).then(
          (status) => {
            this.open.delete(key);
            this.acked.set(key, { to, at, ackedAt: Date.now(), status });
            this.ackLatencies.push(performance.now() - t0);
            this.statuses[status]++;
          },
          (e: Error) => (this.open.delete(key), this.failed++, console.error("send failed", me, id, to, e.message)),
        );
      };
      // Jitter the start so clients do not send in lockstep.
      this.starters.push(
        setTimeout(() => this.timers.push(setInterval(tick, this.o.intervalMs)), Math.random() * this.o.intervalMs),
      );
    });
  }

  stop(): void {
    for (const t of this.starters) clearTimeout(t);
    this.starters = [];
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  /** Recipients that never connect during the run (read at the end by settle()). */
  get offlineNames(): readonly string[] {
    return this.offline;
  }

  get sentCount(): number {
    return this.sent;
  }

  get ackedCount(): number {
    return this.acked.size;
  }

  get unacked(): number {
    return this.clients.reduce((n, c) => n + c.unacked, 0);
  }

  /** Waits until every send is acked, then reads offline inboxes, then waits for deliveries. */
  async settle(timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    // Sends that never get acked must not eat the inbox reads' time too: their messages would
    // then all count as lost, hiding what was really lost (god-mode once showed 2330 for 2).
    const acksBy = end - Math.min(READ_RESERVE_MS, timeoutMs / 4);
    while (this.unacked > 0 && Date.now() < acksBy) await Bun.sleep(50);
    // Readers log in a batch at a time: thousands in sequence would eat the settle budget.
    for (let i = 0; i < this.offline.length; i += 50) {
      const group = this.offline.slice(i, i + 50).map((user) => {
        const c = this.track(new IrisClient({ url: this.o.url, user }), user);
        this.clients.push(c);
        this.byName.set(user, c);
        return c.connect();
      });
      await Promise.all(group);
    }
    let last = -1;
    let stableSince = Date.now();
    while (Date.now() < end) {
      const missing = this.missing();
      if (missing === 0) break;
      if (missing !== last) {
        last = missing;
        stableSince = Date.now();
      } else if (Date.now() - stableSince > 5000) break; // no progress for 5 s
      await Bun.sleep(50);
    }
    await Bun.sleep(300); // late duplicates would show up now
  }

  private missing(): number {
    let n = 0;
    for (const k of this.acked.keys()) if (!this.received.has(k)) n++;
    return n;
  }

  /**
   * Evidence for a loss: the first `max` acked sends never delivered, "sender/id→recipient sent@
   * acked@ status", then each such recipient's client as it ended (a delivery the SDK dropped as
   * seen before counts in its duplicatesDropped; lastSeq is what it resumes from).
   */
  lostReport(max = 40): string[] {
    const lines: string[] = [];
    const recipients = new Set<string>();
    const iso = (t: number) => new Date(t).toISOString();
    for (const [k, v] of this.acked) {
      if (this.received.has(k)) continue;
      if (lines.length === max) break;
      recipients.add(v.to);
      lines.push(`${k}→${v.to} sent@${iso(v.at)} acked@${iso(v.ackedAt)} ${v.status}`);
    }
    for (const to of recipients) {
      const c = this.byName.get(to);
      const st = c?.stats;
      lines.push(
        c && st
          ? `${to}: state=${c.state} lastSeq=${c.lastSeq} delivered=${st.delivered} duplicatesDropped=${st.duplicatesDropped} reconnects=${st.reconnects}`
          : `${to}: no client`,
      );
    }
    return lines;
  }

  /**
   * Evidence for sends never answered: the oldest `max` as "sender/id→recipient@UTC", and per
   * sender how many are open and how many recipients its client holds behind a refusal.
   */
  unansweredReport(max = 40): string[] {
    if (this.open.size === 0) return [];
    const lines = [...this.open].slice(0, max).map(([k, v]) => `${k}→${v.to}@${new Date(v.at).toISOString()}`);
    const perSender = new Map<string, number>();
    for (const k of this.open.keys()) {
      const s = k.slice(0, k.indexOf("/"));
      perSender.set(s, (perSender.get(s) ?? 0) + 1);
    }
    const senders = [...perSender].map(([s, n]) => {
      const c = this.byName.get(s);
      return `${s}: open=${n} state=${c?.state} held_recipients=${c?.heldRecipients ?? "?"}`;
    });
    return [...senders, ...lines];
  }

  verdict(): Verdict {
    let duplicated = 0;
    for (const c of this.received.values()) if (c > 1) duplicated += c - 1;
    return {
      sent: this.sent,
      acked: this.acked.size,
      delivered: this.received.size,
      lost: this.missing(),
      duplicated,
      reordered: this.order.count,
      failed: this.failed,
      reconnects: this.clients.reduce((n, c) => n + c.stats.reconnects, 0),
      unackedAtEnd: this.unacked,
    };
  }

  close(): void {
    this.stop();
    for (const c of this.clients) c.close();
  }
}
