// `iris [flags]`: parse and validate settings, probe the machine, plan limits, start the
// supervisor, and shut down gracefully on SIGTERM/SIGINT.
//
// Once serving, it prints two lines on stdout: one for people, and one for programs (test, bench
// and chaos launchers): `ready {"port":…,"tcpPort":…,"chaosPort":…,…}`, a JSON object after the
// word "ready".

import { formatPlanTable, planToJson } from "../tune/format.ts";
import { type Plan, plan as makePlan, runtimeEnvOf, startEnvOf } from "../tune/plan.ts";
import { probe, raiseNoFileLimit } from "../tune/probe.ts";
import { reexecWithEnv } from "../tune/reexec.ts";
import { ConfigError, helpText, loadSettings } from "./config/load.ts";
import { planOverrides, type Resolved, resolveSettings } from "./config/resolve.ts";
import type { SettingKey, Settings } from "./config/schema.ts";
import { clusterOptions } from "./cluster/options.ts";
import { describeError } from "./observe/errors.ts";
import { SLOT_MAIN, SlotMetrics } from "./observe/metrics.ts";
import { runBackup } from "./ops/backup.ts";
import { explainStartFailure } from "./ops/datadir.ts";
import { startDiskMonitor } from "./ops/disk.ts";
import { reloadTls, warnIfCleartext } from "./ops/tls-control.ts";
import { tlsEnabled } from "./config/tls.ts";
import { configureLog, installCrashHandler, log } from "./observe/log.ts";
import { startChaosAdmin } from "./chaos/admin.ts";
import type { ReadyInfo } from "./control.ts";
import { startChecks } from "./ops/start-checks.ts";
import { Supervisor } from "./supervisor.ts";
import { VERSION } from "./version.ts";
import { join } from "node:path";

/** Where SIGUSR2's profile reports go, under the data dir (host/thread-profile.ts). */
const PROFILE_DIR = "profiles";

type Exit = number;

