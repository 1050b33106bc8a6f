// `iris [flags]`: parse and validate settings, probe the machine, plan limits, start the
// supervisor, and shut down gracefully on SIGTERM/SIGINT.

import { mkdirSync } from "node:fs";
import { formatPlanTable, planToJson } from "../tune/format.ts";
import { plan as makePlan } from "../tune/plan.ts";
import { probe } from "../tune/probe.ts";
import { reexecWithEnv } from "../tune/reexec.ts";
import { ConfigError, helpText, loadSettings } from "./config/load.ts";
import { configureLog, log } from "./observe/log.ts";
import { defaultOwnerLimits } from "./router/owner.ts";
import { startChaosAdmin } from "./chaos/admin.ts";
import { Supervisor } from "./supervisor.ts";
import { VERSION } from "./version.ts";

async function main(): Promise<number> {
  const t0 = performance.now();
  let loaded;
  try {
    loaded = loadSettings(process.argv.slice(2), process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`iris: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const { settings, explicit } = loaded;
  if (settings.help) {
    console.log(helpText(VERSION));
    return 0;
  }
  if (settings.version) {
    console.log(VERSION);
    return 0;
  }
  configureLog(settings.logLevel, "main");

  // The probe is cheap; even without --auto-tune its open-files figure caps connections so the
  // server refuses cleanly (503) instead of failing with EMFILE.
  const machine = await probe();
  const thePlan = makePlan(machine, {
    ...(explicit.has("maxConns") && settings.maxConns ? { maxConnections: settings.maxConns } : {}),
    ...(explicit.has("shards") && settings.shards ? { shards: settings.shards } : {}),
    ...(explicit.has("batchRows") ? { storeMaxRows: settings.batchRows } : {}),
    ...(explicit.has("flushMs") ? { storeFlushMs: settings.flushMs } : {}),
  });
  if (settings.autoTune && !settings.dryRun) {
    // The heap settings only take effect at process start: become a fresh copy of ourselves once.
    const why = reexecWithEnv(thePlan.heapEnv);
    if (why) log.warn("heap budget not applied", { reason: why });
  }
  if (settings.autoTune || settings.dryRun) {
    if (settings.dryRun && settings.json) console.log(planToJson(thePlan));
    else console.log(formatPlanTable(thePlan));
    if (settings.dryRun) return 0;
  }
  const auto = settings.autoTune;
  const shards = settings.shards ?? (auto ? thePlan.shards : 1);
  const maxConnections = settings.maxConns ?? (auto ? thePlan.maxConnections : thePlan.fdCapConnections);
  if (auto) {
    if (!explicit.has("flushMs")) settings.flushMs = thePlan.store.flushMs;
    if (!explicit.has("batchRows")) settings.batchRows = thePlan.store.maxRows;
  }
  settings.shards = shards;
  settings.maxConns = maxConnections;

  try {
    mkdirSync(settings.dataDir, { recursive: true });
  } catch (e) {
    console.error(`iris: cannot create --data-dir ${settings.dataDir}: ${(e as Error).message}`);
    return 2;
  }

  const sup = new Supervisor({
    settings,
    spillBytes: settings.spillMb ? settings.spillMb * 1048576 : thePlan.spillBytes,
    refuseBytes: settings.refuseMb ? settings.refuseMb * 1048576 : thePlan.refuseBytes,
    shards,
    maxConnections,
    ownerLimits: {
      ...defaultOwnerLimits,
      maxPending: settings.maxPending,
      slowTimeoutMs: settings.slowConsumerTimeout,
      pendingSpillMs: settings.pendingSpillMs,
    },
    version: VERSION,
  });
  try {
    await sup.start();
  } catch (e) {
    console.error(`iris: failed to start: ${(e as Error).message}`);
    await sup.shutdown().catch(() => {});
    return 1;
  }
  // Chaos endpoints exist only with --chaos, and only on loopback.
  const chaos = settings.chaos ? startChaosAdmin(sup, shards, settings.chaosPort) : null;
  const host = settings.host.includes(":") ? `[${settings.host}]` : settings.host;
  console.log(
    `iris ${VERSION} ready on http://${host}:${sup.port} (ws://${host}:${sup.port}/ws)` +
      (sup.tcpPort ? ` tcp=${sup.tcpPort}` : "") +
      (chaos ? ` chaos=${chaos.port}` : "") +
      ` shards=${shards} max_conns=${maxConnections} startup_ms=${Math.round(performance.now() - t0)}`,
  );

  return await new Promise<number>((resolve) => {
    let signalled = false;
    const stop = (sig: string) => {
      if (signalled) return;
      signalled = true;
      log.info("shutting down", { signal: sig });
      const deadline = setTimeout(() => {
        log.error("shutdown timed out");
        resolve(1);
      }, settings.shutdownTimeout);
      chaos?.stop();
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
  console.error(`iris: fatal: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
