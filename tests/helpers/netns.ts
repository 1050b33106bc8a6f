// A network namespace for one Iris node, with two veth links to the host: link A carries its NATS
// traffic, link B its clients' WebSockets. Taking link A down cuts the node off from the cluster
// for real (no packets), while its clients stay connected to it over link B. Tests run as root.
// Names and subnets carry a per-process number so that parallel runs do not collide; destroy()
// removes everything and is safe to call twice or after a partial create.

/** Runs `ip` with these arguments; throws with its stderr on failure. */
function ip(...args: string[]): void {
  const r = Bun.spawnSync(["ip", ...args], { stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr.toString().trim()}`);
}

function ipQuiet(...args: string[]): void {
  Bun.spawnSync(["ip", ...args], { stdout: "ignore", stderr: "ignore" });
}

export class NetNs {
  readonly name: string;
  /** Host side of link A: where the node reaches NATS. */
  readonly natsIp: string;
  /** Namespace side of link B: where clients reach the node. */
  readonly nodeIp: string;
  private readonly aHost: string;
  private readonly bHost: string;

  private constructor(k: number) {
    this.name = `iris-ns-${k}`;
    this.aHost = `irA${k}h`;
    this.bHost = `irB${k}h`;
    this.natsIp = `10.77.${k}.1`;
    this.nodeIp = `10.78.${k}.2`;
  }

  /** Creates the namespace and both links (addresses, up), removing leftovers of an earlier run. */
  static create(): NetNs {
    const n = new NetNs(process.pid % 250);
    n.destroy();
    try {
      ip("netns", "add", n.name);
      n.link(n.aHost, `irA${process.pid % 250}n`, n.natsIp, `10.77.${process.pid % 250}.2`);
      n.link(n.bHost, `irB${process.pid % 250}n`, `10.78.${process.pid % 250}.1`, n.nodeIp);
      ip("netns", "exec", n.name, "ip", "link", "set", "lo", "up");
    } catch (e) {
      n.destroy();
      throw e;
    }
    return n;
  }

  private link(host: string, inside: string, hostIp: string, insideIp: string): void {
    ip("link", "add", host, "type", "veth", "peer", "name", inside);
    ip("link", "set", inside, "netns", this.name);
    ip("addr", "add", `${hostIp}/24`, "dev", host);
    ip("link", "set", host, "up");
    ip("netns", "exec", this.name, "ip", "addr", "add", `${insideIp}/24`, "dev", inside);
    ip("netns", "exec", this.name, "ip", "link", "set", inside, "up");
  }

  /** The command prefix that runs a program inside the namespace (exec: the PID is the program's). */
  get wrap(): string[] {
    return ["ip", "netns", "exec", this.name];
  }

  /** Cuts the node off from NATS: link A down (packets are dropped, connections just go silent). */
  cut(): void {
    ip("link", "set", this.aHost, "down");
  }

  heal(): void {
    ip("link", "set", this.aHost, "up");
  }

  destroy(): void {
    ipQuiet("link", "del", this.aHost);
    ipQuiet("link", "del", this.bHost);
    ipQuiet("netns", "del", this.name);
  }
}
