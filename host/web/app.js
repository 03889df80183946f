// The live view's page logic: the controls, the URL parameters, and what the user sees (status
// bar, overlay, lines read, errors). The contract lives in stream.js, sources in sources.js and
// drawing in overlay.js; this file only wires them to the document.
//
// URL parameters: pipeline_id, autostart=1 (opens the camera and streams without a click),
// source=camera|video|image, fps (target; 0 = reply-paced), inflight (frames in flight, default 1),
// size (longest side sent), quality (JPEG, 0.1-1).

import { StreamClient } from "./stream.js";
import { cameras, grabber, openCamera, openImageFile, openVideoFile } from "./sources.js";
import { draw, drawable, reset, textLines } from "./overlay.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const TOKEN_KEY = "streamhost.token";
const MAX_RESULT_CHARS = 20000;

const ui = {
  source: $("source"), camera: $("camera"), cameraField: $("camera-field"), file: $("file"),
  fileField: $("file-field"), pipeline: $("pipeline"), size: $("size"), quality: $("quality"),
  fps: $("fps"), token: $("token"), start: $("start"), stop: $("stop"), controls: $("controls"),
  video: $("video"), image: $("image"), overlay: $("overlay"), placeholder: $("placeholder"),
  lines: $("lines"), linesFrame: $("lines-frame"), reuseHint: $("reuse-hint"), result: $("result"), state: $("state"),
  error: $("error"), errorCode: $("error-code"), errorDetail: $("error-detail"), note: $("pipeline-note"),
};

let client = null;
let media = null; // the camera stream, to release
let objectUrl = null;

function setNumber(id, value, text = String(value)) {
  const el = $(id);
  el.dataset.value = String(value);
  el.textContent = text;
}

const ms = (v) => (Number.isFinite(v) ? `${Math.round(v)} ms` : "–");

function showStats() {
  if (!client) return;
  const s = client.snapshot();
  setNumber("st-sent", s.sent);
  setNumber("st-answered", s.answered);
  setNumber("st-processed", s.processed);
  setNumber("st-dropped", s.dropped);
  setNumber("st-failed", s.failed);
  setNumber("st-slowdowns", s.slowdowns);
  $("st-sent-rate").textContent = s.sentPerSec.toFixed(1);
  $("st-answered-rate").textContent = s.answeredPerSec.toFixed(1);
  $("st-latency").textContent = ms(s.latencyLast);
  $("st-p50").textContent = ms(s.latencyP50);
  $("st-p95").textContent = ms(s.latencyP95);
  setNumber("st-rate", s.rate, Number.isFinite(s.rate) ? `${s.rate.toFixed(1)} fps` : "unlimited");
  $("st-slowdowns").classList.toggle("warn", s.slowdowns > 0);
  $("st-dropped").classList.toggle("warn", s.dropped > 0);
  $("st-rate").classList.toggle("warn", Number.isFinite(client.rateCap));
}

function showState(state, detail = "") {
  ui.state.dataset.state = state;
  ui.state.textContent = detail ? `${state}: ${detail}` : state;
}

function showError(code, detail) {
  ui.error.hidden = false;
  ui.error.dataset.code = code;
  ui.errorCode.textContent = code;
  ui.errorDetail.textContent = detail;
}

function clearError() {
  ui.error.hidden = true;
  delete ui.error.dataset.code;
}

/** JSON indented, but arrays of numbers (points, boxes) and of points kept on one line. */
function pretty(value, indent = "") {
  const flat = (v) => Array.isArray(v) && v.every((x) => typeof x === "number" || (Array.isArray(x) && x.every((y) => typeof y === "number")));
  if (flat(value)) return JSON.stringify(value);
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return `[\n${value.map((v) => inner + pretty(v, inner)).join(",\n")}\n${indent}]`;
  }
  if (value && typeof value === "object") {
    const entries = Object.entries(value);
    if (entries.length === 0) return "{}";
    return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${pretty(v, inner)}`).join(",\n")}\n${indent}}`;
  }
  return JSON.stringify(value);
}

function showResult({ index, result, width, height }) {
  let json = pretty(result);
  if (json.length > MAX_RESULT_CHARS) json = `${json.slice(0, MAX_RESULT_CHARS)}\n… (cut)`;
  ui.result.textContent = json;
  if (width && height) {
    reset(ui.overlay, width, height);
    if (drawable(result)) draw(ui.overlay, result);
  }
  if (!Array.isArray(result?.text)) return;
  ui.linesFrame.textContent = `frame ${index}`;
  const items = textLines(result).map((line) => {
    const li = document.createElement("li");
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = line.text;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = Number.isFinite(line.score) ? line.score.toFixed(3) : "";
    if (line.reused === true) {
      // ocr_stream: this line's pixels had not changed, so it was not read again.
      const reused = document.createElement("span");
      reused.className = "reused";
      reused.textContent = "carried over";
      score.prepend(reused);
    }
    li.append(text, score);
    return li;
  });
  if (items.length === 0) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "No text in this frame.";
    items.push(li);
  }
  ui.lines.replaceChildren(...items);
  ui.reuseHint.hidden = !textLines(result).some((line) => line.reused === true);
}

