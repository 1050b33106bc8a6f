// Resent copies of a route that already waits in its recipient's box (docs/CLUSTER.md, "A liveness
// fault under NATS restarts"). While a box waits (for its load, a seq block or a dedupe lookup),
// every route to it queues behind in order. A sender's SDK resends each unanswered send every
// second or so, so a box that waits long collects one copy per resend: in the nats-restart chaos,
// thousands of copies of a few hundred ids. Each copy, once the box moved on, cost a writer request
// of its own (a confirm, or a lookup) in the shard's ordered reply chain, so the box fell further
// behind than the resends came in, and its recipient got nothing for minutes.
//
// A copy of a (sender, id) that already waits is absorbed instead: the waiting one keeps its place
// (the sender's order) and answers the connection the copy came on (the newest: an older one may be
// gone). No copy is ever dropped without its earlier twin being answered in its stead.

import type { RouteMsg } from "./wire.ts";

/** The key of a route's (sender, id); ids are per sender. */
const keyOf = (m: RouteMsg): string => m.from + "\0" + m.id;

/** Per box: its waiting routes by (sender, id). Only boxes that wait have one. */
export class WaitingCopies<Box extends object> {
  private readonly byBox = new WeakMap<Box, Map<string, RouteMsg>>();
  /** Copies absorbed so far (tests, stats). */
  absorbed = 0;

  /** Records `m` as waiting in `box` (a route without an id is never a copy). */
  add(box: Box, m: RouteMsg): void {
    if (m.id === "") return;
    let ids = this.byBox.get(box);
    if (!ids) this.byBox.set(box, ids = new Map());
    if (!ids.has(keyOf(m))) ids.set(keyOf(m), m);
  }

  /**
   * True when `m` is a copy of a route still waiting in `box` (or `inFlight`, the one being looked
   * up): that one now answers `m`'s connection, and `m` is done.
   */
  absorb(box: Box, m: RouteMsg, inFlight: RouteMsg | null): boolean {
    if (m.id === "") return false;
    const twin = inFlight && inFlight.from === m.from && inFlight.id === m.id
      ? inFlight
      : this.byBox.get(box)?.get(keyOf(m));
    if (!twin || twin === m) return false;
    if (m.o >= 0 || twin.o < 0) {
      twin.o = m.o; // a copy with no ack due (o < 0) never takes an ack away from its twin
      twin.c = m.c;
    }
    this.absorbed++;
    return true;
  }

  /** `m` left the box's queue (routed now): a later copy of it is the owner's to answer. */
  forget(box: Box, m: RouteMsg): void {
    if (m.id === "") return;
    const ids = this.byBox.get(box);
    if (ids?.get(keyOf(m)) === m) ids.delete(keyOf(m));
  }

  /** The box's waiting routes were taken (to be routed again, or parked): forget them. */
  clear(box: Box): void {
    this.byBox.delete(box);
  }
}
