"""The Python one of the three same-work nodes of `make node-costs` (componentize-py): for each
image it replies {"node":NAME,"frame_index":n,"width":w,"height":h}."""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import Kind, NodeError_InvalidInput, Signature, Value_Image, Value_Json

NAME = "bench_python"


class Node(exports.Node):
    def describe(self) -> Signature:
        return Signature(takes=[Kind.IMAGE], gives=[Kind.JSON])

    def init(self, config: str) -> None:
        return None

    def process(self, frame, inputs):
        for item in inputs:
            if isinstance(item.value, Value_Image):
                image = item.value.value
                return Value_Json(json.dumps({"node": NAME, "frame_index": frame.frame_index,
                                              "width": image.width, "height": image.height},
                                             separators=(",", ":")))
        raise Err(NodeError_InvalidInput(f"{NAME} needs an image input"))
