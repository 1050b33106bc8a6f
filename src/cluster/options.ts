// What the cluster code needs from the settings, resolved once at start: the node id comes from
// the flag, else from the data dir, else it is generated and written there for the next start.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NODE_ID_RE } from "../config/cluster.ts";
import type { MembershipTiming } from "./membership-kv.ts";

export interface ClusterOptions {
  servers: string[];
  nodeId: string;
  replicas: 1 | 3;
  credsFile?: string;
  user?: string;
  pass?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

/** The file in the data dir that keeps a generated node id across restarts. */
export const NODE_ID_FILE = "node-id";

export interface ClusterSettingsIn {
  cluster?: string[];
  nodeId?: string;
  clusterReplicas: number;
  clusterHeartbeatMs: number;
  clusterDownAfterMs: number;
  clusterForgetAfterMs: number;
  dataDir: string;
  natsCreds?: string;
  natsUser?: string;
  natsPass?: string;
  natsTlsCa?: string;
  natsTlsCert?: string;
  natsTlsKey?: string;
}

/** A fresh id: short, subject-safe, unlikely to collide among a few hundred nodes. */
export function generateNodeId(): string {
  return "node-" + crypto.randomUUID().replaceAll("-", "").slice(0, 12);
}

/** The persisted node id, creating it on first use. A corrupt file is an error, not a new identity. */
export function persistentNodeId(dataDir: string): string {
  const file = join(dataDir, NODE_ID_FILE);
  if (existsSync(file)) {
    const id = readFileSync(file, "utf8").trim();
    if (!NODE_ID_RE.test(id)) throw new Error(`${file} does not hold a valid node id; fix or delete it`);
    return id;
  }
  mkdirSync(dataDir, { recursive: true });
  const id = generateNodeId();
  writeFileSync(file, id + "\n", { flag: "wx" });
  return id;
}

/** The membership lease timing the operator set (validated by the settings schema). */
export function leaseTiming(
  s: Pick<ClusterSettingsIn, "clusterHeartbeatMs" | "clusterDownAfterMs" | "clusterForgetAfterMs">,
): MembershipTiming {
  return {
    heartbeatMs: s.clusterHeartbeatMs,
    downAfterMs: s.clusterDownAfterMs,
    forgetAfterMs: s.clusterForgetAfterMs,
  };
}

/** Null when --cluster is absent: the single-node path stays exactly as it is. */
export function clusterOptions(s: ClusterSettingsIn): ClusterOptions | null {
  if (!s.cluster) return null;
  return {
    servers: s.cluster,
    nodeId: s.nodeId ?? persistentNodeId(s.dataDir),
    replicas: s.clusterReplicas === 3 ? 3 : 1,
    credsFile: s.natsCreds,
    user: s.natsUser,
    pass: s.natsPass,
    tlsCa: s.natsTlsCa,
    tlsCert: s.natsTlsCert,
    tlsKey: s.natsTlsKey,
  };
}
