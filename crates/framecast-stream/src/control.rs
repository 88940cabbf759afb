//! `GET/POST /control`: live switching of backend, bitrate and transport for demos, and a
//! queue of the application's own requests (e.g. `scene`). Only with
//! [`crate::ServerConfig::remote_control`].

use crate::access::{authorized, origin_allowed};
use crate::hub::{Hub, DEFAULT_STREAM};
use crate::protocol::close;
use crate::session::TransportPolicy;
use crate::stream::{lock, Cmd, StreamShared};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The most application requests kept for [`crate::Display::poll_control`].
const CONTROL_QUEUE: usize = 64;

fn state(s: &StreamShared) -> Value {
    let snapshot = s.snapshot.borrow().clone();
    let mut v = json!({
        "stream": &*s.name,
        "backend": snapshot.encoder.backend,
        "bitrate": snapshot.encoder.bitrate,
        "fps": snapshot.encoder.fps,
        "transport": snapshot.transports,
        "backends": framecast_encode::registry::backends().iter().map(|b| b.name).collect::<Vec<_>>(),
        "transports": ["auto", "video", "image"],
    });
    if let (Value::Object(o), Value::Object(app)) = (&mut v, lock(&s.app_state).clone()) {
        for (k, val) in app {
            o.insert(k, val);
        }
    }
    v
}

fn bad(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, message.to_owned()).into_response()
}

#[allow(clippy::result_large_err)] // the error is the HTTP answer itself
fn target(
    hub: &Hub,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body_stream: Option<&str>,
) -> Result<Arc<StreamShared>, Response> {
    if !hub.config.remote_control {
        return Err((StatusCode::NOT_FOUND, "remote control is disabled").into_response());
    }
    if !origin_allowed(&hub.config, headers) {
        return Err((StatusCode::FORBIDDEN, "origin not allowed").into_response());
    }
    let name = body_stream
        .or(query.get("stream").map(String::as_str))
        .unwrap_or(DEFAULT_STREAM);
    let Some(s) = hub.stream(name) else {
        return Err((StatusCode::NOT_FOUND, close::unknown_stream_reason(name)).into_response());
    };
    if !authorized(&s, query, headers) {
        return Err((StatusCode::UNAUTHORIZED, "unauthorized").into_response());
    }
    Ok(s)
}

pub(crate) async fn get(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    match target(&hub, &query, &headers, None) {
        Ok(s) => Json(state(&s)).into_response(),
        Err(r) => r,
    }
}

pub(crate) async fn post(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if body.len() > hub.config.max_message_bytes {
        return (StatusCode::PAYLOAD_TOO_LARGE, "control body too large").into_response();
    }
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(&body) else {
        return bad("body must be a JSON object");
    };
    let stream = req.get("stream").and_then(Value::as_str);
    let s = match target(&hub, &query, &headers, stream) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (current, current_transports) = {
        let snap = s.snapshot.borrow();
        (snap.encoder.clone(), snap.transports)
    };
    let mut settings = (*current).clone();
    let mut transports = current_transports;
    if let Some(b) = req.get("backend") {
        let Some(name) = b.as_str() else {
            return bad("backend must be a string");
        };
        if let Err(e) = framecast_encode::registry::find(name) {
            return bad(&e.to_string());
        }
        settings.backend = name.to_owned();
    }
    if let Some(b) = req.get("bitrate") {
        let Some(bitrate) = b
            .as_f64()
            .filter(|b| (10_000.0..=500_000_000.0).contains(b))
        else {
            return bad("bitrate must be a number between 10000 and 500000000 (b/s)");
        };
        settings.bitrate = bitrate as u32;
    }
    if let Some(t) = req.get("transport") {
        let Some(Ok(policy)) = t.as_str().map(str::parse::<TransportPolicy>) else {
            return bad("transport must be video, image or auto");
        };
        transports = policy;
    }
    if settings != *current || transports != current_transports {
        let (applied, done) = oneshot::channel();
        let cmd = Cmd::Reconfigure {
            settings,
            transports,
            applied: Some(applied),
        };
        // Answer with the settings in force: wait until the stream has applied them.
        if s.cmd.send(cmd).await.is_err() || done.await.is_err() {
            return (StatusCode::SERVICE_UNAVAILABLE, "the stream is closed").into_response();
        }
    }
    let mut q = lock(&s.control);
    if q.len() >= CONTROL_QUEUE {
        q.pop_front();
    }
    q.push_back(Value::Object(req));
    drop(q);
    s.events_notify.notify_waiters();
    Json(state(&s)).into_response()
}
