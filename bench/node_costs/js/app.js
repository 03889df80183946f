// The JavaScript one of the three same-work nodes of `make node-costs` (componentize-js): for
// each image it replies {"node":NAME,"frame_index":n,"width":w,"height":h}.
const NAME = "bench_js";

export const node = {
  describe() {
    return { takes: ["image"], gives: ["json"] };
  },
  init(_config) {},
  process(frame, inputs) {
    for (const input of inputs) {
      if (input.value.tag === "image") {
        const image = input.value.val;
        return {
          tag: "json",
          val: JSON.stringify({ node: NAME, frame_index: Number(frame.frameIndex), width: image.width, height: image.height }),
        };
      }
    }
    throw { tag: "invalid-input", val: `${NAME} needs an image input` };
  },
};
