//! Which browser pages may open a WebSocket here (cross-site WebSocket
//! hijacking). A browser attaches the page's `Origin` to every upgrade and
//! sends the site's cookies and credentials along whatever page asked, so the
//! server, not the browser, must refuse pages it does not serve.
//!
//! Allowed: requests with no `Origin` (non-browser clients, which choose their
//! own headers anyway); the server's own origin (the `Origin`'s host and port
//! equal the request's `Host`: the live view this server serves); and either
//! the `STREAMHOST_ALLOWED_ORIGINS` list (`*` for any) or, when that is unset,
//! pages on loopback hosts (a developer's page on another local port). The
//! check is a pure function of the three so it is tested without a socket;
//! `ws::upgrade` refuses with HTTP 403 `forbidden` before anything else.

/// Whether a page from `origin` may open a WebSocket on a request for `host`,
/// given the configured `allowed` list (lower-cased, see `Config::allowed_origins`).
pub fn allowed(origin: Option<&str>, host: Option<&str>, allowed: &[String]) -> bool {
    let Some(origin) = origin.map(|o| o.trim().to_ascii_lowercase()) else {
        return true;
    };
    if allowed.iter().any(|a| a == "*" || *a == origin) {
        return true;
    }
    // `null` (sandboxed frames, file: pages) and anything not http(s) is foreign.
    let Some(authority) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    if host.is_some_and(|h| h.trim().eq_ignore_ascii_case(authority)) {
        return true;
    }
    allowed.is_empty() && is_loopback(host_of(authority))
}

/// The host of `host[:port]` or `[v6]:port`, without the port.
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn clients_without_origin_and_the_own_origin_are_always_allowed() {
        let strict = list(&["https://kiosk.example"]);
        assert!(allowed(None, Some("example.org:8000"), &strict));
        assert!(allowed(
            Some("http://Example.org:8000"),
            Some("example.org:8000"),
            &strict
        ));
        assert!(allowed(
            Some("https://10.1.2.3:8443"),
            Some("10.1.2.3:8443"),
            &[]
        ));
    }

    #[test]
    fn by_default_loopback_pages_are_allowed_and_other_sites_refused() {
        for page in [
            "http://localhost:3000",
            "http://127.0.0.1:9999",
            "http://127.1.2.3",
            "http://[::1]:8000",
            "https://app.localhost",
        ] {
            assert!(allowed(Some(page), Some("127.0.0.1:8000"), &[]), "{page}");
        }
        for page in [
            "https://evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example",
            "null",
            "file://",
            "chrome-extension://abc",
        ] {
            assert!(!allowed(Some(page), Some("127.0.0.1:8000"), &[]), "{page}");
        }
        // A different port on the same non-loopback host is another origin.
        assert!(!allowed(
            Some("http://10.1.2.3:8001"),
            Some("10.1.2.3:8000"),
            &[]
        ));
    }

    #[test]
    fn a_configured_list_replaces_the_loopback_default() {
        let only = list(&["https://kiosk.example:8443"]);
        assert!(allowed(
            Some("https://kiosk.example:8443"),
            Some("10.0.0.1:8000"),
            &only
        ));
        assert!(!allowed(
            Some("http://localhost:3000"),
            Some("10.0.0.1:8000"),
            &only
        ));
        assert!(!allowed(
            Some("https://kiosk.example"),
            Some("10.0.0.1:8000"),
            &only
        ));
        assert!(allowed(
            Some("https://anything.example"),
            None,
            &list(&["*"])
        ));
    }
}
