//! Who may use what: the `Origin` check for WebSocket upgrades and control posts, and the
//! stream token a request presents (`?token=` or `Authorization: Bearer`).

use crate::config::ServerConfig;
use crate::session::token_matches;
use crate::stream::StreamShared;
use axum::http::{header, HeaderMap};
use std::collections::HashMap;

/// The token a request presents: `?token=` or `Authorization: Bearer`.
pub(crate) fn request_token(
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Option<String> {
    if let Some(t) = query.get("token") {
        return Some(t.clone());
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
}

/// Whether the request may read `stream`: it has no token, or the request presents it.
pub(crate) fn authorized(
    stream: &StreamShared,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> bool {
    match &stream.config.token {
        None => true,
        Some(expected) => {
            token_matches(expected, &request_token(query, headers).unwrap_or_default())
        }
    }
}

/// `Origin` check for upgrades and control posts.
pub(crate) fn origin_allowed(config: &ServerConfig, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true; // not a browser
    };
    if !config.allowed_origins.is_empty() {
        return config
            .allowed_origins
            .iter()
            .any(|o| o == "*" || o.trim_end_matches('/').eq_ignore_ascii_case(origin));
    }
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
    if let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) {
        if host.eq_ignore_ascii_case(origin_host) {
            return true;
        }
    }
    let bare = match origin_host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => origin_host,
    };
    matches!(bare, "localhost" | "127.0.0.1" | "[::1]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let mut h = HeaderMap::new();
        let c = ServerConfig::default();
        assert!(origin_allowed(&c, &h));
        h.insert(header::HOST, "example.com:8765".parse().unwrap());
        h.insert(header::ORIGIN, "http://example.com:8765".parse().unwrap());
        assert!(origin_allowed(&c, &h));
        h.insert(header::ORIGIN, "http://evil.com".parse().unwrap());
        assert!(!origin_allowed(&c, &h));
        h.insert(header::ORIGIN, "http://localhost:3000".parse().unwrap());
        assert!(origin_allowed(&c, &h));
        let c = ServerConfig {
            allowed_origins: vec!["http://evil.com".into()],
            ..ServerConfig::default()
        };
        h.insert(header::ORIGIN, "http://evil.com".parse().unwrap());
        assert!(origin_allowed(&c, &h));
        h.insert(header::ORIGIN, "http://localhost:3000".parse().unwrap());
        assert!(!origin_allowed(&c, &h));
    }
}
