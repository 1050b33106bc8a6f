// Turns argv + env into validated Settings, or one clear error line.

import { authEnabled, loadPublicKey } from "../auth/verifier.ts";
import { loadTls, tlsEnabled } from "./tls.ts";
import { settingHelp, type SettingKey, type Settings, settingsSchema } from "./schema.ts";

const keys = Object.keys(settingHelp) as SettingKey[];
const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
const snake = (k: string) => "IRIS_" + k.replace(/[A-Z]/g, (c) => "_" + c).toUpperCase();
const byFlag = new Map(keys.map((k) => [kebab(k), k]));
const booleanKeys = new Set<SettingKey>([
  "insecure",
  "allowV0",
  "chaos",
  "autoTune",
  "dryRun",
  "json",
  "help",
  "version",
]);

export class ConfigError extends Error {}

/** Parses `--key value`, `--key=value` and bare boolean flags. Unknown flags are errors. */
export function parseArgs(argv: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "-h") {
      out.help = true;
      continue;
    }
    if (arg === "-v") {
      out.version = true;
      continue;
    }
    if (!arg.startsWith("--")) throw new ConfigError(`unexpected argument '${arg}' (flags start with --; see --help)`);
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const key = byFlag.get(name);
    if (!key) throw new ConfigError(`unknown flag --${name} (see --help)`);
    if (eq >= 0) out[key] = arg.slice(eq + 1);
    else if (booleanKeys.has(key)) out[key] = true;
    else {
      const v = argv[i + 1];
      if (v === undefined || v.startsWith("--")) throw new ConfigError(`--${name} needs a value`);
      out[key] = v;
      i++;
    }
  }
  return out;
}

export function readEnv(env: Record<string, string | undefined>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    const v = env[snake(k)];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Flags beat env vars. Returns settings plus the keys the operator set explicitly. */
export function loadSettings(
  argv: string[],
  env: Record<string, string | undefined>,
): { settings: Settings; explicit: Set<SettingKey> } {
  const merged = { ...readEnv(env), ...parseArgs(argv) };
  const parsed = settingsSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0] ?? "");
    const where = key ? `--${kebab(key)} (${snake(key)})` : "settings";
    const allowed = key && key in settingHelp ? `; expected: ${settingHelp[key as SettingKey]}` : "";
    throw new ConfigError(`invalid ${where}: ${issue.message}${allowed}`);
  }
  const settings = parsed.data;
  if (!isLoopback(settings.host) && !authEnabled(settings) && !settings.insecure) {
    throw new ConfigError(
      `refusing to bind non-loopback address ${settings.host} without auth: set --jwt-secret (IRIS_JWT_SECRET), --jwt-public-key or --jwks-url, or pass --insecure`,
    );
  }
  if (!settings.tlsCert !== !settings.tlsKey) {
    throw new ConfigError("invalid --tls-cert/--tls-key (IRIS_TLS_CERT/IRIS_TLS_KEY): give both or neither");
  }
  if (tlsEnabled(settings)) {
    try {
      loadTls(settings);
    } catch (e) {
      throw new ConfigError(`invalid --tls-cert/--tls-key: ${(e as Error).message}`);
    }
  }
  if (settings.jwtPublicKey) {
    try {
      loadPublicKey(settings.jwtPublicKey);
    } catch (e) {
      throw new ConfigError(`invalid --jwt-public-key (IRIS_JWT_PUBLIC_KEY): ${(e as Error).message}`);
    }
  }
  return { settings, explicit: new Set(Object.keys(merged) as SettingKey[]) };
}

export function helpText(version: string): string {
  const lines = [
    `iris ${version}: WebSocket messaging appliance`,
    "",
    "usage: iris [flags]   (every flag also reads IRIS_<NAME> from the environment)",
    "       iris backup --data-dir <dir> --out <file>   (consistent copy while iris runs)",
    "",
  ];
  for (const k of keys) {
    const flag = `--${kebab(k)}${booleanKeys.has(k) ? "" : " <v>"}`;
    lines.push(`  ${flag.padEnd(26)} ${settingHelp[k]}`);
  }
  return lines.join("\n");
}
