// Every setting Iris accepts, validated with zod. Flags (--kebab-case) and env vars (IRIS_SNAKE)
// map onto the same keys; explicit values beat the auto-tune plan, which beats the defaults.

import { z } from "zod";
import { checkClusterSettings, clusterSettingHelp, clusterSettingsShape } from "./cluster.ts";

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const bool = z.union([z.boolean(), z.enum(["1", "0", "true", "false", "yes", "no", ""])])
  .transform((v) => v === true || v === "1" || v === "true" || v === "yes" || v === "");

export const settingsSchema = z.object({
  host: z.string().min(1).default("127.0.0.1"),
  port: port.default(8080),
  tcpPort: port.optional(),
  dataDir: z.string().min(1).default("./iris-data"),
  shards: z.coerce.number().int().min(1).max(256).optional(),
  jwtSecret: z.string().min(16, "must be at least 16 characters").optional(),
  jwtPublicKey: z.string().min(1).optional(),
  jwksUrl: z.string().url().refine((u) => /^https?:/.test(u), "must be an http(s) URL").optional(),
  jwtIssuer: z.string().min(1).optional(),
  jwtAudience: z.string().min(1).optional(),
  tlsCert: z.string().min(1).optional(),
  tlsKey: z.string().min(1).optional(),
  jwksRefreshMs: z.coerce.number().int().min(0).max(86_400_000).default(30_000),
  insecure: bool.default(false),
  allowV0: bool.default(false),
  maxPayload: positiveInt.max(16 * 1024 * 1024).default(64 * 1024),
  maxConns: positiveInt.optional(),
  maxInbox: positiveInt.default(1_000_000),
  spillMb: positiveInt.optional(),
  refuseMb: positiveInt.optional(),
  inboxTtl: z.coerce.number().int().min(0).default(7 * 24 * 3600), // seconds; 0 = keep forever
  dedupeWindow: z.coerce.number().int().min(1).max(366 * 24 * 3600).default(24 * 3600), // seconds
  loginTimeout: z.coerce.number().int().min(100).default(10_000), // ms
  slowConsumerBytes: positiveInt.default(1024 * 1024),
  slowConsumerTimeout: positiveInt.default(30_000),
  rateMsgs: z.coerce.number().int().min(0).default(10_000),
  rateBurst: positiveInt.default(20_000),
  rateFrames: z.coerce.number().int().min(0).default(20_000),
  maxPending: positiveInt.default(1000),
  pendingSpillMs: positiveInt.default(1000),
  storeBacklogMb: positiveInt.default(128),
  startupCheckMb: z.coerce.number().int().min(0).max(1 << 30).default(256),
  minFreeMb: z.coerce.number().int().min(0).max(1 << 30).optional(),
  flushMs: z.coerce.number().int().min(0).max(1000).default(2),
  // A group commit waits up to flushMs for more rows only while it holds fewer than this. The
  // wait spreads a commit's fixed cost (WAL pages, the replies' port message) over more rows, and
  // 1,024 already does: waiting for more only holds the senders' acks, and in a closed loop their
  // next sends (bundled offline flood, eight alternating pairs against 2,048: seven higher, by
  // 1-27%). tune/plan.ts plans the same figure (STORE_COMMIT_ROWS).
  batchRows: positiveInt.default(1024),
  shutdownTimeout: positiveInt.default(5000),
  profileSeconds: z.coerce.number().int().min(1).max(600).default(5),
  logLevel: z.enum(["debug", "info", "warn", "error"]).default("info"),
  logFormat: z.enum(["text", "json"]).default("text"),
  chaos: bool.default(false),
  chaosPort: port.default(0),
  autoTune: bool.default(false),
  dryRun: bool.default(false),
  json: bool.default(false),
  help: bool.default(false),
  version: bool.default(false),
  ...clusterSettingsShape,
}).strict().superRefine(checkClusterSettings);

export type Settings = z.infer<typeof settingsSchema>;
export type SettingKey = keyof Settings;

