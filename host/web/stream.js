// The client side of the streaming contract (README, "The WebSocket contract"), without any UI:
// one WebSocket session at a time, frames paced by replies, slow_down handled, errors classified
// by their code and close code, reconnects with backoff only where another try can succeed.
// The page (app.js) listens to its events; another tool could reuse it as is.

/** Codes that end a session and that retrying cannot fix: the page stops and shows them. */
export const FATAL = new Set([
  "invalid_pipeline", "forbidden", "unauthorized",
  "invalid_message", "invalid_frame", "frame_too_large",
]);
/** Close codes that mean the same when no error message arrived first. */
const FATAL_CLOSE = new Map([
  [1008, "invalid_pipeline"], [1003, "invalid_message"], [1007, "invalid_frame"], [1009, "frame_too_large"],
]);
/** Codes that answer one frame; the session goes on. */
const PER_FRAME = new Set(["pipeline_failure", "internal_error"]);

/** Rate control after `slow_down`: halve, then add RAISE_FPS each second without drops. */
export const RATE = { MIN_FPS: 0.5, RAISE_FPS: 1, HALVE_AGAIN_DROP_SHARE: 0.5 };
const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000, 30000];
const LATENCY_SAMPLES = 200;

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export class StreamClient extends EventTarget {
  /**
   * @param {object} o
   * @param {string} o.pipeline  pipeline_id
   * @param {string} o.token     API token for tenant servers ("" for none)
   * @param {number} o.fps       target frames per second (0: as fast as replies come)
   * @param {number} o.inflight  frames sent but not yet answered, at most (default 1)
   * @param {() => Promise<{blob: Blob, width: number, height: number} | null>} o.grab
   * @param {boolean} o.once     send a single frame, then close (a still image)
   */
  constructor(o) {
    super();
    this.o = { fps: 0, inflight: 1, once: false, ...o };
    this.stats = {
      sent: 0, answered: 0, processed: 0, dropped: 0, failed: 0, slowdowns: 0,
      latencies: [], lastLatency: NaN, sentTimes: [], answeredTimes: [],
    };
    this.state = "idle";
    this.rateCap = Infinity; // fps; Infinity until a slow_down
    this.running = false;
    this.attempt = 0;
    this.ws = null;
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/ws/video/stream?pipeline_id=${encodeURIComponent(this.o.pipeline)}`;
  }

  start() {
    this.running = true;
    this.connect();
    this.timer = setInterval(() => this.tick(), 1000);
  }

  /** Stops sending; waits (up to 5 s) for the replies still owed, then closes with 1000. */
  async stop() {
    this.running = false;
    clearInterval(this.timer);
    clearTimeout(this.retry);
    const ws = this.ws;
    const deadline = performance.now() + 5000;
    while (ws && ws.readyState === WebSocket.OPEN && this.pending.size > 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, "stopped");
    this.setState("stopped");
  }

  setState(state, detail = "") {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, detail } }));
  }

  fail(code, detail, fatal) {
    this.dispatchEvent(new CustomEvent("error", { detail: { code, detail, fatal } }));
  }

  connect() {
    const protocols = ["streamhost"];
    if (this.o.token) protocols.push(`bearer.${this.o.token}`);
    this.setState("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url(), protocols);
    } catch (e) {
      this.fail("connection_failed", String(e), true);
      this.running = false;
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.index = 0; // frame_index of the last frame sent on this connection
    this.pending = new Map(); // frame_index -> {t0, width, height}
    this.opened = false;
    this.fatal = null;
    this.sending = false;
    ws.onopen = () => {
      this.opened = true;
      this.setState("streaming");
      this.pump();
    };
    ws.onmessage = (ev) => this.onMessage(ev);
    ws.onclose = (ev) => this.onClose(ev);
  }

  onMessage(ev) {
    let msg;
    try {
      msg = JSON.parse(typeof ev.data === "string" ? ev.data : new TextDecoder().decode(ev.data));
    } catch {
      this.fail("invalid_reply", "The server sent something that is not JSON", false);
      return;
    }
    if (msg.warning === "slow_down") {
      this.slowDown();
      return;
    }
    const s = this.stats;
    const sent = typeof msg.frame_index === "number" ? this.pending.get(msg.frame_index) : undefined;
    if (typeof msg.frame_index === "number") {
      this.pending.delete(msg.frame_index);
      s.answered += 1;
      s.answeredTimes.push(performance.now());
    }
    if (msg.error) {
      // Whether the session ends is a property of the code (and the close code that follows),
      // never of whether the reply carries a frame_index: a JPEG that fails to decode is answered
      // with its frame_index and still closes the session with 1007.
      if (PER_FRAME.has(msg.error)) {
        s.failed += 1;
        this.fail(msg.error, msg.detail ?? "", false);
      } else {
        this.fatal = { code: msg.error, detail: msg.detail ?? "" };
      }
    } else if (msg.dropped) {
      s.dropped += 1;
      this.dispatchEvent(new CustomEvent("dropped", { detail: msg }));
    } else if ("result" in msg) {
      s.processed += 1;
      this.attempt = 0;
      if (sent) {
        s.lastLatency = performance.now() - sent.t0;
        s.latencies.push(s.lastLatency);
        if (s.latencies.length > LATENCY_SAMPLES) s.latencies.shift();
      }
      this.dispatchEvent(new CustomEvent("result", {
        detail: { index: msg.frame_index, result: msg.result, width: sent?.width, height: sent?.height },
      }));
    }
    this.dispatchEvent(new CustomEvent("stats"));
    if (this.o.once && this.pending.size === 0 && this.index > 0 && !this.fatal) {
      this.stop();
      return;
    }
    this.pump();
  }

  async onClose(ev) {
    if (this.ws !== ev.target) return;
    const opened = this.opened;
    let fatal = this.fatal;
    if (!fatal && FATAL_CLOSE.has(ev.code)) {
      fatal = { code: FATAL_CLOSE.get(ev.code), detail: ev.reason || `closed with ${ev.code}` };
    }
    if (!fatal && !opened && this.running) {
      // A refused upgrade reaches a browser as a bare 1006: ask the same question as a plain
      // request, whose {error, detail} body a script may read (the server checks the origin
      // and token before it requires an upgrade).
      fatal = await this.diagnose();
    }
    if (fatal && FATAL.has(fatal.code)) {
      this.running = false;
      clearInterval(this.timer);
      this.fail(fatal.code, fatal.detail, true);
      this.setState("closed", `${fatal.code} (${ev.code})`);
      return;
    }
    if (fatal) this.fail(fatal.code, fatal.detail, false);
    if (!this.running) {
      this.setState("stopped");
      return;
    }
    const wait = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    this.setState("reconnecting", `closed ${ev.code}${ev.reason ? ` ${ev.reason}` : ""}; retry in ${wait / 1000} s`);
    this.retry = setTimeout(() => this.running && this.connect(), wait);
  }

  async diagnose() {
    const headers = this.o.token ? { Authorization: `Bearer ${this.o.token}` } : {};
    try {
      const r = await fetch(this.url().replace(/^ws/, "http"), { headers, cache: "no-store" });
      const body = await r.json().catch(() => null);
      if (body && typeof body.error === "string") return { code: body.error, detail: body.detail ?? "" };
    } catch {
      // The server is unreachable: a plain retry case.
    }
    return { code: "connection_failed", detail: "Could not open the WebSocket (server unreachable or refused)" };
  }

  /** The send rate now: the target (if any) under the slow_down cap. */
  currentRate() {
    return Math.min(this.o.fps > 0 ? this.o.fps : Infinity, this.rateCap);
  }

  slowDown() {
    const s = this.stats;
    s.slowdowns += 1;
    const now = this.currentRate();
    const base = Number.isFinite(now) ? now : Math.max(this.recentRate(s.sentTimes, 2000), RATE.MIN_FPS * 2);
    this.rateCap = Math.max(RATE.MIN_FPS, base / 2);
    this.lastSlowDown = performance.now();
    this.dispatchEvent(new CustomEvent("slowdown", { detail: { rate: this.rateCap } }));
    this.dispatchEvent(new CustomEvent("stats"));
  }

  /** Once a second: recover the rate additively, or halve it again while most frames drop. */
  tick() {
    const s = this.stats;
    const now = performance.now();
    for (const list of [s.sentTimes, s.answeredTimes]) {
      while (list.length && list[0] < now - 5000) list.shift();
    }
    if (Number.isFinite(this.rateCap)) {
      const since = now - (this.lastTick ?? now);
      const droppedNow = s.dropped - (this.droppedAtTick ?? s.dropped);
      const answeredNow = s.answered - (this.answeredAtTick ?? s.answered);
      if (since > 0 && answeredNow > 0 && droppedNow / answeredNow > RATE.HALVE_AGAIN_DROP_SHARE
          && now - this.lastSlowDown >= 2000) {
        // The server warns once per rise above its threshold; if drops stay high, keep backing off.
        this.rateCap = Math.max(RATE.MIN_FPS, this.rateCap / 2);
        this.lastSlowDown = now;
      } else if (droppedNow === 0 && now - this.lastSlowDown >= 1000) {
        this.rateCap += RATE.RAISE_FPS;
        const ceiling = this.o.fps > 0 ? this.o.fps : this.recentRate(s.answeredTimes, 2000) * 2 + 1;
        if (this.rateCap >= ceiling) this.rateCap = Infinity;
      }
    }
    this.lastTick = now;
    this.droppedAtTick = s.dropped;
    this.answeredAtTick = s.answered;
    this.dispatchEvent(new CustomEvent("stats"));
    this.pump();
  }

  recentRate(times, windowMs) {
    const since = performance.now() - windowMs;
    return times.filter((t) => t >= since).length / (windowMs / 1000);
  }

  /** Sends the next frame if the contract and the rate allow it now, else schedules itself. */
  async pump() {
    const ws = this.ws;
    if (!this.running || !ws || ws.readyState !== WebSocket.OPEN || this.sending || this.fatal) return;
    if (this.o.once && this.index > 0) return;
    if (this.pending.size >= Math.max(1, this.o.inflight)) return; // the next reply calls pump()
    const rate = this.currentRate();
    if (Number.isFinite(rate)) {
      const wait = (this.lastSend ?? -Infinity) + 1000 / rate - performance.now();
      if (wait > 0) {
        clearTimeout(this.paceTimer);
        this.paceTimer = setTimeout(() => this.pump(), wait);
        return;
      }
    }
    this.sending = true;
    try {
      const frame = await this.o.grab();
      if (!frame) {
        // The source has no picture yet (a video still loading): look again shortly.
        clearTimeout(this.paceTimer);
        this.paceTimer = setTimeout(() => this.pump(), 50);
        return;
      }
      if (ws !== this.ws || ws.readyState !== WebSocket.OPEN || !this.running) return;
      const bytes = await frame.blob.arrayBuffer();
      this.index += 1;
      this.lastSend = performance.now();
      this.pending.set(this.index, { t0: this.lastSend, width: frame.width, height: frame.height });
      ws.send(bytes);
      this.stats.sent += 1;
      this.stats.sentTimes.push(this.lastSend);
      this.dispatchEvent(new CustomEvent("stats"));
    } catch (e) {
      this.fail("capture_failed", String(e), false);
    } finally {
      this.sending = false;
    }
    this.pump();
  }

  /** Numbers for the status bar. */
  snapshot() {
    const s = this.stats;
    const sorted = [...s.latencies].sort((a, b) => a - b);
    return {
      sent: s.sent, answered: s.answered, processed: s.processed, dropped: s.dropped,
      failed: s.failed, slowdowns: s.slowdowns,
      sentPerSec: this.recentRate(s.sentTimes, 2000),
      answeredPerSec: this.recentRate(s.answeredTimes, 2000),
      latencyLast: s.lastLatency, latencyP50: percentile(sorted, 50), latencyP95: percentile(sorted, 95),
      rate: this.currentRate(), state: this.state,
    };
  }
}
