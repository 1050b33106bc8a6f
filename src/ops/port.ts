// Iris's own shards share their port with SO_REUSEPORT, which also lets a second Iris (same user)
// bind the same port and silently split the traffic. So before the shards start, the main thread
// binds each port once without reusePort: the kernel refuses that while any other socket listens
// there, and the probe is closed again at once.

export interface PortProblem {
  port: number;
  what: string;
}

function inUse(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return err.code === "EADDRINUSE" || /in use|EADDRINUSE/i.test(err.message ?? "");
}

function refusal(host: string, port: number, flag: string, e: unknown): PortProblem {
  const why = inUse(e)
    ? "is already in use by another process (another iris?)"
    : `cannot be bound (${(e as Error).message})`;
  return { port, what: `port ${port} on ${host} ${why}; stop that process or choose another ${flag}` };
}

/** Null when the HTTP port (and the TCP port, if any) can be bound exclusively. Port 0 is always free. */
export function checkPorts(host: string, port: number, tcpPort: number | undefined): PortProblem | null {
  if (port !== 0) {
    try {
      const probe = Bun.serve({ hostname: host, port, reusePort: false, fetch: () => new Response(null) });
      probe.stop(true);
    } catch (e) {
      return refusal(host, port, "--port", e);
    }
  }
  if (tcpPort !== undefined && tcpPort !== 0) {
    try {
      const probe = Bun.listen({ hostname: host, port: tcpPort, socket: { data() {} } });
      probe.stop(true);
    } catch (e) {
      return refusal(host, tcpPort, "--tcp-port", e);
    }
  }
  return null;
}
