// The human summary of the `cluster` scenario: side-by-side tables. Pure.

import type { ClusterPhase } from "../lib/cluster-load.ts";
import { int, ms, num, table } from "../lib/format.ts";
import type { StoreRate } from "../lib/store-rate.ts";
import type { ClusterFigures } from "./cluster.ts";

const x = (v: number | null) => (v === null ? "n/a" : `${num(v, 2)}x`);
const mib = (kb: number | null) => (kb === null ? "gone" : num(kb / 1024, 1));

function phaseRow(r: ClusterPhase): string[] {
  return [
    r.name,
    int(r.msgsPerSec),
    ms(r.latency.p50Ms),
    ms(r.latency.p99Ms),
    r.serverUsPerMsg === null ? "n/a" : num(r.serverUsPerMsg, 1),
    `${int(r.ledger.ids)}/${r.errors}/${r.ledger.missing - r.errors}/${r.ledger.duplicated}`,
    `${num(r.otherPct, 0)}%`,
  ];
}

function storeRow(s: StoreRate): string[] {
  return [
    s.label,
    int(s.storedPerSec),
    ms(s.ackLatency.p50Ms),
    ms(s.ackLatency.p99Ms),
    s.serverUsPerMsg === null ? "n/a" : num(s.serverUsPerMsg, 1),
    String(s.errors),
  ];
}

export function clusterSummary(f: ClusterFigures): string[] {
  const p = f.params;
  const fo = f.failover;
  const died = fo.victims.filter((v) => v.ownerDied).map((v) => v.ms ?? -1);
  const lived = fo.victims.filter((v) => !v.ownerDied).map((v) => v.ms ?? -1);
  return [
    `${p.nodes} Iris nodes (shards=${p.shards} each) + 1 nats-server; ${p.conns} connections per kind ` +
    `(${p.conns / 2} pairs) logged in in ${int(f.connectMs)} ms`,
    "",
    table(
      ["phase", "msgs/s", "p50", "p99", "server µs/msg", "sent/refused/lost/dup", "others"],
      [f.saturation.same, f.saturation.cross, f.paced.same, f.paced.cross].map(phaseRow),
    ),
    `cross-node ÷ same-node: throughput ${x(f.ratios.throughput)}, server CPU/msg ${x(f.ratios.cpuPerMsg)}, ` +
    `paced p50 ${x(f.ratios.pacedP50)}, paced p99 ${x(f.ratios.pacedP99)}`,
    "",
    table(
      ["RSS MiB", ...f.rss.idleKb.map((_, i) => `iris${i + 1}`), "nats"],
      [
        ["idle", ...f.rss.idleKb.map(mib), ""],
        ["after the message phases", ...f.rss.loadedKb.map(mib), mib(f.rss.natsKb)],
      ],
    ),
    "",
    table(["store to offline users", "stored/s", "ack p50", "ack p99", "server µs/msg", "refused"], [
      storeRow(f.store.jetstream),
      storeRow(f.store.sqlite),
    ]),
    `JetStream ÷ SQLite store rate: ${x(f.store.ratio)}`,
    "",
    `failover (${fo.killedNode} SIGKILLed, ${fo.users} SDK users, ${fo.victims.length} on it): ` +
    `receiving again after ${died.length ? died.join(", ") : "-"} ms (owner died with the node), ` +
    `${lived.length ? lived.join(", ") : "-"} ms (owner elsewhere)`,
    `  ${int(fo.sends)} sends, ${int(fo.acked)} acked, ${fo.unacked} unacked; delivered to the application ` +
    `${int(fo.deliveredToApp)}, missing ${fo.missing}, duplicated ${fo.duplicatesToApp}; ` +
    `SDK resends ${fo.sdkResends}, redeliveries dropped by the SDK ${fo.sdkDroppedDuplicates}`,
  ];
}
