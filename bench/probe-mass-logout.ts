// Probe (not a test): does a mass logout on one node make cluster nodes fence themselves?
// 3 nodes (dist/iris) on one nats-server; N users log in to node 1, then all their sockets close
// at once; counts the "cut off" lines of every node over the next few seconds.
//   bun bench/probe-mass-logout.ts [users=10000] [watchMs=8000]
// Wrap in `flock /tmp/iris-bench.lock`.

import { IrisClient } from "../src/client/index.ts";
import { startThreeNodes } from "../tests/helpers/cluster.ts";

const users = Number(process.argv[2] ?? 10_000);
const watchMs = Number(process.argv[3] ?? 8000);
const BATCH = 500;

const cluster = await startThreeNodes();
try {
  const url = cluster.nodes[0]!.url;
  const clients: IrisClient[] = [];
  const t0 = performance.now();
  for (let i = 0; i < users; i += BATCH) {
    const batch = Array.from(
      { length: Math.min(BATCH, users - i) },
      (_, k) => new IrisClient({ urls: [url], user: `m${i + k}` }),
    );
    await Promise.all(batch.map((c) => c.connect()));
    clients.push(...batch);
  }
  console.log(`${users} users logged in to iris1 in ${Math.round(performance.now() - t0)} ms`);
  await Bun.sleep(2000);
  const mark = cluster.nodes.map((n) => n.output().length);
  for (const c of clients) c.close();
  console.log(`closed ${users} sockets at once; watching ${watchMs} ms`);
  await Bun.sleep(watchMs);
  cluster.nodes.forEach((n, i) => {
    const lines = n.output().slice(mark[i]).split("\n").filter((l) => l.includes("cluster"));
    const cuts = lines.filter((l) => l.includes("cut off")).length;
    console.log(`iris${i + 1}: ${cuts} self-cut(s) after the logout`);
    for (const l of lines.slice(0, 8)) console.log(`  ${l}`);
  });
} finally {
  await cluster.close();
}
