// Property-based fuzzing of every decoder: arbitrary or mutated input either decodes or raises a
// ProtocolError (the session turns that into a typed error frame); nothing else may escape.

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { type ClientFrame, decodeClientMessage, ProtocolError } from "../../src/protocol/index.ts";
import { decodeJsonClient } from "../../src/protocol/json.ts";
import {
  decodeV0Frame,
  encodeV0Batch,
  encodeV0Login,
  encodeV0Send,
  encodeV0StatusQuery,
  V0StreamDecoder,
} from "../../src/protocol/v0.ts";
import { decodeV1Client, encodeV1Client } from "../../src/protocol/v1.ts";

const MAX = 4096;
const onlyProtocolErrors = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
  }
};

const user = fc.string({ minLength: 1, maxLength: 40 });
const body = fc.uint8Array({ maxLength: 300 });
const v1Frame: fc.Arbitrary<ClientFrame> = fc.oneof(
  fc.record({
    op: fc.constant("login" as const),
    user,
    proto: fc.constant("v1" as const),
    token: fc.string({ minLength: 1, maxLength: 100 }),
    resume: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  }),
  fc.record({ op: fc.constant("send" as const), id: fc.string({ maxLength: 60 }), to: user, body }),
  fc.record({ op: fc.constant("ack" as const), seq: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }) }),
  fc.record({ op: fc.constant("status" as const), user }),
  fc.constant({ op: "ping" as const }),
);
const mutate = (b: Uint8Array, flips: [number, number][]) => {
  const out = b.slice();
  for (const [pos, val] of flips) if (out.length) out[pos % out.length] = val;
  return out;
};

describe("fuzz", () => {
  test("arbitrary bytes into every binary decoder", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (b) => {
        onlyProtocolErrors(() => decodeV1Client(b, MAX));
        onlyProtocolErrors(() => decodeV0Frame(b, MAX));
        onlyProtocolErrors(() => decodeClientMessage(b, undefined, MAX));
        onlyProtocolErrors(() => decodeClientMessage(b, "v0", MAX));
        onlyProtocolErrors(() => new V0StreamDecoder(MAX).push(b));
      }),
      { numRuns: 5000 },
    );
  });

  test("arbitrary strings and JSON values into the JSON decoder", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json(),
          fc.jsonValue().map((v) => JSON.stringify({ type: "send", ...(typeof v === "object" ? v : { v }) })),
        ),
        (s) => {
          onlyProtocolErrors(() => decodeJsonClient(s, MAX));
        },
      ),
      { numRuns: 5000 },
    );
  });

  test("v1 frames round-trip, and mutated ones decode or fail cleanly", () => {
    fc.assert(
      fc.property(
        v1Frame,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        (f, flips) => {
          const bytes = encodeV1Client(f);
          expect(decodeV1Client(bytes, MAX)).toEqual(f);
          onlyProtocolErrors(() => decodeV1Client(mutate(bytes, flips), MAX));
          onlyProtocolErrors(() =>
            decodeV1Client(bytes.subarray(0, Math.max(0, bytes.length - 1 - (flips.length % 3))), MAX)
          );
        },
      ),
      { numRuns: 3000 },
    );
  });

  test("a v0 byte stream cut anywhere decodes to the same packets", () => {
    const packet = fc.oneof(
      fc.tuple(user, body).map(([u, b]) => encodeV0Send(u, b)),
      fc.tuple(user, fc.array(body, { maxLength: 4 })).map(([u, bs]) => encodeV0Batch(u, bs)),
      user.map(encodeV0StatusQuery),
    );
    fc.assert(
      fc.property(
        fc.array(packet, { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (packets, cuts) => {
          const stream = new Uint8Array(packets.reduce((n, p) => n + p.length, 0));
          let o = 0;
          for (const p of packets) {
            stream.set(p, o);
            o += p.length;
          }
          const whole = new V0StreamDecoder(MAX).push(stream);
          const points = [...new Set(cuts.map((c) => c % stream.length))].sort((a, b) => a - b);
          const d = new V0StreamDecoder(MAX);
          const parts: ClientFrame[] = [];
          let prev = 0;
          for (const c of [...points, stream.length]) {
            parts.push(...d.push(stream.subarray(prev, c)));
            prev = c;
          }
          expect(parts).toEqual(whole);
          expect(whole.length).toBe(packets.length);
        },
      ),
      { numRuns: 2000 },
    );
  });

  test("mutated v0 logins and sends never throw anything but protocol errors", () => {
    fc.assert(
      fc.property(
        user,
        body,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        (u, b, flips) => {
          onlyProtocolErrors(() => decodeV0Frame(mutate(encodeV0Login(u), flips), MAX));
          onlyProtocolErrors(() => decodeV0Frame(mutate(encodeV0Send(u, b), flips), MAX));
        },
      ),
      { numRuns: 3000 },
    );
  });
});
