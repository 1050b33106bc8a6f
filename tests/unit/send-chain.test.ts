// Each send's predecessor to the same recipient on one connection (gateway/send-chain.ts).

import { describe, expect, test } from "bun:test";
import { CHAIN_MAX, SendChain, SETTLED_KEEP_MS } from "../../src/gateway/send-chain.ts";

describe("send chain", () => {
  test("a new send is linked to the newest open send to the same recipient, not to other recipients'", () => {
    const c = new SendChain();
    expect(c.link("r", "a1")).toBe("");
    expect(c.link("s", "b1")).toBe("");
    expect(c.link("r", "a2")).toBe("a1");
    expect(c.link("s", "b2")).toBe("b1");
    expect(c.link("r", "a3")).toBe("a2");
    expect(c.open).toBe(5);
  });

  test("an answered send is no longer waited for; a send after it is unlinked", () => {
    const c = new SendChain();
    c.link("r", "a1");
    c.link("r", "a2");
    c.settled("a2", 10);
    expect(c.link("r", "a3")).toBe(""); // a2 was taken: a1, if open, was taken before it
    c.settled("a1", 10);
    c.settled("a3", 10);
    expect(c.open).toBe(0);
    expect(c.link("r", "a4")).toBe("");
  });

  test("a refused send stays open: its retry keeps its link, and later sends stay linked to it", () => {
    const c = new SendChain();
    c.link("r", "a1");
    expect(c.link("r", "a2")).toBe("a1"); // a2 refused (retryable): not settled
    expect(c.link("r", "a3")).toBe("a2");
    expect(c.link("r", "a2")).toBe("a1"); // a2's retry, while a1 is unanswered
    c.settled("a1", 10);
    expect(c.link("r", "a2")).toBe(""); // a1 taken: a2's retry waits for nothing
    expect(c.prevOf("a3")).toBe("a2");
    c.settled("a2", 10);
    expect(c.prevOf("a3")).toBe("");
  });

  test("a send refused for good leaves the chain; sends linked to it are unlinked when resent", () => {
    const c = new SendChain();
    c.link("r", "a1");
    c.link("r", "a2");
    c.settled("a1", 10); // e.g. INBOX_FULL
    expect(c.prevOf("a2")).toBe("");
    expect(c.link("r", "a2")).toBe("");
  });

  test("a resend of an answered send is not the newest: the next send stays linked to the open one", () => {
    // The chaos shape: a1 answered (its ack still on its way to the client), a2 and a3 open (a2
    // refused at the owner), the client resends a1 and sends a4: a4 must wait for a3, not for a1.
    const c = new SendChain();
    c.link("r", "a1");
    c.link("r", "a2");
    c.link("r", "a3");
    c.settled("a1", 10);
    expect(c.link("r", "a1")).toBe("");
    expect(c.link("r", "a4")).toBe("a3");
  });

  test("answered sends are forgotten SETTLED_KEEP_MS after their answer; then the chain is empty", () => {
    const c = new SendChain();
    c.link("r", "a1");
    c.link("r", "a2");
    c.settled("a1", 1000);
    c.settled("a2", 5000);
    c.sweep(1000 + SETTLED_KEEP_MS + 1);
    expect(c.size).toBe(1);
    c.sweep(5000 + SETTLED_KEEP_MS + 1);
    expect(c.size).toBe(0);
  });

  test("bounded: past the cap the oldest send is forgotten", () => {
    const c = new SendChain();
    for (let i = 0; i < CHAIN_MAX + 5; i++) c.link("r", `m${i}`);
    expect(c.size).toBe(CHAIN_MAX);
    expect(c.open).toBe(CHAIN_MAX);
    expect(c.prevOf("m5")).toBe(""); // m0 … m4 forgotten
    expect(c.prevOf("m6")).toBe("m5");
  });
});
