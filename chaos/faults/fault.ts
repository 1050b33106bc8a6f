// A fault is something that goes wrong on a schedule while traffic runs. Each one starts, stops
// (idempotently, and always before the run settles), and reports what it did as verdict fields.

export interface Fault {
  readonly name: string;
  start(): void;
  stop(): Promise<void>;
  report(): Record<string, number | string>;
}

/**
 * Runs `step` every `everyMs`, one at a time (a slow step delays the next instead of piling up),
 * until stopped. Errors are counted, not thrown: a fault must never end the run by itself.
 */
export class Every {
  private stopped = true;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  ticks = 0;
  errors = 0;

  constructor(private readonly everyMs: number, private readonly step: (tick: number) => Promise<void> | void) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.everyMs);
        this.wake = () => (clearTimeout(timer), resolve());
      });
      this.wake = null;
      if (this.stopped) return;
      try {
        await this.step(this.ticks++);
      } catch {
        this.errors++;
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
  }
}
