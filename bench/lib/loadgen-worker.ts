// Entry point of one load-generator process (spawned by loadgen.ts with Bun IPC). A process holds
// fewer than 20k sockets (RLIMIT_NOFILE), so large runs use several. It stops by itself when the
// parent goes away or after its maximum lifetime.

import { Driver } from "./driver.ts";
import type { Reply, Request } from "./loadgen-protocol.ts";

const maxLifeMs = Number(process.env.BENCH_WORKER_MAX_MS ?? 15 * 60_000);
setTimeout(() => {
  console.error(`loadgen worker ${process.pid}: maximum lifetime ${maxLifeMs} ms reached, exiting`);
  process.exit(3);
}, maxLifeMs).unref();

const driver = new Driver();

async function handle(req: Request): Promise<unknown> {
  switch (req.t) {
    case "open":
      return driver.open(req);
    case "run":
      return driver.run(req);
    case "drain":
      return driver.drain(req);
    case "stats":
      return driver.stats();
    case "close":
      await driver.closeAll();
      return null;
    case "exit":
      setTimeout(() => process.exit(0), 10);
      return null;
  }
}

process.on("message", (msg: unknown) => {
  const req = msg as Request;
  handle(req).then(
    (data) => process.send!({ id: req.id, ok: true, data } satisfies Reply),
    (e) => process.send!({ id: req.id, ok: false, error: (e as Error).stack ?? String(e) } satisfies Reply),
  );
});
process.on("disconnect", () => process.exit(0));
process.send!({ hello: true, pid: process.pid });
