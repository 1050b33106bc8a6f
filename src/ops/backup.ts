// `iris backup --data-dir D --out FILE`: a consistent copy of the inbox database while the server
// keeps running. A read-only connection sees one WAL snapshot, and VACUUM INTO writes that
// snapshot as a fresh, compact database file: every transaction committed before the copy began
// is in it, none after. The writer is never blocked (WAL readers do not block writers).

import { Database } from "bun:sqlite";
import { existsSync, renameSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { z } from "zod";
import { DB_FILE } from "./datadir.ts";
import { describeError } from "../observe/errors.ts";

const backupArgs = z.object({
  dataDir: z.string().min(1).default("./iris-data"),
  out: z.string().min(1, "needs a file name"),
}).strict();

export const BACKUP_HELP = `usage: iris backup --data-dir <dir> --out <file>
  Copies <dir>/iris.db to <file> while iris runs (consistent snapshot; <file> must not exist).
  Env: IRIS_DATA_DIR. Restore: see docs/OPERATIONS.md ("Backup and restore").`;

/** Parses `--data-dir D --out F` (also --k=v and IRIS_DATA_DIR); a string is the error line. */
export function parseBackupArgs(argv: string[], env: Record<string, string | undefined>) {
  const raw: Record<string, string> = {};
  if (env.IRIS_DATA_DIR) raw.dataDir = env.IRIS_DATA_DIR;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf("=");
    const name = a.slice(0, eq < 0 ? undefined : eq);
    const key = name === "--data-dir" ? "dataDir" : name === "--out" ? "out" : null;
    if (!key) return `backup: unknown argument '${a}' (${BACKUP_HELP.split("\n")[0]})`;
    const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
    if (v === undefined) return `backup: ${name} needs a value`;
    raw[key] = v;
  }
  const parsed = backupArgs.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const flag = issue.path[0] === "out" ? "--out" : "--data-dir";
    return `backup: invalid ${flag}: ${issue.path[0] === "out" && raw.out === undefined ? "required" : issue.message}`;
  }
  return parsed.data;
}

export interface BackupResult {
  out: string;
  bytes: number;
  rows: number;
  ms: number;
}

/** Copies the database; throws with one-line messages. The copy appears at `out` only when complete. */
export function backupDatabase(dataDir: string, out: string): BackupResult {
  const src = join(resolve(dataDir), DB_FILE);
  const dst = resolve(out);
  if (!existsSync(src)) throw new Error(`${src}: no database here; check --data-dir`);
  if (existsSync(dst)) throw new Error(`${dst}: already exists; choose a new --out (backups never overwrite)`);
  const partial = `${dst}.partial-${process.pid}`;
  const t0 = performance.now();
  const db = new Database(src, { readonly: true });
  try {
    db.run("PRAGMA busy_timeout = 10000");
    db.query("VACUUM INTO ?").run(partial);
  } catch (e) {
    rmSync(partial, { force: true });
    throw new Error(`${src}: backup failed (${describeError(e)})`);
  } finally {
    db.close();
  }
  const rows = verify(partial);
  renameSync(partial, dst);
  return { out: dst, bytes: statSync(dst).size, rows, ms: Math.round(performance.now() - t0) };
}

/** The copy must open and pass an integrity check before it is given its final name. */
function verify(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    const ok = db.query<{ integrity_check: string }, []>("PRAGMA integrity_check(1)").get();
    if (Object.values(ok ?? {})[0] !== "ok") throw new Error(`${path}: the copy failed its integrity check`);
    // Rows at or below their user's ack watermark are deleted, waiting to be removed (inbox-log.ts).
    return db.query<{ n: number }, []>(
      "SELECT count(*) AS n FROM inbox_log AS l WHERE NOT EXISTS " +
        "(SELECT 1 FROM inbox_acked AS a WHERE a.recipient = l.recipient AND l.seq <= a.upto)",
    ).get()?.n ?? 0;
  } finally {
    db.close();
  }
}

/** The `iris backup` command: one line on stdout when done, one line on stderr when not. */
export function runBackup(argv: string[], env: Record<string, string | undefined>): number {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(BACKUP_HELP);
    return 0;
  }
  const args = parseBackupArgs(argv, env);
  if (typeof args === "string") {
    console.error(`iris: ${args}`);
    return 2;
  }
  try {
    const r = backupDatabase(args.dataDir, args.out);
    console.log(`iris: backup written to ${r.out} (${r.bytes} bytes, ${r.rows} inbox rows, ${r.ms} ms)`);
    return 0;
  } catch (e) {
    console.error(`iris: ${describeError(e)}`);
    return 1;
  }
}
