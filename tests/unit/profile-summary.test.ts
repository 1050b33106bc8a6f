// The profile report's counting (observe/profile-summary.ts): self is the top frame, inclusive
// counts a function once per sample however often it recurses, empty stacks are samples without
// JS, and the lists are ranked and cut at `top`.

import { describe, expect, test } from "bun:test";
import { formatProfile, frameLabel, type SampledFrame, summarizeStacks } from "../../src/observe/profile-summary.ts";

const js = (name: string, file = "/app/src/gateway/session.ts"): SampledFrame => ({ name, url: file });
const native = (name: string): SampledFrame => ({ name, url: "" });

describe("profile summary", () => {
  test("frames are named by function and file; native and anonymous ones say so", () => {
    expect(frameLabel(js("onData"))).toBe("onData (session.ts)");
    expect(frameLabel(native("cork"))).toBe("cork [native]");
    expect(frameLabel(js(""))).toBe("(anonymous) (session.ts)");
  });

  test("self counts the top frame; inclusive counts each function once per sample", () => {
    const stacks = [
      [native("cork"), js("flush"), js("onData")],
      [js("route"), js("route"), js("route"), js("onData")], // recursion: route once, inclusive
      [js("route"), js("onData")],
      [], // a sample with no JS on the stack
    ];
    const p = summarizeStacks("shard-0", 5000, stacks, 10);
    expect(p.samples).toBe(4);
    expect(p.self).toEqual([
      { fn: "route (session.ts)", samples: 2, pct: 50 },
      { fn: "cork [native]", samples: 1, pct: 25 },
    ]);
    expect(p.inclusive).toEqual([
      { fn: "onData (session.ts)", samples: 3, pct: 75 },
      { fn: "route (session.ts)", samples: 2, pct: 50 },
      { fn: "cork [native]", samples: 1, pct: 25 },
      { fn: "flush (session.ts)", samples: 1, pct: 25 },
    ]);
  });

  test("the lists stop at `top`, highest first", () => {
    const stacks: SampledFrame[][] = [];
    for (let i = 0; i < 30; i++) for (let k = 0; k <= i; k++) stacks.push([js(`f${i}`)]);
    const p = summarizeStacks("writer", 1000, stacks, 5);
    expect(p.self.map((e) => e.fn)).toEqual(["f29", "f28", "f27", "f26", "f25"].map((f) => `${f} (session.ts)`));
    expect(p.self[0]!.samples).toBe(30);
  });

  test("the text report has a header and both lists; an idle thread says it had no JS samples", () => {
    const busy = formatProfile(summarizeStacks("shard-1", 5000, [[js("onData")]], 10));
    expect(busy).toBe(
      "# shard-1: 1 samples in 5000 ms\n" +
        "## self (on top of the stack)\n  100.0%       1  onData (session.ts)\n" +
        "## inclusive (anywhere on the stack)\n  100.0%       1  onData (session.ts)\n",
    );
    const idle = formatProfile(summarizeStacks("writer", 5000, [], 10));
    expect(idle).toContain("# writer: 0 samples in 5000 ms");
    expect(idle).toContain("(no samples with JS on the stack)");
  });
});
