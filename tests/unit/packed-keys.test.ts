// A `remember` packed for the port (router/packed-keys.ts; appends: packed-batch.test.ts):
// round trip, and the guard refuses anything the store would throw on (which would roll back a
// whole group commit).

import { describe, expect, test } from "bun:test";
import { packRemember, unpackRemember } from "../../src/router/packed-keys.ts";
import { isWriterReq, type RememberReq } from "../../src/router/wire.ts";

const req: RememberReq = {
  t: "remember",
  keys: [
    { recipient: "bob", sender: "alice", msgId: "m1", seq: 1, ts: 1_700_000_000_000 },
    { recipient: "Zoë 🦊", sender: "", msgId: "x\0y", seq: 2 ** 40, ts: 0 },
    { recipient: "bob", sender: "al", msgId: "icem1", seq: 3, ts: 5 }, // same text, other cuts
  ],
};

describe("packed remember", () => {
  test("round trip, unicode and NUL included; the packed form passes the port guard", () => {
    const p = packRemember(req);
    expect(typeof p.text).toBe("string");
    expect(isWriterReq(p)).toBe(true);
    expect(unpackRemember(p)).toEqual(req);
    expect(unpackRemember(packRemember({ t: "remember", keys: [] }))).toEqual({ t: "remember", keys: [] });
  });

  test("a few keys pack into a number[], many into a Float64Array; both round trip", () => {
    const many: RememberReq = {
      t: "remember",
      keys: Array.from(
        { length: 40 },
        (_, i) => ({ recipient: `r${i}`, sender: "s", msgId: `m${i}`, seq: i + 1, ts: i }),
      ),
    };
    expect(Array.isArray(packRemember(req).nums)).toBe(true);
    const p = packRemember(many);
    expect(p.nums).toBeInstanceOf(Float64Array);
    expect(isWriterReq(structuredClone(p))).toBe(true);
    expect(unpackRemember(structuredClone(p))).toEqual(many);
  });

  test("the guard refuses bad lengths, an empty id, seq < 1, a fractional ts, a short text", () => {
    const p = packRemember({ t: "remember", keys: [req.keys[0]!] });
    const bad = (nums: number[], text = p.text) => isWriterReq({ t: "rememberPacked", text, nums });
    expect(bad([...p.nums])).toBe(true); // control: the original numbers pass
    // The column crosses as a number[] or a Float64Array; any other container is refused.
    expect(isWriterReq({ t: "rememberPacked", text: p.text, nums: new Float64Array(p.nums) })).toBe(true);
    expect(isWriterReq({ t: "rememberPacked", text: p.text, nums: new Int32Array(p.nums) })).toBe(false);
    expect(isWriterReq({ t: "rememberPacked", text: p.text, nums: { ...p.nums, length: 5 } })).toBe(false);
    expect(bad([3, 5, 2, 1, 1.5])).toBe(false);
    expect(bad([3, 5, 2, 0, 1])).toBe(false);
    expect(bad([3, 7, 0, 1, 1])).toBe(false);
    expect(bad([3, 5, 2, 1, 1], "bobalice")).toBe(false);
    expect(bad([3, 5, -1, 1, 1])).toBe(false);
    expect(bad([3, 5, 2, 1])).toBe(false);
    expect(isWriterReq({ t: "rememberPacked", text: 5, nums: [] })).toBe(false);
  });
});
