//! Example client for streamhost's live video endpoint.
//!
//! Run with: `cargo run -p stream-client -- examples/frames/frame.jpg` (one frame to the
//! default `frame_info` pipeline on `ws://127.0.0.1:8000`), or for a load test,
//! `cargo run -p stream-client -- examples/frames --frames 300 --fps 30 --quiet`. See
//! `--help` for every flag; each also reads a `STREAMHOST_*` environment variable.
//!
//! It opens `ws://HOST:8000/ws/video/stream?pipeline_id=ID`, sends each JPEG as one binary
//! message, prints every JSON reply as it arrives, and ends with a summary: frames sent,
//! results, drops, per-frame errors, `slow_down` warnings, any fatal error, achieved rate and
//! result latency percentiles. Replies are matched to frames by `frame_index`, which both sides
//! count from 1 over every binary message.
//!
//! With `--reconnect` it survives a rolling update: a close 1001 or a refused connect leads to
//! a new session that goes on with the next frame (see `reconnect.rs` for what is counted), and
//! `--json FILE` writes the counts (sent, answered, abandoned by close 1001, reconnects, longest
//! gap between replies) as one JSON object.
//!
//! Exit status: 0 when the session ran and closed cleanly (drops and per-frame errors are
//! normal outcomes, not failures); 1 when the server sent a fatal error; 2 for bad arguments or
//! unreadable frames; 3 when the connection failed, was lost, or the server stopped answering.

mod cli;
mod reconnect;
mod reply;
mod report;
mod session;
mod stats;
mod summary;

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;

use crate::cli::Args;
use crate::session::Plan;

const EXIT_FATAL: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_CONNECTION: u8 = 3;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let frames = match streamhost_load::load_frames(&args.path) {
        Ok(frames) => frames,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let total = args.frames.unwrap_or(frames.len() as u64);
    let url = cli::stream_url(&args.url, &args.pipeline);
    let pacing = match (args.frame_interval(), args.wait) {
        (Some(_), false) => format!("{} fps", args.fps),
        (Some(_), true) => format!("at most {} fps, one at a time", args.fps),
        (None, false) => "unpaced".to_string(),
        (None, true) => "one at a time".to_string(),
    };
    eprintln!(
        "streaming {total} frame(s) from {} file(s) to {url} ({pacing})",
        frames.len()
    );

    let plan = Plan {
        url,
        token: args.token.clone(),
        frames,
        total,
        interval: args.frame_interval(),
        wait: args.wait,
        quiet: args.quiet,
        drain_timeout: args.drain_timeout(),
    };
    let run = if args.reconnect {
        reconnect::run(plan).await.map(|o| {
            let rollup = report::Rollup {
                reconnects: o.reconnects,
                failed_connects: o.failed_connects,
                abandoned: o.abandoned,
            };
            (o.ending, rollup)
        })
    } else {
        session::run(plan)
            .await
            .map(|ending| (ending, report::Rollup::default()))
    };
    let (ending, rollup) = match run {
        Ok(done) => done,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(EXIT_CONNECTION);
        }
    };

    let now = Instant::now();
    session::print_line(ending.tally.render(now).trim_end());
    if args.reconnect {
        session::print_line(&format!(
            "reconnects:         {} ({} failed connects)\n\
             abandoned by 1001:  {}\n\
             longest reply gap:  {:.1} ms",
            rollup.reconnects,
            rollup.failed_connects,
            rollup.abandoned,
            ending.tally.longest_gap.as_secs_f64() * 1000.0
        ));
    }
    if let Some(path) = &args.json {
        let json = report::to_json(&ending.tally, rollup, ending.problem.as_deref(), now);
        let text = format!("{json}\n");
        let written = if path.as_os_str() == "-" {
            std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes())
        } else {
            std::fs::write(path, text)
        };
        if let Err(e) = written {
            eprintln!("error: writing {}: {e}", path.display());
            return ExitCode::from(EXIT_USAGE);
        }
    }
    if let Some(problem) = &ending.problem {
        eprintln!("error: {problem}");
    }
    if ending.tally.fatal.is_some() {
        ExitCode::from(EXIT_FATAL)
    } else if ending.problem.is_some() {
        ExitCode::from(EXIT_CONNECTION)
    } else {
        ExitCode::SUCCESS
    }
}
