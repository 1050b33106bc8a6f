// A shard's announcements after a restart and after a regain (start-heard.ts), and the link that
// carries them over a real nats-server: a sibling on the same node acts on a regain (its sessions
// re-attach the users the regained shard owns; before, nothing told it and their messages were
// stored as if they were offline until a re-login), while another node acts once, on the start.

import { describe, expect, test } from "bun:test";
import { globalShard } from "../../src/cluster/address.ts";
import { REGAINED_SUBJECT } from "../../src/cluster/handover.ts";
import { HandOverLink } from "../../src/cluster/handover-link.ts";
import { startHeard } from "../../src/cluster/start-heard.ts";
import { natsForFile } from "../helpers/nats-links.ts";

describe("what a shard does with an announcement (pure)", () => {
  const sibling = globalShard(1, 1), remote = globalShard(2, 0);
  test("a start: another node's re-attaches; our own node's is the supervisor's", () => {
    expect(startHeard("started", remote, 1)).toBe("peerStarted");
    expect(startHeard("started", sibling, 1)).toBe("ignore");
  });
  test("a regain: a sibling's re-attaches; another node's was heard as a start already", () => {
    expect(startHeard("regained", sibling, 1)).toBe("siblingRegained");
    expect(startHeard("regained", remote, 1)).toBe("ignore");
  });
});

const fx = natsForFile();

describe("announcements on a real nats-server", () => {
  test("a regain reaches a sibling on both subjects and is not heard by the shard itself", async () => {
    const heard: string[] = [];
    const open = async (self: number, name: string) => {
      const l = await fx.open(name);
      const h = new HandOverLink(l.nc, () => {});
      h.listen(self, (a) => heard.push(`${name} started ${a}`), (a) => heard.push(`${name} regained ${a}`));
      await l.nc.flush();
      return h;
    };
    const a = await open(globalShard(1, 0), "a");
    await open(globalShard(1, 1), "b");
    a.announceStarted(globalShard(1, 0));
    a.announceStarted(globalShard(1, 0), REGAINED_SUBJECT);
    const until = Date.now() + 5000;
    while (heard.length < 2 && Date.now() < until) await Bun.sleep(10);
    await Bun.sleep(50); // anything the announcer would wrongly hear itself arrives meanwhile
    const self = globalShard(1, 0);
    expect(heard.sort()).toEqual([`b regained ${self}`, `b started ${self}`]);
  });
});
