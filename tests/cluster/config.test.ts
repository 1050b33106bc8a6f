// Cluster settings: flags and IRIS_* env, one-line errors naming the setting, --help lines, and
// a node id generated once and kept in the data dir. Absent --cluster, nothing changes.

import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, helpText, loadSettings } from "../../src/config/load.ts";
import { clusterOptions, leaseTiming, persistentNodeId } from "../../src/cluster/options.ts";
import { DEFAULT_TIMING } from "../../src/cluster/membership-kv.ts";
import { connectionOptions } from "../../src/cluster/connect.ts";

const load = (argv: string[], env: Record<string, string> = {}) => loadSettings(argv, env).settings;

function errorOf(argv: string[], env: Record<string, string> = {}): string {
  try {
    loadSettings(argv, env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error("expected a ConfigError");
}

describe("cluster settings", () => {
  test("absent --cluster: no cluster options at all", () => {
    const s = load([]);
    expect(s.cluster).toBeUndefined();
    expect(clusterOptions(s)).toBeNull();
  });

  test("--cluster takes a comma list of nats:// and tls:// URLs, env too", () => {
    expect(load(["--cluster", "nats://h1:4222, tls://h2:4223"]).cluster).toEqual(["nats://h1:4222", "tls://h2:4223"]);
    expect(load([], { IRIS_CLUSTER: "nats://127.0.0.1:4222" }).cluster).toEqual(["nats://127.0.0.1:4222"]);
    expect(load(["--cluster", "nats://h:1", "--cluster-replicas", "3"]).clusterReplicas).toBe(3);
    expect(load([], { IRIS_CLUSTER: "nats://h:1", IRIS_CLUSTER_REPLICAS: "1" }).clusterReplicas).toBe(1);
  });

  test.each([
    [["--cluster", "http://h1:4222"], "--cluster (IRIS_CLUSTER)"],
    [["--cluster", ","], "--cluster (IRIS_CLUSTER)"],
    [["--cluster", "nats://h:1/path"], "not a nats://"],
    [["--cluster", "nats://h:1", "--cluster-replicas", "2"], "--cluster-replicas"],
    [["--cluster", "nats://h:1", "--node-id", "a.b"], "--node-id"],
    [["--cluster", "nats://h:1", "--nats-user", "u"], "--nats-pass"],
    [["--cluster", "nats://h:1", "--nats-pass", "p"], "--nats-user"],
    [["--cluster", "nats://h:1", "--nats-creds", "/nonexistent/creds"], "file not found"],
    [["--cluster", "nats://h:1", "--nats-tls-ca", "/nonexistent/ca.pem"], "--nats-tls-ca"],
    [["--node-id", "n1"], "only applies with --cluster"],
    [["--cluster-heartbeat-ms", "10"], "--cluster-heartbeat-ms"],
    [["--cluster-heartbeat-ms", "abc"], "--cluster-heartbeat-ms"],
    [["--cluster-down-after-ms", "2999"], "at least 3 x --cluster-heartbeat-ms (3000)"],
    [["--cluster-heartbeat-ms", "2000", "--cluster-down-after-ms", "5000"], "--cluster-down-after-ms"],
    [["--cluster-down-after-ms", "40000"], "at least 2 x --cluster-down-after-ms (80000)"],
  ])("%p is refused in one line naming %p", (argv, needle) => {
    const msg = errorOf(argv as string[]);
    expect(msg).toContain(needle as string);
    expect(msg.split("\n").length).toBe(1);
  });

  test("env values are validated and named too", () => {
    expect(errorOf([], { IRIS_CLUSTER: "nats://h:1", IRIS_CLUSTER_REPLICAS: "5" })).toContain("IRIS_CLUSTER_REPLICAS");
    expect(errorOf([], { IRIS_CLUSTER_HEARTBEAT_MS: "3000" })).toContain("IRIS_CLUSTER_DOWN_AFTER_MS");
  });

  test("lease timing: defaults, flags and env reach the membership timing", () => {
    expect(leaseTiming(load(["--cluster", "nats://h:1"]))).toEqual(DEFAULT_TIMING);
    expect(DEFAULT_TIMING).toEqual({ heartbeatMs: 1000, downAfterMs: 3500, forgetAfterMs: 60_000 });
    const flags = ["--cluster-heartbeat-ms", "2000", "--cluster-down-after-ms", "12000"];
    expect(leaseTiming(load(["--cluster", "nats://h:1", ...flags])))
      .toEqual({ heartbeatMs: 2000, downAfterMs: 12_000, forgetAfterMs: 60_000 });
    const env = {
      IRIS_CLUSTER_HEARTBEAT_MS: "500",
      IRIS_CLUSTER_DOWN_AFTER_MS: "1500",
      IRIS_CLUSTER_FORGET_AFTER_MS: "3000",
    };
    expect(leaseTiming(load([], env))).toEqual({ heartbeatMs: 500, downAfterMs: 1500, forgetAfterMs: 3000 });
  });

  test("--help lists every cluster flag", () => {
    const h = helpText("0");
    for (
      const f of [
        "--cluster",
        "--node-id",
        "--cluster-replicas",
        "--nats-creds",
        "--nats-user",
        "--nats-tls-ca",
        "--cluster-heartbeat-ms",
        "--cluster-down-after-ms",
        "--cluster-forget-after-ms",
      ]
    ) {
      expect(h).toContain(f + " ");
    }
  });

  test("credentials and TLS reach the client options", () => {
    const dir = mkdtempSync(join(tmpdir(), "iris-ccfg-"));
    const ca = join(dir, "ca.pem");
    writeFileSync(ca, "x");
    const s = load([
      "--cluster",
      "nats://h:1",
      "--node-id",
      "n1",
      "--nats-user",
      "u",
      "--nats-pass",
      "p",
      "--nats-tls-ca",
      ca,
    ]);
    const o = connectionOptions(clusterOptions(s)!);
    expect(o).toMatchObject({
      servers: ["nats://h:1"],
      user: "u",
      pass: "p",
      name: "iris-n1",
      maxReconnectAttempts: -1,
    });
    expect(o.tls?.caFile).toBe(ca);
    rmSync(dir, { recursive: true });
  });

  test("the node id is generated once and kept in the data dir", () => {
    const parent = mkdtempSync(join(tmpdir(), "iris-nid-"));
    const dir = join(parent, "data");
    const a = clusterOptions({ ...load(["--cluster", "nats://h:1"]), dataDir: dir })!.nodeId;
    const b = persistentNodeId(dir);
    expect(a).toMatch(/^node-[0-9a-f]{12}$/);
    expect(b).toBe(a);
    expect(clusterOptions({ ...load(["--cluster", "nats://h:1", "--node-id", "east-1"]), dataDir: dir })!.nodeId)
      .toBe("east-1");
    writeFileSync(join(dir, "node-id"), "bad id!\n");
    expect(() => persistentNodeId(dir)).toThrow("valid node id");
    rmSync(parent, { recursive: true });
  });
});