/** One-line help per setting, for --help and the docs. */
export const settingHelp: Record<SettingKey, string> = {
  host:
    "address to bind (default 127.0.0.1; non-loopback needs auth (--jwt-secret, --jwt-public-key, --jwks-url) or --insecure)",
  port: "HTTP + WebSocket port (default 8080; 0 picks a free port)",
  tcpPort: "optional raw TCP listener for seed (v0) clients",
  dataDir: "directory for the SQLite inbox (default ./iris-data)",
  shards: "router shards (worker threads); default: auto-tune plan or 1",
  jwtSecret: "HS256 secret: logins and HTTP API need a JWT whose sub is the user",
  jwtPublicKey: "PEM public key (or certificate) file: RS*/PS*/ES*/EdDSA login tokens signed by its private key",
  jwksUrl:
    "identity provider key set (JWKS) URL: tokens signed by any key in it (cached; refetched for an unknown kid)",
  jwtIssuer: "required iss claim of every token (optional)",
  jwtAudience: "required aud claim of every token (optional)",
  jwksRefreshMs: "least ms between JWKS refetches triggered by unknown kids (default 30000)",
  tlsCert: "PEM certificate (chain) file: serve HTTPS + WSS (and TLS on --tcp-port); SIGHUP reloads it",
  tlsKey: "PEM private key file of --tls-cert",
  insecure: "allow binding a non-loopback address without auth",
  allowV0: "accept v0 (tokenless) logins even when --jwt-secret is set",
  maxPayload: "largest message body in bytes (default 65536)",
  maxConns: "most concurrent connections; more get HTTP 503 (default: plan)",
  maxInbox: "most stored messages per offline user (default 1000000)",
  spillMb: "RSS (MiB) above which nothing for slow users is held in RAM (default: plan, 60% of memory)",
  refuseMb: "RSS (MiB) above which new connections get 503 (default: plan, 80% of memory)",
  inboxTtl: "seconds a stored message is kept, 0 = forever (default 7 days)",
  dedupeWindow:
    "seconds a sent (sender, id, recipient) is remembered: a retry within it is a duplicate (default 86400)",
  loginTimeout: "ms a connection may stay unauthenticated (default 10000)",
  slowConsumerBytes: "socket buffer above which a recipient is served from the store",
  slowConsumerTimeout: "ms a recipient may stay backed up before it is disconnected (4003)",
  rateMsgs: "messages per second per user (token bucket; 0 = unlimited; default 10000)",
  rateBurst: "message burst per user above the rate (default 20000)",
  rateFrames: "frames per second per connection, any kind (0 = unlimited; default 20000)",
  maxPending: "most unacked in-memory deliveries per user before spilling to the store",
  pendingSpillMs: "unacked deliveries older than this (ms) move to the store and their senders hear 'stored'",
  startupCheckMb:
    "quick_check the database at start up to this size (MiB, with its WAL; never after a crash); 0 = never (default 256)",
  minFreeMb:
    "free disk (MiB) kept in reserve on the data dir: below it, sends that would be stored get STORE_FULL; 0 = off (default: plan from disk size)",
  storeBacklogMb:
    "messages on their way to the store, weighed in RAM (body + 6 KiB each), in MiB: above it sends that would be stored get SERVER_BUSY (retried by the SDK) and v0 senders wait",
  flushMs: "group-commit interval of the storage writer in ms (default 2)",
  batchRows: "buffered rows at which the storage writer commits without waiting --flush-ms (default 1024)",
  shutdownTimeout: "ms allowed for a graceful shutdown (default 5000)",
  profileSeconds:
    "seconds a SIGUSR2 samples each shard and the writer; reports in <data-dir>/profiles (default 5, at most 600)",
  logLevel: "debug | info | warn | error",
  logFormat: "text | json: one line per event either way; json has time, level, thread, msg and fields",
  chaos: "expose loopback-only chaos endpoints (tests only)",
  chaosPort: "port of the chaos endpoint on 127.0.0.1 (default 0 = any free port)",
  autoTune: "probe the machine and size limits to it",
  dryRun: "with --auto-tune: print the plan and exit",
  json: "with --dry-run: print the plan as JSON",
  help: "print this help",
  version: "print the version",
  ...clusterSettingHelp,
};

/** Every default, derived from the schema once (nothing else restates them). */
export const defaultSettings: Settings = settingsSchema.parse({});
