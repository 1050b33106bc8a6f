// The session's flow control and back-pressure, driven frame by frame with a recording host and a
// transport whose send buffer the test sets.

import { beforeEach, describe, expect, test } from "bun:test";
import { defaultSettings, type Settings } from "../../src/config/schema.ts";
import { SLOT_MAIN, SlotMetrics } from "../../src/observe/metrics.ts";
import { Pressure } from "../../src/observe/signals.ts";
import { decodeJsonServer, encodeJsonClient } from "../../src/protocol/json.ts";
import type { ClientFrame, ServerFrame } from "../../src/protocol/frames.ts";
import type { Session, Sessions } from "../../src/gateway/session.ts";
import { testSessions } from "../helpers/sessions.ts";
import type { Transport } from "../../src/gateway/transports.ts";
import type { DeliverMsg, PortMsg } from "../../src/router/wire.ts";
import { FLOW_RECHECK_FIRST_MS, PAGE_FLOW_RESUME_BYTES } from "../../src/limits.ts";

const SLOW = 1000;
let posted: PortMsg[];
let main: SlotMetrics;
let shard: SlotMetrics;
let sessions: Sessions;

class FakeTransport implements Transport {
  frames: ServerFrame[] = [];
  raw: (string | Uint8Array)[] = [];
  buffer = 0;
  closed: { code: number; reason: string } | null = null;
  send(d: string | Uint8Array): number {
    this.raw.push(d);
    if (typeof d === "string") this.frames.push(decodeJsonServer(d));
    return 1;
  }
  getBufferedAmount(): number {
    return this.buffer;
  }
  close(code: number, reason: string): void {
    this.closed = { code, reason };
  }
  paused = false;
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
}

function setup(over: Partial<Settings> = {}): void {
  posted = [];
  const settings = { ...defaultSettings, slowConsumerBytes: SLOW, slowConsumerTimeout: 100, ...over };
  const made = testSessions((_k, m) => posted.push(m), { settings });
  sessions = made.sessions;
  shard = made.metrics;
  main = new SlotMetrics(made.buf, SLOT_MAIN);
  main.set("ready", 1);
}

const json = (s: Session, f: ClientFrame) => sessions.onData(s, encodeJsonClient(f));
function loggedIn(user = "bob"): { s: Session; t: FakeTransport } {
  const t = new FakeTransport();
  const s = sessions.open(t, false);
  json(s, { op: "login", user, proto: "json" });
  posted = [];
  return { s, t };
}
const deliver = (s: Session, seqs: number[], page: boolean, user = "bob"): void =>
  sessions.handle(
    {
      t: "deliver",
      user,
      conn: s.conn,
      page,
      items: seqs.map((seq) => ({ seq, ts: 1, from: "a", id: `m${seq}`, body: new Uint8Array([seq]), t0: 0 })),
    } satisfies DeliverMsg,
  );
/** Replies to a logged-in v1/JSON connection leave at the end of the turn (gateway/outbox.ts). */
const turnEnd = () => new Promise<void>((r) => setImmediate(r));
const flows = () => posted.flatMap((m) => (m.t === "flow" ? [m.ready] : []));

beforeEach(() => setup());

