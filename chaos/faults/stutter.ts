// A stuttering shard: its event loop blocked for `stallMs`, free for a few ms, blocked again, for
// `forMs` in all: a thread that gets short time slices on a starved machine (load 17-36 is where
// the single-node losses of issue 10 showed). A socket can open in one gap and have its login read
// only gaps later, while the other shard goes on at full speed: a client that gave up on that
// socket and logged in again elsewhere is then read in the wrong order (router/login-order.ts).

import type { ChaosServer } from "../lib/server.ts";

/** Each stall; the gap between stalls is whatever the chaos endpoint's round trip and `GAP_MS` leave. */
export const STUTTER_STALL_MS = 2500;
const GAP_MS = 10;

/** Stutters `shard` for about `forMs`; resolves when done (false if the server did not answer). */
export async function stutter(server: ChaosServer, shard: number, forMs: number): Promise<boolean> {
  const end = performance.now() + forMs;
  let ok = true;
  while (performance.now() < end) {
    ok = (await server.api.stallShard(shard, STUTTER_STALL_MS)) && ok;
    await Bun.sleep(STUTTER_STALL_MS + GAP_MS);
  }
  return ok;
}
