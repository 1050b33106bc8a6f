// Everything that must hold before Iris touches its data or ports, in order: the data dir is a
// writable directory, no other instance holds it, its database is ours and intact, and the ports
// are not bound by another process. The first failure is one line for the operator.

import { resolve } from "node:path";
import { checkDatabase, checkDir, formatProblem } from "./datadir.ts";
import { oneLine } from "../observe/errors.ts";
import { lockDataDir } from "./lock.ts";
import { checkPorts } from "./port.ts";

export interface StartTarget {
  dataDir: string;
  host: string;
  port: number;
  tcpPort?: number | undefined;
  /** quick_check the database up to this size (MiB, database + WAL); 0 = never. */
  startupCheckMb: number;
}

/** Null when start may go on (the data-dir lock is then held until exit), else the refusal line. */
export function startChecks(t: StartTarget): string | null {
  const dirProblem = checkDir(t.dataDir);
  if (dirProblem) return formatProblem(dirProblem);
  const lock = lockDataDir(t.dataDir);
  switch (lock.kind) {
    case "locked":
      break;
    case "held":
      return `data dir ${resolve(t.dataDir)} is in use by another iris (pid ${
        lock.pid ?? "unknown"
      }, lock ${lock.path}); ` +
        "stop it first or choose another --data-dir";
    case "unsupported":
      break; // no flock on this OS: run without the guard rather than not at all
    case "failed":
      return `${lock.path}: cannot take the data-dir lock (${lock.reason}); check the data dir's permissions`;
    default: {
      const never: never = lock;
      return `unexpected lock result ${JSON.stringify(never)}`;
    }
  }
  const dbProblem = checkDatabase(t.dataDir, t.startupCheckMb * 1048576);
  if (dbProblem) return formatProblem(dbProblem);
  const portProblem = checkPorts(t.host, t.port, t.tcpPort);
  return portProblem ? oneLine(portProblem.what) : null;
}
