// Where undelivered messages are, when a cluster run's ledger misses some: read before the nodes
// stop. The JetStream inbox still holds every stored row nobody acked (a row that is there for a
// user who was online all along is stranded: stored, never delivered); each node's /v1/cluster
// says what it sees (members, hand-over counters), and its output at the run's log level says
// what it did. One line per finding, for the run's problems.

import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { INBOX_PREFIX, INBOX_STREAM, untoken } from "../../src/cluster/inbox-codec.ts";
import type { ClusterRun } from "./cluster-nodes.ts";

/** Users listed per finding; the rest are counted. */
const USERS_SHOWN = 12;
/** Output lines of each node kept in the findings (the tail). */
const OUTPUT_LINES = 15;

/** Rows left in the inbox stream per recipient (subjects iris.inbox.<bucket>.<user>). */
async function strandedRows(natsUrl: string): Promise<Map<string, number>> {
  const nc = await connect({ servers: natsUrl, timeout: 5000 });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(INBOX_STREAM, { subjects_filter: `${INBOX_PREFIX}.>` });
    const out = new Map<string, number>();
    for (const [subject, n] of Object.entries(info.state.subjects ?? {})) {
      const user = untoken(subject.split(".").at(-1) ?? "") ?? subject;
      out.set(user, n);
    }
    return out;
  } finally {
    await nc.close();
  }
}

async function nodeView(http: string): Promise<string> {
  try {
    const r = await fetch(`${http}/v1/cluster`, { signal: AbortSignal.timeout(2000) });
    return JSON.stringify(await r.json());
  } catch (e) {
    return `no answer (${(e as Error).message})`;
  }
}

/** Findings about undelivered messages in a cluster run that is still up. */
export async function explainMissing(c: ClusterRun): Promise<string[]> {
  const out: string[] = [];
  try {
    const rows = await strandedRows(c.nats.urls[0]!);
    const total = [...rows.values()].reduce((a, n) => a + n, 0);
    const users = [...rows].map(([u, n]) => `${u}(${n}, owner iris${c.ownerIndex(u) + 1})`);
    out.push(
      `diagnosis: ${total} rows of ${rows.size} recipients still in ${INBOX_STREAM}: ` +
        `${users.slice(0, USERS_SHOWN).join(" ")}${users.length > USERS_SHOWN ? " …" : ""}`,
    );
  } catch (e) {
    out.push(`diagnosis: could not read ${INBOX_STREAM}: ${(e as Error).message}`);
  }
  for (const [i, n] of c.nodes.entries()) {
    out.push(`diagnosis: ${c.ids[i]} /v1/cluster ${await nodeView(n.http)}`);
    const tail = n.output().trim().split("\n").filter(Boolean).slice(-OUTPUT_LINES);
    for (const line of tail) out.push(`diagnosis: ${c.ids[i]} said: ${line}`);
  }
  return out;
}
