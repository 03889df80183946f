//! `streamhost-load`: many sessions streaming frames at a streamhost server; prints a table
//! per session and totals, optionally writes the JSON report.
//!
//! Exit status: 0 no invariant violation; 1 at least one violation; 2 bad arguments, unreadable
//! frames or an unwritable report; 3 no session could connect at all.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use streamhost_load::{FramesError, LoadReport, LoadSpec};

const EXIT_VIOLATIONS: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_NO_CONNECTION: u8 = 3;

/// Load generator for streamhost: N WebSocket sessions stream JPEG frames, replies are checked
/// against the wire contract (one reply per frame, no unknown or duplicate frame_index).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Server, `ws://HOST:PORT` (the stream path is added) or a full stream URL.
    #[arg(long, env = "STREAMHOST_URL", default_value = "ws://127.0.0.1:8000")]
    url: String,
    #[arg(long, env = "STREAMHOST_PIPELINE", default_value = "frame_info")]
    pipeline: String,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 1)]
    sessions: usize,
    /// Frames per second per session; 0 is closed loop (next frame when the previous is answered).
    #[arg(long, default_value_t = 0.0, conflicts_with = "flood")]
    fps: f64,
    /// Send as fast as the socket accepts, reading replies concurrently.
    #[arg(long)]
    flood: bool,
    /// Seconds to send for (draining comes after).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// JPEG files, or folders whose *.jpg/*.jpeg are taken in name order [default: examples/frames/frame.jpg].
    #[arg(long, num_args = 1..)]
    frames: Vec<PathBuf>,
    /// Bearer token for the `Authorization` header.
    #[arg(long, env = "STREAMHOST_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Cut each connection abruptly after ~this many ms (0.5x-1.5x, random) and reconnect.
    #[arg(long)]
    churn_ms: Option<u64>,
    /// At the end, how long to wait for outstanding replies, in ms.
    #[arg(long, default_value_t = 5000)]
    drain_timeout_ms: u64,
    /// Most unanswered frames per connection (1..=4096).
    #[arg(long, default_value_t = 4096)]
    window: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// The frame used when `--frames` is not given.
fn default_frame() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("frames")
        .join("frame.jpg")
}

/// Every frame of every path in turn (each loaded by [`streamhost_load::load_frames`]), or the
/// default frame when none is given.
fn load_frames(paths: &[PathBuf]) -> Result<Vec<Bytes>, String> {
    if paths.is_empty() {
        let path = default_frame();
        return streamhost_load::load_frames(&path).map_err(|e| match e {
            FramesError::Read { cause, .. } => format!(
                "default frame {} unreadable ({cause}); pass --frames FILE.jpg",
                path.display()
            ),
            other => other.to_string(),
        });
    }
    let mut frames = Vec::new();
    for path in paths {
        frames.extend(streamhost_load::load_frames(path).map_err(|e| e.to_string())?);
    }
    Ok(frames)
}

fn spec_from(args: &Args, frames: Vec<Bytes>) -> Result<LoadSpec, String> {
    let duration = Duration::try_from_secs_f64(args.duration).map_err(|_| {
        format!(
            "--duration {} is not a valid number of seconds",
            args.duration
        )
    })?;
    Ok(LoadSpec {
        url: args.url.clone(),
        pipeline: args.pipeline.clone(),
        sessions: args.sessions,
        fps: args.fps,
        flood: args.flood,
        duration,
        frames,
        token: args.token.clone(),
        churn: args.churn_ms.map(Duration::from_millis),
        drain_timeout: Duration::from_millis(args.drain_timeout_ms),
        window: args.window,
        seed: args.seed,
    })
}

fn write_json(path: &Path, report: &LoadReport) -> Result<(), String> {
    let text = serde_json::to_string_pretty(report).map_err(|e| format!("encoding report: {e}"))?;
    std::fs::write(path, text + "\n").map_err(|e| format!("writing {}: {e}", path.display()))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let spec = match load_frames(&args.frames).and_then(|frames| spec_from(&args, frames)) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let report = match streamhost_load::run(&spec).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    print!("{}", report.render_table());
    if let Some(path) = &args.json {
        if let Err(e) = write_json(path, &report) {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    }
    if report.violations() > 0 {
        ExitCode::from(EXIT_VIOLATIONS)
    } else if report.totals.counters.connections_opened == 0 {
        eprintln!("error: no session could connect");
        ExitCode::from(EXIT_NO_CONNECTION)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn flood_and_fps_conflict() {
        assert!(Args::try_parse_from(["l", "--flood", "--fps", "5"]).is_err());
        let a = Args::try_parse_from(["l", "--sessions", "8", "--churn-ms", "500"]).unwrap();
        let spec = spec_from(&a, vec![Bytes::from_static(b"x")]).unwrap();
        assert_eq!(spec.sessions, 8);
        assert_eq!(spec.churn, Some(Duration::from_millis(500)));
        assert_eq!(spec.duration, Duration::from_secs(10));
    }

    #[test]
    fn default_frame_is_the_shipped_one() {
        let frames = load_frames(&[]).unwrap();
        assert_eq!(frames.len(), 1);
        assert!(frames[0].starts_with(&[0xFF, 0xD8]));
    }

    #[test]
    fn missing_frame_is_a_clear_error() {
        let e = load_frames(&[PathBuf::from("/nonexistent/x.jpg")]).unwrap_err();
        assert!(e.contains("/nonexistent/x.jpg"), "{e}");
    }
}
