"""{{name}}: a streamhost pipeline node in Python, made by `streamhost new-node`.

It answers each frame with {"node": "{{name}}", "frame_index": n, "width": w, "height": h};
make `process` do your own work. `make plugins` builds this file with componentize-py into
target/plugins/{{name}}.wasm, and pipelines/{{name}}.toml runs it after `jpeg_decode`.

The types come from wit/node.wit (streamhost:node@0.2.0), as componentize-py names them:
records are dataclasses (Image, Tensor, Detection, FrameContext), variant cases are classes
(Value_Image, Value_Json, ...), and an error is raised as Err(NodeError_...). State that
carries from frame to frame goes in module-level variables (set them up in `init`): the module
lives for one session, while componentize-py makes a new `Node` for every call, so attributes
set on `self` do not last. There is no network, no file system and no environment; print() goes
to the server's log.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import (
    Kind,
    NodeError_InvalidConfig,
    NodeError_InvalidInput,
    Signature,
    Value_Image,
    Value_Json,
)


class Node(exports.Node):
    def describe(self):
        # What the node reads (the decoded image) and what it returns (JSON).
        return Signature(takes=[Kind.IMAGE], gives=[Kind.JSON])

    def init(self, config: str) -> None:
        # The node's `config` table in pipelines/{{name}}.toml, as JSON.
        settings = json.loads(config or "{}")
        if not isinstance(settings, dict) or settings:
            raise Err(NodeError_InvalidConfig(f"{{name}} takes no config, got {config}"))

    def process(self, frame, inputs):
        image = next((i.value.value for i in inputs if isinstance(i.value, Value_Image)), None)
        if image is None:
            raise Err(NodeError_InvalidInput("{{name}} needs an image input"))
        reply = {
            "node": "{{name}}",
            "frame_index": frame.frame_index,
            "width": image.width,
            "height": image.height,
        }
        return Value_Json(json.dumps(reply))
