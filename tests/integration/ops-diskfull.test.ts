// Disk full, for real: the data dir is a small tmpfs mount that the test fills mid-flood and then
// frees. Sends that would be stored get typed errors within a second (never a false "stored"),
// the writer is not restarted, the process lives, /readyz and /metrics say so, the log stays
// short (one JSON object per line), and after freeing every acked message arrives exactly once.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IrisClient } from "../../src/client/index.ts";
import { RawSocket } from "../helpers/raw.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

const TMPFS_MB = 128; // above the 64 MiB a WAL may reach before its checkpoint
const RESERVE_MB = 16;
const SENDERS = 4;
const OFFLINE_USERS = 20;
const WINDOW = 100; // sends in flight per sender
const BODY = "b".repeat(1024);

let mnt = "";
let server: RunningServer | null = null;

function sh(cmd: string[]): { code: number; err: string } {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode ?? -1, err: r.stderr.toString() };
}

beforeAll(() => {
  mnt = mkdtempSync(join(tmpdir(), "iris-full-"));
  const r = sh(["mount", "-t", "tmpfs", "-o", `size=${TMPFS_MB}m`, "tmpfs", mnt]);
  if (r.code !== 0) throw new Error(`mount tmpfs: ${r.err}`);
});
afterAll(async () => {
  if (server) await server.kill();
  sh(["umount", "-l", mnt]);
  rmSync(mnt, { recursive: true, force: true });
});

async function metric(http: string, name: string): Promise<number> {
  const text = await (await fetch(`${http}/metrics`)).text();
  const m = text.match(new RegExp(`^${name} (\\S+)$`, "m"));
  return m ? Number(m[1]) : NaN;
}

/** A sender that keeps WINDOW sends in flight until stopped; remembers what was acked. */
function flood(url: string, name: string, acked: Set<string>, sent: Set<string>) {
  const c = new IrisClient({ url, user: name });
  let stop = false;
  let i = 0;
  const run = async () => {
    await c.connect();
    const lane = async () => {
      while (!stop) {
        const key = `${name}:${i++}`;
        sent.add(key);
        const status = await c.send(`off${i % OFFLINE_USERS}`, `${key}|${BODY}`);
        if (status === "stored" || status === "delivered" || status === "duplicate") acked.add(key);
      }
    };
    await Promise.all(Array.from({ length: WINDOW }, lane));
  };
  const done = run();
  return {
    stop: async () => {
      stop = true;
      const t = setTimeout(() => {
        const out = (c as unknown as { outgoing: Map<string, { to: string; limited: number }> }).outgoing;
        console.log(`STUCK ${name}: ${[...out.entries()].map(([id, o]) => `${id}->${o.to}(${o.limited})`).join(" ")}`);
      }, 15_000);
      await done;
      clearTimeout(t);
      c.close();
    },
  };
}

