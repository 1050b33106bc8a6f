// Nodes that start together each create the cluster's KV buckets and streams. JetStream answers a
// create that races another node's identical one with an error ("subjects overlap with an
// existing stream") although the bucket now exists; asking again then finds it.

/** Attempts at creating one bucket or stream before the error is real. */
const CREATE_ATTEMPTS = 3;
/** Wait between attempts: long enough for the racing create to be committed. */
const CREATE_RETRY_MS = 100;

/** Runs `create` (create-or-open) again after a short wait when it fails, up to CREATE_ATTEMPTS times. */
export async function createRacing<T>(create: () => Promise<T>): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await create();
    } catch (e) {
      if (attempt >= CREATE_ATTEMPTS) throw e;
      await new Promise((r) => setTimeout(r, CREATE_RETRY_MS * attempt));
    }
  }
}
