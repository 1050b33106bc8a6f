import { describe, expect, test } from "bun:test";
import {
  cgroupDirsToRoot,
  effectiveCpus,
  parseCfsQuota,
  parseCgroupCpuMax,
  parseCgroupMemoryMax,
  parseMeminfo,
  parseNonNegativeInt,
  parsePortRange,
  parseProcLimits,
  parseSelfCgroup,
  probe,
  raiseNoFileLimit,
} from "../../tune/probe.ts";

describe("probe on this machine", () => {
  test("returns sane values with sources", async () => {
    const p = await probe();
    expect(p.platform).toBe(process.platform);
    expect(p.memory.totalBytes.value).toBeGreaterThan(0);
    expect(p.memory.availableBytes.value).toBeGreaterThan(0);
    expect(p.memory.availableBytes.value).toBeLessThanOrEqual(p.memory.totalBytes.value);
    expect(p.cpus.count.value).toBeGreaterThanOrEqual(1);
    expect(p.cpus.effective.value).toBeGreaterThanOrEqual(1);
    expect(p.cpus.effective.value).toBeLessThanOrEqual(p.cpus.count.value);
    expect(p.noFile.soft.value).toBeGreaterThan(0);
    expect(p.noFile.hard.value).toBeGreaterThanOrEqual(p.noFile.soft.value);
    expect(Number.isFinite(p.noFile.hard.value)).toBe(true); // infinite is clamped
    for (const sourced of [p.memory.totalBytes, p.cpus.effective, p.noFile.hard]) {
      expect(sourced.source.length).toBeGreaterThan(0);
    }
    expect(Array.isArray(p.notes)).toBe(true);
  });

  test.if(process.platform === "linux")("reads the open-files limit through FFI", async () => {
    const p = await probe();
    expect(p.noFile.hard.source).toContain("bun:ffi");
    expect(p.sysctl.somaxconn.value).toBeGreaterThan(0);
    expect(p.sysctl.ipLocalPortRange.value?.[0]).toBeLessThan(
      p.sysctl.ipLocalPortRange.value?.[1] ?? 0,
    );
  });

  test("raiseNoFileLimit leaves soft at the hard limit", async () => {
    const raised = raiseNoFileLimit();
    const p = await probe();
    expect(raised).toBe(p.noFile.soft.value);
    expect(raised).toBe(p.noFile.hard.value);
  });
});

describe("parseMeminfo", () => {
  test("reads MemTotal and MemAvailable in kB", () => {
    const text = "MemTotal:       24684096 kB\nMemFree:        24451980 kB\n" +
      "MemAvailable:   24392928 kB\nBuffers:            2048 kB\n";
    expect(parseMeminfo(text)).toEqual({
      totalBytes: 24684096 * 1024,
      availableBytes: 24392928 * 1024,
    });
  });
  test("missing or garbled keys are null, never NaN", () => {
    expect(parseMeminfo("MemTotal: 1000 kB\n")).toEqual({
      totalBytes: 1024000,
      availableBytes: null,
    });
    expect(parseMeminfo("MemTotal: lots kB\nMemAvailable: 12 MB\n")).toEqual({
      totalBytes: null,
      availableBytes: null,
    });
    expect(parseMeminfo("")).toEqual({ totalBytes: null, availableBytes: null });
    // Key must start the line: "SwapMemTotal" must not match.
    expect(parseMeminfo("XMemTotal: 5 kB\n").totalBytes).toBeNull();
  });
});

describe("parseCgroupMemoryMax", () => {
  test("v2 values", () => {
    expect(parseCgroupMemoryMax("max\n")).toBe("max");
    expect(parseCgroupMemoryMax("536870912\n")).toBe(536870912);
  });
  test("v1 'no limit' sentinel (>= 2^60) is max", () => {
    expect(parseCgroupMemoryMax("9223372036854771712\n")).toBe("max");
  });
  test("malformed is null", () => {
    for (const bad of ["", "abc", "-1", "12.5", "0", "max max"]) {
      expect(parseCgroupMemoryMax(bad)).toBeNull();
    }
  });
});

