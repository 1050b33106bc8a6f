// How an owner closes the connection a new attach displaces (docs/CLUSTER.md, "A re-attach never
// tells a login to stop"). Newest login wins: a login's attach takes the box's link and the older
// connection is closed with REPLACED, which tells its SDK to stop for good. A re-attach (cluster:
// the session's owner moved, restarted or dropped the link) still takes the link, but it says
// nothing about which login is newer: it may come from a session whose client already left and
// logged in elsewhere, its close still in flight. Taken as a login, it closed the real newest one
// with REPLACED and that client gave up (a loss seen in cluster god-mode, seed 84184). So the
// connection a re-attach displaces is closed with a reconnect-advised code instead: if its client
// is still there, it logs in again, and that login, a real one, wins by the ordinary rule. (Closing
// the re-attaching connection instead was tried: it closed live recipients in the common race,
// a live session re-attaching over a stale link, and the extra reconnects during NATS restarts
// cost per-sender order through late rows adopted for users with no link.)

import type { AttachMsg, EvictMsg } from "./wire.ts";

/** Pure. Why the connection that `m` displaces from the box's link is closed. */
export function displacedWhy(m: AttachMsg): EvictMsg["why"] {
  return m.re === true ? "resync" : "replaced";
}
