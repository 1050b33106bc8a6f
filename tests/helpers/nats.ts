// Starts real `nats-server` processes (the Debian package, 2.9.x) for tests: JetStream on file
// storage in a temp dir, free loopback ports, a single server or a 3-server JetStream cluster
// (routes + cluster name). Every process is stopped by its PID and every temp dir removed, also
// when a test forgets: an exit hook kills whatever is still running.

import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePort } from "./free-port.ts";

/** Where Debian puts the server; `NATS_SERVER` overrides it (e.g. a newer build). */
export { freePort };

export const NATS_SERVER = process.env.NATS_SERVER ?? "/usr/sbin/nats-server";

/** How long a server may take to become ready (JetStream cluster elections take a few seconds). */
const READY_TIMEOUT_MS = 20_000;
const POLL_MS = 25;

const running = new Set<Subprocess>();
const tempDirs = new Set<string>();
process.on("exit", () => {
  for (const p of running) {
    try {
      process.kill(p.pid, "SIGKILL");
    } catch { /* already gone */ }
  }
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

export interface NatsAuth {
  user: string;
  pass: string;
}

export interface NatsServerSpec {
  name: string;
  port: number;
  httpPort: number;
  storeDir: string;
  cluster?: { name: string; port: number; routes: number[] };
  auth?: NatsAuth;
  /** Client listen address (default 127.0.0.1; "0.0.0.0" also serves a network namespace). */
  host?: string;
}

/** The server config file: plain nats-server syntax, also what docs/CLUSTER.md shows operators. */
export function natsConfig(s: NatsServerSpec): string {
  const lines = [
    `server_name: ${s.name}`,
    `listen: ${s.host ?? "127.0.0.1"}:${s.port}`,
    `http: 127.0.0.1:${s.httpPort}`,
    `jetstream {`,
    `  store_dir: "${s.storeDir}"`,
    `  max_memory_store: 64MB`,
    `  max_file_store: 2GB`,
    `}`,
  ];
  if (s.auth) lines.push(`authorization { user: "${s.auth.user}", password: "${s.auth.pass}" }`);
  if (s.cluster) {
    const routes = s.cluster.routes.map((p) => `nats-route://127.0.0.1:${p}`).join(", ");
    lines.push(
      `cluster {`,
      `  name: ${s.cluster.name}`,
      `  listen: 127.0.0.1:${s.cluster.port}`,
      `  routes: [${routes}]`,
      `}`,
    );
  }
  return lines.join("\n") + "\n";
}

export class NatsServer {
  proc: Subprocess<"ignore", "pipe", "pipe"> | null = null;
  private log = "";

  constructor(readonly spec: NatsServerSpec, readonly dir: string) {}

  get url(): string {
    return `nats://127.0.0.1:${this.spec.port}`;
  }
  get pid(): number {
    return this.proc?.pid ?? -1;
  }
  output(): string {
    return this.log;
  }

  /** Starts the process (again, after a stop: same port, same store) and waits for readiness. */
  async start(): Promise<void> {
    const conf = join(this.dir, `${this.spec.name}.conf`);
    writeFileSync(conf, natsConfig(this.spec));
    const proc = Bun.spawn([NATS_SERVER, "-c", conf], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    this.proc = proc;
    running.add(proc);
    void this.pump(proc.stderr);
    void this.pump(proc.stdout);
    await this.waitReady();
  }

  private async pump(s: ReadableStream<Uint8Array>): Promise<void> {
    const dec = new TextDecoder();
    const reader = s.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      this.log += dec.decode(value);
    }
  }

  /** Ready = the monitoring port answers /healthz 200 (JetStream included) — or, when routes
   * are configured but peers are not up yet, at least that the client port accepts connections. */
  async waitReady(jetstream = !this.spec.cluster): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    const path = jetstream ? "/healthz" : "/varz";
    for (;;) {
      if (this.proc?.exitCode !== null) throw new Error(`nats-server exited (${this.proc?.exitCode}):\n${this.log}`);
      try {
        const r = await fetch(`http://127.0.0.1:${this.spec.httpPort}${path}`);
        if (r.ok) return;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) throw new Error(`nats-server ${this.spec.name} not ready:\n${this.log}`);
      await Bun.sleep(POLL_MS);
    }
  }

  /** Stops by PID with `signal` (SIGKILL simulates a crash) and waits for the exit. */
  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    process.kill(p.pid, signal);
    const killer = setTimeout(() => process.kill(p.pid, "SIGKILL"), 5000);
    await p.exited;
    clearTimeout(killer);
    running.delete(p);
  }
}

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

function removeDir(d: string): void {
  if (existsSync(d)) rmSync(d, { recursive: true, force: true });
  tempDirs.delete(d);
}

export interface NatsFixture {
  servers: NatsServer[];
  urls: string[];
  dir: string;
  /** Stops every server (SIGTERM by PID) and removes the stores (`beforeRemove` sees them stopped first). */
  close(beforeRemove?: (dir: string, servers: NatsServer[]) => void): Promise<void>;
}

/** One JetStream server on a free port with file storage in a fresh temp dir. */
export async function startNats(o: { auth?: NatsAuth; host?: string } = {}): Promise<NatsFixture> {
  const dir = tempDir("iris-nats-");
  const spec = {
    name: "n1",
    port: freePort(),
    httpPort: freePort(),
    storeDir: join(dir, "js"),
    auth: o.auth,
    host: o.host,
  };
  const s = new NatsServer(spec, dir);
  try {
    await s.start();
  } catch (e) {
    await s.stop("SIGKILL");
    removeDir(dir);
    throw e;
  }
  return fixture([s], dir);
}

/** `n` servers (default 3) forming one JetStream cluster; resolves once every server is healthy. */
export async function startNatsCluster(n = 3): Promise<NatsFixture> {
  const dir = tempDir("iris-natsc-");
  const clusterPorts = Array.from({ length: n }, () => freePort());
  const servers = clusterPorts.map((cport, i) =>
    new NatsServer({
      name: `n${i + 1}`,
      port: freePort(),
      httpPort: freePort(),
      storeDir: join(dir, `js${i + 1}`),
      cluster: { name: "iris-test", port: cport, routes: clusterPorts.filter((p) => p !== cport) },
    }, dir)
  );
  try {
    // Each server alone cannot elect a meta leader: start all, then wait for JetStream on all.
    await Promise.all(servers.map((s) => s.start()));
    await Promise.all(servers.map((s) => s.waitReady(true)));
  } catch (e) {
    await Promise.all(servers.map((s) => s.stop("SIGKILL")));
    removeDir(dir);
    throw e;
  }
  return fixture(servers, dir);
}

function fixture(servers: NatsServer[], dir: string): NatsFixture {
  return {
    servers,
    urls: servers.map((s) => s.url),
    dir,
    async close(beforeRemove) {
      await Promise.all(servers.map((s) => s.stop()));
      try {
        beforeRemove?.(dir, servers);
      } finally {
        removeDir(dir);
      }
    },
  };
}
