import { describe, expect, test } from "bun:test";
import { ConnTable, SLOT_STRIDE } from "../../src/gateway/conn-table.ts";

const open = (t: ConnTable<{ conn: number }>) => {
  const s = { conn: t.nextNumber() };
  t.add(s);
  return s;
};

describe("ConnTable", () => {
  test("numbers the first connections 1, 2, 3 and finds them", () => {
    const t = new ConnTable<{ conn: number }>();
    const [a, b, c] = [open(t), open(t), open(t)];
    expect([a.conn, b.conn, c.conn]).toEqual([1, 2, 3]);
    expect(t.get(2)).toBe(b);
    expect(t.get(0)).toBeUndefined();
    expect(t.get(4)).toBeUndefined();
    expect(t.size).toBe(3);
  });

  test("a reused slot gets a new number; the old number finds nothing and deletes nothing", () => {
    const t = new ConnTable<{ conn: number }>();
    const a = open(t);
    open(t);
    expect(t.delete(a.conn)).toBe(true);
    expect(t.delete(a.conn)).toBe(false);
    const reused = open(t);
    expect(reused.conn).toBe(SLOT_STRIDE + 1);
    expect(t.get(a.conn)).toBeUndefined();
    expect(t.delete(a.conn)).toBe(false);
    expect(t.get(reused.conn)).toBe(reused);
    expect(t.size).toBe(2);
  });

  test("numbers stay unique over many opens and closes, against a Map model", () => {
    const t = new ConnTable<{ conn: number }>();
    const model = new Map<number, { conn: number }>();
    const seen = new Set<number>();
    let x = 7;
    for (let i = 0; i < 20_000; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      if (x % 3 !== 0 || model.size === 0) {
        const s = open(t);
        expect(seen.has(s.conn)).toBe(false);
        seen.add(s.conn);
        model.set(s.conn, s);
      } else {
        const keys = [...model.keys()];
        const k = keys[x % keys.length]!;
        model.delete(k);
        expect(t.delete(k)).toBe(true);
      }
      if (i % 1000 === 0) {
        expect(t.size).toBe(model.size);
        expect(new Set(t.values())).toEqual(new Set(model.values()));
        for (const [k, v] of model) expect(t.get(k)).toBe(v);
      }
    }
  });

  test("deleting while walking visits every other entry once", () => {
    const t = new ConnTable<{ conn: number }>();
    const all = Array.from({ length: 10 }, () => open(t));
    const walked: number[] = [];
    for (const s of t.values()) {
      walked.push(s.conn);
      t.delete(s.conn);
    }
    expect(walked).toEqual(all.map((s) => s.conn));
    expect(t.size).toBe(0);
  });

  test("add refuses a session that does not carry the next number", () => {
    const t = new ConnTable<{ conn: number }>();
    expect(() => t.add({ conn: 5 })).toThrow(/not the next number/);
  });
});
