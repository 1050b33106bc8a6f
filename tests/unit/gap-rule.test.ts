// When a gap in a node's batches closes the users it owns here (src/cluster/gap-rule.ts).

import { expect, test } from "bun:test";
import { GAP_STEADY_MS, gapResyncs } from "../../src/cluster/gap-rule.ts";

const NOW = 100_000;

test("a gap from a node up all along, or for GAP_STEADY_MS, resyncs", () => {
  expect(gapResyncs(-Infinity, NOW, -Infinity)).toBe(true);
  expect(gapResyncs(NOW - GAP_STEADY_MS, NOW, -Infinity)).toBe(true);
});

test("a gap from a node down, unknown or just back is left to the re-placement", () => {
  expect(gapResyncs(Infinity, NOW, -Infinity)).toBe(false);
  expect(gapResyncs(undefined, NOW, NOW)).toBe(false);
  expect(gapResyncs(NOW - 1000, NOW, NOW - 2000)).toBe(false); // our cut ended before it came back
});

test("a gap from a node just back resyncs when we were cut off after it came back (the loss is ours)", () => {
  expect(gapResyncs(NOW - 6000, NOW, NOW - 50)).toBe(true);
});
