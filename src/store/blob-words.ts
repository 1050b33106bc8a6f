// A SQLite blob read back as the typed array it was written from (dedupe packs, run slices, filter
// images). bun:sqlite hands a blob back as a Uint8Array at any offset of its buffer, and a typed
// array view needs an offset aligned to its element size, so an unaligned blob is copied first.
// The caller checks that the length is whole elements (its own error names what is damaged). Pure.

export function float64sOf(blob: Uint8Array): Float64Array {
  if (blob.byteOffset % 8 === 0) return new Float64Array(blob.buffer, blob.byteOffset, blob.byteLength >> 3);
  return new Float64Array(blob.slice().buffer);
}

export function int32sOf(blob: Uint8Array): Int32Array {
  if (blob.byteOffset % 4 === 0) return new Int32Array(blob.buffer, blob.byteOffset, blob.byteLength >> 2);
  return new Int32Array(blob.slice().buffer);
}
