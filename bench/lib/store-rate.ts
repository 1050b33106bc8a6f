// The store rate: senders flood recipients who never log in, so every message is stored (SQLite
// on a single node, JetStream in a cluster) and answered SENT "stored". A closed loop: each sender
// keeps W sends unanswered; a slot frees on the ack, so the rate is what the store commits.

import type { LoadGen } from "./loadgen.ts";
import { pct, runGroups } from "./phases.ts";
import type { LatencySummary } from "./histogram.ts";

export interface StoreRate {
  label: string;
  senders: number;
  recipients: number;
  window: number;
  /** SENT "stored" acks in the measured window, per second. */
  storedPerSec: number;
  stored: number;
  otherAcks: number;
  errors: number;
  /** send → SENT stored. */
  ackLatency: LatencySummary;
  /** Server CPU (every node + nats-server, or the one node) per stored message. */
  serverUsPerMsg: number | null;
  serverPct: number | null;
  otherPct: number;
}

/** Per worker, the connection indices that send; each sends round-robin to its own offline users. */
export async function storeRate(
  lg: LoadGen,
  label: string,
  senders: number[][],
  o: { window: number; perSender: number; warmupMs: number; measureMs: number; payload: number; prefix: string },
  serverPids: number[],
): Promise<StoreRate> {
  const name = `store ${label}`;
  const { groups, cpu } = await runGroups(
    lg,
    (w) =>
      senders[w]!.length === 0 ? [] : [{
        name,
        senders: senders[w]!.map((c) => ({
          c,
          to: Array.from({ length: o.perSender }, (_, k) => `${o.prefix}-${w}-${c}-${k}`),
        })),
        mode: { kind: "window", window: o.window, ackOn: "sent" },
        quota: null,
      }],
    { warmupMs: o.warmupMs, measureMs: o.measureMs, drainMs: 10_000, payload: o.payload },
    serverPids,
  );
  const g = groups.get(name)!;
  const ms = g.measured.ms || o.measureMs;
  const acked = g.measured.acked;
  const n = senders.reduce((k, s) => k + s.length, 0);
  return {
    label,
    senders: n,
    recipients: n * o.perSender,
    window: o.window,
    storedPerSec: Math.round((acked * 1000) / ms),
    stored: g.acks.stored,
    otherAcks: g.acks.delivered + g.acks.duplicate,
    errors: g.errors,
    ackLatency: g.hist.summary(),
    serverUsPerMsg: cpu.serverUs !== null && acked > 0 ? Math.round((cpu.serverUs / acked) * 100) / 100 : null,
    serverPct: cpu.serverUs !== null ? pct(cpu.serverUs, cpu.wallMs) : null,
    otherPct: pct(cpu.otherUs, cpu.wallMs),
  };
}
