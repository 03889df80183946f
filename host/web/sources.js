// Where frames come from (a camera, a video file, a still image) and how one becomes a JPEG:
// drawn at the chosen size onto a canvas and encoded by the browser, OffscreenCanvas where the
// browser has it and a plain canvas otherwise.

/** The longest side a frame is sent at when the user picks "source size". */
export const MAX_SIDE = 1280;

/** Video inputs, once the user has granted the camera (labels are empty before). */
export async function cameras() {
  if (!navigator.mediaDevices?.enumerateDevices) return [];
  const all = await navigator.mediaDevices.enumerateDevices();
  return all.filter((d) => d.kind === "videoinput");
}

/** Opens a camera on `video`; returns the stream (stop its tracks to release it). */
export async function openCamera(video, deviceId) {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error(
      "This page has no camera access: browsers allow it only on https:// pages or on localhost. "
      + "Pick a video file or a still image, or start the server with --tls-cert/--tls-key.",
    );
  }
  const constraints = deviceId
    ? { deviceId: { exact: deviceId } }
    : { width: { ideal: 1280 }, height: { ideal: 720 } };
  const stream = await navigator.mediaDevices.getUserMedia({ video: constraints, audio: false });
  video.srcObject = stream;
  video.muted = true;
  await video.play();
  return stream;
}

/** Plays a local video file on `video`, looping. Returns the object URL (revoke it when done). */
export async function openVideoFile(video, file) {
  const url = URL.createObjectURL(file);
  video.srcObject = null;
  video.src = url;
  video.loop = true;
  video.muted = true;
  await video.play();
  return url;
}

/** Loads a still image file into `img`. */
export async function openImageFile(img, file) {
  const url = URL.createObjectURL(file);
  img.src = url;
  await img.decode();
  return url;
}

/** The source's own size: a <video>'s picture or an <img>'s pixels. */
export function sourceSize(el) {
  if (el instanceof HTMLVideoElement) return { width: el.videoWidth, height: el.videoHeight };
  return { width: el.naturalWidth, height: el.naturalHeight };
}

/** The size a frame is sent at: the source's, scaled so its longest side is at most `side`. */
export function frameSize(src, side) {
  const limit = side > 0 ? side : MAX_SIDE;
  const scale = Math.min(1, limit / Math.max(src.width, src.height));
  return { width: Math.max(1, Math.round(src.width * scale)), height: Math.max(1, Math.round(src.height * scale)) };
}

/** Makes a `grab()` for StreamClient: one JPEG of `el` now, or null while it has no picture. */
export function grabber(el, side, quality) {
  let canvas = null;
  return async () => {
    const src = sourceSize(el);
    if (!src.width || !src.height) return null;
    if (el instanceof HTMLVideoElement && el.readyState < 2) return null;
    const { width, height } = frameSize(src, side);
    if (!canvas || canvas.width !== width || canvas.height !== height) {
      canvas = typeof OffscreenCanvas === "function" ? new OffscreenCanvas(width, height) : document.createElement("canvas");
      canvas.width = width;
      canvas.height = height;
    }
    const ctx = canvas.getContext("2d");
    ctx.drawImage(el, 0, 0, width, height);
    const blob = canvas.convertToBlob
      ? await canvas.convertToBlob({ type: "image/jpeg", quality })
      : await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", quality));
    return blob ? { blob, width, height } : null;
  };
}
