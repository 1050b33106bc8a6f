// Each send's predecessor to the same recipient on one connection (gateway/send-chain.ts), driven
// the way the session drives it: a send read is linked, then in flight (the session's map of
// unanswered routes, each with its link), then refused for now, or answered.

import { describe, expect, test } from "bun:test";
import { type InFlight, SendChain, SETTLED_KEEP_MS } from "../../src/gateway/send-chain.ts";

function connection() {
  const chain = new SendChain();
  const flying = new Map<string, InFlight>();
  return {
    chain,
    flying,
    /** Read and routed: its link, as the route carries it. */
    send(to: string, id: string): string {
      const p = chain.link(to, id, flying);
      if (!flying.has(id)) flying.set(id, p ? { to, p } : { to });
      return p;
    },
    /** Read and refused by the session itself (a fence, the rate): never in flight. */
    refusedAtRead(to: string, id: string): string {
      const p = chain.link(to, id, flying);
      chain.refusedForNow(id, p ? { to, p } : { to });
      return p;
    },
    /** Refused for now by its owner (the client logged in ORDERED). */
    refused(id: string): void {
      chain.refusedForNow(id, flying.get(id)!);
      flying.delete(id);
    },
    answered(id: string, resendable = false, now = 0): void {
      chain.settled(id, resendable, now);
      flying.delete(id);
    },
  };
}

describe("send chain", () => {
  test("a new send is linked to the newest open send to the same recipient, not to other recipients'", () => {
    const c = connection();
    expect(c.send("r", "a1")).toBe("");
    expect(c.send("s", "b1")).toBe("");
    expect(c.send("r", "a2")).toBe("a1");
    expect(c.send("s", "b2")).toBe("b1");
    expect(c.send("r", "a3")).toBe("a2");
  });

  test("an answered send is no longer waited for; a send after it is unlinked", () => {
    const c = connection();
    c.send("r", "a1");
    c.send("r", "a2");
    c.answered("a2");
    expect(c.send("r", "a3")).toBe(""); // a2 was taken: a1, if open, was taken before it
    c.answered("a1");
    c.answered("a3");
    expect(c.send("r", "a4")).toBe("");
  });

  test("a refused send stays open: its retry keeps its link, and later sends stay linked to it", () => {
    const c = connection();
    c.send("r", "a1");
    expect(c.send("r", "a2")).toBe("a1");
    expect(c.send("r", "a3")).toBe("a2");
    c.refused("a2");
    c.refused("a3");
    expect(c.send("r", "a4")).toBe("a3"); // written before the client read the refusals
    expect(c.send("r", "a2")).toBe("a1"); // a2's retry, while a1 is unanswered
    c.answered("a1");
    expect(c.chain.prevOf("a2", c.flying)).toBe(""); // a1 taken: a2 waits for nothing
    expect(c.chain.prevOf("a3", c.flying)).toBe("a2");
    c.answered("a2");
    expect(c.send("r", "a3")).toBe("");
  });

  test("a send the session refused before routing it is held with its link", () => {
    const c = connection();
    c.send("r", "a1");
    expect(c.refusedAtRead("r", "a2")).toBe("a1");
    expect(c.send("r", "a3")).toBe("a2");
    expect(c.send("r", "a2")).toBe("a1"); // the retry
  });

  test("a send refused for good leaves the chain; sends linked to it are unlinked when resent", () => {
    const c = connection();
    c.send("r", "a1");
    c.send("r", "a2");
    c.answered("a1", true); // e.g. INBOX_FULL
    expect(c.chain.prevOf("a2", c.flying)).toBe("");
    expect(c.send("r", "a2")).toBe("");
  });

  test("a resend of an answered send is not the newest: the next send stays linked to the open one", () => {
    // The chaos shape: a1 answered slowly (its ack still on its way to the client), a2 and a3
    // open (refused at the owner), the client resends a1 and sends a4: a4 must wait for a3.
    const c = connection();
    c.send("r", "a1");
    c.send("r", "a2");
    c.send("r", "a3");
    c.refused("a2");
    c.refused("a3");
    c.answered("a1", true);
    expect(c.send("r", "a1")).toBe("");
    expect(c.send("r", "a4")).toBe("a3");
  });

  test("a send refused before is remembered once answered, however fast; one answered at once is not", () => {
    const c = connection();
    c.send("r", "a1");
    c.refused("a1");
    c.send("r", "a1"); // its retry
    c.answered("a1"); // fast, but it was held
    c.send("r", "a2");
    c.answered("a2"); // fast, never refused: the client never resends it
    c.send("r", "a3");
    expect(c.send("r", "a1")).toBe(""); // a late copy of a1: not the newest
    expect(c.send("r", "a4")).toBe("a3");
  });

  test("answered sends are forgotten SETTLED_KEEP_MS after their answer; then the chain is empty", () => {
    const c = connection();
    c.send("r", "a1");
    c.send("r", "a2");
    c.answered("a1", true, 1000);
    c.answered("a2", true, 5000);
    c.chain.sweep(1000 + SETTLED_KEEP_MS + 1, c.flying);
    expect(c.chain.size).toBe(1);
    c.chain.sweep(5000 + SETTLED_KEEP_MS + 1, c.flying);
    expect(c.chain.size).toBe(0);
  });

  test("a send answered again counts from its last answer; the sweep still forgets every older one", () => {
    const c = connection();
    for (const id of ["a1", "a2", "a3"]) c.send("r", id);
    c.answered("a1", true, 1000);
    c.answered("a2", true, 2000);
    c.send("r", "a1"); // a resend of a1, answered again later
    c.answered("a1", true, 9000);
    c.answered("a3", true, 3000 + SETTLED_KEEP_MS); // answered long after the others
    c.chain.sweep(2000 + SETTLED_KEEP_MS + 1, c.flying); // a2 is past its keep; a1 (9000) and a3 are not
    expect(c.chain.size).toBe(2);
    expect(c.send("r", "a1")).toBe(""); // still remembered: a late copy is not the newest
    c.chain.sweep(9000 + SETTLED_KEEP_MS + 1, c.flying);
    expect(c.chain.size).toBe(1); // a3 only
  });
});
