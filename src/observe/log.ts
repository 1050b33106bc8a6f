// Minimal leveled logger: one line per event, `time level [where] message key=value`.

export type Level = "debug" | "info" | "warn" | "error";
const rank: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
let threshold = rank.info;
let where = "main";

export function configureLog(level: Level, name: string): void {
  threshold = rank[level];
  where = name;
}

function fmt(v: unknown): string {
  if (typeof v === "string") return /[\s="]/.test(v) ? JSON.stringify(v) : v;
  if (v instanceof Error) return JSON.stringify(v.message);
  return String(v);
}

function emit(level: Level, msg: string, fields?: Record<string, unknown>): void {
  if (rank[level] < threshold) return;
  let line = `${new Date().toISOString()} ${level.padEnd(5)} [${where}] ${msg}`;
  if (fields) { for (const [k, v] of Object.entries(fields)) line += ` ${k}=${fmt(v)}`; }
  console.error(line);
}

export const log = {
  debug: (m: string, f?: Record<string, unknown>) => emit("debug", m, f),
  info: (m: string, f?: Record<string, unknown>) => emit("info", m, f),
  warn: (m: string, f?: Record<string, unknown>) => emit("warn", m, f),
  error: (m: string, f?: Record<string, unknown>) => emit("error", m, f),
};
