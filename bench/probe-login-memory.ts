// Splits an idle connection's RSS cost into the open WebSocket and the login (issue 14): starts
// the binary, opens N WebSockets without logging in, reads VmRSS, logs them all in as v1, reads
// VmRSS again, and the server's CPU time from the first login sent until the settle wait ends
// (a login's whole cost: the session, the owner's box, the writer's reservation and empty page),
// then closes every socket at once and reads the server's CPU for the same time again (a logout's).
// Not a scenario: a tool. Run it under the bench lock.
// usage: bun bench/probe-login-memory.ts BINARY [N]

import { readFileSync, rmSync } from "node:fs";
import { encodeV1Client } from "../src/protocol/v1.ts";
import { cpuMicros } from "./lib/procstat.ts";

const bin = process.argv[2] ?? "dist/iris";
const n = Number(process.argv[3] ?? 10_000);
const port = 21_000 + Math.floor(Math.random() * 1000);
const dir = `/tmp/iris-probe-${port}`;
const server = Bun.spawn([bin, "--port", String(port), "--data-dir", dir, "--login-timeout", "600000"], {
  stdout: "ignore",
  stderr: "ignore",
});
const statusKb = (field: string) =>
  Number(readFileSync(`/proc/${server.pid}/status`, "utf8").match(new RegExp(`${field}:\\s+(\\d+)`))![1]);
const rssKb = () => statusKb("VmRSS");
/** RSS split: anonymous (heaps, allocators) vs file-backed and shared (mapped files, SQLite's -shm). */
const split = () => ({ anon: statusKb("RssAnon"), file: statusKb("RssFile"), shmem: statusKb("RssShmem") });
const SETTLE_MS = 3000;
const cpuMs = () => cpuMicros(server.pid) / 1000;

try {
  await Bun.sleep(2500);
  const r0 = rssKb();
  const s0 = split();
  const socks: WebSocket[] = [];
  for (let i = 0; i < n; i += 200) {
    await Promise.all(Array.from({ length: Math.min(200, n - i) }, () =>
      new Promise<void>((res) => {
        const w = new WebSocket(`ws://127.0.0.1:${port}/ws`);
        w.binaryType = "arraybuffer";
        w.onopen = () => res();
        w.onerror = () => res();
        socks.push(w);
      })));
  }
  await Bun.sleep(SETTLE_MS);
  const r1 = rssKb();
  const s1 = split();
  let ok = 0;
  const c0 = cpuMs();
  await Promise.all(socks.map((w, i) =>
    new Promise<void>((res) => {
      w.onmessage = () => (ok++, res());
      w.send(encodeV1Client({ op: "login", user: `idle-${i}`, proto: "v1" }));
    })
  ));
  await Bun.sleep(SETTLE_MS);
  const loginCpuMs = cpuMs() - c0;
  const r2 = rssKb();
  const s2 = split();
  // Then every socket closes at once (a mass disconnect): the server's CPU until SETTLE_MS later.
  const c1 = cpuMs();
  for (const w of socks) w.close();
  await Bun.sleep(SETTLE_MS);
  const logoutCpuMs = cpuMs() - c1;
  const per = (kb: number) => Math.round((kb / n) * 100) / 100;
  console.log(
    JSON.stringify({
      bin,
      n,
      loggedIn: ok,
      rssBaseKb: r0,
      openKb: per(r1 - r0),
      loginKb: per(r2 - r1),
      totalKb: per(r2 - r0),
      serverCpuUsPerLogin: Math.round((loginCpuMs * 1000) / Math.max(1, ok)),
      serverCpuUsPerLogout: Math.round((logoutCpuMs * 1000) / Math.max(1, ok)),
      // Per-connection deltas of each RSS part: open (s1 - s0) and login (s2 - s1).
      openSplit: { anon: per(s1.anon - s0.anon), file: per(s1.file - s0.file), shmem: per(s1.shmem - s0.shmem) },
      loginSplit: { anon: per(s2.anon - s1.anon), file: per(s2.file - s1.file), shmem: per(s2.shmem - s1.shmem) },
    }),
  );
} finally {
  server.kill();
  await server.exited;
  rmSync(dir, { recursive: true, force: true });
}
