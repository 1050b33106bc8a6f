// A `remember` packed for the port (router/packed-keys.ts; appends: packed-batch.test.ts):
// round trip, and the guard refuses anything the store would throw on (which would roll back a
// whole group commit).

import { describe, expect, test } from "bun:test";
import { packRemember, unpackRemember } from "../../src/router/packed-keys.ts";
import { sentKeyHash } from "../../src/router/sent-filter.ts";
import { isWriterReq, type RememberReq, type SentKey } from "../../src/router/wire.ts";

/** A key with the hashes an owner routed it with (sentKeyHash), as owners' remembers carry them. */
const hashed = (k: SentKey): SentKey => {
  const [h1, h2] = sentKeyHash(k.recipient, k.sender, k.msgId);
  return { ...k, h1, h2 };
};

const bare: SentKey[] = [
  { recipient: "bob", sender: "alice", msgId: "m1", seq: 1, ts: 1_700_000_000_000 },
  { recipient: "Zoë 🦊", sender: "", msgId: "x\0y", seq: 2 ** 40, ts: 0 },
  { recipient: "bob", sender: "al", msgId: "icem1", seq: 3, ts: 5 }, // same text, other cuts
];
const req: RememberReq = { t: "remember", keys: bare.map(hashed) };

describe("packed remember", () => {
  test("round trip, unicode and NUL included; the packed form passes the port guard", () => {
    const p = packRemember(req);
    expect(typeof p.text).toBe("string");
    expect(isWriterReq(p)).toBe(true);
    expect(unpackRemember(p)).toEqual(req);
    expect(unpackRemember(packRemember({ t: "remember", keys: [] }))).toEqual({ t: "remember", keys: [] });
  });

  test("the hashes a key carries cross as they are; a key without them gets sentKeyHash's", () => {
    const given = { recipient: "bob", sender: "alice", msgId: "m1", seq: 1, ts: 5, h1: 7, h2: -3 };
    expect(unpackRemember(packRemember({ t: "remember", keys: [given] })).keys).toEqual([given]);
    expect(unpackRemember(packRemember({ t: "remember", keys: bare })).keys).toEqual(bare.map(hashed));
  });

  test("a few keys pack into a number[], many into a Float64Array; both round trip", () => {
    const many: RememberReq = {
      t: "remember",
      keys: Array.from(
        { length: 40 },
        (_, i) => hashed({ recipient: `r${i}`, sender: "s", msgId: `m${i}`, seq: i + 1, ts: i }),
      ),
    };
    expect(Array.isArray(packRemember(req).nums)).toBe(true);
    const p = packRemember(many);
    expect(p.nums).toBeInstanceOf(Float64Array);
    expect(isWriterReq(structuredClone(p))).toBe(true);
    expect(unpackRemember(structuredClone(p))).toEqual(many);
  });

  test("the guard refuses bad lengths, an empty id, seq < 1, a fractional ts, a short text, hashes out of range", () => {
    const p = packRemember({ t: "remember", keys: [{ ...req.keys[0]!, h1: 9, h2: -9 }] });
    const bad = (nums: number[], text = p.text) => isWriterReq({ t: "rememberPacked", text, nums });
    expect(bad([...p.nums])).toBe(true); // control: the original numbers pass
    // The column crosses as a number[] or a Float64Array; any other container is refused.
    expect(isWriterReq({ t: "rememberPacked", text: p.text, nums: new Float64Array(p.nums) })).toBe(true);
    expect(isWriterReq({ t: "rememberPacked", text: p.text, nums: new Int32Array(p.nums) })).toBe(false);
    expect(isWriterReq({ t: "rememberPacked", text: p.text, nums: { ...p.nums, length: 7 } })).toBe(false);
    expect(bad([3, 5, 2, 1, 1.5, 9, -9])).toBe(false);
    expect(bad([3, 5, 2, 0, 1, 9, -9])).toBe(false);
    expect(bad([3, 7, 0, 1, 1, 9, -9])).toBe(false);
    expect(bad([3, 5, 2, 1, 1, 9, -9], "bobalice")).toBe(false);
    expect(bad([3, 5, -1, 1, 1, 9, -9])).toBe(false);
    expect(bad([3, 5, 2, 1, 1, 9])).toBe(false);
    expect(bad([3, 5, 2, 1, 1, 2 ** 32 - 1, 2 ** 31 - 1])).toBe(true); // the hashes' largest values
    expect(bad([3, 5, 2, 1, 1, 0, -(2 ** 31)])).toBe(true); // and smallest
    expect(bad([3, 5, 2, 1, 1, -1, 0])).toBe(false);
    expect(bad([3, 5, 2, 1, 1, 2 ** 32, 0])).toBe(false);
    expect(bad([3, 5, 2, 1, 1, 0.5, 0])).toBe(false);
    expect(bad([3, 5, 2, 1, 1, 0, 2 ** 31])).toBe(false);
    expect(bad([3, 5, 2, 1, 1, 0, -(2 ** 31) - 1])).toBe(false);
    expect(bad([3, 5, 2, 1, 1, 0, NaN])).toBe(false);
    expect(isWriterReq({ t: "rememberPacked", text: 5, nums: [] })).toBe(false);
  });
});
