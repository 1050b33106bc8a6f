// Which of two connections of one user an owner keeps (docs/CLUSTER.md, "A re-attach never
// replaces a login"). Newest login wins: a login's attach replaces whatever link the box has, and
// the older connection is closed with REPLACED (its SDK stops for good). A re-attach (cluster: the
// session's owner moved, restarted or dropped the link) says nothing about which login is newer:
// it may come from a session whose client already left and logged in elsewhere, its close still in
// flight. Taken as a login, it evicted the real newest one with REPLACED (a loss seen in cluster
// god-mode, seed 84184). So a re-attach never replaces another connection's link: its own
// connection is closed instead with a reconnect-advised code, and if its client is still there,
// that client's new login (a real one) then replaces the other link by the ordinary rule.

import type { AttachMsg } from "./wire.ts";

/** Pure. Whether `m` must not take the box's link `old` (it is a re-attach of another connection). */
export function reattachYields(m: AttachMsg, old: { shard: number; conn: number } | null): boolean {
  return m.re === true && old !== null && (old.shard !== m.shard || old.conn !== m.conn);
}
