// A socket shard's Sessions for unit tests: one shard, its own metrics buffer, posts handed to
// `post` (the test records them); `host` overrides any part of the host (settings, cluster hooks).

import { defaultSettings } from "../../src/config/schema.ts";
import { type SessionHost, Sessions } from "../../src/gateway/session.ts";
import { createMetricsBuffer, MetricsReader, shardSlot, SlotMetrics } from "../../src/observe/metrics.ts";
import { Signals } from "../../src/observe/signals.ts";
import type { PortMsg } from "../../src/router/wire.ts";

export function testSessions(
  post: (k: number, m: PortMsg) => void,
  host: Partial<SessionHost> = {},
): { sessions: Sessions; buf: SharedArrayBuffer; metrics: SlotMetrics } {
  const buf = createMetricsBuffer(1);
  const metrics = new SlotMetrics(buf, shardSlot(0));
  const sessions = new Sessions({
    index: 0,
    shards: 1,
    settings: defaultSettings,
    metrics,
    signals: new Signals(new MetricsReader(buf)),
    post,
    ...host,
  });
  return { sessions, buf, metrics };
}
