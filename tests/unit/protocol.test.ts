import { describe, expect, test } from "bun:test";
import { decodeClientMessage, encodeServerFrame, ProtocolError } from "../../src/protocol/index.ts";
import { decodeJsonClient, decodeJsonServer, encodeJsonServer } from "../../src/protocol/json.ts";
import {
  decodeV0Frame,
  decodeV0Status,
  encodeV0Batch,
  encodeV0Login,
  encodeV0Send,
  encodeV0Status,
  encodeV0StatusQuery,
  V0_LOGIN_OK,
  V0StreamDecoder,
} from "../../src/protocol/v0.ts";
import { decodeV1Client, decodeV1Server, encodeV1Client, encodeV1Server } from "../../src/protocol/v1.ts";

const bytes = (...xs: number[]) => new Uint8Array(xs);
const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));
const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    if (e instanceof ProtocolError) return e.code;
    throw e;
  }
  return "no error";
};

describe("v0 (seed) packets, byte for byte", () => {
  test("login reply is 0x03 followed by LOGIN_OK", () => {
    expect([...V0_LOGIN_OK]).toEqual([0x03, ...ascii("LOGIN_OK")]);
  });
  test("encoders produce the seed layouts", () => {
    expect([...encodeV0Login("bob")]).toEqual([0x01, ...ascii("bob")]);
    expect([...encodeV0Send("al", bytes(9, 8, 7))]).toEqual([0x02, 0, 2, ...ascii("al"), 0, 3, 9, 8, 7]);
    expect([...encodeV0Batch("x", [bytes(1), bytes(2, 3)])]).toEqual([
      0x04,
      0,
      1,
      ...ascii("x"),
      0,
      0,
      0,
      7,
      0,
      1,
      1,
      0,
      2,
      2,
      3,
    ]);
    expect([...encodeV0StatusQuery("ann")]).toEqual([0x05, 0, 3, ...ascii("ann")]);
    expect([...encodeV0Status("ann", false, 1_700_000_000_999)]).toEqual([
      0x06,
      0,
      3,
      ...ascii("ann"),
      0,
      0,
      0,
      0,
      0,
      0x65,
      0x53,
      0xf1,
      0x00,
    ]);
    expect([...encodeV0Status("ann", true, 1_700_000_000_999)].slice(-9)).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0]);
  });
  test("status reply decodes back", () => {
    expect(decodeV0Status(encodeV0Status("zoë", false, 5000))).toEqual({
      user: "zoë",
      online: false,
      lastSeenSeconds: 5,
    });
  });
  test("a frame may hold several packets; login and ack take the rest", () => {
    const f = new Uint8Array([...encodeV0Send("a", bytes(1)), ...encodeV0Send("b", bytes(2)), 0x03, 1, 2, 3]);
    const out = decodeV0Frame(f, 1024);
    expect(out.map((x) => x.op)).toEqual(["send", "send", "ack0"]);
    expect(decodeV0Frame(encodeV0Login("carol"), 1024)).toEqual([{ op: "login", user: "carol", proto: "v0" }]);
  });
  test("batch unpacks items", () => {
    const [f] = decodeV0Frame(encodeV0Batch("t", [bytes(1), bytes(), bytes(2, 3)]), 1024);
    expect(f).toEqual({ op: "batch", to: "t", bodies: [bytes(1), bytes(), bytes(2, 3)] });
  });
  test("truncated, unknown, oversized and invalid UTF-8 are protocol errors", () => {
    expect(code(() => decodeV0Frame(bytes(0x02, 0, 5, 1), 1024))).toBe("BAD_FRAME");
    expect(code(() => decodeV0Frame(bytes(0x09), 1024))).toBe("UNKNOWN_OP");
    expect(code(() => decodeV0Frame(encodeV0Send("a", new Uint8Array(2000)), 1024))).toBe("PAYLOAD_TOO_LARGE");
    expect(code(() => decodeV0Frame(bytes(0x01, 0xff, 0xfe), 1024))).toBe("BAD_FRAME");
    expect(code(() => decodeV0Frame(bytes(0x04, 0, 1, 0x61, 0, 0, 0, 3, 0, 5, 1), 1024))).toBe("BAD_FRAME");
  });
});

describe("v0 TCP stream framing", () => {
  test("a packet split across reads is assembled", () => {
    const d = new V0StreamDecoder(1024);
    const p = encodeV0Send("target", bytes(1, 2, 3, 4, 5));
    for (let cut = 1; cut < p.length; cut++) {
      expect(d.push(p.subarray(0, cut))).toEqual([]);
      const out = d.push(p.subarray(cut));
      expect(out).toEqual([{ op: "send", to: "target", id: "", body: bytes(1, 2, 3, 4, 5) }]);
      expect(d.buffered).toBe(0);
    }
  });
  test("one read carrying three packets yields three", () => {
    const d = new V0StreamDecoder(1024);
    const joined = new Uint8Array([
      ...encodeV0Send("a", bytes(1)),
      ...encodeV0StatusQuery("b"),
      ...encodeV0Send("c", bytes(3)),
    ]);
    expect(d.push(joined).map((f) => f.op)).toEqual(["send", "status", "send"]);
  });
  test("a hostile declared length fails fast instead of buffering", () => {
    const d = new V0StreamDecoder(1024);
    expect(code(() => d.push(bytes(0x04, 0, 1, 0x61, 0xff, 0xff, 0xff, 0xff)))).toBe("PAYLOAD_TOO_LARGE");
  });
});

