// The exactly-once checker's client processes (chaos/scenarios/exactly-once.ts, Apps): a cut
// (SIGUSR2) that lands while a client is still starting, before its handler is set, kills it by the
// signal's default action. Such a client is started again on its files, and a process killed by a
// signal never counts as a sender still running (it did, forever: "1 sends never acked", seed 20027).

import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Apps } from "../../chaos/scenarios/exactly-once.ts";

let dir = "";
let apps: Apps | null = null;
afterEach(async () => {
  await apps?.stopAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("a client a cut killed while starting is started again, and a dead one is not running", async () => {
  dir = mkdtempSync(join(tmpdir(), "iris-chaos-apps-"));
  // Nothing listens on port 9 here: the sender keeps trying to connect, which is all this needs.
  apps = new Apps("ws://127.0.0.1:9/ws", dir, 1, 1, 50);
  apps.start("eos0");
  apps.signal("eos0", "SIGUSR2"); // at once: the process is still loading its modules
  const until = Date.now() + 10_000;
  while (apps.cutDeaths === 0 && Date.now() < until) await Bun.sleep(20);
  expect(apps.cutDeaths).toBe(1);
  await Bun.sleep(200);
  expect(apps.runningSenders()).toBe(1); // the new process

  await apps.kill("eos0"); // a drawn fault: killed on purpose, not started again by the hook
  await Bun.sleep(200);
  expect(apps.runningSenders()).toBe(0);
  expect(apps.cutDeaths).toBe(1);
});
