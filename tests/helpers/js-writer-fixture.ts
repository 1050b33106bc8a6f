// A real nats-server and one Iris NATS link for a test file (started before its tests, stopped
// after), and the cluster writer (JsWriter) over real JetStream buckets on a link: the setup that
// the hand-over tests of late rows share.

import { afterAll, beforeAll } from "bun:test";
import { type NatsLink, openLink } from "../../src/cluster/connect.ts";
import { ClusterInbox } from "../../src/cluster/inbox.ts";
import { JsWriter } from "../../src/cluster/js-writer.ts";
import { LastSeen } from "../../src/cluster/last-seen.ts";
import { SeqBlocks } from "../../src/cluster/seq-blocks.ts";
import { SentWindow } from "../../src/cluster/sent-kv.ts";
import type { OwnerLimits } from "../../src/limits.ts";
import { type NatsFixture, startNats } from "./nats.ts";

/** Dedupe window of the writers these tests open: longer than any test. */
const TEST_DEDUPE_WINDOW_MS = 60_000;

/** Starts nats-server and a link before the file's tests and stops both after; returns the link's getter. */
export function natsLinkForFile(nodeId: string): () => NatsLink {
  let nats: NatsFixture | undefined;
  let link: NatsLink | undefined;
  beforeAll(async () => {
    nats = await startNats();
    link = await openLink({ servers: nats.urls, nodeId, replicas: 1 });
  });
  afterAll(async () => {
    await link?.close();
    await nats?.close();
  });
  return () => {
    if (!link) throw new Error("the NATS link is not open (used outside a test?)");
    return link;
  };
}

/** A cluster writer on `link` with one replica and no inbox TTL. */
export async function openJsWriter(link: NatsLink): Promise<JsWriter> {
  const nc = link.nc;
  return new JsWriter(
    await ClusterInbox.open(nc, { replicas: 1, ttlSec: 0 }),
    await SeqBlocks.open(nc, 1),
    await LastSeen.open(nc, 1),
    await SentWindow.open(nc, 1, TEST_DEDUPE_WINDOW_MS),
    TEST_DEDUPE_WINDOW_MS,
  );
}

/** Owner limits small enough for these tests to cross pages and seq blocks within a few rows. */
export const SMALL_OWNER_LIMITS: OwnerLimits = {
  maxPending: 8,
  pageSize: 5,
  pageBytes: 1 << 20,
  maxFetches: 8,
  pendingSpillMs: 1000,
  seqBlock: 10,
  recentIds: 100,
  holdback: 100,
  slowTimeoutMs: 5000,
  dedupeWindowMs: 60_000,
};
