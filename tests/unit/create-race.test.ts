// createRacing: a create that lost a race to another node's identical create is asked again.

import { expect, test } from "bun:test";
import { createRacing } from "../../src/cluster/create-race.ts";

test("a create that fails once (another node's create raced it) is asked again and returns", async () => {
  let calls = 0;
  const v = await createRacing(() => {
    calls++;
    if (calls === 1) return Promise.reject(new Error("subjects overlap with an existing stream"));
    return Promise.resolve("bucket");
  });
  expect(v).toBe("bucket");
  expect(calls).toBe(2);
});

test("a create that keeps failing gives its error after three attempts", async () => {
  let calls = 0;
  const p = createRacing(() => {
    calls++;
    return Promise.reject(new Error(`no jetstream ${calls}`));
  });
  await expect(p).rejects.toThrow("no jetstream 3");
  expect(calls).toBe(3);
});
