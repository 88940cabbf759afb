//! The HTTP side of the server: routes, the viewer page and its files, `/health`,
//! `/streams`, metrics, the clock pair, and the WebSocket upgrade (origin check, then
//! [`crate::connection::run`]).

use crate::assets;
use crate::config::ServerConfig;
use crate::control;
use crate::hub::{Hub, DEFAULT_STREAM};
use crate::protocol::close;
use crate::session::token_matches;
use crate::stream::StreamShared;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub(crate) type HubState = State<Arc<Hub>>;
pub(crate) type Params = Query<HashMap<String, String>>;

pub(crate) fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/health", get(health))
        .route("/streams", get(streams))
        .route("/metrics", get(default_metrics))
        .route("/streams/{name}/metrics", get(stream_metrics))
        .route("/time", get(default_time))
        .route("/streams/{name}/time", get(stream_time))
        .route("/control", get(control::get).post(control::post))
        .route("/viewer/{*path}", get(asset))
        .route("/{name}", get(named))
        .with_state(hub)
}

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

fn not_found(name: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": close::unknown_stream_reason(name)})),
    )
        .into_response()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "unauthorized: this stream needs its token (?token= or Authorization: Bearer)"})),
    )
        .into_response()
}

async fn health(State(hub): HubState) -> Json<Value> {
    let n = hub.streams.read().unwrap_or_else(|e| e.into_inner()).len();
    Json(json!({"status": "ok", "streams": n}))
}

/// The streams this request may see: those without a token, and those whose token it shows.
async fn streams(State(hub): HubState, Query(query): Params, headers: HeaderMap) -> Json<Value> {
    let list: Vec<Value> = hub
        .all_streams()
        .iter()
        .filter(|s| authorized(s, &query, &headers))
        .map(|s| s.info())
        .collect();
    Json(Value::Array(list))
}

async fn metrics_of(
    hub: &Hub,
    name: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    let Some(s) = hub.stream(name) else {
        return not_found(name);
    };
    if !authorized(&s, query, headers) {
        return unauthorized();
    }
    let Some(m) = s.metrics().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let mut v = serde_json::to_value(m).unwrap_or(Value::Null);
    if let Value::Object(o) = &mut v {
        let snapshot = s.snapshot.borrow().clone();
        o.insert("name".into(), json!(&*s.name));
        o.insert("clients".into(), json!(snapshot.viewers));
        o.insert("fps".into(), json!(snapshot.encoder.fps));
        o.insert(
            "events_dropped".into(),
            json!(s.events_dropped.load(Ordering::Relaxed)),
        );
        o.insert("clock".into(), s.clock_json());
    }
    Json(v).into_response()
}

async fn default_metrics(
    State(hub): HubState,
    Query(query): Params,
    headers: HeaderMap,
) -> Response {
    metrics_of(&hub, DEFAULT_STREAM, &query, &headers).await
}

async fn stream_metrics(
    State(hub): HubState,
    Path(name): Path<String>,
    Query(query): Params,
    headers: HeaderMap,
) -> Response {
    metrics_of(&hub, &name, &query, &headers).await
}

fn time_of(hub: &Hub, name: &str) -> Response {
    match hub.stream(name) {
        Some(s) => ([(header::CACHE_CONTROL, "no-store")], Json(s.clock_json())).into_response(),
        None => not_found(name),
    }
}

async fn default_time(State(hub): HubState) -> Response {
    time_of(&hub, DEFAULT_STREAM)
}

async fn stream_time(State(hub): HubState, Path(name): Path<String>) -> Response {
    time_of(&hub, &name)
}

async fn asset(Path(path): Path<String>) -> Response {
    match assets::viewer_file(&path) {
        Some(bytes) => (
            [
                (header::CONTENT_TYPE, assets::mime_for(&path)),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such viewer file").into_response(),
    }
}

fn page() -> Response {
    match assets::viewer_file("index.html") {
        Some(bytes) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        None => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            assets::NO_VIEWER_PAGE,
        )
            .into_response(),
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

type Upgrade = Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>;

async fn root(
    State(hub): HubState,
    Query(query): Params,
    headers: HeaderMap,
    ws: Upgrade,
) -> Response {
    page_or_socket(hub, DEFAULT_STREAM.to_owned(), query, headers, ws)
}

async fn named(
    State(hub): HubState,
    Path(name): Path<String>,
    Query(query): Params,
    headers: HeaderMap,
    ws: Upgrade,
) -> Response {
    page_or_socket(hub, name, query, headers, ws)
}

fn page_or_socket(
    hub: Arc<Hub>,
    name: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
    ws: Upgrade,
) -> Response {
    let Ok(ws) = ws else {
        return page();
    };
    if !origin_allowed(&hub.config, &headers) {
        tracing::warn!(origin = ?headers.get(header::ORIGIN), "WebSocket upgrade refused: origin not allowed");
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    let token = request_token(&query, &headers);
    let max = hub.config.max_message_bytes;
    let tasks = hub.tasks.clone();
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| {
            tasks.track_future(crate::connection::run(hub, name, token, socket))
        })
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
