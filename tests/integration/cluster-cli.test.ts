// The binary with --cluster: settings are validated like every other flag, and until the router
// is wired to the cluster modules it refuses in one line instead of running as a split single node.

import { expect, test } from "bun:test";
import { BINARY } from "../helpers/server.ts";

function run(args: string[], env: Record<string, string> = {}) {
  const p = Bun.spawnSync([BINARY, ...args], { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString().trim() };
}

test("--help lists the cluster flags", () => {
  const h = run(["--help"]).out;
  for (const f of ["--cluster <v>", "--node-id <v>", "--cluster-replicas <v>", "--nats-creds <v>"]) {
    expect(h).toContain(f);
  }
});

test("a bad cluster setting is one line naming it", () => {
  const r = run(["--cluster", "http://x:1"]);
  expect(r.code).toBe(2);
  expect(r.err.split("\n").length).toBe(1);
  expect(r.err).toContain("--cluster (IRIS_CLUSTER)");
  const e = run([], { IRIS_CLUSTER: "nats://127.0.0.1:4222", IRIS_CLUSTER_REPLICAS: "2" });
  expect(e.err).toContain("IRIS_CLUSTER_REPLICAS");
});

test("a valid --cluster is refused in one line, never served as a split single node", () => {
  const r = run(["--cluster", "nats://127.0.0.1:4222", "--port", "0", "--data-dir", `/tmp/iris-cl-cli-${process.pid}`]);
  expect(r.code).toBe(2);
  expect(r.err.split("\n").length).toBe(1);
  expect(r.err).toContain("not yet wired into the router");
  expect(r.out).not.toContain("ready on");
});
