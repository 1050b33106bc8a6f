// Command line of `npm run bench -- <scenario> [flags]`. Pure: argv in, options or an error out.

export const SCENARIOS = [
  "throughput",
  "connections",
  "hotspot",
  "drain",
  "offline-flood",
  "startup",
  "http",
  "baseline",
  "console",
  "cluster",
  "cluster-scale",
  "all",
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface TcpTarget {
  host: string;
  port: number;
}

export interface BenchArgs {
  scenario: ScenarioName;
  smoke: boolean;
  /** Router shard counts to run Iris with; null = the server's default. */
  shards: number[] | null;
  /** An already running server to measure instead of starting dist/iris (loopback only). */
  url: string | null;
  tcp: TcpTarget | null;
  proto: "v0" | "v1";
  conns: number | null;
  messages: number | null;
  payload: number;
  /** Seconds per measured phase (after warm-up). */
  duration: number | null;
  workers: number | null;
  window: number | null;
  rate: number | null;
  /** offline-flood: the flood paced at this many msgs/s in total instead of a window per sender. */
  floodRate: number | null;
  levels: number[] | null;
  out: string | null;
  binary: string | null;
  /** pid of an external server, to read its CPU and RSS from /proc (same machine only). */
  pid: number | null;
  baseline: boolean;
  /** cluster scenarios: Iris nodes (one nats-server besides). */
  nodes: number | null;
  /** v1 logins ask Iris for bundles (docs/PROTOCOL.md, "v1 bundles"); the relay never gets the flag. */
  bundles: boolean;
  /** throughput: measure Iris with plain v1 logins and again with bundled ones (default under `all`). */
  bothLogins: boolean;
  /** throughput: also measure the relay answering each send SENT (the frame floor of a v1 message). */
  frameFloor: boolean;
  /** Iris starts with --auto-tune, as an operator starts it (docs/OPERATIONS.md, Auto-tune). */
  autoTune: boolean;
  /** throughput, connections: rounds of Iris then the relay in one run; verdicts use the rounds' medians. */
  rounds: number;
}

/** Scenarios that measure a running server given by --url / --tcp (and `all`, for those two). */
const EXTERNAL_SCENARIOS = ["throughput", "connections", "all"] as const;

export const USAGE = `usage: npm run bench -- <scenario> [flags]
scenarios: ${SCENARIOS.join(", ")}
  --smoke              tiny sizes, a few seconds (what the test suite runs)
  --shards 1,2         run Iris once per shard count (default: the server's default)
  --url ws://HOST:P/ws measure a running server instead of dist/iris (loopback only;
                       throughput and connections: the other scenarios start their own)
  --tcp HOST:PORT      same, over the seed's raw TCP protocol (implies --proto v0)
  --proto v0|v1        wire protocol (default v1; v0 = the seed's packets, no acks)
  --conns N            connections (throughput: 1000 = 500 pairs)
  --messages N         hotspot / startup prefill message count; drain: one backlog size
  --payload BYTES      message body size (default 64, at least 16)
  --duration S         seconds per measured phase
  --workers N          load-generator processes
  --window W           saturation: most unacknowledged sends per sender
  --rate R             paced phase: total msgs/s (default 50% of the measured saturation)
  --flood-rate R       offline-flood: the flood paced at R msgs/s in total (open loop) instead of a window
                       of sends awaiting "stored" per sender
  --levels 1000,5000   connections: cumulative connection counts
  --out DIR            results directory (default bench/results; latest/ only updates there)
  --binary PATH        Iris binary (default dist/iris)
  --pid PID            with --url/--tcp: the server's pid, for CPU and RSS
  --no-baseline        skip the bare relay comparison
  --nodes N            cluster, cluster-scale: Iris nodes on one nats-server (default 3; scale: 10)
                       (cluster-scale: --conns = logged-in users in total, --rate = steady msgs/s)
  --bundles            v1 load connections log in with the bundle flag (as the SDK does)
  --both-logins        throughput: Iris once with plain v1 logins, once with bundled ones, one relay
                       run for both (the default under \`all\`, whose issue-14 table shows both);
                       offline-flood: one flood of each, each on a fresh server
  --auto-tune          Iris starts with --auto-tune, as an operator starts it (default: without)
  --frame-floor        throughput: also run the relay with --ack-sends (each send answered SENT, the
                       frames a v1 message moves through Iris and no other work) and print Iris's
                       ratios to it too; the issue-14 ratios stay against the plain relay
  --rounds N           throughput and connections (and \`all\`'s): N rounds of Iris then the relay, each
                       on fresh servers; every round's figures are printed, and the verdicts use their
                       medians (default 1)
`;

export class ArgsError extends Error {}

/** True for names and addresses on this machine's loopback (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  const m = h.match(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/);
  return !!m && Number(m[1]) === 127 && m.slice(2).every((x) => Number(x) <= 255);
}

function positiveInt(flag: string, v: string | undefined): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new ArgsError(`${flag} needs a positive integer, got ${v ?? "nothing"}`);
  return n;
}

function intList(flag: string, v: string | undefined): number[] {
  if (!v) throw new ArgsError(`${flag} needs a comma-separated list`);
  return v.split(",").map((x) => positiveInt(flag, x.trim()));
}

export function parseArgs(argv: string[]): BenchArgs {
  const a: BenchArgs = {
    scenario: "all",
    smoke: false,
    shards: null,
    url: null,
    tcp: null,
    proto: "v1",
    conns: null,
    messages: null,
    payload: 64,
    duration: null,
    workers: null,
    window: null,
    rate: null,
    floodRate: null,
    levels: null,
    out: null,
    binary: null,
    pid: null,
    baseline: true,
    nodes: null,
    bundles: false,
    bothLogins: false,
    frameFloor: false,
    autoTune: false,
    rounds: 1,
  };
  let scenario: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    const next = () => argv[++i];
    switch (f) {
      case "--smoke":
        a.smoke = true;
        break;
      case "--shards":
        a.shards = intList(f, next());
        break;
      case "--url": {
        const v = next() ?? "";
        let u: URL;
        try {
          u = new URL(v);
        } catch {
          throw new ArgsError(`--url is not a URL: ${v}`);
        }
        if (u.protocol !== "ws:") throw new ArgsError("--url must be ws:// (the bench does not speak TLS)");
        if (!isLoopbackHost(u.hostname)) throw new ArgsError(`--url must be a loopback address, got ${u.hostname}`);
        a.url = v;
        break;
      }
      case "--tcp": {
        const v = next() ?? "";
        const m = v.match(/^(.+):(\d+)$/);
        if (!m) throw new ArgsError(`--tcp needs HOST:PORT, got ${v}`);
        if (!isLoopbackHost(m[1]!)) throw new ArgsError(`--tcp must be a loopback address, got ${m[1]}`);
        a.tcp = { host: m[1]!.replace(/^\[|\]$/g, ""), port: positiveInt(f, m[2]) };
        a.proto = "v0";
        break;
      }
      case "--proto": {
        const v = next();
        if (v !== "v0" && v !== "v1") throw new ArgsError("--proto is v0 or v1");
        a.proto = v;
        break;
      }
      case "--conns":
        a.conns = positiveInt(f, next());
        break;
      case "--messages":
        a.messages = positiveInt(f, next());
        break;
      case "--payload":
        a.payload = positiveInt(f, next());
        if (a.payload < 16) throw new ArgsError("--payload must be at least 16 bytes (timestamp + sender tag)");
        break;
      case "--duration":
        a.duration = positiveInt(f, next());
        break;
      case "--workers":
        a.workers = positiveInt(f, next());
        break;
      case "--window":
        a.window = positiveInt(f, next());
        break;
      case "--flood-rate":
        a.floodRate = positiveInt(f, next());
        break;
      case "--rate":
        a.rate = positiveInt(f, next());
        break;
      case "--levels":
        a.levels = intList(f, next());
        break;
      case "--out":
        a.out = next() ?? null;
        if (!a.out) throw new ArgsError("--out needs a directory");
        break;
      case "--binary":
        a.binary = next() ?? null;
        break;
      case "--pid":
        a.pid = positiveInt(f, next());
        break;
      case "--no-baseline":
        a.baseline = false;
        break;
      case "--nodes":
        a.nodes = positiveInt(f, next());
        break;
      case "--bundles":
        a.bundles = true;
        break;
      case "--both-logins":
        a.bothLogins = true;
        break;
      case "--frame-floor":
        a.frameFloor = true;
        break;
      case "--auto-tune":
        a.autoTune = true;
        break;
      case "--rounds":
        a.rounds = positiveInt(f, next());
        break;
      default:
        if (f.startsWith("-")) throw new ArgsError(`unknown flag ${f}`);
        if (scenario !== null) throw new ArgsError(`one scenario at a time (got ${scenario} and ${f})`);
        scenario = f;
    }
  }
  if (scenario !== null) {
    if (!(SCENARIOS as readonly string[]).includes(scenario)) throw new ArgsError(`unknown scenario ${scenario}`);
    a.scenario = scenario as ScenarioName;
  }
  if (a.url && a.tcp) throw new ArgsError("--url and --tcp are exclusive");
  // The other scenarios start their own server: a running one given here would sit idle while they
  // measure another (`all` runs both kinds, as documented).
  if ((a.url || a.tcp) && !(EXTERNAL_SCENARIOS as readonly string[]).includes(a.scenario)) {
    throw new ArgsError(
      `--url/--tcp: ${a.scenario} starts its own server (see --binary); only throughput and connections measure a running one`,
    );
  }
  // `all` prints issue 14's table, which has a row for each login kind (the SDK's default is bundled).
  if (a.scenario === "all") a.bothLogins = true;
  return a;
}

/** The command that reproduces a run, for results files and docs. */
export function commandLine(argv: string[]): string {
  return ["npm run bench --", ...argv.map((x) => (/^[\w.,:/=@-]+$/.test(x) ? x : JSON.stringify(x)))].join(" ");
}
