// Cluster: an owner whose view moves a user away drops the box, and tells the user's session
// (docs/CLUSTER.md, "A flapping view"): a session on a node whose view did not move would
// otherwise stay attached to nothing, and the owner, when its view came back, stored that
// user's messages as if it were offline (R3 NATS-kill test: ~30 acked messages never arrived).

import { expect, test } from "bun:test";
import { defaultOwnerLimits } from "../../src/limits.ts";
import { recordingOwner } from "../helpers/owner-harness.ts";

test("a box dropped by a placement change tells its link's session; a fence's drop does not", () => {
  const r = recordingOwner(defaultOwnerLimits);
  r.o.handle({ t: "attach", user: "u", shard: 1030, conn: 4, v0: false, resume: 0 });
  r.o.handle({ t: "attach", user: "w", shard: 1030, conn: 5, v0: false, resume: 0 });
  r.toShard.length = 0;
  r.o.dropMoved((user) => user === "u", true);
  expect(r.toShard).toEqual([{ t: "evict", user: "u", conn: 4, why: "moved", owner: 0 }]);
  expect(r.o.isOnline("u")).toBe(false);
  r.toShard.length = 0;
  r.o.dropMoved(() => true); // a fence: cut off, nothing would arrive (the heal re-attaches)
  expect(r.toShard).toEqual([]);
  expect(r.o.isOnline("w")).toBe(false);
});