async function main(): Promise<Exit> {
  const t0 = performance.now();
  if (process.argv[2] === "backup") return runBackup(process.argv.slice(3), process.env);
  let loaded;
  try {
    loaded = loadSettings(process.argv.slice(2), process.env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    console.error(`iris: ${e.message}`);
    return 2;
  }
  const { settings, explicit } = loaded;
  if (settings.help) return (console.log(helpText(VERSION)), 0);
  if (settings.version) return (console.log(VERSION), 0);
  configureLog(settings.logLevel, "main", settings.logFormat);
  installCrashHandler();
  const thePlan = await planFor(settings, explicit);
  if (thePlan === null) return 0; // --dry-run
  const resolved = resolveSettings(settings, explicit, thePlan);
  // Data dir, lock, database and ports: refused with one line before anything is written.
  const refusal = startChecks(settings);
  if (refusal) {
    console.error(`iris: ${refusal}`);
    return 1;
  }
  try {
    // Cluster mode: every shard must use the same node id, so resolve (or create) it once here.
    if (settings.cluster) resolved.settings.nodeId = clusterOptions(settings)!.nodeId;
  } catch (e) {
    console.error(`iris: --node-id: ${(e as Error).message}`);
    return 2;
  }
  return await serve(resolved, t0);
}

/** Probes and plans; prints the plan under --auto-tune; null when --dry-run ends the run. */
async function planFor(settings: Settings, explicit: Set<SettingKey>): Promise<Plan | null> {
  if (!settings.autoTune && !settings.dryRun) {
    // Runtime settings take effect only at process start: become a fresh copy of ourselves once,
    // before the probe (under --auto-tune they travel with the plan's, below).
    const why = reexecWithEnv(runtimeEnvOf(process.env));
    if (why) log.warn("runtime setting not applied", { reason: why });
  }
  // Soft open-files limit up to the hard one (documented in OPERATIONS.md), before the probe reads it.
  log.debug("open files limit", { soft: raiseNoFileLimit() });
  // The probe is cheap; even without --auto-tune its open-files figure caps connections.
  const thePlan = makePlan(await probe(), planOverrides(settings, explicit));
  if (settings.autoTune && !settings.dryRun) {
    // The heap and allocator settings only take effect at process start: become a fresh copy of
    // ourselves once.
    // The runtime settings yield to the plan's as to the operator's (a plan that keeps the holes
    // leaves nothing for the purge's pace to pace).
    const planned = startEnvOf(thePlan, process.env);
    const why = reexecWithEnv({ ...planned, ...runtimeEnvOf({ ...process.env, ...planned }) });
    if (why) log.warn("heap budget, allocator and runtime settings not applied", { reason: why });
  }
  if (settings.autoTune || settings.dryRun) {
    console.log(settings.dryRun && settings.json ? planToJson(thePlan) : formatPlanTable(thePlan));
  }
  return settings.dryRun ? null : thePlan;
}

async function serve(r: Resolved, t0: number): Promise<Exit> {
  const settings = r.settings;
  const sup = new Supervisor({
    settings,
    spillBytes: r.spillBytes,
    refuseBytes: r.refuseBytes,
    shards: r.shards,
    maxConnections: r.maxConnections,
    ownerLimits: r.ownerLimits,
    version: VERSION,
  });
  const disk = startDiskMonitor(settings.dataDir, settings.minFreeMb, new SlotMetrics(sup.metricsBuf, SLOT_MAIN));
  try {
    await sup.start();
  } catch (e) {
    const why = describeError(e);
    console.error(`iris: ${explainStartFailure(settings.dataDir, why) ?? `failed to start: ${why}`}`);
    disk.stop();
    await sup.shutdown().catch(() => {});
    return 1;
  }
  // Chaos endpoints exist only with --chaos, and only on loopback.
  const chaos = settings.chaos ? startChaosAdmin(sup, r.shards, settings.chaosPort) : null;
  warnIfCleartext(settings);
  process.on("SIGHUP", () => reloadTls(settings, sup));
  process.on("SIGUSR2", () => {
    const dir = join(settings.dataDir, PROFILE_DIR);
    const threads = sup.profile(settings.profileSeconds * 1000, dir);
    log.info("profiling the shards and the writer", { threads, seconds: settings.profileSeconds, dir });
  });
  printReady({
    version: VERSION,
    pid: process.pid,
    host: settings.host,
    tls: tlsEnabled(settings),
    port: sup.port,
    tcpPort: sup.tcpPort ?? null,
    chaosPort: chaos?.port ?? null,
    shards: r.shards,
    maxConns: r.maxConnections,
    startupMs: Math.round(performance.now() - t0),
  });
  return await untilSignalled(sup, settings.shutdownTimeout, () => {
    chaos?.stop();
    disk.stop();
  });
}

function printReady(info: ReadyInfo): void {
  const host = info.host.includes(":") ? `[${info.host}]` : info.host;
  console.log(
    `iris ${info.version} ready on ${info.tls ? "https" : "http"}://${host}:${info.port} ` +
      `(${info.tls ? "wss" : "ws"}://${host}:${info.port}/ws)` +
      (info.tcpPort ? ` tcp=${info.tcpPort}` : "") +
      (info.chaosPort ? ` chaos=${info.chaosPort}` : "") +
      ` shards=${info.shards} max_conns=${info.maxConns} startup_ms=${info.startupMs}`,
  );
  console.log(`ready ${JSON.stringify(info)}`);
}

/** Serves until SIGTERM/SIGINT, then shuts down gracefully within the timeout. */
function untilSignalled(sup: Supervisor, timeoutMs: number, beforeStop: () => void): Promise<Exit> {
  return new Promise<Exit>((resolve) => {
    let signalled = false;
    const stop = (sig: string) => {
      if (signalled) return;
      signalled = true;
      log.info("shutting down", { signal: sig });
      const deadline = setTimeout(() => {
        log.error("shutdown timed out");
        resolve(1);
      }, timeoutMs);
      beforeStop();
      sup.shutdown().then(() => {
        clearTimeout(deadline);
        log.info("stopped cleanly");
        resolve(0);
      });
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  });
}

main().then((code) => process.exit(code), (e) => {
  console.error(`iris: fatal: ${describeError(e)}`);
  process.exit(1);
});
