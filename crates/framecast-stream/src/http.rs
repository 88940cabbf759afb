//! The HTTP side of the server: routes, the viewer page and its files, `/health`,
//! `/streams`, metrics, the clock pair, and the WebSocket upgrade (origin check, then
//! [`crate::connection::run`]).

use crate::access::{authorized, origin_allowed, request_token};
use crate::assets;
use crate::control;
use crate::hub::{Hub, DEFAULT_STREAM};
use crate::protocol::close;
use crate::tcp_info::TcpProbe;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

type HubState = State<Arc<Hub>>;
type Params = Query<HashMap<String, String>>;

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

type Upgrade = Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>;
/// The connection's `TCP_INFO` reader, put on each request by the accept loop.
type Probe = Option<Extension<TcpProbe>>;

async fn root(
    State(hub): HubState,
    Query(query): Params,
    headers: HeaderMap,
    probe: Probe,
    ws: Upgrade,
) -> Response {
    page_or_socket(hub, DEFAULT_STREAM.to_owned(), query, headers, probe, ws)
}

async fn named(
    State(hub): HubState,
    Path(name): Path<String>,
    Query(query): Params,
    headers: HeaderMap,
    probe: Probe,
    ws: Upgrade,
) -> Response {
    page_or_socket(hub, name, query, headers, probe, ws)
}

fn page_or_socket(
    hub: Arc<Hub>,
    name: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
    probe: Probe,
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
    let probe = probe.map(|Extension(p)| p);
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| {
            tasks.track_future(crate::connection::run(hub, name, token, socket, probe))
        })
}
