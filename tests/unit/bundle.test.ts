// v1 bundles (issue 14): the login flag, the bundle codecs both ways, and the session's output
// coalescing. A v1 login without the flag must see exactly the frames it saw before.

import { beforeEach, describe, expect, test } from "bun:test";
import { decodeClientMessage, ProtocolError, type ServerFrame } from "../../src/protocol/index.ts";
import {
  decodeV1Client,
  decodeV1Server,
  decodeV1ServerMessage,
  encodeV1Client,
  encodeV1Server,
} from "../../src/protocol/v1.ts";
import {
  encodeDeliveries,
  serverFrameLength,
  splitServerBundle,
  utf8Length,
  V1_BUNDLE_CLIENT,
  V1_BUNDLE_SERVER,
  V1_FLAG_BUNDLE,
} from "../../src/protocol/v1-bundle.ts";
import type { Session, Sessions } from "../../src/gateway/session.ts";
import { testSessions } from "../helpers/sessions.ts";
import type { Transport } from "../../src/gateway/transports.ts";
import type { PortMsg, SentMsg } from "../../src/router/wire.ts";
import { FrameBatcher } from "../../src/client/batcher.ts";

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return (e as ProtocolError).code;
  }
  return "no error";
};
const cat = (...parts: Uint8Array[]) => new Uint8Array(parts.flatMap((p) => [...p]));

