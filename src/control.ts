// Control messages between the supervisor (main thread) and its workers (router shards and the
// storage writer): typed unions, one per direction and worker kind, and guards for the receiving
// side. Data traffic between workers goes over their own ports (router/wire.ts), never here.

import type { Settings } from "./config/schema.ts";
import type { Level, LogFormat } from "./observe/log.ts";
import type { OwnerLimits } from "./limits.ts";

// ---- supervisor → shard ----

export interface ShardInit {
  t: "init";
  index: number;
  shards: number;
  settings: Settings;
  metrics: SharedArrayBuffer;
  port: number;
  peers: [number, MessagePort][];
  writer: MessagePort;
  maxConnections: number;
  ownerLimits: OwnerLimits;
  version: string;
  tcpPort: number | undefined;
  /** The main thread's stampDrift as it started this shard: logins' open stamps agree across shards (router/login-order.ts). */
  stampDrift: number;
}
export type ShardControl =
  | ShardInit
  | { t: "peer"; k: number; port: MessagePort } // a channel to (restarted) shard k
  | { t: "down"; k: number } // shard k died: owners release its users
  | { t: "up"; k: number } // shard k is back: re-attach our users it owns
  | { t: "writer"; port: MessagePort } // the writer restarted: a new channel to it
  | { t: "inject"; items: unknown } // chaos: garbage as if from a peer port
  | { t: "gc" } // under memory pressure: collect now
  | { t: "tls" } // SIGHUP: re-read the certificate and swap listeners
  | ProfileControl // SIGUSR2: sample this thread's JS stacks, write a report
  | { t: "crash" } // chaos: throw an uncaught error
  | { t: "stall"; ms: number } // chaos: block the shard's event loop (a starved or stuck thread)
  | { t: "stop" } // stop accepting, close clients with 1001
  | { t: "finish" }; // move unacked deliveries to the store, say bye to the writer

// ---- shard → supervisor ----

export type ShardReport =
  | { t: "listening"; port: number; tcpPort: number | undefined }
  | { t: "fatal"; error: string }
  | { t: "stopped" }
  | { t: "finished" };

// ---- supervisor → writer ----

export interface WriterInit {
  t: "init";
  path: string;
  maxInbox: number;
  ttlMs: number;
  dedupeWindowMs: number;
  /** Bytes of the dedupe runs' filters the writer keeps in memory (limits.ts dedupeRunFilterBytes). */
  runFilterBytes: number;
  flushMs: number;
  batchRows: number;
  metrics: SharedArrayBuffer;
  logLevel: Level;
  logFormat: LogFormat;
  shards: number;
}

/** SIGUSR2: sample the thread's JS stacks for `ms` and write the report into `dir` (host/thread-profile.ts). */
export interface ProfileControl {
  t: "profile";
  ms: number;
  dir: string;
}

export type WriterControl =
  | WriterInit
  | { t: "port"; shard: number; port: MessagePort } // a shard's request port (again after a restart)
  | { t: "inject"; shard: number; items: unknown } // chaos: garbage as if from a shard port
  | { t: "gc" }
  | ProfileControl
  | { t: "expect"; shards: number } // shutdown: this many shards will say bye
  | { t: "close" }; // flush and close the file

// ---- writer → supervisor ----

export type WriterReport =
  | { t: "ready"; rows: number }
  | { t: "migrating"; from: number; to: number } // before an existing file's schema migrates: wait longer
  | { t: "fatal"; error: string }
  | { t: "drained" } // every shard said bye and all was committed
  | { t: "closed" };

// ---- supervisor → checkpointer (host/checkpoint-worker.ts) ----

export type CheckpointerControl =
  | { t: "init"; path: string; metrics: SharedArrayBuffer; logLevel: Level; logFormat: LogFormat }
  | { t: "close" }; // stop passing and close the connection (before the writer closes the file)

// ---- checkpointer → supervisor ----

export type CheckpointerReport =
  | { t: "checkpointing" } // its connection is open and the first pass is scheduled
  | { t: "fatal"; error: string }
  | { t: "closed" };

export type WorkerReport = ShardReport | WriterReport | CheckpointerReport;

const SHARD_CONTROL_TAGS: Record<ShardControl["t"], true> = {
  init: true,
  peer: true,
  down: true,
  up: true,
  stall: true,
  writer: true,
  inject: true,
  gc: true,
  profile: true,
  tls: true,
  crash: true,
  stop: true,
  finish: true,
};
const WRITER_CONTROL_TAGS: Record<WriterControl["t"], true> = {
  init: true,
  port: true,
  inject: true,
  gc: true,
  profile: true,
  expect: true,
  close: true,
};
const CHECKPOINTER_CONTROL_TAGS: Record<CheckpointerControl["t"], true> = {
  init: true,
  close: true,
};
const REPORT_TAGS: Record<WorkerReport["t"], true> = {
  checkpointing: true,
  listening: true,
  fatal: true,
  stopped: true,
  finished: true,
  ready: true,
  migrating: true,
  drained: true,
  closed: true,
};

const tagIn = (table: Record<string, true>, v: unknown): boolean =>
  typeof v === "object" && v !== null && typeof (v as { t?: unknown }).t === "string" &&
  Object.prototype.hasOwnProperty.call(table, (v as { t: string }).t);

// Control messages come only from our own supervisor, so a tag check is the guard: it keeps a
// stray value (or a future kind this build does not know) from reaching a handler.
export const isShardControl = (v: unknown): v is ShardControl => tagIn(SHARD_CONTROL_TAGS, v);
export const isWriterControl = (v: unknown): v is WriterControl => tagIn(WRITER_CONTROL_TAGS, v);
export const isCheckpointerControl = (v: unknown): v is CheckpointerControl => tagIn(CHECKPOINTER_CONTROL_TAGS, v);
export const isWorkerReport = (v: unknown): v is WorkerReport => tagIn(REPORT_TAGS, v);

// ---- the binary → whoever started it ----

/** The ready line's JSON (`ready {…}` on stdout): what launchers of the binary read. */
export interface ReadyInfo {
  version: string;
  pid: number;
  host: string;
  /** HTTPS/WSS (and TLS on the TCP port) when true. */
  tls: boolean;
  port: number;
  tcpPort: number | null;
  chaosPort: number | null;
  shards: number;
  maxConns: number;
  startupMs: number;
}
