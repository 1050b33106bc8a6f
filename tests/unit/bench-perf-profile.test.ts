// bench/lib/perf-profile.ts: JITDump records name JIT addresses by time, and perf samples are
// split by where they ran and charged to their nearest JavaScript function.

import { describe, expect, test } from "bun:test";
import { JitNames, parseJitDump, parsePerfScript, summarizeSamples } from "../../bench/lib/perf-profile.ts";

/** A JITDump file: the 40-byte header, then one JIT_CODE_LOAD record per entry. */
function jitDump(loads: { addr: number; size: number; name: string; ns: bigint }[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const head = new DataView(new ArrayBuffer(40));
  head.setUint32(0, 0x4a695444, true);
  head.setUint32(4, 1, true);
  head.setUint32(8, 40, true);
  parts.push(new Uint8Array(head.buffer));
  for (const l of loads) {
    const name = new TextEncoder().encode(l.name + "\0");
    const code = new Uint8Array(l.size); // the code bytes follow the name
    const size = 16 + 40 + name.length + code.length;
    const r = new DataView(new ArrayBuffer(56));
    r.setUint32(0, 0, true); // JIT_CODE_LOAD
    r.setUint32(4, size, true);
    r.setBigUint64(8, l.ns, true);
    r.setBigUint64(16 + 8, BigInt(l.addr), true); // vma
    r.setBigUint64(16 + 16, BigInt(l.addr), true); // code_addr
    r.setBigUint64(16 + 24, BigInt(l.size), true);
    parts.push(new Uint8Array(r.buffer), name, code);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), at += p.length;
  return out;
}

describe("perf profile with JIT names", () => {
  test("a reused code range is named by the newest load before the sample", () => {
    const codes = parseJitDump(jitDump([
      { addr: 0x7f0000001000, size: 64, name: "JSC-DFG: link#AAAA", ns: 1_000_000_000n },
      { addr: 0x7f0000001000, size: 64, name: "JSC-FTL: routeNow#BBBB", ns: 2_000_000_000n },
    ]));
    expect(codes.map((c) => c.name)).toEqual(["JSC-DFG: link#AAAA", "JSC-FTL: routeNow#BBBB"]);
    const names = new JitNames(codes);
    expect(names.nameAt(0x7f0000001010, 1.5)).toBe("JSC-DFG: link#AAAA");
    expect(names.nameAt(0x7f0000001010, 2.5)).toBe("JSC-FTL: routeNow#BBBB");
    expect(names.nameAt(0x7f0000001010, 0.5)).toBeNull(); // not loaded yet
    expect(names.nameAt(0x7f0000001040, 2.5)).toBeNull(); // past its end
  });

  test("a file that is not a JITDump is refused", () => {
    expect(() => parseJitDump(new Uint8Array(64))).toThrow("not a JITDump file");
  });

  test("samples are split by kind and charged to the nearest JS function, past thunks", () => {
    const names = new JitNames(parseJitDump(jitDump([
      { addr: 0x7f0000001000, size: 256, name: "JSC-FTL: writeAll#CCCC", ns: 1_000_000_000n },
      { addr: 0x7f0000002000, size: 256, name: "JSC-FTLThunk: unspecified", ns: 1_000_000_000n },
      { addr: 0x7f0000003000, size: 256, name: "JSC-FTL: route#DDDD", ns: 1_000_000_000n },
    ])));
    const text = [
      "57000.100000: ",
      "\tffffffff81e7d23d tcp_sendmsg_locked ([kernel.kallsyms])",
      "\t         1b8b80f [unknown] (/work/main/dist/iris)",
      "\t    7f0000002010 [unknown] (/tmp/perf-1.map)",
      "\t    7f0000001010 [unknown] (/tmp/perf-1.map)",
      "",
      "57000.100250: ",
      "\t    7f0000003020 [unknown] (/tmp/perf-1.map)",
      "",
      "57000.100500: ",
      "\t    7f5a00001000 __vdso_clock_gettime ([vdso])",
      "\t    7f0000003030 [unknown] (/tmp/perf-1.map)",
      "",
      " 6174 57000.100750: ",
      "\tffffffff8175576d __x64_sys_epoll_pwait2 ([kernel.kallsyms])",
      "\t           891f5 start_thread (/usr/lib/x86_64-linux-gnu/libc.so.6)",
      "",
    ].join("\n");
    const samples = parsePerfScript(text, names);
    expect(samples.map((s) => s.frames[0]!.kind)).toEqual(["kernel", "js", "vdso", "kernel"]);
    const p = summarizeSamples(samples);
    expect(p.byKind).toEqual({ js: 0.25, runtime: 0, kernel: 0.5, vdso: 0.25, libc: 0 });
    expect(Object.fromEntries(p.nearestJs)).toEqual({
      "writeAll [FTL]": 0.25, // the socket write under it, through the runtime and a thunk
      "route [FTL]": 0.5, // its own code and the clock read it made
      "(no JS on the stack)": 0.25, // the event loop's wait
    });
  });
});
