// A raw WebSocket for byte-level protocol tests: collects every frame and the close event.

export class RawSocket {
  readonly frames: (Uint8Array | string)[] = [];
  closeCode: number | null = null;
  closeReason = "";
  private readonly ws: WebSocket;
  readonly opened: Promise<void>;

  /** `opts` is Bun's WebSocket options (e.g. `{ tls: { ca } }` for a test certificate). */
  constructor(url: string, opts?: Record<string, unknown>) {
    this.ws = opts ? new WebSocket(url, opts as never) : new WebSocket(url);
    this.ws.binaryType = "arraybuffer";
    this.opened = new Promise((resolve, reject) => {
      this.ws.onopen = () => resolve();
      this.ws.onerror = () => reject(new Error("websocket error"));
    });
    this.ws.onmessage = (e) =>
      this.frames.push(typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer));
    this.ws.onclose = (e) => {
      this.closeCode = e.code;
      this.closeReason = e.reason;
    };
  }

  static async open(url: string, opts?: Record<string, unknown>): Promise<RawSocket> {
    const s = new RawSocket(url, opts);
    await s.opened;
    return s;
  }

  send(d: Uint8Array | string): void {
    this.ws.send(d);
  }

  async next(ms = 5000): Promise<Uint8Array | string> {
    const end = Date.now() + ms;
    while (this.frames.length === 0) {
      if (Date.now() > end) throw new Error("no frame arrived");
      if (this.closeCode !== null) throw new Error(`closed ${this.closeCode} ${this.closeReason}`);
      await Bun.sleep(2);
    }
    return this.frames.shift()!;
  }

  async closed(ms = 5000): Promise<number> {
    const end = Date.now() + ms;
    while (this.closeCode === null) {
      if (Date.now() > end) throw new Error("socket did not close");
      await Bun.sleep(2);
    }
    return this.closeCode;
  }

  close(): void {
    this.ws.close();
  }
}
