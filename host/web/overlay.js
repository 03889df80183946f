// Draws a result over the picture. The overlay canvas has the frame's own size (the size it was
// sent at) and CSS stretches it over the <video>/<img>, whose box has the same aspect ratio, so
// the pipeline's pixel coordinates are drawn as they are, whatever size the page shows them at.

const TEXT_COLOUR = "#22e07a";
const DETECTION_COLOUR = "#ffb020";

/** Clears `canvas` and sizes it to the frame. */
export function reset(canvas, width, height) {
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
}

function isPoint(p) {
  return Array.isArray(p) && p.length === 2 && p.every(Number.isFinite);
}

/** OCR lines: `{"text":[{"text","score","box":[[x,y] x4],"reused"?}]}`, each box drawn rotated as
 * it is; a line a video pipeline (ocr_stream) carried over from an earlier frame has `reused`. */
export function textLines(result) {
  const lines = Array.isArray(result?.text) ? result.text : [];
  return lines.filter((l) => typeof l?.text === "string" && Array.isArray(l.box) && l.box.length === 4 && l.box.every(isPoint));
}

/** Detections: `{"detections":[{"label","score","box":[x1,y1,x2,y2]}]}`. */
export function detections(result) {
  const list = Array.isArray(result?.detections) ? result.detections : [];
  return list.filter((d) => Array.isArray(d?.box) && d.box.length === 4 && d.box.every(Number.isFinite));
}

/** Whether the overlay can show this result (otherwise the page shows its JSON). */
export function drawable(result) {
  return Array.isArray(result?.text) || Array.isArray(result?.detections);
}

function label(ctx, text, x, y, colour, scale) {
  ctx.font = `${Math.round(14 * scale)}px system-ui, sans-serif`;
  const pad = 3 * scale;
  const w = ctx.measureText(text).width + 2 * pad;
  const h = 18 * scale;
  const top = y - h >= 0 ? y - h : y;
  ctx.fillStyle = "rgba(0, 0, 0, 0.72)";
  ctx.fillRect(x, top, w, h);
  ctx.fillStyle = colour;
  ctx.textBaseline = "middle";
  ctx.fillText(text, x + pad, top + h / 2);
}

/** Draws the result's detections and text lines on `canvas` (already reset to the frame size). */
export function draw(canvas, result) {
  const ctx = canvas.getContext("2d");
  // Lines and labels keep a readable size on big frames shown small.
  const scale = Math.max(1, Math.max(canvas.width, canvas.height) / 960);
  ctx.lineWidth = 2 * scale;
  for (const d of detections(result)) {
    const [x1, y1, x2, y2] = d.box;
    ctx.strokeStyle = DETECTION_COLOUR;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const score = Number.isFinite(d.score) ? ` ${d.score.toFixed(2)}` : "";
    label(ctx, `${d.label ?? "?"}${score}`, x1, y1, DETECTION_COLOUR, scale);
  }
  for (const line of textLines(result)) {
    ctx.strokeStyle = TEXT_COLOUR;
    // Read on this frame: a solid box; carried over from an earlier one: dashed.
    ctx.setLineDash(line.reused === true ? [8 * scale, 5 * scale] : []);
    ctx.beginPath();
    line.box.forEach(([x, y], i) => (i === 0 ? ctx.moveTo(x, y) : ctx.lineTo(x, y)));
    ctx.closePath();
    ctx.stroke();
    ctx.setLineDash([]);
    const [x, y] = line.box[0];
    label(ctx, line.text, x, y, TEXT_COLOUR, scale);
  }
}
