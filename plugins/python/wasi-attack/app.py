"""py-wasi-attack: a test fixture in Python (componentize-py), the language the sandbox issue
asks about. componentize-py always imports WASI 0.2, which the host links with nothing granted.

In `process` it tries to read /etc/passwd, list /, read the environment, connect over TCP to
127.0.0.1:<port> (config `port`) and look up a name, prints one line to stdout and one to stderr,
and answers JSON naming what each attempt got: "ok" or the exception's class name. Not a node to
copy. (componentize-py 0.25.1's CPython has no `socket` module: the socket attempts end in
ModuleNotFoundError before reaching WASI.)
"""

import json
import os
import sys

from wit_world import exports
from wit_world.imports.types import Value_Json


def outcome(attempt):
    try:
        attempt()
        return "ok"
    except Exception as e:  # what the guest sees is the point: report any kind
        return type(e).__name__


def connect(port):
    import socket

    socket.create_connection(("127.0.0.1", port), timeout=1).close()


def lookup():
    import socket

    socket.getaddrinfo("localhost", 80)


class Node(exports.Node):
    port = 9

    def init(self, config: str) -> None:
        self.port = int(json.loads(config).get("port", 9))

    def process(self, inputs):
        reply = {
            "passwd": outcome(lambda: open("/etc/passwd", "rb").read()),
            "root_dir": outcome(lambda: os.listdir("/")),
            "env_vars": len(os.environ),
            "tcp": outcome(lambda: connect(self.port)),
            "lookup": outcome(lookup),
        }
        print("py-wasi-attack stdout", flush=True)
        print("py-wasi-attack stderr", file=sys.stderr, flush=True)
        return Value_Json(json.dumps(reply))
