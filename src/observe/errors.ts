// Errors as an operator reads them (logs and start-up refusals): message and code on one line, never a stack or source excerpt.

/** `message (CODE)` on one line; the code is SQLite's or the OS's when the error carries one. */
export function describeError(e: unknown): string {
  if (!(e instanceof Error)) return oneLine(String(e));
  const code = (e as { code?: unknown }).code;
  const msg = oneLine(e.message || e.name);
  return typeof code === "string" && code !== "" && !msg.includes(code) ? `${msg} (${code})` : msg;
}

/** Collapses newlines and runs of spaces so one event is always one line. */
export function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, " | ").replace(/\s{2,}/g, " ").trim();
}

/** SQLite's "the disk is full" and I/O error codes (extended codes start with the base name). */
export function isStorageFault(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return typeof code === "string" && /^SQLITE_(FULL|IOERR|CANTOPEN|READONLY)/.test(code);
}
