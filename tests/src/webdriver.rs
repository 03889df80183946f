//! Just enough of the W3C WebDriver protocol to drive headless Chromium from a
//! test: start `chromedriver` on a free port, open a session whose camera is a
//! Y4M file, navigate, run scripts, find and click elements, take screenshots.
//!
//! Plain HTTP/1.1 over a tokio socket (the harness's own request helper), so
//! the suite needs no WebDriver crate and nothing blocks the runtime the
//! server under test shares. `chromedriver` runs in its own process group and
//! the group (it and the Chromium it started) is ended when [`Browser`] drops,
//! also when a test panics.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::http_request;

/// Where Debian's packages put them (`scripts/setup.sh` installs both).
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: chromedriver and the browser it launched.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg("--")
            .arg(format!("-{}", self.driver.id()))
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium whose camera plays `camera`
    /// (a Y4M clip) and which grants camera access without asking.
    pub async fn start(camera: &Path, width: u32, height: u32) -> Browser {
        use std::os::unix::process::CommandExt;
        for exe in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(exe).exists(),
                "{exe} is missing: run scripts/setup.sh (it installs Debian's chromium and chromium-driver)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(status) = browser.call("GET", "/status", None).await {
                if status["ready"] == true {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            "--hide-scrollbars".into(),
            "--use-fake-ui-for-media-stream".into(),
            // The HTTPS scenarios use a self-signed certificate, as a LAN set-up would.
            "--ignore-certificate-errors".into(),
            "--use-fake-device-for-media-stream".into(),
            format!("--use-file-for-fake-video-capture={}", camera.display()),
            format!("--window-size={width},{height}"),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let created = browser.call("POST", "/session", Some(caps)).await.unwrap();
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        browser
    }

    /// One WebDriver command; `Err` carries the driver's error value.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Value> {
        let body = body.map(|b| b.to_string());
        let resp = http_request(
            self.addr,
            method,
            path,
            &[("content-type", "application/json")],
            body.as_deref(),
        )
        .await
        .map_err(|e| json!({"error": "io", "message": e.to_string()}))?;
        let parsed: Value = serde_json::from_str(&resp.body)
            .map_err(|e| json!({"error": "json", "message": e.to_string(), "body": resp.body}))?;
        let value = parsed.get("value").cloned().unwrap_or(Value::Null);
        if resp.status == 200 {
            Ok(value)
        } else {
            Err(value)
        }
    }

    /// A command of this session that must succeed.
    pub async fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let body = (method == "POST").then_some(body);
        let full = format!("/session/{}{path}", self.session);
        self.call(method, &full, body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path} failed: {e}"))
    }

    pub async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", json!({ "url": url })).await;
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub async fn eval(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// Runs `script` with a callback as its last argument; resolves with what
    /// it passes (the page's script timeout is WebDriver's default 30 s).
    pub async fn eval_async(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/async",
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// Polls `script` until it returns something other than null/false, or
    /// fails after `wait` with `what` and the last value.
    pub async fn wait_for(&self, what: &str, script: &str, wait: Duration) -> Value {
        let deadline = Instant::now() + wait;
        loop {
            let v = self.eval(script).await;
            if !(v.is_null() || v == false) {
                return v;
            }
            if Instant::now() > deadline {
                let shown = self
                    .eval("return document.body ? document.body.innerText : ''")
                    .await;
                panic!("timed out waiting for {what}; page text:\n{shown}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.cmd("POST", &format!("/element/{id}/click"), json!({}))
            .await;
    }

    /// Types `text` into the element matching `css` (for a file input: a path).
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.cmd(
            "POST",
            &format!("/element/{id}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    /// The WebDriver id of the element matching `css`.
    async fn element(&self, css: &str) -> String {
        let found = self
            .cmd(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_string()
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let b64 = self.cmd("GET", "/screenshot", Value::Null).await;
        base64_decode(b64.as_str().unwrap_or_default())
    }
}

/// Standard base64 (what WebDriver screenshots and `btoa` produce) to bytes.
pub fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let Some(v) = ALPHABET.iter().position(|&a| a == c) else {
            continue; // '=' padding and line breaks
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_decodes() {
        assert_eq!(super::base64_decode("aGVsbG8gd29ybGQ="), b"hello world");
        assert_eq!(super::base64_decode("iVBORw=="), [0x89, b'P', b'N', b'G']);
    }
}
