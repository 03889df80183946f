//! Command-line options (every flag can also come from a `STREAMHOST_*` environment variable)
//! and the stream URL they make.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// The fastest rate `--fps` accepts; above this, use `--fps 0` (no pacing).
const MAX_FPS: f64 = 100_000.0;

/// Streams JPEG frames to a streamhost pipeline over WebSocket and summarises the replies.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Args {
    /// A JPEG file, or a folder whose *.jpg / *.jpeg files are sent in name order.
    #[arg(env = "STREAMHOST_INPUT")]
    pub path: PathBuf,

    /// WebSocket endpoint; `pipeline_id` is appended as a query parameter.
    #[arg(
        long,
        env = "STREAMHOST_URL",
        default_value = "ws://127.0.0.1:8000/ws/video/stream"
    )]
    pub url: String,

    /// Pipeline to run on each frame.
    #[arg(long, env = "STREAMHOST_PIPELINE", default_value = "frame_info")]
    pub pipeline: String,

    /// Bearer token, sent as an `Authorization: Bearer ...` header.
    #[arg(long, env = "STREAMHOST_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Frames per second to send; 0 sends as fast as the socket takes them.
    #[arg(long, env = "STREAMHOST_FPS", default_value_t = 10.0, value_parser = parse_fps)]
    pub fps: f64,

    /// Total frames to send, cycling through the files [default: each file once].
    #[arg(long, env = "STREAMHOST_FRAMES")]
    pub frames: Option<u64>,

    /// Send the next frame only after the previous one was answered (no drops by design).
    #[arg(long, env = "STREAMHOST_WAIT")]
    pub wait: bool,

    /// Do not print each reply; only the summary.
    #[arg(short, long, env = "STREAMHOST_QUIET")]
    pub quiet: bool,

    /// When the server closes with 1001 (shutting down) or a connect fails (HTTP 503 while it
    /// drains, 502 from a proxy, refused), connect again with bounded backoff and go on with the
    /// next frame; the summary adds reconnects, frames abandoned by close 1001 and the longest
    /// gap between replies.
    #[arg(long, env = "STREAMHOST_RECONNECT")]
    pub reconnect: bool,

    /// Also write the summary as one JSON object to this file (`-` for stdout).
    #[arg(long, env = "STREAMHOST_JSON")]
    pub json: Option<PathBuf>,

    /// After the last frame, how long to wait for outstanding replies (and, in --wait mode,
    /// for each reply) before giving up.
    #[arg(long, env = "STREAMHOST_DRAIN_TIMEOUT_SECS", default_value_t = 10)]
    pub drain_timeout_secs: u64,
}

impl Args {
    /// Pause between frames, or `None` for no pacing.
    pub fn frame_interval(&self) -> Option<Duration> {
        if self.fps > 0.0 {
            Duration::try_from_secs_f64(1.0 / self.fps).ok()
        } else {
            None
        }
    }

    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.drain_timeout_secs)
    }
}

fn parse_fps(s: &str) -> Result<f64, String> {
    let fps: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if fps.is_finite() && (0.0..=MAX_FPS).contains(&fps) {
        Ok(fps)
    } else {
        Err(format!("must be between 0 and {MAX_FPS}"))
    }
}

/// `base` with `pipeline_id=<pipeline>` added to its query string (the load
/// generator's helper, so both clients build the URL the same way).
pub fn stream_url(base: &str, pipeline: &str) -> String {
    streamhost_load::with_pipeline_query(base, pipeline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults() -> Result<(), clap::Error> {
        let a = Args::try_parse_from(["stream-client", "frame.jpg"])?;
        assert_eq!(a.url, "ws://127.0.0.1:8000/ws/video/stream");
        assert_eq!(a.pipeline, "frame_info");
        assert_eq!(a.frames, None);
        assert!(!a.wait && !a.quiet);
        assert_eq!(a.frame_interval(), Some(Duration::from_millis(100)));
        assert_eq!(a.drain_timeout(), Duration::from_secs(10));
        Ok(())
    }

    #[test]
    fn fps_zero_means_unpaced() -> Result<(), clap::Error> {
        let a = Args::try_parse_from(["stream-client", "--fps", "0", "f.jpg"])?;
        assert_eq!(a.frame_interval(), None);
        Ok(())
    }

    #[test]
    fn bad_fps_is_rejected() {
        for bad in ["-1", "NaN", "inf", "1e9", "fast"] {
            assert!(
                Args::try_parse_from(["stream-client", "--fps", bad, "f.jpg"]).is_err(),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn url_gets_pipeline_id() {
        assert_eq!(
            stream_url("ws://h:8000/ws/video/stream", "yolo_ocr"),
            "ws://h:8000/ws/video/stream?pipeline_id=yolo_ocr"
        );
        assert_eq!(
            stream_url("ws://h/ws?token=t", "ocr"),
            "ws://h/ws?token=t&pipeline_id=ocr"
        );
        assert_eq!(stream_url("ws://h/ws?", "ocr"), "ws://h/ws?pipeline_id=ocr");
        assert_eq!(
            stream_url("ws://h/ws", "a b&c/é"),
            "ws://h/ws?pipeline_id=a%20b%26c%2F%C3%A9"
        );
    }
}
