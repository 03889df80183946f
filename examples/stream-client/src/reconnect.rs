//! `--reconnect`: keep streaming across a server's shutdown, as a rolling update causes.
//!
//! A server that is shutting down answers the frame in flight and closes with 1001; while it
//! drains it refuses new upgrades with HTTP 503, and a proxy in front of a restarting instance
//! may answer 502. So this loop runs one [`session::run`] after another: after a close 1001 it
//! connects again at once; after a failed connect it waits with a doubling, bounded backoff
//! ([`FIRST_BACKOFF`] to [`MAX_BACKOFF`]) and gives up only after [`GIVE_UP_AFTER`] without a
//! successful connect. Each new session goes on with the next frame (frame indices restart at 1
//! there, so every session is matched on its own and then added into one [`Tally`]).
//!
//! What is counted, exactly: a frame is **sent** once it was handed to a session's socket.
//! Every sent frame is either **answered** (one reply with its `frame_index` on its session) or
//! left without a reply when its session ended. If that session ended with the server's close
//! 1001, the frame is **abandoned by close 1001** (it was sent before the close reached us; the
//! server answers the frame in flight before closing, so in practice these are frames that
//! crossed the close on the wire); otherwise it is **unanswered** (a lost connection, a
//! timeout: a fault). `sent == answered + abandoned + unanswered` always holds, and a reply
//! for an index never sent, or a second one, is counted as unmatched.
//!
//! Any other ending stops the run: a fatal error from the server, the client's own close after
//! the last frame, or a session that ended with a connection problem (reported, not retried:
//! that is not the shutdown contract, and retrying it would hide a fault).

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::session::{self, Ending, Plan};
use crate::summary::Tally;

/// The close code of a server going away (RFC 6455), which a rollout causes.
const GOING_AWAY: u16 = 1001;
/// The first pause after a failed connect; doubled on each failure in a row.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause between connect attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How long connects may keep failing in a row before the run gives up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// The whole run: every session's counts added up, and how it went.
#[derive(Debug)]
pub struct Outcome {
    pub ending: Ending,
    /// Sessions opened after the first one.
    pub reconnects: u64,
    /// Connect attempts that failed (HTTP 503/502, refused, timed out).
    pub failed_connects: u64,
    /// Frames sent on a session that the server then closed with 1001 before answering them.
    pub abandoned: u64,
}

/// Streams `plan.total` frames, reconnecting as described above. `Err` only when no session
/// could be opened within [`GIVE_UP_AFTER`].
pub async fn run(plan: Plan) -> Result<Outcome> {
    let mut total = Tally::new();
    let mut reconnects = 0;
    let mut failed_connects = 0;
    let mut abandoned = 0;
    let mut sessions = 0u64;
    let mut backoff = FIRST_BACKOFF;
    let mut failing_since: Option<Instant> = None;
    loop {
        let remaining = plan.total.saturating_sub(total.sent);
        let ending = match session::run(continuing(&plan, total.sent, remaining)).await {
            Ok(ending) => ending,
            Err(e) => {
                failed_connects += 1;
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= GIVE_UP_AFTER {
                    bail!("{e:#} (no session for {}s)", GIVE_UP_AFTER.as_secs());
                }
                eprintln!("note: {e:#}; retrying in {} ms", backoff.as_millis());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        sessions += 1;
        if sessions > 1 {
            reconnects += 1;
        }
        failing_since = None;
        backoff = FIRST_BACKOFF;
        let going_away = ending.server_close == Some(GOING_AWAY) && ending.tally.fatal.is_none();
        if going_away {
            abandoned += ending.tally.outstanding();
        }
        let Ending {
            tally,
            problem,
            server_close,
        } = ending;
        let sent_now = tally.sent;
        if going_away {
            // Abandoned frames are counted above, not as unanswered.
            total.absorb(tally.without_unanswered());
            if total.sent < plan.total {
                eprintln!("note: the server closed 1001 after {sent_now} frame(s); reconnecting");
                continue;
            }
            // The last frame was already sent: the run is over, and complete.
            return Ok(Outcome {
                ending: Ending {
                    tally: total,
                    problem: None,
                    server_close,
                },
                reconnects,
                failed_connects,
                abandoned,
            });
        }
        total.absorb(tally);
        return Ok(Outcome {
            ending: Ending {
                tally: total,
                problem,
                server_close,
            },
            reconnects,
            failed_connects,
            abandoned,
        });
    }
}

/// The plan for a session that starts after `done` frames: the next frame of the cycle first.
fn continuing(plan: &Plan, done: u64, remaining: u64) -> Plan {
    let mut next = plan.clone();
    if !next.frames.is_empty() {
        let len = next.frames.len() as u64;
        // `done % len` is below `len`, which is a `usize`.
        let skip = usize::try_from(done % len).unwrap_or(0);
        next.frames.rotate_left(skip);
    }
    next.total = remaining;
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::Bytes;

    fn plan(frames: &[&'static [u8]], total: u64) -> Plan {
        Plan {
            url: "ws://127.0.0.1:1/ws".into(),
            token: None,
            frames: frames.iter().map(|f| Bytes::from_static(f)).collect(),
            total,
            interval: None,
            wait: false,
            quiet: true,
            drain_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_new_session_goes_on_with_the_next_frame() {
        let p = plan(&[b"a", b"b", b"c"], 10);
        let next = continuing(&p, 4, 6);
        assert_eq!(next.total, 6);
        assert_eq!(next.frames, vec![&b"b"[..], &b"c"[..], &b"a"[..]]);
    }

    #[test]
    fn backoff_is_bounded() {
        let mut b = FIRST_BACKOFF;
        for _ in 0..20 {
            b = (b * 2).min(MAX_BACKOFF);
        }
        assert_eq!(b, MAX_BACKOFF);
    }
}
