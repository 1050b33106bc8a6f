// The writer's reused page buffer (router/frame-page.ts PageScratch, issue 14): pages built over one
// scratch are byte for byte the pages built without it, a page sent earlier never changes when the
// next page fills the same scratch, and the scratch holds one bounded buffer.

import { describe, expect, test } from "bun:test";
import { PageScratch } from "../../src/router/frame-page.ts";
import { framePageOf } from "../../src/store/writer.ts";
import { deliverHead } from "../../src/protocol/v1-bundle.ts";
import type { FrameRow } from "../../src/store/inbox-log.ts";

/** `n` rows from seq `first`, stored with heads, bodies filled with `fill`, `size` bytes each. */
function rows(first: number, n: number, size: number, fill: number): FrameRow[] {
  return Array.from({ length: n }, (_, i) => {
    const seq = first + i;
    const body = new Uint8Array(size).fill(fill);
    return [seq, deliverHead(seq, 1000 + seq, "alice", `m${seq}`, size), body, null, null, null];
  });
}

describe("page scratch", () => {
  test("pages over a shared scratch equal fresh ones and never alias it", () => {
    const scratch = new PageScratch(1 << 22);
    const a = framePageOf(rows(1, 300, 500, 1), 300, 1 << 20, scratch);
    const aBytes = [...a.frames.frames];
    expect(aBytes).toEqual([...framePageOf(rows(1, 300, 500, 1), 300, 1 << 20).frames.frames]);
    // The next pages fill the same scratch (bigger, then smaller, then growing past it).
    const b = framePageOf(rows(301, 50, 9000, 2), 50, 1 << 20, scratch);
    const c = framePageOf(rows(351, 10, 10, 3), 10, 1 << 20, scratch);
    const d = framePageOf(rows(361, 250, 20_000, 4), 250, 1 << 23, scratch);
    expect([...a.frames.frames]).toEqual(aBytes);
    expect([...b.frames.frames]).toEqual([...framePageOf(rows(301, 50, 9000, 2), 50, 1 << 20).frames.frames]);
    expect([...c.frames.frames]).toEqual([...framePageOf(rows(351, 10, 10, 3), 10, 1 << 20).frames.frames]);
    expect(d.frames.frames.byteLength).toBeGreaterThan(1 << 22);
    expect(d.frames.frames.buffer.byteLength).toBe(d.frames.frames.byteLength); // trimmed: a transfer sends only it
  });

  test("lends the kept buffer again, grows it when too small, and keeps none over its bound", () => {
    const s = new PageScratch(1024);
    const first = s.lend(100);
    s.keep(first);
    expect(s.lend(50)).toBe(first); // the same buffer: no fresh pages to fault in
    s.keep(first);
    const bigger = s.lend(200);
    expect(bigger).not.toBe(first);
    expect(bigger.byteLength).toBe(200);
    s.keep(bigger);
    expect(s.heldBytes).toBe(200);
    s.keep(s.lend(4096)); // over the bound: dropped
    expect(s.heldBytes).toBe(0);
  });
});
