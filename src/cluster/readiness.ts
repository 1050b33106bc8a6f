// Whether a cluster node may serve (pure). A node that cannot reach NATS, or whose own heartbeat
// has not been stored recently, cannot know who owns whom and cannot store anything durably:
// it must answer /readyz 503 and refuse sends (never acking what it cannot keep), instead of
// carrying on as a split single node.

import type { LinkState } from "./connect.ts";

export interface ReadinessInput {
  link: LinkState;
  /** Stream and buckets exist (created or found) since the link came up. */
  storesOpen: boolean;
  /** ms since our own heartbeat was last stored (Infinity before the first one). */
  sinceOwnBeatMs: number;
  /** Silence after which the others call a node down. */
  downAfterMs: number;
  /** Whether this node has said it is draining. */
  draining: boolean;
}

export type Readiness = { ready: true } | { ready: false; reason: string };

export function readiness(i: ReadinessInput): Readiness {
  if (i.link !== "up") return { ready: false, reason: `NATS link ${i.link}` };
  if (!i.storesOpen) return { ready: false, reason: "JetStream inbox not open yet" };
  // Our heartbeat must be fresh with margin: once the others may have called us down, our owners
  // may already be re-placed elsewhere, so we must not act as their owner any more.
  if (i.sinceOwnBeatMs > i.downAfterMs / 2) return { ready: false, reason: "own heartbeat not stored recently" };
  if (i.draining) return { ready: false, reason: "draining" };
  return { ready: true };
}
