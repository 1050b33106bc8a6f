// Statements whose plan is made once (issue 14). The SQLite in Bun 1.4.5 (3.54.1) plans some
// statements around the value bound to a parameter, and then makes the plan again every time
// that parameter is bound anew, which the store does on every execution: the statement costs a
// whole prepare each time (measured: 5–7 µs for a one-table query, 25 µs for a backlog page's
// aggregate, even when it finds no row). Two shapes do it: a bare parameter in LIMIT, and a bare
// parameter compared with `=` in a query with ORDER BY. Written as CAST(?n AS INTEGER) or
// CAST(?n AS TEXT), the parameter is an expression the planner does not look into: the plan is
// made once, and it is the same plan (the same index search; EXPLAIN QUERY PLAN shows it).

/** Why `sql` would be planned again on each new binding (see above); null when it would not. */
export function rebindHazard(sql: string): string | null {
  const s = sql.replace(/\s+/g, " ");
  if (/\bLIMIT \?\d*/i.test(s) || /\bLIMIT [^;]*\bOFFSET \?\d*/i.test(s)) {
    return "a bare parameter in LIMIT or OFFSET";
  }
  // `=` alone: not `<=`, `>=`, `!=` or `==`'s second character; a parameter on either side.
  const equality = /(?<![<>!=])==? ?\?\d*/.test(s) || /\?\d* ?==?(?!=)/.test(s);
  if (/\bORDER BY\b/i.test(s) && equality) return "a bare parameter compared with = in a query with ORDER BY";
  return null;
}
