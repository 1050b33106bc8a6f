// The node's one NATS connection: built from the cluster settings, reconnecting forever, and
// reporting whether the link is up (a node without NATS must turn not-ready, never act alone).

import { readFileSync } from "node:fs";
import { connect, credsAuthenticator, type NatsConnection, type NodeConnectionOptions } from "@nats-io/transport-node";
import type { ClusterOptions } from "./options.ts";

/** Wait between reconnect attempts; with jitter the client spreads a herd of nodes. */
const RECONNECT_WAIT_MS = 250;
/** Client pings: two missed at this interval mark the link stale (a silent cut is noticed in ~2 s). */
const PING_INTERVAL_MS = 1000;
const MAX_PINGS_OUT = 2;

export type LinkState = "connecting" | "up" | "down" | "closed";

export interface NatsLink {
  nc: NatsConnection;
  state(): LinkState;
  reconnects(): number;
  close(): Promise<void>;
}

/** Pure: the client options for these cluster settings (testable without a server). */
export function connectionOptions(o: ClusterOptions): NodeConnectionOptions {
  const opts: NodeConnectionOptions = {
    servers: o.servers,
    name: `iris-${o.nodeId}`,
    maxReconnectAttempts: -1,
    reconnectTimeWait: RECONNECT_WAIT_MS,
    waitOnFirstConnect: true,
    pingInterval: PING_INTERVAL_MS,
    maxPingOut: MAX_PINGS_OUT,
  };
  if (o.user !== undefined) {
    opts.user = o.user;
    opts.pass = o.pass;
  }
  if (o.credsFile !== undefined) {
    const file = o.credsFile;
    opts.authenticator = credsAuthenticator(() => readFileSync(file));
  }
  if (o.tlsCa !== undefined || o.tlsCert !== undefined) {
    opts.tls = { caFile: o.tlsCa, certFile: o.tlsCert, keyFile: o.tlsKey };
  }
  return opts;
}

/** Connects (waiting for the first server however long it takes) and tracks the link state. */
export async function openLink(o: ClusterOptions, onState?: (s: LinkState) => void): Promise<NatsLink> {
  const nc = await connect(connectionOptions(o));
  let state: LinkState = "up";
  let reconnects = 0;
  const set = (s: LinkState) => {
    if (s === state) return;
    state = s;
    onState?.(s);
  };
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect" || s.type === "staleConnection") set("down");
      else if (s.type === "reconnect") {
        reconnects++;
        set("up");
      }
    }
  })();
  void nc.closed().then(() => set("closed"));
  return {
    nc,
    state: () => state,
    reconnects: () => reconnects,
    close: async () => {
      if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
    },
  };
}
