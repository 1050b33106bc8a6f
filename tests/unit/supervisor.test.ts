import { expect, test } from "bun:test";
import { restartDelay } from "../../src/supervisor.ts";

test("restart backoff: immediate for a few crashes, then doubling, capped", () => {
  expect([1, 2, 3].map(restartDelay)).toEqual([0, 0, 0]);
  expect([4, 5, 6].map(restartDelay)).toEqual([50, 100, 200]);
  expect(restartDelay(50)).toBe(5000);
});
