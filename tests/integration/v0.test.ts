// The seed protocol, byte for byte, over WebSocket binary frames and the raw TCP listener.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { IrisClient } from "../../src/client/index.ts";
import {
  decodeV0Status,
  encodeV0Batch,
  encodeV0Login,
  encodeV0Send,
  encodeV0StatusQuery,
  V0_LOGIN_OK,
} from "../../src/protocol/v0.ts";
import { RawSocket } from "../helpers/raw.ts";
import { type RunningServer, startServer, until } from "../helpers/server.ts";

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ args: ["--tcp-port", "0"] });
});
afterAll(async () => {
  await server.stop();
});

const text = (s: string) => new TextEncoder().encode(s);

/** A raw TCP client that collects every byte the server writes. */
async function tcpClient(port: number) {
  let buf = new Uint8Array(0);
  const sock = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, d) {
        const n = new Uint8Array(buf.length + d.length);
        n.set(buf);
        n.set(d, buf.length);
        buf = n;
      },
    },
  });
  return {
    write: (b: Uint8Array) => sock.write(b),
    async read(n: number): Promise<Uint8Array> {
      await until(() => buf.length >= n, `${n} bytes from the server`);
      const out = buf.slice(0, n);
      buf = buf.slice(n);
      return out;
    },
    get pending() {
      return buf.length;
    },
    end: () => sock.end(),
  };
}

describe("v0 over WebSocket", () => {
  test("login, send, raw delivery, status", async () => {
    const a = await RawSocket.open(server.url);
    a.send(encodeV0Login("v0-alice"));
    expect(await a.next()).toEqual(V0_LOGIN_OK);
    const b = await RawSocket.open(`ws://127.0.0.1:${server.port}/`); // seed clients connect to /
    b.send(encodeV0Login("v0-bob"));
    expect(await b.next()).toEqual(V0_LOGIN_OK);
    a.send(encodeV0Send("v0-bob", text("raw bytes")));
    expect(await b.next()).toEqual(text("raw bytes")); // no header, no sender
    a.send(encodeV0Batch("v0-bob", [text("one"), text("two")]));
    expect(await b.next()).toEqual(text("one"));
    expect(await b.next()).toEqual(text("two"));
    a.send(encodeV0StatusQuery("v0-bob"));
    expect(decodeV0Status((await a.next()) as Uint8Array)).toEqual({
      user: "v0-bob",
      online: true,
      lastSeenSeconds: 0,
    });
    b.close();
    await until(async () => {
      a.send(encodeV0StatusQuery("v0-bob"));
      return !decodeV0Status((await a.next()) as Uint8Array).online;
    }, "bob offline");
    a.send(encodeV0StatusQuery("v0-bob"));
    const st = decodeV0Status((await a.next()) as Uint8Array);
    expect(Math.abs(st.lastSeenSeconds - Date.now() / 1000)).toBeLessThan(5);
    a.close();
  });

  test("offline messages reach a v0 client at login, and v1 senders hear delivered", async () => {
    const s = new IrisClient({ url: server.url, user: "v1-sender" });
    await s.connect();
    expect(await s.send("v0-late", "stored-1")).toBe("stored");
    expect(await s.send("v0-late", "stored-2")).toBe("stored");
    const r = await RawSocket.open(server.url);
    r.send(encodeV0Login("v0-late"));
    expect(await r.next()).toEqual(V0_LOGIN_OK);
    expect(await r.next()).toEqual(text("stored-1"));
    expect(await r.next()).toEqual(text("stored-2"));
    expect(await s.send("v0-late", "live")).toBe("delivered");
    expect(await r.next()).toEqual(text("live"));
    s.close();
    r.close();
  });
});

describe("v0 over raw TCP", () => {
  test("a read that splits a packet and a read that joins three", async () => {
    const b = await tcpClient(server.tcpPort!);
    b.write(encodeV0Login("tcp-bob"));
    expect(await b.read(9)).toEqual(V0_LOGIN_OK);
    const a = await tcpClient(server.tcpPort!);
    a.write(encodeV0Login("tcp-alice"));
    expect(await a.read(9)).toEqual(V0_LOGIN_OK);

    const pkt = encodeV0Send("tcp-bob", text("split-packet"));
    a.write(pkt.subarray(0, 5));
    await Bun.sleep(50); // a separate TCP read
    a.write(pkt.subarray(5));
    expect(await b.read(12)).toEqual(text("split-packet"));

    a.write(
      new Uint8Array([
        ...encodeV0Send("tcp-bob", text("A1")),
        ...encodeV0Send("tcp-bob", text("B2")),
        ...encodeV0Send("tcp-bob", text("C3")),
      ]),
    );
    expect(await b.read(6)).toEqual(text("A1B2C3"));
    a.end();
    b.end();
  });

  test("garbage on TCP closes that connection and nothing else", async () => {
    const bad = await tcpClient(server.tcpPort!);
    bad.write(encodeV0Login("tcp-bad"));
    expect(await bad.read(9)).toEqual(V0_LOGIN_OK);
    bad.write(new Uint8Array([0x7f, 1, 2, 3]));
    const ok = await RawSocket.open(server.url);
    ok.send(encodeV0Login("still-fine"));
    expect(await ok.next()).toEqual(V0_LOGIN_OK);
    ok.close();
    expect((await fetch(`${server.http}/healthz`)).status).toBe(200);
  });
});
