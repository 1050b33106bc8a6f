// What a shard does with another shard's announcement (pure). A shard announces on STARTED_SUBJECT
// when its thread (re)starts and, after a cut of its own, when it owns again; after a cut it also
// announces on REGAINED_SUBJECT. Its owner state is new either way, so sessions whose users it owns
// must re-attach. Restarts on our own node reach us from the supervisor (with the dead thread's
// links dropped), so only another node's STARTED counts here; a regain on our own node has no
// supervisor event, so a sibling's REGAINED does (its sessions live on: their links here stay).

import { splitShard } from "./address.ts";

export type Announcement = "started" | "regained";
export type StartHeard = "peerStarted" | "siblingRegained" | "ignore";

/** The action for `kind` from shard `address`, heard by a shard of node `ordinal` (never our own address). */
export function startHeard(kind: Announcement, address: number, ordinal: number): StartHeard {
  const sibling = splitShard(address).ordinal === ordinal;
  if (kind === "started") return sibling ? "ignore" : "peerStarted";
  return sibling ? "siblingRegained" : "ignore"; // another node's regain came on STARTED as well
}
