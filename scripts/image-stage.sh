#!/usr/bin/env bash
# Stages the files the runtime image serves from, in the layout the Dockerfile copies to `/`:
#   /usr/local/bin/streamhost                 the release binary
#   /opt/streamhost/plugins/*.wasm            every built plugin
#   /opt/streamhost/models/                   the models and the int8 gate's held-out frames
#   /opt/streamhost/lib/libonnxruntime.so     ONNX Runtime
#   /etc/streamhost/pipelines/*.toml          the shipped pipelines
#   /etc/streamhost/streamhost.toml           the image's config file
# from this checkout's `make build` outputs. Usage: scripts/image-stage.sh DEST
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:?usage: image-stage.sh DEST}"
PLUGIN_DIR="${STREAMHOST_PLUGIN_DIR:-target/plugins}"
cd "$REPO"
for need in target/release/streamhost .deps/onnxruntime/libonnxruntime.so "$PLUGIN_DIR" models; do
    [[ -e "$need" ]] || { echo "image-stage: $need is missing; run make build first" >&2; exit 1; }
done
rm -rf "$DEST"
mkdir -p "$DEST/usr/local/bin" "$DEST/opt/streamhost/plugins" "$DEST/opt/streamhost/models" \
    "$DEST/opt/streamhost/lib" "$DEST/etc/streamhost/pipelines"
cp target/release/streamhost "$DEST/usr/local/bin/"
cp "$PLUGIN_DIR"/*.wasm "$DEST/opt/streamhost/plugins/"
cp -L .deps/onnxruntime/libonnxruntime.so "$DEST/opt/streamhost/lib/libonnxruntime.so"
# Models and the int8 gate's frames, not test models or cached verdicts (a fresh image judges anew).
find models -maxdepth 1 -name '*.onnx' -exec cp {} "$DEST/opt/streamhost/models/" \;
mkdir -p "$DEST/opt/streamhost/models/int8-gate"
find models/int8-gate -maxdepth 1 -type f -name '*.jpg' -exec cp {} "$DEST/opt/streamhost/models/int8-gate/" \;
cp pipelines/*.toml "$DEST/etc/streamhost/pipelines/"
cp deploy/image/streamhost.toml "$DEST/etc/streamhost/streamhost.toml"
echo "image-stage: staged $(du -sh "$DEST" | cut -f1) into $DEST" >&2
