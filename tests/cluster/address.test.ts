// Global shard addresses and node ordinals against a real nats-server: concurrent claims get
// distinct ordinals, a restarted node gets its old one back.

import { expect, test } from "bun:test";
import { globalShard, Ordinals, SHARD_SPACE, splitShard } from "../../src/cluster/address.ts";
import { natsForFile } from "../helpers/nats-links.ts";

const fx = natsForFile();

test("addresses round-trip and keep shard numbers of node 0 as they are", () => {
  expect(globalShard(0, 3)).toBe(3);
  expect(splitShard(globalShard(7, 255))).toEqual({ ordinal: 7, shard: 255 });
  expect(globalShard(1, 0)).toBe(SHARD_SPACE);
});

test("concurrent claims get distinct ordinals; a node keeps its ordinal across restarts", async () => {
  const open = async () => {
    const l = await fx.open("x");
    return Ordinals.open(l.nc, 1);
  };
  const views = await Promise.all(Array.from({ length: 5 }, () => open()));
  const ords = await Promise.all(views.map((v, i) => v.claim(`node${i}`)));
  expect(new Set(ords).size).toBe(5);
  expect([...ords].sort()).toEqual([0, 1, 2, 3, 4]);
  const again = await open();
  expect(await again.claim("node3")).toBe(ords[3]!);
  expect(again.nodeOf(ords[1]!)).toBe("node1");
  expect(await again.claim("node9")).toBe(5);
});
