import { describe, expect, test } from "bun:test";
import { ALLOCATOR_PURGE_DELAY_MS, allocatorEnv, PURGE_DELAY_ENV_VAR } from "../../tune/allocator.ts";

describe("allocatorEnv (mimalloc's purge delay, applied by re-exec at start)", () => {
  test("adds the purge delay when the environment has none", () => {
    expect(allocatorEnv({ PATH: "/bin" })).toEqual({ [PURGE_DELAY_ENV_VAR]: String(ALLOCATOR_PURGE_DELAY_MS) });
  });

  test("an operator's own value wins (nothing added, so no re-exec for it)", () => {
    expect(allocatorEnv({ [PURGE_DELAY_ENV_VAR]: "250" })).toEqual({});
    expect(allocatorEnv({ [PURGE_DELAY_ENV_VAR]: "" })).toEqual({});
  });

  test("the delay is far above Bun's default of 100 ms and still returns memory within seconds", () => {
    expect(ALLOCATOR_PURGE_DELAY_MS).toBeGreaterThanOrEqual(1000);
    expect(ALLOCATOR_PURGE_DELAY_MS).toBeLessThanOrEqual(30_000);
  });
});
