//! The browser live view: `GET /` and its assets, compiled into the binary.
//!
//! The page is plain HTML, CSS and ES modules in `host/web/`, embedded with
//! `include_str!`, so the server needs no files, no network and no JavaScript
//! build step at run time (it works offline and from a container). The asset
//! list is a fixed table: a request names one of its entries or gets a 404, so
//! no request path ever reaches the file system.
//!
//! Every response here carries the same security headers ([`SECURITY_HEADERS`]):
//! a Content-Security-Policy with no `unsafe-inline` or `unsafe-eval` (the page
//! has no inline script or style; it may only load its own assets, connect to
//! this host's HTTP and WebSocket routes, and show camera, blob and data
//! images), `X-Content-Type-Options: nosniff`, no framing, no referrer, and a
//! permissions policy that offers the camera to this origin only.

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// `(path, content type, body)` of everything the page loads.
#[rustfmt::skip]
const ASSETS: &[(&str, &str, &str)] = &[
    ("/", "text/html; charset=utf-8", include_str!("../web/index.html")),
    ("/assets/style.css", "text/css; charset=utf-8", include_str!("../web/style.css")),
    ("/assets/app.js", "text/javascript; charset=utf-8", include_str!("../web/app.js")),
    ("/assets/stream.js", "text/javascript; charset=utf-8", include_str!("../web/stream.js")),
    ("/assets/sources.js", "text/javascript; charset=utf-8", include_str!("../web/sources.js")),
    ("/assets/overlay.js", "text/javascript; charset=utf-8", include_str!("../web/overlay.js")),
    ("/assets/favicon.svg", "image/svg+xml", include_str!("../web/favicon.svg")),
];

/// `connect-src 'self'` covers this host's `ws:`/`wss:` in CSP level 3 browsers;
/// both schemes are named for older ones (the Origin check guards the server).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; \
    connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Sent with every page and asset response.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(self), microphone=(), geolocation=()",
    ),
    // Small and embedded: revalidating costs nothing, and an upgraded server
    // never runs yesterday's page against today's contract.
    ("cache-control", "no-cache"),
];

/// The page's routes, merged into the server's router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new();
    for &(path, content_type, body) in ASSETS {
        router = router.route(path, get(move || async move { asset(content_type, body) }));
    }
    router
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    for &(name, value) in SECURITY_HEADERS {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_no_inline_code_and_the_page_has_none() {
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
        let (_, _, html) = ASSETS[0];
        assert!(!html.contains("<script>"), "inline script in index.html");
        assert!(!html.contains("style="), "inline style in index.html");
        assert!(!html.contains("<style"), "inline style sheet in index.html");
        assert!(!html.contains("http://") && !html.contains("https://"));
    }

    #[test]
    fn every_module_the_page_imports_is_served() {
        for &(_, _, body) in ASSETS {
            for line in body.lines() {
                let Some(rest) = line.trim().strip_prefix("import ") else {
                    continue;
                };
                let Some(target) = rest.split(['"', '\'']).nth(1) else {
                    continue;
                };
                let path = format!("/assets/{}", target.trim_start_matches("./"));
                assert!(
                    ASSETS.iter().any(|(p, _, _)| *p == path),
                    "{path} imported but not embedded"
                );
            }
        }
    }
}