describe("v1 binary", () => {
  test("client frames round-trip", () => {
    const frames = [
      { op: "login", user: "ünï", token: "t.o.k", resume: 2 ** 40 + 7, proto: "v1" },
      { op: "login", user: "a", proto: "v1" },
      { op: "send", id: "m-1", to: "bob", body: bytes(0, 255, 7) },
      { op: "ack", seq: 9_007_199_254_740_991 },
      { op: "status", user: "bob" },
      { op: "ping" },
    ] as const;
    for (const f of frames) expect(decodeV1Client(encodeV1Client(f), 1024)).toEqual(f);
  });
  test("server frames round-trip", () => {
    const frames = [
      { op: "login_ok", user: "a", now: 1_700_000_000_000 },
      { op: "deliver", seq: 5, ts: 6, from: "x", id: "y", body: bytes(1) },
      { op: "sent", id: "m", status: "stored" },
      { op: "status", user: "u", online: true, lastSeen: 12 },
      { op: "error", code: "INBOX_FULL", reason: "full", id: "m" },
      { op: "pong" },
    ] as const;
    for (const f of frames) expect(decodeV1Server(encodeV1Server(f))).toEqual(f);
  });
  test("trailing bytes, truncation, versions and sizes are checked", () => {
    const ok = encodeV1Client({ op: "ack", seq: 1 });
    expect(code(() => decodeV1Client(new Uint8Array([...ok, 0]), 1024))).toBe("BAD_FRAME");
    expect(code(() => decodeV1Client(ok.subarray(0, 5), 1024))).toBe("BAD_FRAME");
    expect(code(() => decodeV1Client(bytes(0x21, 9), 1024))).toBe("UNSUPPORTED");
    const big = encodeV1Client({ op: "send", id: "i", to: "t", body: new Uint8Array(2048) });
    expect(code(() => decodeV1Client(big, 1024))).toBe("PAYLOAD_TOO_LARGE");
    expect(code(() => decodeV1Client(bytes(0x2f), 1024))).toBe("UNKNOWN_OP");
  });
});

describe("JSON frames", () => {
  test("valid frames decode", () => {
    expect(decodeJsonClient('{"type":"send","id":"1","to":"b","body":"hi"}', 100)).toEqual({
      op: "send",
      id: "1",
      to: "b",
      body: new TextEncoder().encode("hi"),
    });
    expect(decodeJsonClient('{"type":"send","id":"1","to":"b","bodyB64":"AAE="}', 100).op).toBe("send");
    expect(decodeJsonClient('{"type":"login","user":"u","resume":3}', 100)).toEqual({
      op: "login",
      user: "u",
      resume: 3,
      proto: "json",
    });
  });
  test("invalid frames name the problem", () => {
    expect(code(() => decodeJsonClient("{nope", 100))).toBe("BAD_FRAME");
    expect(code(() => decodeJsonClient('{"type":"fly"}', 100))).toBe("UNKNOWN_OP");
    expect(code(() => decodeJsonClient('{"type":"ack","seq":-1}', 100))).toBe("BAD_FRAME");
    expect(code(() => decodeJsonClient('{"type":"send","id":"1","to":"b"}', 100))).toBe("BAD_FRAME");
    expect(code(() => decodeJsonClient('{"type":"send","id":"1","to":"b","body":"' + "x".repeat(101) + '"}', 100)))
      .toBe("PAYLOAD_TOO_LARGE");
    expect(code(() => decodeJsonClient('{"type":"ping","extra":1}', 100))).toBe("BAD_FRAME");
  });
  test("binary bodies reach JSON clients as base64", () => {
    const t = encodeJsonServer({ op: "deliver", seq: 1, ts: 2, from: "a", id: "b", body: bytes(0xff, 0xfe) });
    expect(JSON.parse(t).bodyB64).toBe("//4=");
    expect(decodeJsonServer(t)).toEqual({ op: "deliver", seq: 1, ts: 2, from: "a", id: "b", body: bytes(0xff, 0xfe) });
  });
});

describe("session-level decode", () => {
  test("first byte picks the protocol; text frames are refused on v0", () => {
    expect(decodeClientMessage(encodeV0Login("a"), undefined, 100)[0]!.op).toBe("login");
    expect(decodeClientMessage(encodeV1Client({ op: "ping" }), undefined, 100)[0]!.op).toBe("ping");
    expect(code(() => decodeClientMessage('{"type":"ping"}', "v0", 100))).toBe("UNSUPPORTED");
    expect(code(() => decodeClientMessage(bytes(), undefined, 100))).toBe("BAD_FRAME");
  });
  test("v0 connections get raw bodies and no acks", () => {
    expect(encodeServerFrame({ op: "deliver", seq: 1, ts: 1, from: "a", id: "", body: bytes(4, 5) }, "v0")).toEqual(
      bytes(4, 5),
    );
    expect(encodeServerFrame({ op: "sent", id: "x", status: "stored" }, "v0")).toBeNull();
  });
});

describe("user ids", () => {
  test("the 255-byte limit is on UTF-8 bytes, at the boundary", async () => {
    const { userIdProblem } = await import("../../src/protocol/frames.ts");
    expect(userIdProblem("x".repeat(255))).toBeNull();
    expect(userIdProblem("x".repeat(256))).toContain("255 bytes");
    expect(userIdProblem("é".repeat(127))).toBeNull(); // 254 bytes
    expect(userIdProblem("é".repeat(128))).toContain("255 bytes"); // 256 bytes
    expect(userIdProblem("a\u0007")).toContain("control");
  });
});
