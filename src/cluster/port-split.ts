// Splitting a port item too big for one NATS publish (pure). The cross-node port sends one item as
// one unit; a delivery of many messages (a drain's held-back batch, a page of rows) can outgrow
// NATS's max_payload, and a publish of it fails. Such an item becomes two that mean the same thing,
// in order; the port splits again until each part fits or cannot be split further.

import type { PortMsg } from "../router/wire.ts";

/**
 * Two halves of a delivery of several messages, else null. A page's flow-ready is owed once per
 * page (session.ts updateFlow), so only the last half carries the page flag: the first is written
 * like live deliveries, which ask for a flow only when the socket backs up.
 */
export function splitPortMsg(m: PortMsg): PortMsg[] | null {
  if (m.t !== "deliver" || m.frames !== undefined || m.items.length < 2) return null;
  const half = m.items.length >> 1;
  return [{ ...m, items: m.items.slice(0, half), page: false }, { ...m, items: m.items.slice(half) }];
}
