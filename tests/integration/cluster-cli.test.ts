// The binary with --cluster: settings are validated like every other flag, and a node that
// cannot reach NATS says so in one line and waits (not ready) instead of running as a split
// single node.

import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, NatsServer } from "../helpers/nats.ts";
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

test("an unreachable --cluster URL: one line, not ready, keeps retrying; ready once NATS answers", async () => {
  const port = freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "iris-cl-cli-"));
  const proc = Bun.spawn([BINARY, "--cluster", `nats://127.0.0.1:${port}`, "--port", "0", "--data-dir", dataDir], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  const pump = async (st: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    const reader = st.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      out += dec.decode(value);
    }
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  const dir = mkdtempSync(join(tmpdir(), "iris-cl-nats-"));
  const nats = new NatsServer({ name: "late", port, httpPort: freePort(), storeDir: join(dir, "js") }, dir);
  try {
    await until(() => out.includes("cannot reach NATS"), 10_000);
    const lines = out.split("\n").filter((l) => l.includes("cannot reach NATS"));
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain(`nats://127.0.0.1:${port}; retrying, not ready until it answers`);
    expect(out).not.toMatch(/^ready /m); // never a split single node
    expect(proc.exitCode).toBeNull();
    await nats.start();
    await until(() => /^ready /m.test(out), 20_000);
  } finally {
    proc.kill("SIGKILL");
    await proc.exited;
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 40_000);

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await Bun.sleep(20);
  }
}
