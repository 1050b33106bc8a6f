// Readiness of a cluster shard: the node's own readiness (every thread up) and the cluster rule
// (NATS link up, own heartbeat fresh). /readyz answers 503 and admission refuses new connections
// on a node that has lost NATS, so a load balancer moves its clients away.

import type { MetricsReader } from "../observe/metrics.ts";
import { Signals } from "../observe/signals.ts";

export class ClusterSignals extends Signals {
  constructor(
    r: MetricsReader,
    private readonly cluster: { readiness(): { ready: boolean }; cutOff(): string | null },
  ) {
    super(r);
  }

  override ready(): boolean {
    return super.ready() && this.cluster.readiness().ready;
  }

  override cutOff(): string | null {
    return this.cluster.cutOff();
  }
}
