// One free-port picker for tests, chaos and bench (each started servers on ports it picked).

/** Ports this process has handed out: the kernel may give a released port again at once. */
const handedOut = new Set<number>();

/**
 * A free loopback TCP port (bound and released; a race with another process is possible but
 * rare). Never one this process handed out before: a CI run once got the same port for one
 * server's monitor and its cluster route, and that server exited "address already in use".
 */
export function freePort(): number {
  for (;;) {
    const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = l.port;
    l.stop(true);
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}
