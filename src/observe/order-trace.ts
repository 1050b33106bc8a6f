// Order trace (diagnosis): off unless IRIS_ORDER_TRACE=1 is in the environment. When on, every
// owner decision that fixes a message's place in its recipient's order (numbered, refused,
// parked or dropped at a cut, adopted late, answered as a retry) is one stderr line, so a chaos
// run's kept evidence shows why a recipient saw a sender's sends out of order. The SQLite writer
// adds what became of each row ("w-append", with its result), each commit count it sends a shard,
// each confirm and each page; the owner adds its commit counts and what it replays after a writer
// restart: together they show where an acked message that never arrived was lost. The hot path
// pays one boolean test when it is off.

/** True when the trace is on (read once at start). */
export const ORDER_TRACE = process.env.IRIS_ORDER_TRACE === "1";

/** One trace line: `time trace <event> to=<user> from=<user> id=<id> ...`. Unrepeated, unlimited. */
export function orderTrace(event: string, to: string, from: string, id: string, more = ""): void {
  console.error(`${new Date().toISOString()} trace ${event} to=${to} from=${from} id=${id}${more ? " " + more : ""}`);
}
