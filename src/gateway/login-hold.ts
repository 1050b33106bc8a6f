// Frame order across an asynchronous login: clients pipeline login + send, so while a token is
// checked against a public key or a JWKS (a promise), the connection's later frames wait here and
// run in arrival order once the login is decided (and are dropped if it failed and closed).

import type { ClientFrame } from "../protocol/index.ts";

/** Frames a connection may send before its login is decided; past it the connection is closed. */
export const MAX_HELD_FRAMES = 1024;

export interface Holder {
  /** Frames waiting for a login verdict; null/absent when none is pending. */
  loginHeld?: ClientFrame[] | null;
}

export function holdFrames(s: Holder): void {
  s.loginHeld = [];
}

/**
 * Runs the held frames in order while `live()` holds; a frame that starts another hold keeps the
 * rest queued behind it.
 */
export function releaseHeld(s: Holder, live: () => boolean, run: (f: ClientFrame) => void): void {
  const queue = s.loginHeld ?? [];
  s.loginHeld = null;
  for (let i = 0; i < queue.length; i++) {
    if (!live()) return;
    if (s.loginHeld) {
      (s.loginHeld as ClientFrame[]).push(...queue.slice(i));
      return;
    }
    run(queue[i]!);
  }
}
