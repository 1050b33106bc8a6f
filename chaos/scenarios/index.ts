// Every scenario by name, in the order `run.ts --list` and the smoke test use.

import type { Scenario } from "../lib/scenario.ts";
import corruption from "./corruption.ts";
import cpuSaturation from "./cpu-saturation.ts";
import crashRestart from "./crash-restart.ts";
import diskCrusher from "./disk-crusher.ts";
import exactlyOnce from "./exactly-once.ts";
import godMode from "./god-mode.ts";
import { clusterGodMode, natsRestart, nodeSniper, splitBrain } from "./cluster.ts";
import kitchenSink from "./kitchen-sink.ts";
import monkey from "./monkey.ts";
import oom from "./oom.ts";
import slowConsumer from "./slow-consumer.ts";
import sniper from "./sniper.ts";

export const scenarios: Scenario[] = [
  sniper,
  monkey,
  corruption,
  diskCrusher,
  slowConsumer,
  oom,
  cpuSaturation,
  crashRestart,
  kitchenSink,
  godMode,
  exactlyOnce,
  nodeSniper,
  natsRestart,
  splitBrain,
  clusterGodMode,
];

export function findScenario(name: string): Scenario | undefined {
  return scenarios.find((s) => s.name === name);
}