describe("session flow control", () => {
  test("a page written to a clear socket is answered with one flow-ready at once", () => {
    const { s, t } = loggedIn();
    deliver(s, [1, 2], true);
    expect(t.frames.filter((f) => f.op === "deliver").length).toBe(2);
    expect(flows()).toEqual([true]);
  });

  test("a page written to a backed-up socket owes its flow-ready until the socket drains", () => {
    const { s, t } = loggedIn();
    t.buffer = SLOW + 1;
    deliver(s, [1], true);
    expect(flows()).toEqual([]);
    expect(s.flow).toBe("owed");
    sessions.onDrain(s); // still above half the limit: keep waiting
    expect(flows()).toEqual([]);
    t.buffer = SLOW / 2;
    sessions.onDrain(s);
    expect(flows()).toEqual([true]);
    expect(s.flow).toBe("clear");
  });

  test("a page that leaves the socket holding more than PAGE_FLOW_RESUME_BYTES answers when it drains to that", () => {
    setup({ slowConsumerBytes: 4 * PAGE_FLOW_RESUME_BYTES });
    const { s, t } = loggedIn();
    t.buffer = PAGE_FLOW_RESUME_BYTES + 1; // below the slow-consumer limit: not owed, not timed
    deliver(s, [1], true);
    expect(flows()).toEqual([]);
    expect(s.flow).toBe("page");
    sessions.onDrain(s);
    expect(flows()).toEqual([]);
    t.buffer = PAGE_FLOW_RESUME_BYTES;
    sessions.onDrain(s);
    expect(flows()).toEqual([true]);
    expect(s.flow).toBe("clear");
    sessions.onDrain(s);
    expect(flows()).toEqual([true]); // one flow-ready per page
    // A live write to a drained socket while the page's flow waits also releases it.
    t.buffer = PAGE_FLOW_RESUME_BYTES + 1;
    deliver(s, [2], true);
    t.buffer = 0;
    deliver(s, [3], false);
    expect(flows()).toEqual([true, true]);
  });

  test("a flow whose drain event never comes is released by housekeeping once the socket has drained", () => {
    setup({ slowConsumerBytes: 4 * PAGE_FLOW_RESUME_BYTES });
    const { s, t } = loggedIn();
    t.buffer = PAGE_FLOW_RESUME_BYTES + 1;
    deliver(s, [1], true);
    sessions.housekeeping(); // still above: keep waiting
    expect(flows()).toEqual([]);
    t.buffer = 0; // drained, and no drain event
    sessions.housekeeping();
    expect([flows(), s.flow]).toEqual([[true], "clear"]);
    t.buffer = 4 * PAGE_FLOW_RESUME_BYTES + 1; // a live write backs it up: owed
    deliver(s, [2], false);
    t.buffer = 0;
    sessions.housekeeping();
    expect([flows(), s.flow, t.closed]).toEqual([[true, false, true], "clear", null]);
  });

  // Bun sends no drain event when a client's message uncorks the socket and that write empties its
  // buffer (notes/hot-stall.md): a waiting flow polls the buffer itself, soon and then less often.
  test("a page's flow is released within milliseconds when its socket drains without a drain event", async () => {
    setup({ slowConsumerBytes: 4 * PAGE_FLOW_RESUME_BYTES });
    const { s, t } = loggedIn();
    t.buffer = PAGE_FLOW_RESUME_BYTES + 1;
    deliver(s, [1], true);
    await Bun.sleep(10); // re-checked a few times: still above, still waiting
    expect([flows(), s.flow]).toEqual([[], "page"]);
    t.buffer = 0; // drained, and no drain event, no housekeeping
    await Bun.sleep(2 * FLOW_RECHECK_FIRST_MS + 30);
    expect([flows(), s.flow]).toEqual([[true], "clear"]);
  });

  test("an owed flow is re-checked the same way, and a closed connection's re-check stops", async () => {
    const { s, t } = loggedIn();
    t.buffer = SLOW + 1;
    deliver(s, [1], false);
    t.buffer = SLOW / 2;
    await Bun.sleep(40);
    expect([flows(), s.flow]).toEqual([[false, true], "clear"]);
    t.buffer = SLOW + 1;
    deliver(s, [2], false);
    sessions.onClose(s);
    t.buffer = 0;
    await Bun.sleep(40);
    expect(flows()).toEqual([false, true, false]);
  });

  test("a live write that backs the socket up says not-ready once, then ready after the drain", () => {
    const { s, t } = loggedIn();
    t.buffer = SLOW + 1;
    deliver(s, [1], false);
    deliver(s, [2], false);
    expect(flows()).toEqual([false]);
    t.buffer = 0;
    sessions.onDrain(s);
    expect(flows()).toEqual([false, true]);
  });

  test("a socket backed up past the slow-consumer timeout is closed with 4003", async () => {
    const { s, t } = loggedIn();
    t.buffer = SLOW + 1;
    deliver(s, [1], false);
    sessions.housekeeping();
    expect(t.closed).toBeNull();
    await Bun.sleep(120);
    sessions.housekeeping();
    expect(t.closed?.code).toBe(4003);
    expect(s.state).toBe("closing");
  });

  test("v0 deliveries are acked to the owner as written (the seed's rule)", () => {
    const t = new FakeTransport();
    const s = sessions.open(t, true);
    sessions.onData(s, new Uint8Array([0x01, ...new TextEncoder().encode("bob")]));
    posted = [];
    deliver(s, [5, 6], true);
    expect(posted.filter((m) => m.t === "ack")).toEqual([{ t: "ack", user: "bob", shard: 0, conn: s.conn, seq: 6 }]);
  });
});