describe("disk full on a real tmpfs", () => {
  test("typed errors within a second, no writer restarts, exactly-once after freeing", async () => {
    server = await startServer({
      dataDir: mnt,
      args: ["--min-free-mb", String(RESERVE_MB), "--log-format", "json", "--log-level", "info"],
    });
    const s = server;
    const acked = new Set<string>();
    const sent = new Set<string>();
    // Live delivery keeps working while the disk is full: a connected pair.
    const liveRx = new IrisClient({ url: s.url, user: "live-rx" });
    const liveGot: string[] = [];
    liveRx.onMessage((m) => liveGot.push(m.text()));
    await liveRx.connect();
    const liveTx = new IrisClient({ url: s.url, user: "live-tx" });
    await liveTx.connect();
    // A raw probe that sees the typed errors the SDK would hide by retrying.
    const probe = await RawSocket.open(s.url);
    probe.send(JSON.stringify({ type: "login", user: "probe" }));
    await probe.next();
    let probeSeq = 0;
    const probeErrors: { code: string; at: number }[] = [];
    const probeTimer = setInterval(() => {
      probe.send(JSON.stringify({ type: "send", id: `p${probeSeq++}`, to: "probe-sink", body: "x" }));
      for (const f of probe.frames.splice(0)) {
        const o = JSON.parse(String(f));
        if (o.type === "error") probeErrors.push({ code: o.code, at: performance.now() });
      }
    }, 20);

    // An inbox stored before the disk fills, read while it is full.
    const early = await Promise.all(Array.from({ length: 50 }, (_, i) => liveTx.send("early", `early${i}`)));
    expect(early.every((x) => x === "stored")).toBe(true);

    const progress = process.env.IRIS_TEST_SHOW_LOG
      ? setInterval(async () => {
        const m = await fetch(`${s.http}/metrics`).then((r) => r.text(), () => "");
        const g = (n: string) => m.match(new RegExp(`^${n} (\\S+)$`, "m"))?.[1];
        console.log(
          `sent=${sent.size} acked=${acked.size} full=${g("iris_store_full")} failing=${g("iris_store_failing")} ` +
            `errors=${g("iris_store_errors_total")} rejects=${g("iris_store_full_rejects_total")} backlog=${
              g("iris_store_backlog_bytes")
            }`,
        );
        console.log(s.output().split("\n").slice(-4).join("\n"));
      }, 2000)
      : null;
    const floods = Array.from({ length: SENDERS }, (_, k) => flood(s.url, `s${k}`, acked, sent));
    await until(() => acked.size > 2000, "flood under way", 10_000);

    // Fill the file system to the last byte.
    const filler = join(mnt, "filler");
    const filledAt = performance.now();
    sh(["dd", "if=/dev/zero", `of=${filler}`, "bs=1M", `count=${TMPFS_MB}`]);
    await until(() => probeErrors.some((e) => e.at >= filledAt), "a typed error after filling", 1000);
    const first = probeErrors.find((e) => e.at >= filledAt)!;
    expect(["STORE_FULL", "SERVER_BUSY"]).toContain(first.code);
    const errorAfterMs = first.at - filledAt;
    expect(errorAfterMs).toBeLessThan(1000);

    // While full: not ready, metrics say why, live delivery goes on.
    await until(async () => (await fetch(`${s.http}/readyz`)).status === 503, "/readyz 503", 2000);
    // The writer's own failure may answer first; the statfs poll follows within its period.
    await until(async () => (await metric(s.http, "iris_store_full")) === 1, "iris_store_full 1", 1000);
    expect(await metric(s.http, "iris_disk_free_bytes")).toBeLessThan(RESERVE_MB * 1048576);
    expect(await liveTx.send("live-rx", "while-full")).toBe("delivered");
    const earlyGot: string[] = [];
    const earlyRx = new IrisClient({ url: s.url, user: "early" });
    earlyRx.onMessage((m) => earlyGot.push(m.text()));
    await earlyRx.connect();
    await until(() => earlyGot.length === 50, "stored inbox read while the disk is full", 5000);
    earlyRx.close();
    const ackedAtFull = acked.size;
    await Bun.sleep(1500);
    expect(s.proc.exitCode).toBeNull();
    expect(await metric(s.http, "iris_writer_restarts_total")).toBe(0);
    expect(await metric(s.http, "iris_store_full_rejects_total")).toBeGreaterThan(0);

    // Free the space: service resumes by itself.
    rmSync(filler);
    const freedAt = performance.now();
    await until(async () => (await fetch(`${s.http}/readyz`)).status === 200, "/readyz 200 again", 5000);
    const resumeMs = performance.now() - freedAt;
    await until(() => acked.size > ackedAtFull + 2000, "acks resume after freeing", 10_000);
    clearInterval(probeTimer);
    if (progress) clearInterval(progress);
    await Promise.all(floods.map((f) => f.stop()));
    expect(acked.size).toBe(sent.size); // every send was acked in the end (the SDK retried)

    // Every acked message reaches its recipient exactly once.
    const counts = new Map<string, number>();
    const readers = await Promise.all(Array.from({ length: OFFLINE_USERS }, async (_, u) => {
      const r = new IrisClient({ url: s.url, user: `off${u}`, dedupeWindow: 1 });
      r.onMessage((m) => {
        const key = m.text().split("|")[0]!;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      });
      await r.connect();
      return r;
    }));
    await until(() => [...acked].every((k) => counts.has(k)), "every acked message delivered", 30_000);
    await Bun.sleep(300);
    for (const r of readers) r.close();
    const dupes = [...counts.values()].filter((n) => n > 1).length;
    const lost = [...acked].filter((k) => !counts.has(k)).length;
    expect(lost).toBe(0);
    expect(dupes).toBe(0);
    expect(liveGot).toContain("while-full");
    expect(await metric(s.http, "iris_writer_restarts_total")).toBe(0);
    liveRx.close();
    liveTx.close();
    probe.close();

    expect(await s.stop()).toBe(0);
    const logLines = s.output().split("\n").filter((l) =>
      l.trim() !== "" && !l.startsWith("iris ") && !l.startsWith("ready {")
    );
    for (const l of logLines) expect(() => JSON.parse(l)).not.toThrow();
    if (process.env.IRIS_TEST_SHOW_LOG) console.log(logLines.join("\n"));
    expect(logLines.length).toBeLessThan(20);
    console.log(
      `disk-full: acked=${acked.size} first_typed_error_ms=${errorAfterMs.toFixed(0)} code=${first.code} ` +
        `resume_ms=${resumeMs.toFixed(0)} lost=${lost} dupes=${dupes} log_lines=${logLines.length}`,
    );
  }, 90_000);
});