describe("v1 bundle codec", () => {
  test("a login without flags is the original frame; with flags it decodes them", () => {
    const plain = encodeV1Client({ op: "login", user: "al", proto: "v1", resume: 5 });
    expect(plain.byteLength).toBe(1 + 1 + 1 + 2 + 2 + 8); // op, version, str8, empty str16, resume
    expect(decodeV1Client(plain, 100)).toEqual({ op: "login", user: "al", proto: "v1", resume: 5 });
    const flagged = encodeV1Client({ op: "login", user: "al", proto: "v1", flags: V1_FLAG_BUNDLE });
    expect(flagged.byteLength).toBe(plain.byteLength + 1);
    expect(decodeV1Client(flagged, 100)).toEqual({ op: "login", user: "al", proto: "v1", flags: 1 });
    expect(code(() => decodeV1Client(cat(flagged, new Uint8Array([0])), 100))).toBe("BAD_FRAME");
  });

  test("LOGIN_OK carries flags and the largest frame only when asked", () => {
    const plain = encodeV1Server({ op: "login_ok", user: "al", now: 7 });
    expect(plain.byteLength).toBe(1 + 3 + 8);
    expect(decodeV1Server(plain)).toEqual({ op: "login_ok", user: "al", now: 7 });
    const granted: ServerFrame = { op: "login_ok", user: "al", now: 7, flags: 1, maxFrame: 66560 };
    expect(decodeV1Server(encodeV1Server(granted))).toEqual(granted);
  });

  test("client bundles are read only when granted, in order, and never hold a login or a bundle", () => {
    const send = encodeV1Client({ op: "send", id: "m1", to: "bob", body: new Uint8Array([1, 2]) });
    const ack = encodeV1Client({ op: "ack", seq: 9 });
    const ping = encodeV1Client({ op: "ping" });
    const bundle = cat(new Uint8Array([V1_BUNDLE_CLIENT]), send, ack, ping);
    expect(code(() => decodeClientMessage(bundle, "v1", 100))).toBe("UNKNOWN_OP"); // not granted
    expect(decodeClientMessage(bundle, "v1", 100, true).map((f) => f.op)).toEqual(["send", "ack", "ping"]);
    const login = encodeV1Client({ op: "login", user: "x", proto: "v1" });
    const bad = [
      new Uint8Array([V1_BUNDLE_CLIENT]), // empty
      cat(new Uint8Array([V1_BUNDLE_CLIENT]), send.subarray(0, send.byteLength - 1)), // truncated
      cat(new Uint8Array([V1_BUNDLE_CLIENT]), ack, login),
      cat(new Uint8Array([V1_BUNDLE_CLIENT]), new Uint8Array([V1_BUNDLE_CLIENT]), ack),
    ];
    for (const b of bad) expect(code(() => decodeClientMessage(b, "v1", 100, true))).toBe("BAD_FRAME");
    // A body over the limit inside a bundle is refused like a plain SEND's.
    const big = encodeV1Client({ op: "send", id: "m", to: "b", body: new Uint8Array(200) });
    expect(code(() => decodeClientMessage(cat(new Uint8Array([0x26]), big), "v1", 100, true))).toBe(
      "PAYLOAD_TOO_LARGE",
    );
  });

  test("deliveries encode as the same DELIVER frames, one alone and many in a bundle", () => {
    const items = [
      { seq: 1, ts: 2 ** 41 + 3, from: "ália", id: "id-😀", body: new Uint8Array([9]) },
      { seq: 2 ** 40, ts: 5, from: "b", id: "", body: new Uint8Array(300).fill(7) },
      { seq: 3, ts: 6, from: "c".repeat(255), id: "x", body: new Uint8Array(0) },
    ];
    const one = encodeDeliveries(items, 0, 1);
    const d0 = items[0]!;
    expect(one).toEqual(encodeV1Server({ op: "deliver", ...d0 }));
    const many = encodeDeliveries(items, 0, 3);
    expect(many[0]).toBe(V1_BUNDLE_SERVER);
    expect(decodeV1ServerMessage(many)).toEqual(items.map((d) => ({ op: "deliver", ...d })));
    expect(utf8Length("ália😀")).toBe(new TextEncoder().encode("ália😀").byteLength);
  });

  test("every server frame's length is read from its own fields", () => {
    const frames: ServerFrame[] = [
      { op: "deliver", seq: 1, ts: 2, from: "a", id: "i", body: new Uint8Array(70000) },
      { op: "sent", id: "m-1", status: "stored" },
      { op: "status", user: "bob", online: true, lastSeen: 3 },
      { op: "error", code: "BAD_USER", reason: "no such", id: "m" },
      { op: "pong" },
    ];
    const encoded = frames.map(encodeV1Server);
    for (const e of encoded) expect(serverFrameLength(e, 0)).toBe(e.byteLength);
    for (const e of encoded) expect(serverFrameLength(e.subarray(0, e.byteLength - 1), 0)).toBe(-1);
    const bundle = cat(new Uint8Array([V1_BUNDLE_SERVER]), ...encoded);
    expect(decodeV1ServerMessage(bundle)).toEqual(frames);
    expect(() => splitServerBundle(cat(bundle, new Uint8Array([0x41])))).toThrow(ProtocolError);
  });

  test("the client batcher writes one turn's frames as one bundle, split at the server's limit", async () => {
    const written: Uint8Array[] = [];
    const b = new FrameBatcher((m) => written.push(m), V1_BUNDLE_CLIENT, 20);
    const ack = encodeV1Client({ op: "ack", seq: 1 }); // 9 bytes
    b.push(ack);
    b.push(ack);
    b.push(ack); // 1 + 27 > 20: the first two leave now
    expect(written).toHaveLength(1);
    await new Promise<void>((r) => setImmediate(r)); // the turn ends (outbox.ts)
    expect(written.map((w) => w.byteLength)).toEqual([19, 9]); // a lone frame goes as itself
    expect(decodeClientMessage(written[0]!, "v1", 10, true)).toHaveLength(2);
  });
});

// ---- the session: bundled output coalescing, and the unbundled path unchanged ----

class Recorder implements Transport {
  raw: Uint8Array[] = [];
  closed: number | null = null;
  send(d: string | Uint8Array): number {
    this.raw.push(d as Uint8Array);
    return 1;
  }
  getBufferedAmount = () => 0;
  close(c: number): void {
    this.closed = c;
  }
  pause(): void {}
  resume(): void {}
  cork(w: () => void): boolean {
    w();
    return true;
  }
  frames(): ServerFrame[] {
    return this.raw.flatMap((r) => decodeV1ServerMessage(r));
  }
}