describe("parseCgroupCpuMax and parseCfsQuota", () => {
  test("v2 cpu.max", () => {
    expect(parseCgroupCpuMax("150000 100000\n")).toBe(1.5);
    expect(parseCgroupCpuMax("max 100000\n")).toBe("max");
    expect(parseCgroupCpuMax("400000 100000")).toBe(4);
  });
  test("v2 cpu.max malformed", () => {
    for (const bad of ["", "max", "150000", "150000 0", "a b", "150000 100000 1", "-5 100000"]) {
      expect(parseCgroupCpuMax(bad)).toBeNull();
    }
  });
  test("v1 cfs quota/period", () => {
    expect(parseCfsQuota("-1\n", "100000\n")).toBe("max");
    expect(parseCfsQuota("50000\n", "100000\n")).toBe(0.5);
    expect(parseCfsQuota("garbage", "100000")).toBeNull();
    expect(parseCfsQuota("50000", "0")).toBeNull();
  });
});

describe("parseProcLimits", () => {
  const sample = [
    "Limit                     Soft Limit           Hard Limit           Units     ",
    "Max cpu time              unlimited            unlimited            seconds   ",
    "Max open files            1024                 20000                files     ",
    "Max locked memory         8388608              8388608              bytes     ",
  ].join("\n");
  test("reads the Max open files row", () => {
    expect(parseProcLimits(sample)).toEqual({ soft: 1024, hard: 20000 });
  });
  test("unlimited is Infinity", () => {
    expect(parseProcLimits("Max open files  unlimited  unlimited  files\n")).toEqual({
      soft: Infinity,
      hard: Infinity,
    });
  });
  test("malformed is null", () => {
    expect(parseProcLimits("")).toBeNull();
    expect(parseProcLimits("Max open files  many  20000  files")).toBeNull();
    expect(parseProcLimits("Max open files  1024  files")).toBeNull();
    expect(parseProcLimits("Max open files  30000  20000  files")).toBeNull(); // soft > hard
  });
});

describe("small parsers", () => {
  test("parsePortRange", () => {
    expect(parsePortRange("32768\t60999\n")).toEqual([32768, 60999]);
    expect(parsePortRange("60999 32768")).toBeNull();
    expect(parsePortRange("1024")).toBeNull();
    expect(parsePortRange("1024 70000")).toBeNull();
  });
  test("parseNonNegativeInt", () => {
    expect(parseNonNegativeInt(" 4096\n")).toBe(4096);
    expect(parseNonNegativeInt("4096x")).toBeNull();
    expect(parseNonNegativeInt("")).toBeNull();
    expect(parseNonNegativeInt("-1")).toBeNull();
  });
  test("parseSelfCgroup: v1, v2 and hybrid", () => {
    expect(parseSelfCgroup("0::/system.slice/iris.service\n")).toEqual({
      v2: "/system.slice/iris.service",
      v1Memory: null,
      v1Cpu: null,
    });
    expect(parseSelfCgroup("4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n0::/\n")).toEqual({
      v2: "/",
      v1Memory: "/docker/abc",
      v1Cpu: "/docker/abc",
    });
    expect(parseSelfCgroup("garbage\n")).toEqual({ v2: null, v1Memory: null, v1Cpu: null });
  });
  test("cgroupDirsToRoot walks from our cgroup up to the mount root", () => {
    expect(cgroupDirsToRoot("/sys/fs/cgroup", "/a/b")).toEqual([
      "/sys/fs/cgroup/a/b",
      "/sys/fs/cgroup/a",
      "/sys/fs/cgroup",
    ]);
    expect(cgroupDirsToRoot("/sys/fs/cgroup", "/")).toEqual(["/sys/fs/cgroup"]);
    expect(cgroupDirsToRoot("/sys/fs/cgroup", null)).toEqual(["/sys/fs/cgroup"]);
    expect(cgroupDirsToRoot("/r", "/../x")).toEqual(["/r/x", "/r"]); // never escapes the mount
  });
  test("effectiveCpus", () => {
    expect(effectiveCpus(32, 1.5)).toBe(2);
    expect(effectiveCpus(2, 8)).toBe(2);
    expect(effectiveCpus(4, null)).toBe(4);
    expect(effectiveCpus(4, 0.1)).toBe(1);
    expect(effectiveCpus(0, null)).toBe(1);
  });
});
