// Profiles one backlog drain (issue 14): fills one offline user's inbox through Iris, then records
// `perf record -g` on the server only while that user logs in and drains. Not a scenario: a tool.
// usage: bun bench/profile-drain.ts v0|v1|v1b MESSAGES OUT.perf.data [BINARY]   (v1b: v1 with bundles)

import { LoadGen } from "./lib/loadgen.ts";
import type { Target } from "./lib/loadgen-protocol.ts";
import { startIris } from "./lib/server.ts";

const [proto = "v0", nArg = "50000", out = "drain.perf.data", binary] = process.argv.slice(2);
const n = Math.floor(Number(nArg) / 4) * 4;
const lg = await LoadGen.spawn(1);
const s = await startIris({ binary, tcp: true, args: ["--max-inbox", String(Math.max(100_000, n))] });
try {
  const users = [0, 1, 2, 3].map((i) => `prof-sender-${i}`);
  const ws: Target = { kind: "ws", url: s.url };
  const o = await lg.open(0, { target: ws, proto: "v1", users, concurrency: 4, timeoutMs: 20_000, payload: 64 });
  await lg.run(0, {
    groups: [{
      name: "fill",
      senders: users.map((_, i) => ({ c: o.firstIndex + i, to: ["prof-user"] })),
      mode: { kind: "window", window: 128, ackOn: "sent" },
      quota: n / 4,
    }],
    startAt: Date.now() + 100,
    warmupMs: 0,
    measureMs: 300_000,
    drainMs: 30_000,
    payload: 64,
  });
  await Bun.sleep(300);
  const perf = Bun.spawn(["perf", "record", "-k", "1", "-F", "4000", "-g", "-p", String(s.pid), "-o", out], {
    stderr: "ignore",
  });
  await Bun.sleep(500);
  const target: Target = proto === "v0" ? { kind: "tcp", host: "127.0.0.1", port: s.tcpPort! } : ws;
  const d = await lg.drain(0, {
    target,
    proto: proto === "v0" ? "v0" : "v1",
    bundles: proto === "v1b",
    users: ["prof-user"],
    expect: n,
    timeoutMs: 60_000,
    payload: 64,
  });
  await Bun.sleep(100);
  perf.kill("SIGINT");
  await perf.exited;
  console.log(JSON.stringify({ proto, n, firstMs: d.firstMs, lastMs: d.doneMs, delivered: d.delivered }));
} finally {
  await lg.close();
  await s.stop();
}
