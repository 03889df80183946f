//! The shipped observability assets against real parts: Debian's Prometheus
//! scrapes a real server under a little traffic, loads `deploy/prometheus/
//! alerts.yml`, and every query of the Grafana dashboard
//! (`deploy/grafana/streamhost.json`) and every recorded series the alerts
//! compare must come back with series. `promtool check rules` and `promtool
//! test rules` (the alerts' own unit tests, `alerts_test.yml`) run first.
//! Prometheus and promtool come from `scripts/setup.sh`; without them this
//! test fails and says so rather than skipping.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use streamhost_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn tool(name: &str) -> PathBuf {
    let path = Path::new("/usr/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: scripts/setup.sh (make test) installs Debian's prometheus package",
        path.display()
    );
    path
}

fn run_tool(name: &str, args: &[&str], dir: &Path) {
    let out = Command::new(tool(name))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Prometheus killed when the test ends, however it ends.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(target: SocketAddr, rules: &Path) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: streamhost\n    static_configs:\n      - targets: ['{target}']\n",
            rules.display()
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(tool("prometheus"))
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Prometheus {
            child,
            addr,
            _dir: dir,
        }
    }

    /// `GET path` over HTTP/1.0 (no chunked bodies), the JSON body.
    async fn get(&self, path: &str) -> Option<Value> {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.ok()?;
        let req = format!("GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr);
        stream.write_all(req.as_bytes()).await.ok()?;
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.ok()?;
        let (_, body) = raw.split_once("\r\n\r\n")?;
        serde_json::from_str(body).ok()
    }

    async fn query(&self, expr: &str) -> Vec<Value> {
        let path = format!("/api/v1/query?query={}", percent_encode(expr));
        let reply = self.get(&path).await.unwrap_or_default();
        assert_eq!(reply["status"], "success", "{expr}: {reply}");
        reply["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Polls `expr` until it has series or `wait` passes.
    async fn query_until_series(&self, expr: &str, wait: Duration) -> Vec<Value> {
        let deadline = Instant::now() + wait;
        loop {
            let series = self.query(expr).await;
            if !series.is_empty() || Instant::now() > deadline {
                return series;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn every_dashboard_query_and_alert_signal_has_series_in_a_real_prometheus() {
    let prom_dir = deploy_dir().join("prometheus");
    run_tool("promtool", &["check", "rules", "alerts.yml"], &prom_dir);
    run_tool("promtool", &["test", "rules", "alerts_test.yml"], &prom_dir);

    let server = TestServer::start_with(
        &[
            ("frame_info", &shipped_pipeline("frame_info")),
            (
                "broken",
                "id = \"broken\"\n[[nodes]]\nid = \"x\"\nkind = \"nope\"\n",
            ),
        ],
        fast_reload,
    )
    .await;
    let prometheus = Prometheus::start(server.addr, &prom_dir.join("alerts.yml"));

    // A little traffic: answered frames, frames dropped as busy, an error reply.
    let mut steady = server.connect("frame_info").await;
    for i in 1..=5 {
        steady.assert_serves(i).await;
    }
    let mut flood = server.connect("frame_info").await;
    for _ in 0..20 {
        flood.send_frame(gradient_jpeg(320, 240)).await;
    }
    let mut bad = server.connect("frame_info").await;
    bad.send_frame(b"not a jpeg".to_vec()).await;
    // And a reload: a pipeline added while serving.
    let added = shipped_pipeline("frame_info").replace("\"frame_info\"", "\"frame_info_2\"");
    std::fs::write(server.pipelines_dir().join("frame_info_2.toml"), added).unwrap();
    let listed = server
        .wait_listing("frame_info_2", "ready", |p| {
            p.is_some_and(|p| p["status"] == "ready")
        })
        .await;
    assert!(listed.is_some(), "the added pipeline never loaded");

    // Wait for two scrapes of the traffic, so rates have two samples.
    let started = prometheus
        .query_until_series(
            "count_over_time(stream_frames_processed[1m]) > 2",
            Duration::from_secs(30),
        )
        .await;
    assert!(
        !started.is_empty(),
        "Prometheus never scraped the server twice"
    );

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy_dir().join("grafana/streamhost.json")).unwrap(),
    )
    .unwrap();
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    for expr in &exprs {
        let series = prometheus
            .query_until_series(expr, Duration::from_secs(10))
            .await;
        assert!(!series.is_empty(), "dashboard query has no series: {expr}");
    }

    // The rules Prometheus loaded: every recorded signal has series; every
    // alert compares one of them with a number.
    let rules = prometheus.get("/api/v1/rules").await.unwrap();
    let rules: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .collect();
    let recorded: Vec<&str> = rules
        .iter()
        .filter(|r| r["type"] == "recording")
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(recorded.len(), 5, "{recorded:?}");
    for name in &recorded {
        let series = prometheus
            .query_until_series(name, Duration::from_secs(10))
            .await;
        assert!(!series.is_empty(), "recorded signal has no series: {name}");
    }
    let alerts: Vec<&&Value> = rules.iter().filter(|r| r["type"] == "alerting").collect();
    assert_eq!(alerts.len(), 5);
    for alert in alerts {
        let expr = alert["query"].as_str().unwrap();
        let signal = expr.split_whitespace().next().unwrap();
        assert!(
            recorded.contains(&signal),
            "alert {} does not compare a recorded signal: {expr}",
            alert["name"]
        );
    }
    // The failed pipeline is what its alert's signal reports.
    let failed = prometheus.query("streamhost:pipeline_ready:min == 0").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["metric"]["pipeline"], "broken");
}
