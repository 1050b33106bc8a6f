// Human-readable numbers for plan rows and the printed table.

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** 25276514304 → "23.5 GiB"; exact small values stay in bytes. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  const units: [number, string][] = [[GiB, "GiB"], [MiB, "MiB"], [KiB, "KiB"]];
  for (const [size, name] of units) {
    if (Math.abs(bytes) >= size) {
      const scaled = bytes / size;
      return `${Number.isInteger(scaled) ? scaled : scaled.toFixed(1)} ${name}`;
    }
  }
  return `${bytes} B`;
}

/** 1048576 → "1,048,576" (fixed locale so output and tests do not depend on the machine). */
export function formatCount(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : String(n);
}
