// The server a message scenario measures: dist/iris (per shard count), the baseline relay, or an
// external server given by --url / --tcp (loopback only; its pid via --pid for CPU and RSS).

import { type Ctx, noteIris, stopServer } from "./context.ts";
import type { Target } from "./loadgen-protocol.ts";
import { startBaseline, startIris } from "./server.ts";

export interface TargetRun {
  label: string;
  kind: "iris" | "baseline" | "external";
  shards: number | null;
  target: Target;
  pid: number | null;
  http: string | null;
  stop(): Promise<void>;
}

export async function startTarget(
  ctx: Ctx,
  kind: "iris" | "baseline",
  shards: number | null,
  extraArgs: string[] = [],
): Promise<TargetRun> {
  const s = kind === "iris"
    ? await startIris({ binary: ctx.args.binary ?? undefined, shards, args: extraArgs })
    : await startBaseline(extraArgs);
  const label = kind === "iris"
    ? `iris shards=${shards ?? "default"}`
    : `baseline relay${extraArgs.length ? ` ${extraArgs.join(" ")}` : ""}`;
  if (kind === "iris") noteIris(ctx, s);
  ctx.log(`${label} ready on ${s.http} in ${Math.round(s.readyLineMs)} ms (pid ${s.pid})`);
  return {
    label,
    kind,
    shards,
    target: { kind: "ws", url: s.url },
    pid: s.pid,
    http: s.http,
    stop: async () => void (await stopServer(ctx, s, label)),
  };
}

/** The server named by --url / --tcp; nothing is started or stopped. */
export function externalTarget(ctx: Ctx): TargetRun {
  const a = ctx.args;
  const target: Target = a.tcp ? { kind: "tcp", host: a.tcp.host, port: a.tcp.port } : { kind: "ws", url: a.url! };
  const http = a.url ? a.url.replace(/^ws:/, "http:").replace(/\/ws\/?$/, "").replace(/\/$/, "") : null;
  return {
    label: a.tcp ? `external tcp ${a.tcp.host}:${a.tcp.port}` : `external ${a.url}`,
    kind: "external",
    shards: null,
    target,
    pid: a.pid,
    http,
    stop: async () => {},
  };
}

export function isExternal(ctx: Ctx): boolean {
  return ctx.args.url !== null || ctx.args.tcp !== null;
}
