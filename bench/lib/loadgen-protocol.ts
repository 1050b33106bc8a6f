// Messages between the bench parent and its load-generator worker processes (Bun IPC, JSON).
// Every request carries an id; the worker answers each with exactly one reply of the same id.

import type { HistogramJson } from "./histogram.ts";
import type { LedgerTally } from "./ledger.ts";
import type { Proto } from "./wire.ts";

export type Target = { kind: "ws"; url: string } | { kind: "tcp"; host: string; port: number };

export interface OpenCmd {
  t: "open";
  target: Target;
  proto: Proto;
  users: string[];
  /** Most connection attempts in flight at once (a burst of SYNs overflows the listen backlog). */
  concurrency: number;
  timeoutMs: number;
  /** Fixed body size: v0 over TCP has no delivery framing, so bodies are cut by size. */
  payload: number;
  /** v1: log in asking for bundles (many frames per WebSocket message, both ways). */
  bundles?: boolean;
}

export interface OpenReply {
  firstIndex: number;
  opened: number;
  failed: number;
  /** Positions in `users` of the connections that failed. */
  failedAt: number[];
  errors: string[];
  ms: number;
}

export interface SenderSpec {
  c: number; // connection index in the worker
  to: string[]; // targets, used round-robin
}

export type GroupMode =
  | { kind: "window"; window: number; ackOn: "deliver" | "sent" }
  // msgs/s for the whole group in this worker; ackOn "sent": latency is send → SENT (an offline flood)
  | { kind: "pace"; rate: number; ackOn?: "sent" };

export interface GroupSpec {
  name: string;
  senders: SenderSpec[];
  mode: GroupMode;
  /** Per-sender message limit; null = send until the time is up. */
  quota: number | null;
}

export interface RunCmd {
  t: "run";
  groups: GroupSpec[];
  /** Wall-clock start (Date.now() ms) shared by all workers, so per-second series line up. */
  startAt: number;
  warmupMs: number;
  measureMs: number;
  /** After sending stops: wait at most this long for in-flight messages. */
  drainMs: number;
  payload: number;
  /** After the drain: wait this long more before the exactly-once tally (late duplicates). */
  settleMs?: number;
  /** Leave out senders whose connection is closed and targets not logged in on this worker. */
  liveOnly?: boolean;
}

export interface Counts {
  sent: number;
  delivered: number;
  acked: number;
}

export interface GroupResult {
  name: string;
  /** "delivery": send → recipient got it; "ack": send → server's SENT (stored) came back. */
  latencyKind: "delivery" | "ack";
  total: Counts;
  /** Events inside the measurement window only. */
  measured: Counts & { ms: number };
  acks: { delivered: number; stored: number; duplicate: number };
  errors: number;
  hist: HistogramJson;
  perSec: { sent: number[]; delivered: number[]; acked: number[] };
  inflightLeft: number;
  /** Paced groups: sends the pacer could not make on time (socket buffer full or catch-up cap). */
  paceShortfall: number;
  /** ms from start until the last send was acknowledged/delivered (quota runs end early). */
  elapsedMs: number;
}

export interface RunReply {
  groups: GroupResult[];
  /** Every message this worker sent in the run: missing and duplicated deliveries. */
  ledger: LedgerTally;
}

export interface DrainCmd {
  t: "drain";
  target: Target;
  proto: Proto;
  users: string[];
  /** Messages each user must receive. */
  expect: number;
  timeoutMs: number;
  payload: number;
  bundles?: boolean;
}

export interface DrainReply {
  loginMs: number; // first login sent → every LOGIN_OK
  firstMs: number; // → first delivery
  doneMs: number; // → every expected delivery (or the timeout)
  delivered: number;
  complete: boolean;
  outOfOrder: number; // deliveries whose seq was not above the previous one
  perSec: number[];
}

export interface StatsCmd {
  t: "stats";
}

export interface StatsReply {
  conns: number;
  open: number;
  unexpectedCloses: Record<string, number>;
  serverErrors: Record<string, number>;
  outOfOrder: number;
}

export interface CloseCmd {
  t: "close";
}

export interface ExitCmd {
  t: "exit";
}

export type Cmd = OpenCmd | RunCmd | DrainCmd | StatsCmd | CloseCmd | ExitCmd;

export type Request = Cmd & { id: number };

export type Reply = { id: number; ok: true; data: unknown } | { id: number; ok: false; error: string };

export interface Hello {
  hello: true;
  pid: number;
}
