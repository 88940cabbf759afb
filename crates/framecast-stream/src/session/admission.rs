//! The first moments of a viewer connection, before it joins a stream: `hello` must arrive
//! within the deadline and carry the stream's token (or the connection URL must). Sans-IO:
//! the shell passes in what it read and the time, and carries out the verdict.

use crate::protocol::{self, close, ClientMessage};
use std::time::Duration;

/// Why a viewer could not be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Close code.
    pub code: u16,
    /// Reason text.
    pub reason: String,
}

/// Constant-time comparison of a presented secret with the expected one (`subtle`); the
/// length is not treated as secret.
pub fn token_matches(expected: &str, presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    expected.as_bytes().ct_eq(presented.as_bytes()).into()
}

/// A viewer connection waiting for its `hello`.
#[derive(Debug, Clone)]
pub struct Admission {
    deadline: Duration,
    url_token: Option<String>,
}

impl Admission {
    /// A connection opened at `now`; `url_token` is a token from `?token=` or
    /// `Authorization: Bearer` on the upgrade request.
    pub fn new(now: Duration, hello_timeout: Duration, url_token: Option<String>) -> Self {
        Admission {
            deadline: now.saturating_add(hello_timeout),
            url_token,
        }
    }

    /// When [`Admission::handle_timeout`] rejects the connection.
    pub fn poll_timeout(&self) -> Duration {
        self.deadline
    }

    /// No `hello` by the deadline: close 1008 "no hello".
    pub fn handle_timeout(&self, now: Duration) -> Option<Rejection> {
        (now >= self.deadline).then(|| Rejection {
            code: close::MALFORMED,
            reason: "no hello".into(),
        })
    }

    /// The first text message. `Ok(supported)` admits the viewer with its capabilities; a
    /// rejection closes with 1008 (not a `hello`, or malformed) or 4401 (wrong or missing
    /// token when `expected_token` is set; the token in `hello` wins over the URL's).
    pub fn handle_text(
        self,
        text: &str,
        expected_token: Option<&str>,
    ) -> Result<Vec<String>, Rejection> {
        let (supported, hello_token) = match protocol::parse_client_message(text) {
            Ok(ClientMessage::Hello {
                supported, token, ..
            }) => (supported, token),
            Ok(_) => {
                return Err(Rejection {
                    code: close::MALFORMED,
                    reason: "expected hello".into(),
                })
            }
            Err(_) => {
                return Err(Rejection {
                    code: close::MALFORMED,
                    reason: "malformed control message".into(),
                })
            }
        };
        if let Some(expected) = expected_token {
            let given = hello_token.or(self.url_token).unwrap_or_default();
            if !token_matches(expected, &given) {
                return Err(Rejection {
                    code: close::UNAUTHORIZED,
                    reason: close::UNAUTHORIZED_REASON.into(),
                });
            }
        }
        Ok(supported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::client;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn hello_admits_with_its_capabilities() {
        let a = Admission::new(S, 10 * S, None);
        let caps = a
            .handle_text(&client::hello(&["image/jpeg"], None), None)
            .unwrap();
        assert_eq!(caps, vec!["image/jpeg".to_string()]);
    }

    #[test]
    fn deadline() {
        let a = Admission::new(S, 10 * S, None);
        assert_eq!(a.poll_timeout(), 11 * S);
        assert!(a.handle_timeout(10 * S).is_none());
        assert_eq!(a.handle_timeout(11 * S).unwrap().code, 1008);
    }

    #[test]
    fn token_from_hello_or_url() {
        let hello = |t| client::hello(&["image/png"], t);
        let ok = |a: Admission, text: &str| a.handle_text(text, Some("s3cret"));
        assert!(ok(Admission::new(S, S, None), &hello(Some("s3cret"))).is_ok());
        assert!(ok(Admission::new(S, S, Some("s3cret".into())), &hello(None)).is_ok());
        for (url, h) in [
            (None, hello(None)),
            (None, hello(Some("s3cre"))),
            (Some("s3cret".to_string()), hello(Some("wrong"))),
            (Some(String::new()), hello(None)),
        ] {
            let r = ok(Admission::new(S, S, url), &h).unwrap_err();
            assert_eq!((r.code, r.reason.as_str()), (4401, "unauthorized"));
        }
    }

    #[test]
    fn anything_but_hello_is_refused() {
        for text in [client::ack(0, 0), "{nope".into(), "[]".into()] {
            let r = Admission::new(S, S, None)
                .handle_text(&text, None)
                .unwrap_err();
            assert_eq!(r.code, 1008, "{text}");
        }
    }

    #[test]
    fn constant_time_compare() {
        assert!(token_matches("secret", "secret"));
        assert!(!token_matches("secret", "secreT"));
        assert!(!token_matches("secret", "secret2"));
        assert!(!token_matches("x", ""));
        assert!(token_matches("", ""));
    }
}
