// The bench's SVG charts: well-formed, escaped, one mark per value, no NaN for odd input.

import { describe, expect, test } from "bun:test";
import { barChart, escapeXml, formatTick, lineChart, logTicks, niceTicks } from "../../bench/lib/svg.ts";

const count = (s: string, re: RegExp) => (s.match(re) ?? []).length;

describe("bench svg helpers", () => {
  test("niceTicks covers the range with round steps", () => {
    expect(niceTicks(0, 100, 5)).toEqual([0, 20, 40, 60, 80, 100]);
    const t = niceTicks(0, 37, 5);
    expect(t[0]).toBe(0);
    expect(t[t.length - 1]).toBeGreaterThanOrEqual(37);
    expect(niceTicks(5, 5)).toEqual(niceTicks(5, 10));
    expect(niceTicks(0, 0).length).toBeGreaterThan(1);
    expect(niceTicks(NaN, 3)).toEqual([0, 1]);
  });

  test("logTicks gives powers of ten around the data", () => {
    expect(logTicks(0.2, 30)).toEqual([0.1, 1, 10, 100]);
  });

  test("formatTick is compact", () => {
    expect(formatTick(0)).toBe("0");
    expect(formatTick(1500)).toBe("1.5k");
    expect(formatTick(2_000_000)).toBe("2M");
    expect(formatTick(0.25)).toBe("0.25");
  });

  test("escapeXml escapes markup", () => {
    expect(escapeXml(`<a & "b">`)).toBe("&lt;a &amp; &quot;b&quot;&gt;");
  });
});

describe("bench svg charts", () => {
  test("a bar chart has one bar per value, escaped text, and no NaN", () => {
    const svg = barChart({
      title: "p99 <ms> & more",
      categories: ["p50", "p99"],
      series: [{ name: "iris", values: [1, 5] }, { name: "relay", values: [0.5, 2] }],
      yLabel: "ms",
      log: true,
    });
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg.trim().endsWith("</svg>")).toBe(true);
    expect(svg).toContain("p99 &lt;ms&gt; &amp; more");
    expect(count(svg, /<rect [^>]*><title>/g)).toBe(4);
    expect(svg).not.toContain("NaN");
    expect(svg).not.toContain("Infinity");
  });

  test("a bar chart of zeros or non-finite values still renders", () => {
    const svg = barChart({
      title: "t",
      categories: ["a"],
      series: [{ name: "s", values: [0] }],
      yLabel: "y",
      log: true,
    });
    expect(svg).not.toContain("NaN");
    const svg2 = barChart({ title: "t", categories: ["a"], series: [{ name: "s", values: [NaN] }], yLabel: "y" });
    expect(svg2).not.toContain("NaN");
  });

  test("a line chart draws one path per non-empty series and one point per sample", () => {
    const svg = lineChart({
      title: "rate",
      xLabel: "s",
      yLabel: "msgs/s",
      series: [{ name: "a", points: [[1, 10], [2, 20], [3, 15]] }, { name: "empty", points: [] }],
    });
    expect(count(svg, /<path /g)).toBe(1);
    expect(count(svg, /<circle /g)).toBe(3);
    expect(svg).not.toContain("NaN");
  });

  test("the same input gives the same SVG", () => {
    const o = {
      title: "x",
      xLabel: "a",
      yLabel: "b",
      series: [{ name: "s", points: [[0, 1], [1, 2]] as [number, number][] }],
    };
    expect(lineChart(o)).toBe(lineChart(o));
  });
});
