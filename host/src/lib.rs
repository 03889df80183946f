//! streamhost: a server for live video analysis. Clients stream JPEG frames
//! over a WebSocket, each connection names a pipeline, and every frame runs
//! through that pipeline's DAG of native and WebAssembly nodes and is answered
//! with one JSON reply.
//!
//! A frame's journey, one module a step: [`server`] accepts, [`ws`] runs the
//! session, [`admission`] decides whether it may have the pipeline it named,
//! [`frame`] validates, [`backpressure`] and [`session`] admit or drop and
//! count, [`fair`] shares the frame slots across tenants, [`pipeline`] runs the DAG through [`nodes`] (native) and [`wasm`]
//! (sandboxed) nodes, whose edges [`kinds`] types, within the frame's
//! [`deadline`], and [`wire`] shapes every reply; [`pending`] keeps connection storms from crowding others out.
//! [`state`] is what every handler shares; [`config`] declares every
//! limit and [`config_file`] reads them from a file too; [`tenants`] says who
//! may connect and with what quotas, [`origin`] which browser pages may;
//! [`reload`] notices changed manifests, components, models and tenants while
//! serving; [`web`] serves the browser live view, over HTTPS too with [`tls`].
//! [`scaffold`] is not on a frame's path: it writes new nodes
//! (`streamhost new-node`).

pub mod admission;
pub mod backpressure;
pub mod config;
pub mod config_file;
pub mod cpu;
pub mod deadline;
pub mod fair;
pub mod frame;
pub mod fuzz_entry;
pub mod kinds;
pub mod logging;
pub mod metrics;
pub mod nodes;
pub mod origin;
pub mod pending;
pub mod pipeline;
pub mod reload;
pub mod scaffold;
pub mod server;
pub mod session;
pub mod state;
pub mod tenants;
pub mod tls;
pub mod value;
pub mod wasm;
pub mod web;
pub mod wire;
pub mod ws;

pub use config::Config;
pub use server::serve;
pub use state::AppState;
