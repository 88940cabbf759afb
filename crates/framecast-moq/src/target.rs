//! Where to publish: a relay URL whose last path segment names the broadcast.

use crate::error::MoqError;
use url::Url;

/// A relay and a broadcast name, parsed from `https://relay:4443/<name>` (or
/// `https://relay:4443/<scope>/<name>`): the session goes to the URL without its last path
/// segment, which names the broadcast, the convention of the MoQ project's tools and web
/// player (`url` + `name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoqTarget {
    /// The relay URL the session connects to (the scope, without the broadcast name).
    pub connect: Url,
    /// The broadcast's name under that scope.
    pub broadcast: String,
}

impl MoqTarget {
    /// Parse `https://host:port/[scope/]name` (`http://` is accepted for a relay that also
    /// serves WebSocket; `moqt://`/`moql://` for raw QUIC).
    pub fn parse(s: &str) -> Result<MoqTarget, MoqError> {
        let bad = |why: &str| MoqError::Target {
            url: s.to_string(),
            why: why.to_string(),
        };
        let mut url = Url::parse(s).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "https" | "http" | "moqt" | "moql") {
            return Err(bad(
                "the scheme must be https (WebTransport), http, moqt or moql",
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("no relay host"));
        }
        let segments: Vec<String> = url
            .path_segments()
            .map(|p| p.filter(|s| !s.is_empty()).map(str::to_string).collect())
            .unwrap_or_default();
        let Some((name, scope)) = segments.split_last() else {
            return Err(bad("no broadcast name: end the URL with /<name>"));
        };
        url.set_path(&scope.join("/"));
        Ok(MoqTarget {
            connect: url,
            broadcast: name.clone(),
        })
    }
}

impl std::str::FromStr for MoqTarget {
    type Err = MoqError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MoqTarget::parse(s)
    }
}

impl std::fmt::Display for MoqTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let base = self.connect.as_str().trim_end_matches('/');
        write!(f, "{base}/{}", self.broadcast)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_segment_names_the_broadcast() {
        let t = MoqTarget::parse("https://relay:4443/demo").unwrap();
        assert_eq!(t.connect.as_str(), "https://relay:4443/");
        assert_eq!(t.broadcast, "demo");
        assert_eq!(t.to_string(), "https://relay:4443/demo");
        let t = MoqTarget::parse("https://relay.example/anon/lab/").unwrap();
        assert_eq!(t.connect.as_str(), "https://relay.example/anon");
        assert_eq!(t.broadcast, "lab");
        assert_eq!(t.to_string(), "https://relay.example/anon/lab");
    }

    #[test]
    fn bad_targets_say_why() {
        for (s, why) in [
            ("https://relay:4443/", "no broadcast name"),
            ("https://relay:4443", "no broadcast name"),
            ("ftp://relay/x", "scheme"),
            ("relay:4443/x", "scheme"),
            ("not a url", "relative URL"),
        ] {
            let e = MoqTarget::parse(s).unwrap_err().to_string();
            assert!(e.contains(why), "{s}: {e}");
        }
    }
}
