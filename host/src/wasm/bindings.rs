//! Host bindings for `wit/node.wit`, generated once here. The rest of the
//! host only implements the generated `host` trait (in `instance`) and calls
//! the generated exports.

wasmtime::component::bindgen!({
    path: "../wit/v0.1.0",
    world: "node-world",
    ownership: Borrowing { duplicate_if_necessary: true },
});

pub use self::exports::streamhost::node::node as node_api;
pub use self::streamhost::node::host as host_api;
pub use self::streamhost::node::types as wit;
