// A `remember` and an `append` packed for the port (router/packed-keys.ts, packed-append.ts):
// round trip, and the guard refuses anything the store would throw on (which would roll back a
// whole group commit).

import { describe, expect, test } from "bun:test";
import { packRemember, unpackRemember } from "../../src/router/packed-keys.ts";
import { type AppendReq, isWriterReq, type RememberReq, type StoredRow } from "../../src/router/wire.ts";
import { packAppend, type PackedAppend, unpackAppend } from "../../src/router/packed-append.ts";

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

  test("the guard refuses bad lengths, an empty id, seq < 1, a fractional ts, a short text", () => {
    const p = packRemember({ t: "remember", keys: [req.keys[0]!] });
    const bad = (nums: number[], text = p.text) => isWriterReq({ t: "rememberPacked", text, nums });
    expect(bad(p.nums)).toBe(true); // control: the original numbers pass
    expect(bad([3, 5, 2, 1, 1.5])).toBe(false);
    expect(bad([3, 5, 2, 0, 1])).toBe(false);
    expect(bad([3, 7, 0, 1, 1])).toBe(false);
    expect(bad([3, 5, 2, 1, 1], "bobalice")).toBe(false);
    expect(bad([3, 5, -1, 1, 1])).toBe(false);
    expect(bad([3, 5, 2, 1])).toBe(false);
    expect(isWriterReq({ t: "rememberPacked", text: 5, nums: [] })).toBe(false);
  });
});

describe("packed append", () => {
  const row = (seq: number, recipient = "bob", body = [seq, 0, 255]): StoredRow => ({
    recipient,
    seq,
    sender: `s${seq}`,
    msgId: seq % 2 ? `id-${seq}` : "",
    ts: 1_700_000_000_000 + seq,
    body: new Uint8Array(body),
  });
  const append = (rows: StoredRow[]): AppendReq => ({
    t: "append",
    rows,
    o: rows.map(() => 1),
    c: rows.map((r) => r.seq),
  });

  test("one recipient, ascending seqs: packed, passes the guard, unpacks to the same rows", () => {
    const r = append([row(3), row(4, "bob", []), row(9, "bob", Array.from({ length: 300 }, (_, i) => i & 255))]);
    const p = packAppend(r);
    expect(p.t).toBe("appendPacked");
    expect(isWriterReq(p)).toBe(true);
    const back = unpackAppend(p as PackedAppend);
    expect(back.o).toEqual(r.o);
    expect(back.c).toEqual(r.c);
    expect(back.rows.map((x) => ({ ...x, body: [...x.body] }))).toEqual(
      r.rows.map((x) => ({ ...x, body: [...x.body] })),
    );
  });

  test("anything else goes as it is: two recipients, seqs not ascending, no rows", () => {
    for (
      const r of [append([row(1), row(2, "carol")]), append([row(2), row(1)]), append([row(2), row(2)]), append([])]
    ) {
      expect(packAppend(r)).toBe(r);
    }
  });

  test("the guard refuses o/c of the wrong length, a bad page, a missing recipient", () => {
    const p = packAppend(append([row(1), row(2)])) as PackedAppend;
    expect(isWriterReq({ ...p, o: [1] })).toBe(false);
    expect(isWriterReq({ ...p, c: [1, 1.5] })).toBe(false);
    expect(isWriterReq({ ...p, recipient: 7 })).toBe(false);
    expect(isWriterReq({ ...p, page: { ...p.page, seqs: new Float64Array([2, 1]) } })).toBe(false);
    expect(isWriterReq({ ...p, page: { ...p.page, ends: new Uint32Array([3, 999]) } })).toBe(false);
  });
});
