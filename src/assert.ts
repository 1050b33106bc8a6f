// Exhaustiveness: a switch over a discriminated union ends in `assertNever(x)`, so a new member
// that is not handled fails to compile instead of falling through silently.

export function assertNever(x: never, what = "value"): never {
  throw new Error(`unhandled ${what}: ${JSON.stringify(x)}`);
}
