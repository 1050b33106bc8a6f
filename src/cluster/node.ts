// One Iris node's cluster side, assembled: the NATS link, the JetStream inbox and seq blocks,
// membership and placement, and the readiness that /readyz reports. Starting never blocks the
// node: until NATS answers it is simply not ready, and it says so in one line.

import { type LinkState, type NatsLink, openLink } from "./connect.ts";
import { ClusterInbox } from "./inbox.ts";
import { DEFAULT_TIMING, Membership, type MembershipTiming } from "./membership-kv.ts";
import type { NodeView } from "./membership.ts";
import type { ClusterOptions } from "./options.ts";
import { type Member, Placement } from "./placement.ts";
import { type Readiness, readiness } from "./readiness.ts";
import { SeqBlocks } from "./seq-blocks.ts";

/** How long the first connection may take before the operator is told (once) that NATS is unreachable. */
export const CONNECT_WARN_MS = 2000;
/** Pause before retrying to open the stream and buckets (e.g. JetStream not enabled yet). */
const OPEN_RETRY_MS = 1000;

export interface ClusterNodeOptions {
  cluster: ClusterOptions;
  shards: number;
  http: string;
  inboxTtlSec: number;
  timing?: MembershipTiming;
  onMembersChange?: (members: Member[]) => void;
  /** The node's logged-in connections now, reported in every heartbeat (absent: 0). */
  conns?: () => number;
  warn?: (line: string) => void;
}

export class ClusterNode {
  link: NatsLink | null = null;
  inbox: ClusterInbox | null = null;
  seqs: SeqBlocks | null = null;
  membership: Membership | null = null;
  private stopped = false;
  private readonly timing: MembershipTiming;
  private readonly warn: (line: string) => void;

  private constructor(private readonly o: ClusterNodeOptions) {
    this.timing = o.timing ?? DEFAULT_TIMING;
    this.warn = o.warn ?? ((l) => console.error(l));
  }

  /** Returns at once; the node connects, opens its stores and joins in the background. */
  static start(o: ClusterNodeOptions): ClusterNode {
    const node = new ClusterNode(o);
    void node.run();
    return node;
  }

  private async run(): Promise<void> {
    const urls = this.o.cluster.servers.join(",");
    const warnTimer = setTimeout(() => {
      this.warn(`cluster: cannot reach NATS at ${urls}; retrying, not ready until it answers`);
    }, CONNECT_WARN_MS);
    try {
      this.link = await openLink(this.o.cluster, (s) => this.onLink(s));
    } finally {
      clearTimeout(warnTimer);
    }
    if (this.stopped) return void (await this.link.close());
    while (!this.stopped && !this.inbox) {
      try {
        await this.open(this.link);
      } catch (e) {
        this.warn(`cluster: cannot open JetStream stores: ${(e as Error).message}; retrying`);
        await Bun.sleep(OPEN_RETRY_MS);
      }
    }
  }

  private async open(link: NatsLink): Promise<void> {
    const replicas = this.o.cluster.replicas;
    const seqs = await SeqBlocks.open(link.nc, replicas);
    const inbox = await ClusterInbox.open(link.nc, { replicas, ttlSec: this.o.inboxTtlSec });
    const self = {
      id: this.o.cluster.nodeId,
      state: "up" as const,
      shards: this.o.shards,
      conns: 0,
      startedAt: Date.now(),
      http: this.o.http,
    };
    const m = new Membership(link.nc, self, replicas, this.timing, this.o.onMembersChange, this.o.conns ?? null);
    await m.start();
    [this.seqs, this.inbox, this.membership] = [seqs, inbox, m];
  }

  private onLink(s: LinkState): void {
    if (s === "down") this.warn(`cluster: lost NATS link; not ready until it is back`);
  }

  readiness(): Readiness {
    return readiness({
      link: this.link?.state() ?? "connecting",
      storesOpen: this.inbox !== null && this.membership !== null,
      sinceOwnBeatMs: this.membership?.sinceOwnBeat() ?? Infinity,
      downAfterMs: this.timing.downAfterMs,
      draining: this.membership?.announced.state === "draining",
    });
  }

  members(): NodeView[] {
    return this.membership?.view() ?? [];
  }

  placement(): Placement {
    return this.membership?.current() ?? new Placement([]);
  }

  /** Graceful: say goodbye (others re-place our users at once) and close the link. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.membership?.stop(true);
    await this.link?.close();
  }
}