describe("session back-pressure", () => {
  test("while the store is behind, v1 sends still go to their owner: it refuses only those it would store", async () => {
    // 1 MiB holds 170 waiting messages at BACKLOG_ROW_OVERHEAD_BYTES (6 KiB) each: 200 are past it
    // (observe/signals.ts storeBehind; the owner's refusal is tests/unit/ops-store-full.test.ts).
    setup({ storeBacklogMb: 1 });
    const { s, t } = loggedIn("alice");
    shard.set("storeBacklogBytes", 200 * 100);
    shard.set("storeBacklogRows", 200);
    json(s, { op: "send", to: "bob", id: "x1", body: new Uint8Array([1]) });
    await turnEnd();
    expect(posted.filter((m) => m.t === "route").length).toBe(1);
    expect(t.frames.some((f) => f.op === "error")).toBe(false);
  });

  test("sends are refused with SERVER_BUSY above the refuse watermark, and the heaviest sender is shed", async () => {
    const { s, t } = loggedIn("alice");
    main.set("memPressure", Pressure.REFUSE);
    json(s, { op: "send", to: "bob", id: "x2", body: new Uint8Array([1]) });
    await turnEnd();
    expect(t.frames.at(-1)).toMatchObject({ op: "error", code: "SERVER_BUSY", id: "x2" });
    sessions.housekeeping();
    expect(t.closed?.code).toBe(1013);
  });

  test("past its frame burst a connection is closed, never silently thinned", () => {
    setup({ rateFrames: 2 });
    const { s, t } = loggedIn("alice");
    for (let i = 0; i < 10 && !t.closed; i++) json(s, { op: "ping" });
    expect(t.closed?.code).toBe(1008);
    expect(t.frames.at(-1)).toMatchObject({ op: "error", code: "RATE_LIMITED" });
  });

  test("frames after the close are not read", async () => {
    const { s, t } = loggedIn("alice");
    json(s, { op: "login", user: "x\u0001", proto: "json" }); // a second login is refused, not fatal
    await turnEnd();
    expect(t.frames.at(-1)).toMatchObject({ op: "error", code: "ALREADY_LOGGED_IN" });
    sessions.onData(s, "{not json");
    expect(t.closed?.code).toBe(1007);
    const written = t.raw.length;
    posted = [];
    sessions.onData(s, new Uint8Array([0xff]));
    expect(t.closed?.code).toBe(1007); // the second bad frame is not even decoded
    expect(t.raw.length).toBe(written);
    json(s, { op: "send", to: "bob", id: "late", body: new Uint8Array([1]) });
    expect(posted).toEqual([]);
  });
});

