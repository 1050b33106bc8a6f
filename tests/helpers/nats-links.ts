// One real nats-server for a test file, and the NATS links its tests open: started before the
// file's first test, every link and the server closed after its last.

import { afterAll, beforeAll } from "bun:test";
import { type NatsLink, openLink } from "../../src/cluster/connect.ts";
import { type NatsFixture, startNats } from "./nats.ts";

export interface NatsForFile {
  /** The server (set once the file's first test runs). */
  readonly nats: NatsFixture;
  /** Every link opened through `open`, oldest first. */
  readonly links: NatsLink[];
  /** A link as node `nodeId` (replicas 1), closed after the file. */
  open(nodeId: string): Promise<NatsLink>;
}

export function natsForFile(): NatsForFile {
  let nats: NatsFixture | undefined;
  const links: NatsLink[] = [];
  beforeAll(async () => {
    nats = await startNats();
  });
  afterAll(async () => {
    for (const l of links) await l.close();
    await nats?.close();
  });
  return {
    get nats(): NatsFixture {
      if (!nats) throw new Error("nats-server not started yet (use it inside a test)");
      return nats;
    },
    links,
    async open(nodeId: string): Promise<NatsLink> {
      const l = await openLink({ servers: this.nats.urls, nodeId, replicas: 1 });
      links.push(l);
      return l;
    },
  };
}
