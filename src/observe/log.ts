// Leveled logger: one line per event, always. Text: `time level [thread] message key=value`;
// json: one object per line with time, level, thread, msg and the fields (for log shippers).
// Errors print their message and code, never a stack or source excerpt, and a message repeated
// more than REPEAT_BURST times in REPEAT_WINDOW_MS is counted instead of printed.

import { describeError, oneLine } from "./errors.ts";

export type Level = "debug" | "info" | "warn" | "error";
export type LogFormat = "text" | "json";
const rank: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
let threshold = rank.info;
let where = "main";
let format: LogFormat = "text";

/** Lines of one message (same level and text) printed per window before the rest are counted. */
let REPEAT_BURST = 3;
/** Window of the repeat limit; the count of suppressed lines is printed when it ends. */
let REPEAT_WINDOW_MS = 10_000;

/** Tests: a shorter window. */
export function configureRepeatLimit(burst: number, windowMs: number): void {
  REPEAT_BURST = burst;
  REPEAT_WINDOW_MS = windowMs;
  repeats.clear();
}

export function configureLog(level: Level, name: string, fmt: LogFormat = format): void {
  threshold = rank[level];
  where = name;
  format = fmt;
}

function value(v: unknown): unknown {
  if (v instanceof Error) return describeError(v);
  if (typeof v === "string") return oneLine(v);
  return v;
}

function text(v: unknown): string {
  const x = value(v);
  if (typeof x === "string") return /[\s="]/.test(x) || x === "" ? JSON.stringify(x) : x;
  return String(x);
}

/** One event as one line in the configured format. */
export function formatLine(level: Level, msg: string, fields?: Record<string, unknown>, now = new Date()): string {
  if (format === "json") {
    const o: Record<string, unknown> = { time: now.toISOString(), level, thread: where, msg: oneLine(msg) };
    if (fields) { for (const [k, v] of Object.entries(fields)) if (!(k in o)) o[k] = value(v); }
    return JSON.stringify(o);
  }
  let line = `${now.toISOString()} ${level.padEnd(5)} [${where}] ${oneLine(msg)}`;
  if (fields) { for (const [k, v] of Object.entries(fields)) line += ` ${k}=${text(v)}`; }
  return line;
}

interface Repeat {
  start: number;
  printed: number;
  suppressed: number;
}
const repeats = new Map<string, Repeat>();

/** True when this line may print; otherwise it is counted and summarized when its window ends. */
function admit(level: Level, msg: string): boolean {
  if (rank[level] < rank.warn) return true;
  const key = level + "\0" + msg;
  const now = Date.now();
  let r = repeats.get(key);
  if (!r || now - r.start >= REPEAT_WINDOW_MS) {
    repeats.set(key, r = { start: now, printed: 0, suppressed: 0 });
  }
  if (r.printed < REPEAT_BURST) {
    r.printed++;
    return true;
  }
  if (r.suppressed++ === 0) {
    const timer = setTimeout(() => {
      repeats.delete(key);
      console.error(formatLine(level, msg, { repeated: r!.suppressed, windowS: REPEAT_WINDOW_MS / 1000 }));
    }, REPEAT_WINDOW_MS - (now - r.start));
    (timer as { unref?: () => void }).unref?.();
  }
  return false;
}

function emit(level: Level, msg: string, fields?: Record<string, unknown>): void {
  if (rank[level] < threshold || !admit(level, msg)) return;
  console.error(formatLine(level, msg, fields));
}

export const log = {
  debug: (m: string, f?: Record<string, unknown>) => emit("debug", m, f),
  info: (m: string, f?: Record<string, unknown>) => emit("info", m, f),
  warn: (m: string, f?: Record<string, unknown>) => emit("warn", m, f),
  error: (m: string, f?: Record<string, unknown>) => emit("error", m, f),
};

/**
 * An uncaught error or rejection in this thread: one log line (message and code), then the
 * thread ends with exit code 1 (a Worker is restarted by the supervisor; the main thread exits).
 */
export function installCrashHandler(): void {
  const die = (kind: string) => (e: unknown) => {
    console.error(formatLine("error", `${kind}; thread ends`, { error: describeError(e) }));
    process.exit(1);
  };
  process.on("uncaughtException", die("uncaught error"));
  process.on("unhandledRejection", die("unhandled rejection"));
}

/** Bun's worker error events carry a source excerpt before the message: keep the message line. */
export function errorEventMessage(message: string): string {
  const lines = message.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const msg = lines.find((l) => /^[A-Za-z]*(Error|Exception)\b.*:/.test(l)) ??
    lines.filter((l) => !/^(\d+ \||\^|at )/.test(l)).pop() ?? "";
  return oneLine(msg);
}
