// The cluster's settings: spread into the main settings schema so that they get the same flags,
// IRIS_* env vars, --help lines and one-line errors as every other setting.

import { existsSync } from "node:fs";
import { z } from "zod";

/** Node ids become NATS subject tokens and KV keys: keep them to a safe alphabet. */
export const NODE_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const SCHEMES = new Set(["nats:", "tls:"]);

function isNatsUrl(u: string): boolean {
  try {
    const url = new URL(u);
    return SCHEMES.has(url.protocol) && url.hostname.length > 0 && url.pathname.replace(/^\/$/, "") === "";
  } catch {
    return false;
  }
}

/** `nats://h1:4222,nats://h2:4222` → a list of URLs; every entry must be a nats:// or tls:// URL. */
const natsUrls = z.string().transform((s, ctx) => {
  const urls = s.split(",").map((u) => u.trim()).filter((u) => u.length > 0);
  const bad = urls.find((u) => !isNatsUrl(u));
  if (urls.length === 0 || bad !== undefined) {
    ctx.addIssue({ code: "custom", message: bad ? `'${bad}' is not a nats:// or tls:// URL` : "no URL given" });
    return z.NEVER;
  }
  return urls;
});

const existingFile = z.string().min(1).refine((f) => existsSync(f), "file not found");

/**
 * Membership lease timing (docs/CLUSTER.md "Lease timing"): a node re-puts its record every
 * heartbeat; the others call it down after down-after of silence; it stops owning anyone itself
 * at half of that; the bucket forgets a silent node after forget-after.
 */
export const LEASE_DEFAULTS = { heartbeatMs: 1000, downAfterMs: 3500, forgetAfterMs: 60_000 } as const;
/** down-after must span this many heartbeats: one late or lost beat must not call a node down. */
export const MIN_BEATS_PER_DOWN = 3;
/** forget-after must be this many down-afters: a down node stays listed (as down) for a while. */
const MIN_DOWNS_PER_FORGET = 2;
const ms = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const clusterSettingsShape = {
  cluster: natsUrls.optional(),
  nodeId: z.string().regex(NODE_ID_RE, "1-64 letters, digits, '-' or '_'").optional(),
  clusterReplicas: z.coerce.number().int().refine((n) => n === 1 || n === 3, "must be 1 or 3").default(1),
  clusterHeartbeatMs: ms(50, 60_000).default(LEASE_DEFAULTS.heartbeatMs),
  clusterDownAfterMs: ms(150, 600_000).default(LEASE_DEFAULTS.downAfterMs),
  clusterForgetAfterMs: ms(1000, 86_400_000).default(LEASE_DEFAULTS.forgetAfterMs),
  natsCreds: existingFile.optional(),
  natsUser: z.string().min(1).optional(),
  natsPass: z.string().min(1).optional(),
  natsTlsCa: existingFile.optional(),
  natsTlsCert: existingFile.optional(),
  natsTlsKey: existingFile.optional(),
};

type ClusterKey = keyof typeof clusterSettingsShape;

export const clusterSettingHelp: Record<ClusterKey, string> = {
  cluster: "join a cluster through these NATS servers: nats://h1:4222[,nats://h2:4222] (default: single node)",
  nodeId: "this node's name in the cluster (default: generated once, kept in the data dir)",
  clusterReplicas: "JetStream replicas of what Iris stores in the cluster: 1 or 3 (default 1)",
  clusterHeartbeatMs: "ms between a node's membership heartbeats (default 1000)",
  clusterDownAfterMs:
    "ms of silence after which the others call a node down; a node whose own heartbeat is not stored for half of it stops serving (default 3500, at least 3 heartbeats)",
  clusterForgetAfterMs: "ms after which a silent node's record is removed (default 60000, at least 2 down-afters)",
  natsCreds: "NATS credentials file (JWT + nkey seed)",
  natsUser: "NATS user name (with --nats-pass)",
  natsPass: "NATS password (with --nats-user)",
  natsTlsCa: "CA certificate file to verify the NATS servers",
  natsTlsCert: "client certificate file for NATS (with --nats-tls-key)",
  natsTlsKey: "client key file for NATS (with --nats-tls-cert)",
};

interface ClusterFields {
  cluster?: string[];
  clusterHeartbeatMs: number;
  clusterDownAfterMs: number;
  clusterForgetAfterMs: number;
  natsUser?: string;
  natsPass?: string;
  natsCreds?: string;
  natsTlsCert?: string;
  natsTlsKey?: string;
  nodeId?: string;
  natsTlsCa?: string;
}

/** Flags that only make sense together; reported on the flag that is missing its partner. */
export function checkClusterSettings(s: ClusterFields, ctx: z.RefinementCtx): void {
  const need = (when: unknown, key: keyof ClusterFields, message: string) => {
    if (when !== undefined && s[key] === undefined) ctx.addIssue({ code: "custom", path: [key], message });
  };
  need(s.natsUser, "natsPass", "required with --nats-user");
  need(s.natsPass, "natsUser", "required with --nats-pass");
  need(s.natsTlsCert, "natsTlsKey", "required with --nats-tls-cert");
  need(s.natsTlsKey, "natsTlsCert", "required with --nats-tls-key");
  if (s.natsUser !== undefined && s.natsCreds !== undefined) {
    ctx.addIssue({ code: "custom", path: ["natsCreds"], message: "use either --nats-creds or --nats-user, not both" });
  }
  checkLease(s, ctx);
  const clusterOnly = (["nodeId", "natsCreds", "natsUser", "natsTlsCa", "natsTlsCert"] as const)
    .find((k) => s[k] !== undefined);
  if (clusterOnly !== undefined && s.cluster === undefined) {
    ctx.addIssue({ code: "custom", path: [clusterOnly], message: "only applies with --cluster" });
  }
}

/** The lease relations: several beats per down-after, and a node listed as down before it is forgotten. */
function checkLease(s: ClusterFields, ctx: z.RefinementCtx): void {
  if (s.clusterDownAfterMs < MIN_BEATS_PER_DOWN * s.clusterHeartbeatMs) {
    ctx.addIssue({
      code: "custom",
      path: ["clusterDownAfterMs"],
      message: `must be at least ${MIN_BEATS_PER_DOWN} x --cluster-heartbeat-ms (${
        MIN_BEATS_PER_DOWN * s.clusterHeartbeatMs
      })`,
    });
  }
  if (s.clusterForgetAfterMs < MIN_DOWNS_PER_FORGET * s.clusterDownAfterMs) {
    ctx.addIssue({
      code: "custom",
      path: ["clusterForgetAfterMs"],
      message: `must be at least ${MIN_DOWNS_PER_FORGET} x --cluster-down-after-ms (${
        MIN_DOWNS_PER_FORGET * s.clusterDownAfterMs
      })`,
    });
  }
}
