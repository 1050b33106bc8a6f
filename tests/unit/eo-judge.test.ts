// The exactly-once checker's arithmetic: it must catch every way a run can go wrong.

import { describe, expect, test } from "bun:test";
import { judge } from "../../chaos/lib/eo-judge.ts";

const sender = (user: string, next: number, acks: string[]) => ({ user, next, acks });
const recipient = (user: string, log: string[]) => ({ user, log });

describe("exactly-once judge", () => {
  test("a clean run", () => {
    const j = judge([sender("a", 3, ["a-0 delivered", "a-1 stored", "a-2 duplicate"])], [
      recipient("r", ["a a-0 1", "a a-1 2", "a a-2 3"]),
    ]);
    expect(j).toMatchObject({ sent: 3, acked: 3, delivered: 3, lost: 0, duplicated: 0, phantom: 0, reordered: 0 });
  });
  test("an acked id nowhere is lost; an unacked one missing is not", () => {
    const j = judge([sender("a", 3, ["a-0 delivered", "a-2 stored"])], [recipient("r", ["a a-0 1"])]);
    expect(j.lost).toBe(1);
    expect(j.missingExamples).toEqual(["a-2"]);
  });
  test("twice in one log, or in two logs, is a duplicate", () => {
    expect(judge([sender("a", 1, ["a-0 stored"])], [recipient("r", ["a a-0 1", "a a-0 2"])]).duplicated).toBe(1);
    expect(
      judge([sender("a", 1, ["a-0 stored"])], [recipient("r", ["a a-0 1"]), recipient("s", ["a a-0 1"])]).duplicated,
    )
      .toBe(1);
  });
  test("an id never handed to the SDK is a phantom; out of order is reordered", () => {
    const j = judge([sender("a", 2, [])], [recipient("r", ["a a-1 1", "a a-0 2", "a a-7 3"])]);
    expect(j.phantom).toBe(1);
    expect(j.reordered).toBe(1);
  });
  test("refusals are counted apart from acks", () => {
    expect(judge([sender("a", 2, ["a-0 error", "a-1 stored"])], [recipient("r", ["a a-1 1"])]).refused).toBe(1);
  });
});
