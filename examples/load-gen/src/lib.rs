//! Load generator for streamhost's WebSocket endpoint, shaped around what a load test must be
//! able to trust. Each of `sessions` tokio tasks opens `ws://HOST/ws/video/stream?pipeline_id=ID`
//! and streams JPEG frames in one of three modes (closed loop, paced by a `MissedTickBehavior::Skip`
//! interval, or flood), and every connection is driven by a sender and a reader that run side by
//! side in that task: the reader never waits for the sender, so replies are timed as they arrive
//! even while the sender is pacing or blocked on a full socket. Because the contract promises
//! exactly one reply per frame, numbered from 1 in send order, the client keeps a ledger of the
//! frames it has sent but not yet seen answered (`ledger`), and everything that breaks the promise
//! is counted as a violation rather than silently absorbed: a reply for an index never sent, a
//! second reply for one already answered, frames still unanswered when a connection ended
//! normally, or when the server closed without a fatal error first. Frames outstanding when the
//! client itself cut the connection (`churn`) are expected to go unanswered and are counted as
//! `abandoned` instead. Memory stays bounded however long a soak runs: latency samples go into a
//! fixed-size reservoir per session, its size a share of a run-wide sample budget (`latency`),
//! counts keyed by server-supplied strings have a
//! key cap (`counts`), outstanding frames per connection are capped (the sender waits or skips a
//! tick), and the only channels are `watch` cells. Randomness (churn lifetimes, reservoir
//! sampling) comes from a seeded generator, so a run is repeatable up to the server's timing.
//! [`run`] is the load API: a [`LoadSpec`] in, a serialisable [`LoadReport`] out. The helpers
//! both this crate's binary and `examples/stream-client` use are exported too: frame loading
//! ([`load_frames`]), the stream URL's query ([`with_pipeline_query`]), the `Authorization`
//! header ([`bearer_auth_header`]) and the parser of the server's replies ([`RawReply`]).

mod conn;
mod connect;
mod counts;
mod error;
mod frames;
mod latency;
mod ledger;
mod reply;
mod report;
mod rng;
mod session;
mod spec;
mod table;

use std::sync::Arc;

use tokio::time::Instant;

pub use counts::{CappedCounts, Counters, Violations};
pub use error::LoadError;
pub use frames::{is_jpeg_name, list_frames, load_frames, FramesError};
pub use latency::LatencySummary;
pub use reply::RawReply;
pub use report::{LoadReport, SessionReport, TotalsReport};
pub use spec::{bearer_auth_header, with_pipeline_query, LoadSpec, Mode};

/// Runs the load described by `spec` and reports what happened.
///
/// Sessions send until `spec.duration` has passed since the start, then drain (at most
/// `spec.drain_timeout`) and close. Connection trouble is part of the report, not an error:
/// `Err` only for an invalid spec or a session task that died.
pub async fn run(spec: &LoadSpec) -> Result<LoadReport, LoadError> {
    spec.validate()?;
    let plan = Arc::new(session::SessionPlan::from_spec(spec));
    let started = Instant::now();
    let deadline = started + spec.duration;
    let handles: Vec<_> = (0..spec.sessions)
        .map(|index| tokio::spawn(session::run(index, Arc::clone(&plan), deadline)))
        .collect();
    let mut sessions = Vec::with_capacity(handles.len());
    for handle in handles {
        sessions.push(
            handle
                .await
                .map_err(|e| LoadError::SessionTask(e.to_string()))?,
        );
    }
    Ok(LoadReport::build(spec, started.elapsed(), sessions))
}
