// Builds one JavaScript node into a Wasm component of our WIT world:
//   node componentize.mjs APP_JS WIT_DIR OUT_WASM
// componentize-js (SpiderMonkey) embeds the source. Every WASI feature is disabled (stdio,
// random, clocks, http), so the component imports nothing but streamhost:node and loads in
// the sandbox as any Rust node does; console output has nowhere to go (use the host's `log`).
import { componentize } from "@bytecodealliance/componentize-js";
import { rename, writeFile } from "node:fs/promises";

const [source, wit, out] = process.argv.slice(2);
if (!source || !wit || !out) {
  console.error("usage: node componentize.mjs APP_JS WIT_DIR OUT_WASM");
  process.exit(2);
}
const { component } = await componentize({
  sourcePath: source,
  witPath: wit,
  worldName: "node-world",
  disableFeatures: ["stdio", "random", "clocks", "http", "fetch-event"],
});
await writeFile(out + ".part", component);
await rename(out + ".part", out);
