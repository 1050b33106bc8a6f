// One offline user's backlog for the drain tools (drain-threads, profile-drain): fill it through
// Iris with four v1 senders, then log that user in and drain it, over v0 TCP or v1 WebSocket.

import type { LoadGen } from "./loadgen.ts";
import type { Target } from "./loadgen-protocol.ts";
import type { ServerProc } from "./server.ts";

/** Senders filling the backlog; `n` is rounded down to a multiple of this. */
const FILL_SENDERS = 4;
/** Payload bytes of every backlog message. */
const PAYLOAD = 64;

export type DrainProto = "v0" | "v1" | "v1b";

/** Stores `n` messages (rounded down to a multiple of 4) for offline `user`; returns the count. */
export async function fillBacklog(lg: LoadGen, s: ServerProc, user: string, nWanted: number): Promise<number> {
  const n = Math.floor(nWanted / FILL_SENDERS) * FILL_SENDERS;
  const users = [...Array(FILL_SENDERS).keys()].map((i) => `${user}-sender-${i}`);
  const o = await lg.open(0, {
    target: { kind: "ws", url: s.url },
    proto: "v1",
    users,
    concurrency: FILL_SENDERS,
    timeoutMs: 20_000,
    payload: PAYLOAD,
  });
  await lg.run(0, {
    groups: [{
      name: "fill",
      senders: users.map((_, i) => ({ c: o.firstIndex + i, to: [user] })),
      mode: { kind: "window", window: 128, ackOn: "sent" },
      quota: n / FILL_SENDERS,
    }],
    startAt: Date.now() + 100,
    warmupMs: 0,
    measureMs: 300_000,
    drainMs: 30_000,
    payload: PAYLOAD,
  });
  return n;
}

/** Logs `user` in (v0 over TCP, v1 over WebSocket, v1b with bundles) and waits for all `n` messages. */
export function drainBacklog(lg: LoadGen, s: ServerProc, proto: DrainProto, user: string, n: number) {
  const target: Target = proto === "v0"
    ? { kind: "tcp", host: "127.0.0.1", port: s.tcpPort! }
    : { kind: "ws", url: s.url };
  return lg.drain(0, {
    target,
    proto: proto === "v0" ? "v0" : "v1",
    bundles: proto === "v1b",
    users: [user],
    expect: n,
    timeoutMs: 60_000,
    payload: PAYLOAD,
  });
}