describe("seed (v0) connections", () => {
  const enc = new TextEncoder();
  const v0Login = (u: string) => new Uint8Array([0x01, ...enc.encode(u)]);
  const v0Send = (to: string, msg: string): number[] => {
    const t = enc.encode(to);
    const m = enc.encode(msg);
    return [0x02, t.length >> 8, t.length & 255, ...t, m.length >> 8, m.length & 255, ...m];
  };
  const v0Batch = (to: string, msgs: string[]): number[] => {
    const t = enc.encode(to);
    const blob = msgs.flatMap((x) => [0, x.length, ...enc.encode(x)]);
    return [0x04, 0, t.length, ...t, 0, 0, 0, blob.length, ...blob];
  };
  const routed = () => posted.flatMap((m) => (m.t === "route" ? [new TextDecoder().decode(m.body)] : []));
  function v0Session(user = "tx"): { s: Session; t: FakeTransport } {
    const t = new FakeTransport();
    const s = sessions.open(t, true);
    sessions.onData(s, v0Login(user));
    posted = [];
    return { s, t };
  }

  test("a second login switches the connection: LOGIN_OK, detach of the old user, attach of the new", () => {
    const { s, t } = v0Session("first");
    sessions.onData(s, v0Login("second"));
    expect(s.state).toBe("open");
    expect(s.user).toBe("second");
    expect(posted.map((m) => `${m.t}:${"user" in m ? m.user : ""}`)).toEqual(["detach:first", "attach:second"]);
    expect(t.raw.filter((r) => new TextDecoder().decode(r as Uint8Array) === "\x03LOGIN_OK").length).toBe(2);
    // Deliveries still addressed to the previous user are not written (its owner stores them).
    deliver(s, [1], true, "first");
    expect(t.raw.length).toBe(2);
  });

  test("a switch orders as a new login: stamped when read, after sockets opened before it", () => {
    const { s } = v0Session("first");
    const later = sessions.open(new FakeTransport(), true); // opened after s, before the switch
    sessions.onData(s, v0Login("second"));
    const attach = posted.find((m) => m.t === "attach");
    expect(attach?.t === "attach" && attach.opened).toBeGreaterThan(later.opened);
  });

  test("over the message rate a v0 sender is paused, never dropped, and resumes in order", async () => {
    // 100/s: a token every 10 ms, so a pause between the two reads below (a loaded machine) does not refill one.
    setup({ rateMsgs: 100, rateBurst: 2 });
    const { s, t } = v0Session();
    sessions.onData(s, new Uint8Array([...v0Send("rx", "a"), ...v0Send("rx", "b"), ...v0Send("rx", "c")]));
    sessions.onData(s, new Uint8Array(v0Batch("rx", ["d", "e", "f"])));
    expect(routed()).toEqual(["a", "b"]);
    expect(t.paused).toBe(true);
    expect(shard.get("v0Pauses")).toBe(1);
    for (let i = 0; i < 200 && t.paused; i++) {
      await Bun.sleep(5);
      sessions.retryPaused();
    }
    expect(routed()).toEqual(["a", "b", "c", "d", "e", "f"]);
    expect(t.paused).toBe(false);
    expect(t.closed).toBeNull();
  });

  test("a v0 sender waits when the messages waiting for the store weigh past the budget, though their bytes do not", () => {
    setup({ storeBacklogMb: 1 });
    const { s, t } = v0Session();
    shard.set("storeBacklogBytes", 200 * 100);
    shard.set("storeBacklogRows", 200); // 200 x 6 KiB > 1 MiB
    sessions.onData(s, new Uint8Array([...v0Send("rx", "1")]));
    expect(routed()).toEqual([]);
    expect(t.paused).toBe(true);
    shard.set("storeBacklogBytes", 100 * 100);
    shard.set("storeBacklogRows", 100);
    sessions.retryPaused();
    expect(routed()).toEqual(["1"]);
  });

  test("while the disk is full, v0 sends wait (socket paused): the owner could neither store nor refuse them", () => {
    const { s, t } = v0Session();
    main.set("storeFull", 1);
    sessions.onData(s, new Uint8Array([...v0Send("rx", "1")]));
    expect(routed()).toEqual([]);
    expect(t.paused).toBe(true);
    main.set("storeFull", 0);
    sessions.retryPaused();
    expect(routed()).toEqual(["1"]);
    expect(t.paused).toBe(false);
  });

  test("while the store is behind, v0 sends wait (socket paused) instead of vanishing", () => {
    setup({ storeBacklogMb: 1 });
    const { s, t } = v0Session();
    shard.set("storeBacklogBytes", 2 * 1048576);
    sessions.onData(s, new Uint8Array([...v0Send("rx", "1"), ...v0Send("rx", "2")]));
    expect(routed()).toEqual([]);
    expect(t.paused).toBe(true);
    sessions.retryPaused();
    expect(routed()).toEqual([]);
    shard.set("storeBacklogBytes", 0);
    sessions.retryPaused();
    expect(routed()).toEqual(["1", "2"]);
    expect(t.paused).toBe(false);
  });

  test("over the frame rate a v0 connection is paused, not closed", () => {
    setup({ rateFrames: 1 });
    const { s, t } = v0Session();
    for (let i = 0; i < 5; i++) sessions.onData(s, new Uint8Array(v0Send("rx", `${i}`)));
    expect(t.closed).toBeNull();
    expect(t.paused).toBe(true);
    expect(routed().length).toBeLessThan(5);
  });

  test("an invalid target closes with 4005, counted; a full inbox closes with 4004, counted", () => {
    const a = v0Session("a");
    sessions.onData(a.s, new Uint8Array(v0Send("", "x")));
    expect(a.t.closed).toEqual({ code: 4005, reason: "invalid target: user id is empty" });
    expect(shard.get("v0BadTargetCloses")).toBe(1);
    const b = v0Session("b");
    sessions.onData(b.s, new Uint8Array(v0Send("full", "x")));
    const r = posted.find((m) => m.t === "route")!;
    expect(r.t === "route" && r.o).toBe(-2); // refusals only, to shard 0
    sessions.handle({ t: "sendError", conn: b.s.conn, id: "", code: "INBOX_FULL", reason: "inbox of full is full" });
    expect(b.t.closed).toEqual({ code: 4004, reason: "inbox of full is full" });
    expect(shard.get("v0InboxFullCloses")).toBe(1);
  });

  test("a status query for an invalid user is answered offline, never seen, without asking an owner", () => {
    const { s, t } = v0Session();
    sessions.onData(s, new Uint8Array([0x05, 0, 0]));
    expect(t.raw.at(-1)).toEqual(new Uint8Array([0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    expect(posted).toEqual([]);
  });
});

describe("cluster: an owner that dropped a link", () => {
  beforeEach(() => setup());

  test("re-attach there if our view still names it (its view flapped); else stay, and never close", () => {
    const { s, t } = loggedIn("bob");
    sessions.handle({ t: "evict", user: "bob", conn: s.conn, why: "moved", owner: 7 }); // our view: shard 0
    expect(posted).toEqual([]);
    sessions.handle({ t: "evict", user: "bob", conn: s.conn, why: "moved", owner: 0 });
    expect(posted).toEqual([{
      t: "attach",
      user: "bob",
      shard: 0,
      conn: s.conn,
      v0: false,
      resume: 0,
      re: true,
      opened: s.opened,
    }]);
    expect(t.closed).toBeNull();
  });
});

// Seed 84184 shape (docs/CLUSTER.md): a closing session that attached again raced its client's new
// login on another node; arriving after it at the owner, it evicted the new connection "replaced",
// and the SDK gives up after REPLACED: nothing more reached that recipient, not even a re-login.
describe("cluster: a closing session never attaches again", () => {
  beforeEach(() => setup());

  test("re-placement, an owner's restart or a dropped link send no attach for a connection being closed", () => {
    const { s, t } = loggedIn("bob");
    sessions.resyncOwnedBy(0); // messages from bob's owner were lost: bob reconnects (its close under way)
    expect(t.closed).not.toBeNull();
    posted = [];
    sessions.reattachMoved(() => true);
    sessions.reattachOwnedBy(0);
    sessions.handle({ t: "evict", user: "bob", conn: s.conn, why: "moved", owner: 0 });
    expect(posted.filter((m) => m.t === "attach")).toEqual([]);
    sessions.onClose(s); // the close completes: the owner hears the detach as before
    expect(posted).toEqual([{ t: "detach", user: "bob", shard: 0, conn: s.conn }]);
  });
});

describe("cluster: routes lost on the way to an owner (cluster/route-gap.ts)", () => {
  beforeEach(() => setup());

  test("connections with a send unanswered close; the answer follows every route sent before it", () => {
    const a = loggedIn("alice"), c = loggedIn("carol"); // one shard: every user's owner is shard 0
    json(a.s, { op: "send", to: "bob", id: "x1", body: new Uint8Array([1]) });
    json(c.s, { op: "send", to: "bob", id: "y1", body: new Uint8Array([1]) });
    sessions.handle({ t: "sent", conn: c.s.conn, id: "y1", status: "stored" }); // carol's send was answered
    posted = [];
    sessions.handle({ t: "routesLost", owner: 0 });
    expect(a.t.closed?.reason).toContain("messages lost between cluster nodes");
    expect(c.t.closed).toBeNull();
    expect(posted.at(-1)).toEqual({ t: "routesResumed", shard: 0 });
    // Another owner's loss closes nobody here.
    posted = [];
    sessions.handle({ t: "routesLost", owner: 5 });
    expect(c.t.closed).toBeNull();
    expect(posted).toEqual([{ t: "routesResumed", shard: 0 }]);
  });

  test("a re-attach says so; a login's attach does not (router/reattach-rule.ts)", () => {
    const t = new FakeTransport();
    const s = sessions.open(t, false);
    json(s, { op: "login", user: "bob", proto: "json" });
    expect(posted.find((m) => m.t === "attach")).toEqual({
      t: "attach",
      user: "bob",
      shard: 0,
      conn: s.conn,
      v0: false,
      resume: 0,
      opened: s.opened,
    });
    posted = [];
    sessions.reattachMoved(() => true);
    sessions.reattachOwnedBy(0);
    sessions.handle({ t: "evict", user: "bob", conn: s.conn, why: "moved", owner: 0 });
    const attaches = posted.filter((m) => m.t === "attach");
    expect(attaches.length).toBe(3);
    expect(attaches.every((m) => m.t === "attach" && m.re === true)).toBe(true);
  });

  test("sessions are stamped in open order on the process's clock (router/login-order.ts)", () => {
    const a = sessions.open(new FakeTransport(), false);
    const b = sessions.open(new FakeTransport(), false);
    expect(b.opened).toBeGreaterThan(a.opened);
  });
});

/** Sessions of one socket shard in a cluster: recipients' owners by `ownerOf`, posts recorded. */
function clusterSessions(ownerOf: () => number, routable?: (k: number) => boolean): void {
  posted = [];
  sessions = testSessions((_k, m) => posted.push(m), { ownerOf, ...(routable ? { routable } : {}) }).sessions;
}

describe("cluster: no owner known for a recipient", () => {
  test("a send is refused in order (SERVER_BUSY), not posted nowhere; once an owner is known it goes", async () => {
    let known = false;
    clusterSessions(() => (known ? 0 : -1));
    const { s, t } = loggedIn("alice");
    json(s, { op: "send", to: "bob", id: "x1", body: new Uint8Array([1]) });
    json(s, { op: "send", to: "bob", id: "x2", body: new Uint8Array([1]) });
    await turnEnd();
    expect(posted.filter((m) => m.t === "route")).toEqual([]);
    expect(t.frames.filter((f) => f.op === "error").map((f) => f.op === "error" && [f.id, f.code])).toEqual([
      ["x1", "SERVER_BUSY"],
      ["x2", "SERVER_BUSY"],
    ]);
    known = true;
    json(s, { op: "send", to: "bob", id: "x2", body: new Uint8Array([1]) }); // fenced behind x1
    json(s, { op: "send", to: "bob", id: "x1", body: new Uint8Array([1]) });
    json(s, { op: "send", to: "bob", id: "x2", body: new Uint8Array([1]) });
    expect(posted.filter((m) => m.t === "route").map((m) => m.t === "route" && m.id)).toEqual(["x1", "x2"]);
  });
});

describe("cluster: a recipient's owner on a node that came back (cluster/peer-starts.ts)", () => {
  test("a later send waits for the shard's start: the re-post of earlier unanswered sends goes first", async () => {
    let owner = 2048, started = true; // bob's owner: a shard of another node
    clusterSessions(() => owner, (k) => k !== 1024 || started);
    const { s, t } = loggedIn("alice");
    json(s, { op: "send", to: "bob", id: "x1", body: new Uint8Array([1]) }); // to 2048, which dies: unanswered
    // bob moves back to shard 1024, whose node restarts: our view has it before that shard runs.
    owner = 1024;
    started = false;
    sessions.reattachMoved(() => true); // this re-post of x1 may be lost (nobody there yet)
    posted = [];
    json(s, { op: "send", to: "bob", id: "x2", body: new Uint8Array([1]) });
    await turnEnd();
    // The shard says it started: x1 goes again, and only then may x2 (its retry) follow.
    started = true;
    sessions.reattachOwnedBy(1024);
    json(s, { op: "send", to: "bob", id: "x2", body: new Uint8Array([1]) });
    const routes = posted.filter((m) => m.t === "route").map((m) => m.t === "route" && [m.id, m.to]);
    expect(routes).toEqual([["x1", "bob"], ["x2", "bob"]]);
    expect(t.frames.filter((f) => f.op === "error").map((f) => f.op === "error" && [f.id, f.code])).toEqual([
      ["x2", "SERVER_BUSY"],
    ]);
  });
});

describe("cluster: re-posts wait behind refused sends (refusal-fence.ts holdBack)", () => {
  test("at a move, a send received after one the owner refused is refused, not re-posted; an earlier one goes", async () => {
    let owner = 2048;
    clusterSessions(() => owner);
    const { s, t } = loggedIn("alice");
    for (const id of ["m1", "m2", "m3"]) json(s, { op: "send", to: "bob", id, body: new Uint8Array([1]) });
    await turnEnd();
    // The owner (cut off) refuses m2; m1 and m3 are still unanswered there.
    sessions.handle({ t: "sendError", conn: s.conn, id: "m2", code: "SERVER_BUSY", reason: "moving" });
    owner = 1024;
    posted = [];
    sessions.reattachMoved(() => true);
    // m1 came before m2 and goes to the new owner; m3 must wait for m2's retry (the SDK sends it
    // only once m3 is answered, so numbered now m3 would come first).
    expect(posted.filter((m) => m.t === "route").map((m) => m.t === "route" && m.id)).toEqual(["m1"]);
    await turnEnd();
    expect(t.frames.filter((f) => f.op === "error").map((f) => f.op === "error" && [f.id, f.code])).toEqual([
      ["m2", "SERVER_BUSY"],
      ["m3", "SERVER_BUSY"],
    ]);
    // The retries come back in order: m2 passes, then m3.
    posted = [];
    json(s, { op: "send", to: "bob", id: "m3", body: new Uint8Array([1]) });
    json(s, { op: "send", to: "bob", id: "m2", body: new Uint8Array([1]) });
    json(s, { op: "send", to: "bob", id: "m3", body: new Uint8Array([1]) });
    expect(posted.filter((m) => m.t === "route").map((m) => m.t === "route" && m.id)).toEqual(["m2", "m3"]);
  });
});

describe("send chains swept a slice at a time (Sessions.sweepChains)", () => {
  beforeEach(() => setup());

  test("each connection is swept once per `slices` calls; one closed meanwhile is skipped", () => {
    const SLICES = 4;
    const conns = Array.from({ length: 10 }, (_, i) => loggedIn(`u${i}`));
    for (const c of conns) {
      json(c.s, { op: "send", to: "zed", id: `x${c.s.conn}`, body: new Uint8Array([1]) });
      sessions.handle({ t: "sent", conn: c.s.conn, id: `x${c.s.conn}`, status: "delivered" });
    }
    // Answered and not resendable: each chain keeps only its newest id, until its sweep.
    expect(conns.every((c) => c.s.chain?.size === 1)).toBe(true);
    sessions.onClose(conns[5]!.s);
    const swept: number[] = [];
    for (let k = 0; k < SLICES; k++) {
      sessions.sweepChains(SLICES);
      swept.push(conns.filter((c, i) => i !== 5 && c.s.chain === null).length);
    }
    // Slots 1..10 (slot end 11): three per call, so 3, 6, 9 and then the wrap's empty last slice.
    expect(swept).toEqual([3, 5, 8, 9]);
    // The next round starts from the first slot again.
    json(conns[0]!.s, { op: "send", to: "zed", id: "again", body: new Uint8Array([1]) });
    sessions.handle({ t: "sent", conn: conns[0]!.s.conn, id: "again", status: "delivered" });
    expect(conns[0]!.s.chain?.size).toBe(1);
    sessions.sweepChains(SLICES);
    expect(conns[0]!.s.chain).toBeNull();
  });
});
