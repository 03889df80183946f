// {{name}}: a streamhost pipeline node in JavaScript, made by `streamhost new-node`.
//
// It answers each frame with {"node":"{{name}}","frame_index":n,"width":w,"height":h}; make
// `process` do your own work. `make plugins` builds this file with componentize-js into
// target/plugins/{{name}}.wasm, and pipelines/{{name}}.toml runs it after `jpeg_decode`.
//
// The types come from wit/node.wit (streamhost:node@0.2.0), as componentize-js maps them:
// records are objects with camelCase fields (frame.frameIndex, a BigInt like every u64), enums
// are strings ("image"), a variant is {tag, val} ({tag: "json", val: "..."}), and an error is
// thrown as {tag: "invalid-input", val: "why"}. The module lives for one session, so variables
// at its top level carry from frame to frame. There is no network, file system or clock.

export const node = {
  describe() {
    // What the node reads (the decoded image) and what it returns (JSON).
    return { takes: ["image"], gives: ["json"] };
  },

  init(config) {
    // The node's `config` table in pipelines/{{name}}.toml, as JSON.
    const settings = JSON.parse(config || "{}");
    if (settings === null || typeof settings !== "object" || Object.keys(settings).length > 0) {
      throw { tag: "invalid-config", val: `{{name}} takes no config, got ${config}` };
    }
  },

  process(frame, inputs) {
    const input = inputs.find((i) => i.value.tag === "image");
    if (!input) {
      throw { tag: "invalid-input", val: "{{name}} needs an image input" };
    }
    const image = input.value.val;
    const reply = {
      node: "{{name}}",
      frame_index: Number(frame.frameIndex),
      width: image.width,
      height: image.height,
    };
    return { tag: "json", val: JSON.stringify(reply) };
  },
};
