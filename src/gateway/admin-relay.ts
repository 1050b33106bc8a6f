// The asking side of the admin API on a shard: sends inspect/purge/disconnect to the user's owner
// shard and matches the InspectReply to the waiting HTTP request. A reply that never comes (the
// owner or writer died mid-request) times out, so no waiter is kept forever.

import { ownerOf } from "../router/hash.ts";
import type { AdminReq, InspectReply, PortMsg } from "../router/wire.ts";

export interface AdminRelayHost {
  readonly index: number;
  readonly shards: number;
  post(shard: number, m: PortMsg): void;
}

/** How long an admin request waits for its owner's reply before the HTTP answer is 504. */
export const ADMIN_REPLY_TIMEOUT_MS = 5_000;

export class AdminRelay {
  private nextReq = 1;
  private readonly waiters = new Map<number, (r: InspectReply | null) => void>();

  constructor(private readonly host: AdminRelayHost) {}

  /** Resolves with the owner's answer, or null on timeout. */
  ask(op: AdminReq["t"], user: string): Promise<InspectReply | null> {
    const req = this.nextReq++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(req);
        resolve(null);
      }, ADMIN_REPLY_TIMEOUT_MS);
      this.waiters.set(req, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.host.post(ownerOf(user, this.host.shards), { t: op, user, shard: this.host.index, req });
    });
  }

  onReply(m: InspectReply): void {
    const w = this.waiters.get(m.req);
    this.waiters.delete(m.req);
    w?.(m);
  }
}
