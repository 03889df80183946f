"""py-wasi-attack: a test fixture in Python (componentize-py), the language the sandbox issue
asks about. componentize-py always imports WASI 0.2, which the host links with nothing granted.

In `process` it tries to read /etc/passwd, list /, read the environment, create a TCP socket
and resolve a name through WASI's own sockets API (bindings from `wit/`: componentize-py 0.25.1's
CPython has no `socket` module, tried too as `socket_module`), prints one line to stdout and one
to stderr, and answers JSON naming what each attempt got: "ok", the WASI error code
(`ErrorCode.ACCESS_DENIED`) or the exception's class name. Not a node to copy.
"""

import json
import os
import sys

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import instance_network, ip_name_lookup, network, tcp_create_socket
from wit_world.imports.types import Kind, Signature, Value_Json


def outcome(attempt):
    try:
        attempt()
        return "ok"
    except Err as e:  # a WASI error code
        return str(e.value)
    except Exception as e:  # what the guest sees is the point: report any kind
        return type(e).__name__


def connect(port):
    import socket

    socket.create_connection(("127.0.0.1", port), timeout=1).close()


def wasi_tcp():
    tcp_create_socket.create_tcp_socket(network.IpAddressFamily.IPV4)


def wasi_lookup():
    stream = ip_name_lookup.resolve_addresses(instance_network.instance_network(), "localhost")
    stream.resolve_next_address()


class Node(exports.Node):
    port = 9

    def describe(self) -> Signature:
        return Signature(takes=[Kind.IMAGE], gives=[Kind.JSON])

    def init(self, config: str) -> None:
        self.port = int(json.loads(config).get("port", 9))

    def process(self, frame, inputs):
        reply = {
            "passwd": outcome(lambda: open("/etc/passwd", "rb").read()),
            "root_dir": outcome(lambda: os.listdir("/")),
            "env_vars": len(os.environ),
            "socket_module": outcome(lambda: connect(self.port)),
            "tcp": outcome(wasi_tcp),
            "lookup": outcome(wasi_lookup),
        }
        print("py-wasi-attack stdout", flush=True)
        print("py-wasi-attack stderr", file=sys.stderr, flush=True)
        return Value_Json(json.dumps(reply))
