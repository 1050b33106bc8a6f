// The members' series in /metrics (cluster mode): one line per member and figure, labelled by node.

import { expect, test } from "bun:test";
import { memberLines } from "../../src/cluster/cluster-metrics.ts";
import { connCount } from "../../src/cluster/membership-kv.ts";

test("every member gets its up flag, connections and heartbeat age", () => {
  const lines = memberLines([
    { id: "iris1", observed: "up", conns: 12, silentMs: 250.4 },
    { id: "iris2", observed: "draining", conns: 3, silentMs: 900 },
    { id: "iris3", observed: "down", conns: 40, silentMs: 5123 },
  ]);
  const values = lines.filter((l) => !l.startsWith("#"));
  expect(values).toEqual([
    'iris_cluster_member_up{node="iris1"} 1',
    'iris_cluster_member_up{node="iris2"} 0',
    'iris_cluster_member_up{node="iris3"} 0',
    'iris_cluster_member_connections{node="iris1"} 12',
    'iris_cluster_member_connections{node="iris2"} 3',
    'iris_cluster_member_connections{node="iris3"} 40',
    'iris_cluster_member_heartbeat_age_seconds{node="iris1"} 0.25',
    'iris_cluster_member_heartbeat_age_seconds{node="iris2"} 0.9',
    'iris_cluster_member_heartbeat_age_seconds{node="iris3"} 5.123',
  ]);
  expect(lines.filter((l) => l.startsWith("# TYPE"))).toHaveLength(3);
});

test("a connection count fit for the heartbeat record's schema", () => {
  expect(connCount(5)).toBe(5);
  expect(connCount(0)).toBe(0);
  expect(connCount(-1)).toBe(0);
  expect(connCount(Number.NaN)).toBe(0);
  expect(connCount(Infinity)).toBe(0);
});
