//! Host bindings for the WIT packages, generated once here: `v2` for
//! `wit/node.wit` (`streamhost:node@0.2.0`, what new nodes target) and `v1`
//! for `wit/v0.1.0/node.wit`, kept so a component built for 0.1.0 loads and
//! runs unchanged on this host. The rest of the host only implements the
//! generated `host` traits (in `store`) and calls the generated exports
//! (in `instance`); `convert` translates values for both.

pub mod v1 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "node-world",
        ownership: Borrowing { duplicate_if_necessary: true },
    });

    pub use self::exports::streamhost::node::node as node_api;
    pub use self::streamhost::node::host as host_api;
    pub use self::streamhost::node::types as wit;
}

pub mod v2 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "node-world",
        ownership: Borrowing { duplicate_if_necessary: true },
    });

    pub use self::exports::streamhost::node::node as node_api;
    pub use self::streamhost::node::host as host_api;
    pub use self::streamhost::node::types as wit;
}
