// The SDK persistence hook's pure parts: the saved shape round-trips (binary bodies too), a state
// for another user or version is ignored, and an asynchronous storage gets the newest state only.

import { expect, test } from "bun:test";
import { fromSavedState, type IrisSavedState, SaveQueue, toSavedState, webStorage } from "../../src/client/persist.ts";

const body = new Uint8Array([0, 255, 1, 128]);

test("saved state round-trips: last seq, the newest window of pairs, unacked sends with bytes", () => {
  const keys = ["a\0m1", "b\0m2", "c\0m3"];
  const saved = toSavedState("bob", { lastSeq: 9, seenKeys: keys, unacked: [{ id: "x1", to: "al", body }] }, 2);
  expect(saved.seen).toEqual([["b", "m2"], ["c", "m3"]]);
  const back = JSON.parse(JSON.stringify(saved)); // what a storage really gives back
  expect(fromSavedState(back, "bob")).toEqual({
    lastSeq: 9,
    seenKeys: ["b\0m2", "c\0m3"],
    unacked: [{ id: "x1", to: "al", body }],
  });
});

test("a state for another user, another version, or of the wrong shape is ignored", () => {
  const ok = toSavedState("bob", { lastSeq: 1, seenKeys: [], unacked: [] }, 10);
  expect(fromSavedState(ok, "eve")).toBeNull();
  expect(fromSavedState({ ...ok, v: 2 }, "bob")).toBeNull();
  expect(fromSavedState({ ...ok, lastSeq: "1" }, "bob")).toBeNull();
  expect(fromSavedState({ ...ok, seen: [["a"]] }, "bob")).toBeNull();
  expect(fromSavedState({ ...ok, unacked: [{ id: 1 }] }, "bob")).toBeNull();
  expect(fromSavedState(null, "bob")).toBeNull();
});

test("webStorage keeps JSON under its key; garbage there reads as nothing saved", () => {
  const m = new Map<string, string>();
  const kv = { getItem: (k: string) => m.get(k) ?? null, setItem: (k: string, v: string) => void m.set(k, v) };
  const s = webStorage(kv, "iris:bob");
  expect(s.load()).toBeNull();
  const st = toSavedState("bob", { lastSeq: 3, seenKeys: [], unacked: [] }, 10);
  s.save(st);
  expect(s.load()).toEqual(st);
  m.set("iris:bob", "{not json");
  expect(s.load()).toBeNull();
});

test("an asynchronous storage has one save in flight, then gets the newest state", async () => {
  const written: number[] = [];
  let release: () => void = () => {};
  const storage = {
    load: () => null,
    save: (s: IrisSavedState) =>
      new Promise<void>((r) => {
        written.push(s.lastSeq);
        release = r;
      }),
  };
  const q = new SaveQueue(storage, (e) => {
    throw e;
  });
  const at = (n: number) => () => toSavedState("u", { lastSeq: n, seenKeys: [], unacked: [] }, 1);
  q.save(at(1));
  q.save(at(2));
  q.save(at(3)); // replaces 2 while 1 is in flight
  expect(written).toEqual([1]);
  release();
  await Bun.sleep(0);
  expect(written).toEqual([1, 3]);
});
