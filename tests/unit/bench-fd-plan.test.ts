// The scale run's fd planning: a node or load generator that would need more sockets than the
// open-files hard limit allows is refused with the largest size that fits.

import { expect, test } from "bun:test";
import { LOADGEN_SOCKETS_PER_PROCESS, planFds } from "../../bench/lib/fd-plan.ts";

test("200,000 users on 10 nodes do not fit a 20,000-fd limit per node; 190,000 do", () => {
  const no = planFds(200_000, 10, 20_000, 60, 19_904);
  expect(no.perNode).toBe(20_000);
  expect(no.problems.length).toBe(2);
  expect(no.problems[0]).toContain("at most 19908 users per node");
  const yes = planFds(190_000, 10, 20_000, 60, 19_904);
  expect(yes.problems).toEqual([]);
  expect(yes.loadgenProcesses).toBe(Math.ceil(190_000 / LOADGEN_SOCKETS_PER_PROCESS));
  expect(yes.perLoadgen).toBeLessThan(20_000);
});
