// The cluster's member list, as pure data: the record each node heartbeats into the KV bucket,
// its validation (the bucket is shared; anything in it may be garbage), and the state each
// observer derives from when it last heard a node.

import { z } from "zod";
import { NODE_ID_RE } from "../config/cluster.ts";
import type { Member } from "./placement.ts";

/** What a node says about itself. `down` is never said: others conclude it from silence. */
export type AnnouncedState = "up" | "draining";
export type NodeState = AnnouncedState | "down";

export const nodeRecordSchema = z.object({
  id: z.string().regex(NODE_ID_RE),
  state: z.enum(["up", "draining"]),
  shards: z.number().int().min(1).max(256),
  conns: z.number().int().min(0),
  startedAt: z.number().int().min(0),
  /** Where its HTTP API listens, for operators (GET /v1/cluster). */
  http: z.string().max(256),
}).strict();

export type NodeRecord = z.infer<typeof nodeRecordSchema>;

/** Parses one KV value; null for garbage (counted by the caller, never trusted). */
export function parseNodeRecord(key: string, value: Uint8Array): NodeRecord | null {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(value));
  } catch {
    return null;
  }
  const r = nodeRecordSchema.safeParse(raw);
  return r.success && r.data.id === key ? r.data : null;
}

export interface Observed {
  record: NodeRecord;
  /** Local monotonic ms (performance.now()) when the last heartbeat was seen. */
  seenAt: number;
}

export interface NodeView extends NodeRecord {
  observed: NodeState;
  /** ms since the last heartbeat, as seen by this observer. */
  silentMs: number;
}

/** Each observer's view: silent longer than `downAfterMs` = down, whatever the node last said. */
export function deriveView(nodes: Iterable<Observed>, now: number, downAfterMs: number): NodeView[] {
  const out: NodeView[] = [];
  for (const { record, seenAt } of nodes) {
    const silentMs = Math.max(0, now - seenAt);
    out.push({ ...record, observed: silentMs > downAfterMs ? "down" : record.state, silentMs });
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** The nodes that may own users: up ones. Draining nodes hand their users over; down ones are gone. */
export function ownerCandidates(view: readonly NodeView[]): Member[] {
  return view.filter((n) => n.observed === "up").map((n) => ({ id: n.id, shards: n.shards }));
}

/** A stable fingerprint of the candidate set, to notice when placement must be recomputed. */
export function membersKey(members: readonly Member[]): string {
  return members.map((m) => `${m.id}:${m.shards}`).sort().join(",");
}
