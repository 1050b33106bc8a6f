// Profiles one backlog drain (issue 14): fills one offline user's inbox through Iris, then records
// `perf record -g` on the server only while that user logs in and drains. Not a scenario: a tool.
// usage: bun bench/profile-drain.ts v0|v1|v1b MESSAGES OUT.perf.data [BINARY]   (v1b: v1 with bundles)
//   PERF_F=20000 samples 20,000 times a second instead of 4,000 (a v0 50k drain lasts ~70 ms)

import { LoadGen } from "./lib/loadgen.ts";
import { drainBacklog, type DrainProto, fillBacklog } from "./lib/one-backlog.ts";
import { startIris } from "./lib/server.ts";

const [proto = "v0", nArg = "50000", out = "drain.perf.data", binary] = process.argv.slice(2);
const lg = await LoadGen.spawn(1);
const s = await startIris({ binary, tcp: true, args: ["--max-inbox", String(Math.max(100_000, Number(nArg)))] });
try {
  const n = await fillBacklog(lg, s, "prof-user", Number(nArg));
  await Bun.sleep(300);
  const perf = Bun.spawn([
    "perf",
    "record",
    "-k",
    "1",
    "-F",
    process.env.PERF_F ?? "4000",
    "-g",
    "-p",
    String(s.pid),
    "-o",
    out,
  ], {
    stderr: "ignore",
  });
  await Bun.sleep(500);
  const d = await drainBacklog(lg, s, proto as DrainProto, "prof-user", n);
  await Bun.sleep(100);
  perf.kill("SIGINT");
  await perf.exited;
  console.log(JSON.stringify({ proto, n, firstMs: d.firstMs, lastMs: d.doneMs, delivered: d.delivered }));
} finally {
  await lg.close();
  await s.stop();
}
