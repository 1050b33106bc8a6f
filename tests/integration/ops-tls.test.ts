// TLS with a certificate the test generates (openssl): HTTPS and WSS on one port, TLS on the v0
// TCP listener, plain WebSocket refused, SIGHUP swaps the certificate for new connections while
// old ones stay open, and the clear-text warning for a public address with auth.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import { RawSocket } from "../helpers/raw.ts";
import { runOnce } from "../helpers/run-once.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

let dir = "";
let server: RunningServer | null = null;

function makeCert(name: string, cn: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const r = Bun.spawnSync([
    "openssl",
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    "1",
    "-subj",
    `/CN=${cn}`,
    "-addext",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
  ], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl: ${r.stderr.toString()}`);
  return { cert, key };
}

/** The SHA-256 fingerprint of the certificate a fresh TLS connection to `port` is served. */
function servedFingerprint(port: number): string {
  const r = Bun.spawnSync(["openssl", "s_client", "-connect", `127.0.0.1:${port}`, "-servername", "localhost"], {
    stdin: new TextEncoder().encode(""),
    stdout: "pipe",
    stderr: "pipe",
  });
  const pem = r.stdout.toString().match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/);
  if (!pem) throw new Error(`no certificate from port ${port}: ${r.stderr.toString()}`);
  return new X509Certificate(pem[0]).fingerprint256;
}

const fp = (path: string) => new X509Certificate(readFileSync(path)).fingerprint256;

async function loginWss(port: number, ca: string, user: string): Promise<RawSocket> {
  const s = await RawSocket.open(`wss://127.0.0.1:${port}/ws`, { tls: { ca } });
  s.send(JSON.stringify({ type: "login", user }));
  expect(JSON.parse(String(await s.next())).type).toBe("login_ok");
  return s;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "iris-tls-"));
});
afterAll(async () => {
  await server?.kill();
  rmSync(dir, { recursive: true, force: true });
});

describe("TLS", () => {
  test("HTTPS + WSS on one port, TLS on the TCP port; plain ws refused; SIGHUP swaps the cert, old sockets stay", async () => {
    const first = makeCert("live", "iris-one");
    const second = makeCert("next", "iris-two");
    const ca = readFileSync(first.cert, "utf8") + readFileSync(second.cert, "utf8");
    server = await startServer({
      args: ["--tls-cert", first.cert, "--tls-key", first.key, "--tcp-port", "0", "--log-level", "info"],
    });
    const s = server;
    expect(s.output()).toContain(`ready on https://127.0.0.1:${s.port} (wss://127.0.0.1:${s.port}/ws)`);
    const health = await fetch(`https://127.0.0.1:${s.port}/healthz`, { tls: { ca } } as RequestInit);
    expect(health.status).toBe(200);

    // A WSS pair messages over TLS.
    const bob = await loginWss(s.port, ca, "bob");
    const alice = await loginWss(s.port, ca, "alice");
    alice.send(JSON.stringify({ type: "send", id: "m1", to: "bob", body: "over tls" }));
    expect(JSON.parse(String(await bob.next()))).toMatchObject({ type: "msg", from: "alice", body: "over tls" });
    expect(JSON.parse(String(await alice.next()))).toMatchObject({ type: "sent", id: "m1" });

    // Plain WebSocket on the TLS port never opens.
    const plain = new RawSocket(`ws://127.0.0.1:${s.port}/ws`);
    expect(await plain.opened.then(() => "opened", () => "refused")).toBe("refused");

    expect(servedFingerprint(s.port)).toBe(fp(first.cert));
    expect(servedFingerprint(s.tcpPort!)).toBe(fp(first.cert));

    // Rotate: the files on disk change, then SIGHUP.
    Bun.spawnSync(["cp", second.cert, first.cert]);
    Bun.spawnSync(["cp", second.key, first.key]);
    s.proc.kill("SIGHUP");
    await until(() => s.output().includes("tls certificate reloaded"), "tls reload", 5000);
    expect(servedFingerprint(s.port)).toBe(fp(second.cert));
    expect(servedFingerprint(s.tcpPort!)).toBe(fp(second.cert));

    // The connections opened before the reload are still open and still work.
    alice.send(JSON.stringify({ type: "send", id: "m2", to: "bob", body: "after reload" }));
    expect(JSON.parse(String(await bob.next()))).toMatchObject({ type: "msg", body: "after reload" });
    expect(alice.closeCode).toBeNull();
    expect(bob.closeCode).toBeNull();
    // And a new one works on the new certificate.
    const carol = await loginWss(s.port, ca, "carol");
    carol.close();
    alice.close();
    bob.close();
    expect(s.proc.exitCode).toBeNull();
  });

  test("a SIGHUP with a broken certificate keeps the old one", async () => {
    const s = server!;
    Bun.spawnSync(["sh", "-c", `echo broken > ${join(dir, "live.crt")}`]);
    s.proc.kill("SIGHUP");
    await until(() => s.output().includes("new tls certificate refused"), "refusal line", 5000);
    expect(s.proc.exitCode).toBeNull();
    expect(servedFingerprint(s.port)).toBe(fp(join(dir, "next.crt")));
  });

  test("a public address with auth but no TLS prints a warning line", async () => {
    const s = await startServer({ args: ["--host", "0.0.0.0", "--jwt-secret", "x".repeat(32)] });
    try {
      const warn = s.output().split("\n").filter((l) => l.includes("without TLS"));
      expect(warn).toHaveLength(1);
      expect(warn[0]).toContain("host=0.0.0.0");
    } finally {
      await s.kill();
    }
  });

  test("a missing key or a key that does not match is one line, exit 2", async () => {
    const a = makeCert("a", "a");
    const b = makeCert("b", "b");
    const only = await runOnce(["--tls-cert", a.cert]);
    expect(only.code).toBe(2);
    expect(only.lines).toHaveLength(1);
    const mismatch = await runOnce(["--tls-cert", a.cert, "--tls-key", b.key]);
    expect(mismatch.code).toBe(2);
    expect(mismatch.lines).toHaveLength(1);
    expect(mismatch.lines[0]).toContain("does not belong");
  });
});
