// Reads a kept JetStream store of a cluster chaos run (docs/CLUSTER.md, "Losses under CPU
// starvation"): which recipients still have rows in IRIS_INBOX, and each row of the users named.
// A row still there for a recipient that was online to the end was stored and never delivered;
// an acked id with no row and no delivery was deleted. Starts its own nats-server on the store
// (use a copy: the server may compact it) and stops it by PID.
//   bun chaos/inspect-store.ts <store dir copy> [user ...]

import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { ClusterInbox } from "../src/cluster/inbox.ts";
import { INBOX_PREFIX, INBOX_STREAM, untoken } from "../src/cluster/inbox-codec.ts";
import { freePort } from "../tests/helpers/free-port.ts";

/** Rows read per backlog page. */
const PAGE = 256;
/** How long the nats-server gets to load the store before the first request. */
const START_WAIT_MS = 1500;

const [store, ...users] = process.argv.slice(2);
if (!store) throw new Error("usage: bun chaos/inspect-store.ts <store dir copy> [user ...]");
const port = freePort();
const conf = `${store}.inspect.conf`;
await Bun.write(conf, `listen: 127.0.0.1:${port}\njetstream { store_dir: "${store}" }\n`);
const server = Bun.spawn(["nats-server", "-c", conf], { stdout: "ignore", stderr: "ignore" });
try {
  await Bun.sleep(START_WAIT_MS);
  const nc = await connect({ servers: `nats://127.0.0.1:${port}`, timeout: 5000 });
  const jsm = await jetstreamManager(nc);
  for await (const s of jsm.streams.list()) console.log("stream", s.config.name, JSON.stringify(s.state));
  const info = await jsm.streams.info(INBOX_STREAM, { subjects_filter: `${INBOX_PREFIX}.>` });
  for (const [subject, n] of Object.entries(info.state.subjects ?? {})) {
    console.log("rows", untoken(subject.split(".").at(-1) ?? ""), n);
  }
  const inbox = await ClusterInbox.open(nc, { replicas: 1, ttlSec: 0 });
  for (const u of users) {
    let after = 0;
    for (;;) {
      const page = await inbox.readBacklog(u, after, PAGE);
      for (const r of page) {
        console.log(
          "row",
          u,
          r.streamSeq,
          r.from,
          r.id,
          `seq=${r.seq}`,
          `owner=${r.owner ?? ""}`,
          new Date(r.ts).toISOString(),
        );
      }
      if (page.length < PAGE) break;
      after = page.at(-1)!.streamSeq;
    }
  }
  await nc.close();
} finally {
  server.kill();
  await server.exited;
}
