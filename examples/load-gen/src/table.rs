//! The human-readable rendering of a [`LoadReport`].

use std::fmt::Write as _;

use crate::counts::{CappedCounts, Counters};
use crate::latency::LatencySummary;
use crate::report::LoadReport;

/// Session rows shown; the JSON report has them all.
pub(crate) const MAX_ROWS: usize = 50;

const HEADER: &str = "session  conns  refused     sent  results  dropped  errors  slow    sent/s   result/s   p50 ms   p99 ms   max ms  viol";

fn ms(latency: Option<&LatencySummary>, pick: fn(&LatencySummary) -> f64) -> String {
    latency.map_or_else(|| "-".to_string(), |l| format!("{:.2}", pick(l)))
}

#[allow(clippy::too_many_arguments)]
fn row(
    out: &mut String,
    label: &str,
    c: &Counters,
    send_fps: f64,
    result_fps: f64,
    latency: Option<&LatencySummary>,
    violations: u64,
) {
    let _ = writeln!(
        out,
        "{label:>7}  {:>5}  {:>7}  {:>7}  {:>7}  {:>7}  {:>6}  {:>4}  {send_fps:>8.1}  {result_fps:>9.1}  {:>7}  {:>7}  {:>7}  {violations:>4}",
        c.connections_opened,
        c.connections_refused,
        c.frames_sent,
        c.results,
        c.dropped,
        c.errors,
        c.slow_down,
        ms(latency, |l| l.p50),
        ms(latency, |l| l.p99),
        ms(latency, |l| l.max),
    );
}

fn breakdown(out: &mut String, title: &str, counts: &CappedCounts) {
    if counts.is_empty() {
        return;
    }
    let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(out, "{title}: {}", parts.join(", "));
}

pub(crate) fn render(r: &LoadReport) -> String {
    let mut out = String::new();
    let pacing = match r.mode {
        crate::Mode::Paced => format!("paced at {} fps/session", r.fps),
        crate::Mode::ClosedLoop => "closed loop".to_string(),
        crate::Mode::Flood => "flood".to_string(),
    };
    let churn = r
        .churn_ms
        .map(|c| format!(", churn ~{c} ms"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{} session(s), {pacing}{churn}, {:.1} s sending ({:.1} s with drain), {}",
        r.sessions, r.duration_s, r.elapsed_s, r.url
    );
    let _ = writeln!(out, "{HEADER}");
    for s in r.per_session.iter().take(MAX_ROWS) {
        row(
            &mut out,
            &s.session.to_string(),
            &s.counters,
            s.send_fps,
            s.result_fps,
            s.latency_ms.as_ref(),
            s.violations_total,
        );
    }
    if r.per_session.len() > MAX_ROWS {
        let _ = writeln!(
            out,
            "    ... {} more session(s) in the JSON report",
            r.per_session.len() - MAX_ROWS
        );
    }
    let t = &r.totals;
    row(
        &mut out,
        "total",
        &t.counters,
        t.send_fps,
        t.result_fps,
        t.latency_ms.as_ref(),
        t.violations_total,
    );

    let c = &t.counters;
    breakdown(&mut out, "dropped by reason", &c.dropped_by_reason);
    breakdown(&mut out, "errors by code", &c.errors_by_code);
    breakdown(&mut out, "refused by code", &c.refused_by_code);
    let mut notes = Vec::new();
    for (name, n) in [
        ("fatal errors", c.fatal_errors),
        ("other warnings", c.other_warnings),
        ("unrecognized messages", c.unrecognized),
        ("connect failures", c.connect_failures),
        ("closed by server", c.closed_by_server),
        ("churn disconnects", c.abrupt_disconnects),
        ("abandoned at churn", c.abandoned),
        ("unanswered after fatal error", c.unanswered_after_fatal),
        ("outstanding cap reached", c.window_full),
    ] {
        if n > 0 {
            notes.push(format!("{name} {n}"));
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(out, "{}", notes.join(", "));
    }
    if let Some(e) = r
        .per_session
        .iter()
        .find_map(|s| s.last_connect_error.as_deref())
    {
        let _ = writeln!(out, "last connect error: {e}");
    }
    let v = &c.violations;
    let _ = writeln!(
        out,
        "violations: unknown_index {}, duplicate {}, unanswered_at_end {}, unanswered_on_server_close {}",
        v.unknown_index, v.duplicate, v.unanswered_at_end, v.unanswered_on_server_close
    );
    let _ = writeln!(
        out,
        "{}",
        if r.ok {
            "OK: no invariant violations".to_string()
        } else {
            format!("FAIL: {} invariant violation(s)", t.violations_total)
        }
    );
    out
}