let sessions: Sessions;
let posted: PortMsg[];
beforeEach(() => {
  posted = [];
  sessions = testSessions((_k, m) => posted.push(m)).sessions;
});

function login(user: string, flags?: number): { s: Session; t: Recorder } {
  const t = new Recorder();
  const s = sessions.open(t, false);
  sessions.onData(s, encodeV1Client({ op: "login", user, proto: "v1", ...(flags === undefined ? {} : { flags }) }));
  return { s, t };
}
const items = (seqs: number[]) =>
  seqs.map((seq) => ({ seq, ts: 1, from: "a", id: `m${seq}`, body: new Uint8Array([seq]), t0: 0 }));
const deliver = (s: Session, seqs: number[], page: boolean) =>
  sessions.handle({ t: "deliver", user: s.user!, conn: s.conn, page, items: items(seqs) });
const sent = (s: Session, id: string) =>
  sessions.handle({ t: "sent", conn: s.conn, id, status: "stored" } satisfies SentMsg);

describe("session with bundles", () => {
  test("LOGIN_OK grants the flag; a page is one message; a turn's live frames are one message", async () => {
    const { s, t } = login("bob", V1_FLAG_BUNDLE | 0x80);
    expect(t.frames()[0]).toMatchObject({ op: "login_ok", flags: V1_FLAG_BUNDLE, maxFrame: 65536 + 1024 });
    t.raw = [];
    deliver(s, [1, 2, 3], true);
    expect(t.raw).toHaveLength(1);
    deliver(s, [4], false);
    sent(s, "x1");
    deliver(s, [5], false);
    expect(t.raw).toHaveLength(1); // queued until the turn ends
    await new Promise<void>((r) => setImmediate(r)); // the turn ends (outbox.ts)
    expect(t.raw).toHaveLength(2);
    expect(t.frames().map((f) => (f.op === "deliver" ? f.seq : f.op))).toEqual([1, 2, 3, 4, "sent", 5]);
  });

  test("a client bundle's sends and ack run in order", () => {
    const { s } = login("carol", V1_FLAG_BUNDLE);
    posted = [];
    const send = (id: string) => encodeV1Client({ op: "send", id, to: "dave", body: new Uint8Array([1]) });
    sessions.onData(
      s,
      cat(new Uint8Array([V1_BUNDLE_CLIENT]), send("a"), send("b"), encodeV1Client({ op: "ack", seq: 4 })),
    );
    expect(posted.map((m) => (m.t === "route" ? m.id : m.t))).toEqual(["a", "b", "ack"]);
  });

  test("a close writes what the turn queued, then the error frame", () => {
    const { s, t } = login("erin", V1_FLAG_BUNDLE);
    t.raw = [];
    deliver(s, [7], false);
    sessions.handle({ t: "evict", user: "erin", conn: s.conn, why: "admin" });
    expect(t.frames().map((f) => f.op)).toEqual(["deliver", "error"]);
    expect(t.closed).toBe(4006);
  });

  test("without the flag every frame is its own message, byte for byte as before", async () => {
    const { s, t } = login("fred");
    expect(t.raw[0]!.byteLength).toBe(1 + 1 + 4 + 8); // the original LOGIN_OK
    t.raw = [];
    deliver(s, [1, 2], true);
    deliver(s, [3], false);
    sent(s, "y");
    await new Promise<void>((r) => setImmediate(r)); // the turn ends (outbox.ts)
    expect(t.raw.map((r) => r[0])).toEqual([0x42, 0x42, 0x42, 0x43]);
    const d = t.raw[2]!;
    expect(d).toEqual(encodeV1Server({ op: "deliver", seq: 3, ts: 1, from: "a", id: "m3", body: new Uint8Array([3]) }));
    expect(code(() => decodeClientMessage(new Uint8Array([V1_BUNDLE_CLIENT, 0x25]), "v1", 10))).toBe("UNKNOWN_OP");
  });
});
