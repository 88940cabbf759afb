//! The WHIP HTTP exchange (RFC 9725 §4): POST the SDP offer, read the answer and the session
//! resource from `201 Created`, DELETE the resource to end the session.

use crate::error::WhipError;
use url::Url;

/// What a successful POST returns.
#[derive(Debug, Clone)]
pub struct Answered {
    /// The SDP answer.
    pub sdp: String,
    /// The session's resource URL (the `Location` header, resolved), when the endpoint gave one.
    pub resource: Option<Url>,
}

/// Parse and check a WHIP endpoint URL (http or https).
pub fn endpoint(s: &str) -> Result<Url, WhipError> {
    let bad = |why: &str| WhipError::Url {
        url: s.to_string(),
        why: why.to_string(),
    };
    let url = Url::parse(s).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be https (or http)"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    Ok(url)
}

fn request_error(url: &Url, e: reqwest::Error) -> WhipError {
    WhipError::Request {
        url: url.to_string(),
        message: e.to_string(),
    }
}

/// POST `offer` to `url` (with `Authorization: Bearer token` when given).
pub async fn post_offer(
    client: &reqwest::Client,
    url: &Url,
    token: Option<&str>,
    offer: String,
) -> Result<Answered, WhipError> {
    let mut req = client
        .post(url.clone())
        .header("Content-Type", "application/sdp")
        .body(offer);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|e| request_error(url, e))?;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .and_then(|l| url.join(l).ok());
    let body = resp.text().await.map_err(|e| request_error(url, e))?;
    if status != 201 && status != 200 {
        return Err(WhipError::Status {
            url: url.to_string(),
            status,
            body: body.chars().take(200).collect(),
        });
    }
    if !body.starts_with("v=0") {
        return Err(WhipError::Answer {
            url: url.to_string(),
            message: format!(
                "the body is not an SDP answer: {:?}",
                body.chars().take(60).collect::<String>()
            ),
        });
    }
    Ok(Answered {
        sdp: body,
        resource: location,
    })
}

/// End the session: DELETE its resource (errors are only logged: the session is over).
pub async fn delete(client: &reqwest::Client, resource: &Url, token: Option<&str>) {
    let mut req = client.delete(resource.clone());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => tracing::debug!(%resource, status = r.status().as_u16(), "WHIP DELETE refused"),
        Err(e) => tracing::debug!(%resource, error = %e, "WHIP DELETE failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked() {
        assert!(endpoint("https://sfu.example/whip/room").is_ok());
        assert!(endpoint("http://127.0.0.1:8080/whip").is_ok());
        let e = endpoint("rtmp://x/y").unwrap_err().to_string();
        assert!(e.contains("scheme"), "{e}");
        assert!(endpoint("nonsense").is_err());
    }
}