async function loadPipelines() {
  const wanted = params.get("pipeline_id");
  let list = [];
  try {
    // With tenants configured the server lists only this token's pipelines, and none without one.
    const token = ui.token.value.trim();
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const r = await fetch("/pipelines", { cache: "no-store", headers });
    const body = await r.json();
    if (!r.ok) showError(body.error ?? "pipelines_unavailable", body.detail ?? `GET /pipelines: HTTP ${r.status}`);
    else if (ui.error.dataset.code === "unauthorized") clearError();
    list = body.pipelines ?? [];
  } catch (e) {
    showError("pipelines_unavailable", `GET /pipelines failed: ${e}`);
  }
  const options = list.map((p) => {
    const o = document.createElement("option");
    o.value = p.id;
    if (p.status === "ready") {
      o.textContent = p.id;
      o.title = p.description ?? "";
    } else {
      const reason = String(p.reason ?? "failed");
      o.textContent = `${p.id} (failed: ${reason.length > 60 ? `${reason.slice(0, 60)}…` : reason})`;
      o.title = reason;
      o.disabled = true;
    }
    return o;
  });
  if (wanted && !list.some((p) => p.id === wanted)) {
    // Kept so the server can answer for it (invalid_pipeline), as it would for any client.
    const o = document.createElement("option");
    o.value = wanted;
    o.textContent = `${wanted} (not listed)`;
    options.unshift(o);
  }
  ui.pipeline.replaceChildren(...options);
  if (wanted) ui.pipeline.value = wanted;
  else {
    const preferred = ["ocr", "yolo_ocr", "frame_info"].find((id) => list.some((p) => p.id === id && p.status === "ready"));
    const first = list.find((p) => p.status === "ready");
    if (preferred || first) ui.pipeline.value = preferred ?? first.id;
  }
  const failed = list.filter((p) => p.status !== "ready");
  ui.note.hidden = failed.length === 0;
  ui.note.textContent = failed.map((p) => `Pipeline ${p.id} failed to load: ${p.reason}`).join(" · ");
}

async function fillCameras() {
  const list = await cameras();
  ui.camera.replaceChildren(...list.map((d, i) => {
    const o = document.createElement("option");
    o.value = d.deviceId;
    o.textContent = d.label || `Camera ${i + 1}`;
    return o;
  }));
  ui.cameraField.hidden = list.length < 2;
}

function releaseSource() {
  media?.getTracks().forEach((t) => t.stop());
  media = null;
  if (objectUrl) URL.revokeObjectURL(objectUrl);
  objectUrl = null;
}

/** Opens the chosen source; returns the element frames are taken from. */
async function openSource() {
  releaseSource();
  const kind = ui.source.value;
  const file = ui.file.files?.[0];
  if (kind === "camera") {
    ui.image.hidden = true;
    ui.video.hidden = false;
    media = await openCamera(ui.video, ui.camera.value || undefined);
    await fillCameras();
    const id = media.getVideoTracks()[0]?.getSettings().deviceId;
    if (id) ui.camera.value = id;
    return ui.video;
  }
  if (!file) throw new Error(`Pick a ${kind === "image" ? "still image" : "video file"} first`);
  if (kind === "video") {
    ui.image.hidden = true;
    ui.video.hidden = false;
    objectUrl = await openVideoFile(ui.video, file);
    return ui.video;
  }
  ui.video.hidden = true;
  ui.image.hidden = false;
  objectUrl = await openImageFile(ui.image, file);
  return ui.image;
}

async function start() {
  if (client) await stop();
  clearError();
  let el;
  try {
    el = await openSource();
  } catch (e) {
    showError("source_unavailable", e.message ?? String(e));
    return;
  }
  ui.placeholder.hidden = true;
  $("frame").classList.add("live");
  const token = ui.token.value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  const quality = Math.min(1, Math.max(0.1, Number(ui.quality.value) || 0.8));
  client = new StreamClient({
    pipeline: ui.pipeline.value,
    token,
    fps: Math.max(0, Number(ui.fps.value) || 0),
    inflight: Math.max(1, Number(params.get("inflight")) || 1),
    grab: grabber(el, Number(ui.size.value) || 0, quality),
    once: el === ui.image,
  });
  client.addEventListener("stats", showStats);
  client.addEventListener("result", (e) => showResult(e.detail));
  client.addEventListener("state", (e) => {
    showState(e.detail.state, e.detail.detail);
    if (e.detail.state === "streaming") clearError(); // a reconnect succeeded
    const live = ["connecting", "streaming", "reconnecting"].includes(e.detail.state);
    ui.start.disabled = live;
    ui.stop.disabled = !live;
  });
  client.addEventListener("error", (e) => showError(e.detail.code, e.detail.detail));
  client.start();
}

async function stop() {
  const c = client;
  if (!c) return;
  await c.stop();
  showStats();
}

function applyParams() {
  for (const [name, el] of [["source", ui.source], ["fps", ui.fps], ["size", ui.size], ["quality", ui.quality]]) {
    const v = params.get(name);
    if (v !== null) el.value = v;
  }
  ui.token.value = sessionStorage.getItem(TOKEN_KEY) ?? "";
  ui.fileField.hidden = ui.source.value === "camera";
}

ui.source.addEventListener("change", () => {
  ui.fileField.hidden = ui.source.value === "camera";
  ui.cameraField.hidden = ui.source.value !== "camera" || ui.camera.options.length < 2;
});
ui.controls.addEventListener("submit", (e) => {
  e.preventDefault();
  start();
});
ui.stop.addEventListener("click", () => stop());
ui.token.addEventListener("change", () => loadPipelines());
window.addEventListener("pagehide", () => client?.stop());

applyParams();
await loadPipelines();
document.body.dataset.ready = "1";
if (params.get("autostart") === "1") start();
