// Many rows into one table with few statements (issue 14): the rows go in chunks of power-of-two
// sizes (largest first), each chunk one multi-row INSERT. A statement call's fixed cost (binding
// through bun:sqlite, the step, the changes object) is paid per chunk, not per row. Measured
// alone on a WAL file: the dedupe log's 60 keys per commit 1.84-1.90 µs CPU per key vs 2.10-2.17
// one row per statement; a run's sorted (hash, id) pairs 0.30-0.33 vs 0.54-0.69 µs per key.

import type { Database, Statement } from "bun:sqlite";

/** Writes row `i`'s values into `args` from index `at` (one slot per column). */
export type FillRow = (args: unknown[], at: number, i: number) => void;

export class ChunkedInsert {
  readonly #stmts = new Map<number, Statement>();
  readonly #args = new Map<number, unknown[]>();
  readonly #cols: number;

  /**
   * `head` is "INSERT INTO t (a, b, ...)" with `cols` columns; `maxRows` (a power of two) is the
   * largest chunk (a statement binds maxRows × cols values: keep it under SQLite's limit).
   */
  constructor(
    private readonly db: Database,
    private readonly head: string,
    cols: number,
    private readonly maxRows: number,
  ) {
    if (!Number.isInteger(Math.log2(maxRows))) throw new RangeError(`chunk size ${maxRows} is not a power of two`);
    this.#cols = cols;
  }

  /**
   * Inserts rows 0..n-1 in order, in the caller's transaction. Returns the rowid of the last one
   * (a rowid table appends consecutive rowids: the first row got last - n + 1), or 0 for n = 0.
   */
  run(n: number, fill: FillRow): number {
    let last = 0;
    let i = 0;
    for (let size = this.maxRows; size >= 1; size >>= 1) {
      while (n - i >= size) {
        const args = this.#argsFor(size);
        for (let j = 0; j < size; j++) fill(args, j * this.#cols, i + j);
        last = Number(this.#stmt(size).run(...(args as never[])).lastInsertRowid);
        i += size;
      }
    }
    return last;
  }

  /** Finalizes the prepared statements (a run's table is dropped later; the log's live on). */
  finalize(): void {
    for (const s of this.#stmts.values()) s.finalize();
    this.#stmts.clear();
  }

  #stmt(size: number): Statement {
    let s = this.#stmts.get(size);
    if (s === undefined) {
      const row = `(${new Array(this.#cols).fill("?").join(", ")})`;
      s = this.db.prepare(`${this.head} VALUES ${new Array(size).fill(row).join(", ")}`);
      this.#stmts.set(size, s);
    }
    return s;
  }

  #argsFor(size: number): unknown[] {
    let a = this.#args.get(size);
    if (a === undefined) this.#args.set(size, a = new Array(size * this.#cols));
    return a;
  }
}
