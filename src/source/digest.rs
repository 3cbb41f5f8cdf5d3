//! HTTP digest authentication (RFC 7616, MD5 with `qop=auth`, as Hikvision
//! and Dahua terminals require; RFC 2617 servers without `qop` too) and the
//! small HTTP/1.1 client the pull sources share.
//!
//! The client opens one connection per request (terminals close idle ones
//! quickly anyway), answers a `401` challenge once with digest (or basic,
//! only when that is what the device asks for), and reuses the challenge
//! for the next requests with a growing nonce count, so a healthy poll
//! costs one round trip.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use md5::{Digest, Md5};

pub use crate::config::pull::Endpoint;

/// What a `WWW-Authenticate: Digest …` header asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Challenge {
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, echoed back.
    pub opaque: Option<String>,
    /// True when the server offers `qop=auth`.
    pub qop_auth: bool,
    /// `algorithm` as sent (`MD5` when absent).
    pub algorithm: String,
    /// `stale=true`: the nonce expired, the password was right.
    pub stale: bool,
}

/// Splits `k=v, k="v, w"` pairs (quoted values may hold commas).
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let key = s[ks..i].trim().to_ascii_lowercase();
        if i >= b.len() || b[i] == b',' {
            if !key.is_empty() {
                out.push((key, String::new()));
            }
            continue;
        }
        i += 1; // '='
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                // Byte-wise copy of a UTF-8 string: push whole chars.
                let ch = s[i..].chars().next().unwrap_or('\u{fffd}');
                val.push(ch);
                i += ch.len_utf8();
            }
            i += 1;
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            val = s[vs..i].trim().to_string();
        }
        out.push((key, val));
    }
    out
}

impl Challenge {
    /// Reads a `WWW-Authenticate` value; `None` unless it is a digest
    /// challenge with a nonce.
    pub fn parse(header: &str) -> Option<Challenge> {
        let h = header.trim();
        h.get(..6).filter(|p| p.eq_ignore_ascii_case("digest"))?;
        let mut c = Challenge {
            algorithm: "MD5".into(),
            ..Challenge::default()
        };
        for (k, v) in params(&h[6..]) {
            match k.as_str() {
                "realm" => c.realm = v,
                "nonce" => c.nonce = v,
                "opaque" => c.opaque = Some(v),
                "qop" => c.qop_auth = v.split(',').any(|q| q.trim() == "auth"),
                "algorithm" => c.algorithm = v,
                "stale" => c.stale = v.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        (!c.nonce.is_empty()).then_some(c)
    }
}

fn md5_hex(s: &str) -> String {
    let d = Md5::digest(s.as_bytes());
    let mut out = String::with_capacity(32);
    for b in d {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The `response` value: MD5(HA1:nonce:nc:cnonce:auth:HA2) with `qop`,
/// MD5(HA1:nonce:HA2) without (RFC 2617 §3.2.2.1, RFC 7616 §3.4.1).
pub fn response(
    c: &Challenge,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
    cnonce: &str,
) -> String {
    let mut ha1 = md5_hex(&format!("{user}:{}:{password}", c.realm));
    if c.algorithm.eq_ignore_ascii_case("MD5-sess") {
        ha1 = md5_hex(&format!("{ha1}:{}:{cnonce}", c.nonce));
    }
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    if c.qop_auth {
        md5_hex(&format!("{ha1}:{}:{nc:08x}:{cnonce}:auth:{ha2}", c.nonce))
    } else {
        md5_hex(&format!("{ha1}:{}:{ha2}", c.nonce))
    }
}

/// The `Authorization` header value for one request.
pub fn authorization(
    c: &Challenge,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
    cnonce: &str,
) -> String {
    let r = response(c, user, password, method, uri, nc, cnonce);
    let q = quoted;
    let algorithm: String = c
        .algorithm
        .chars()
        .filter(|ch| ch.is_ascii_alphanumeric() || *ch == '-')
        .collect();
    let mut h = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{r}\", algorithm={algorithm}",
        q(user),
        q(&c.realm),
        q(&c.nonce),
        q(uri),
    );
    if c.qop_auth {
        let _ = write!(h, ", qop=auth, nc={nc:08x}, cnonce={}", q(cnonce));
    }
    if let Some(o) = &c.opaque {
        let _ = write!(h, ", opaque={}", q(o));
    }
    h
}

/// `s` as an HTTP quoted-string (RFC 9110 §5.6.4): `"` and `\\` escaped,
/// control characters dropped, so that a value a device sent in its
/// challenge cannot end the quoted value and add parameters.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The device refused the credentials.
    #[error("the device refused user {user:?}: wrong username or password (HTTP 401)")]
    Unauthorized {
        /// The configured user.
        user: String,
    },
    /// The device answered with another error status.
    #[error("{method} {path}: HTTP {status}")]
    Status {
        /// Method.
        method: String,
        /// Path.
        path: String,
        /// Status code.
        status: u16,
    },
    /// The device offers only Basic authentication, which attendd does
    /// not answer: it would send the password in clear text.
    #[error(
        "{method} {path}: the device asks for Basic authentication, which sends the password in clear text; attendd answers only Digest: enable Digest authentication on the device"
    )]
    BasicOnly {
        /// Method.
        method: String,
        /// Path.
        path: String,
    },
    /// Connecting, sending or reading failed.
    #[error("{0}")]
    Io(String),
}

/// A device's HTTP interface with its credentials.
pub struct Client {
    /// Where.
    pub endpoint: Endpoint,
    user: String,
    password: String,
    timeout: Duration,
    state: Mutex<AuthState>,
}

#[derive(Debug, Default)]
enum AuthState {
    #[default]
    None,
    Digest(Challenge, u32),
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A response whose body is still being received.
pub type Streaming = hyper::Response<Incoming>;

impl Client {
    /// A client for `endpoint` as `user`.
    pub fn new(endpoint: Endpoint, user: &str, password: &str, timeout: Duration) -> Client {
        Client {
            endpoint,
            user: user.into(),
            password: password.into(),
            timeout,
            state: Mutex::new(AuthState::None),
        }
    }

    fn auth_header(&self, method: &str, uri: &str) -> Option<String> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *st {
            AuthState::None => None,
            AuthState::Digest(c, nc) => {
                *nc += 1;
                let cnonce = cnonce(*nc);
                Some(authorization(
                    c,
                    &self.user,
                    &self.password,
                    method,
                    uri,
                    *nc,
                    &cnonce,
                ))
            }
        }
    }

    async fn send_once(
        &self,
        method: &str,
        uri: &str,
        body: &Bytes,
        content_type: Option<&str>,
    ) -> Result<Streaming, HttpError> {
        let ep = &self.endpoint;
        let tcp = tokio::time::timeout(
            self.timeout,
            tokio::net::TcpStream::connect((ep.host.as_str(), ep.port)),
        )
        .await
        .map_err(|_| HttpError::Io(format!("connect {}:{}: timed out", ep.host, ep.port)))?
        .map_err(|e| HttpError::Io(format!("connect {}:{}: {e}", ep.host, ep.port)))?;
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .map_err(|e| HttpError::Io(format!("http handshake: {e}")))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header(hyper::header::HOST, format!("{}:{}", ep.host, ep.port))
            .header(hyper::header::USER_AGENT, "attendd");
        if let Some(ct) = content_type {
            req = req.header(hyper::header::CONTENT_TYPE, ct);
        }
        if let Some(a) = self.auth_header(method, uri) {
            req = req.header(hyper::header::AUTHORIZATION, a);
        }
        let req = req
            .body(Full::new(body.clone()))
            .map_err(|e| HttpError::Io(format!("request {uri}: {e}")))?;
        tokio::time::timeout(self.timeout, send.send_request(req))
            .await
            .map_err(|_| {
                HttpError::Io(format!(
                    "{method} {uri}: no answer within {:?}",
                    self.timeout
                ))
            })?
            .map_err(|e| HttpError::Io(format!("{method} {uri}: {e}")))
    }

    /// Sends a request, answering a challenge once. The body is left to
    /// stream (live event streams never end).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Bytes,
        content_type: Option<&str>,
    ) -> Result<Streaming, HttpError> {
        let uri = format!("{}{path}", self.endpoint.prefix);
        let mut tried_fresh = false;
        loop {
            let resp = self.send_once(method, &uri, &body, content_type).await?;
            if resp.status() != hyper::StatusCode::UNAUTHORIZED {
                if !resp.status().is_success() {
                    return Err(HttpError::Status {
                        method: method.into(),
                        path: path.into(),
                        status: resp.status().as_u16(),
                    });
                }
                return Ok(resp);
            }
            let challenges: Vec<String> = resp
                .headers()
                .get_all(hyper::header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok().map(String::from))
                .collect();
            let digest = challenges.iter().find_map(|h| Challenge::parse(h));
            let had_auth = !matches!(
                *self.state.lock().unwrap_or_else(|e| e.into_inner()),
                AuthState::None
            );
            let stale = digest.as_ref().is_some_and(|c| c.stale);
            // A fresh challenge is answered once; a refusal of a fresh
            // answer means the password is wrong.
            if tried_fresh || (had_auth && !stale && digest.is_none()) {
                *self.state.lock().unwrap_or_else(|e| e.into_inner()) = AuthState::None;
                return Err(HttpError::Unauthorized {
                    user: self.user.clone(),
                });
            }
            let new = match digest {
                Some(c) => AuthState::Digest(c, 0),
                // Basic would send the password in clear text to whoever
                // answers at the device's address: never offered.
                None if challenges
                    .iter()
                    .any(|h| h.trim_start().to_ascii_lowercase().starts_with("basic")) =>
                {
                    return Err(HttpError::BasicOnly {
                        method: method.into(),
                        path: path.into(),
                    });
                }
                None => {
                    return Err(HttpError::Status {
                        method: method.into(),
                        path: path.into(),
                        status: 401,
                    });
                }
            };
            *self.state.lock().unwrap_or_else(|e| e.into_inner()) = new;
            tried_fresh = true;
        }
    }

    /// Sends a request and reads the whole answer (at most `max` bytes).
    pub async fn fetch(
        &self,
        method: &str,
        path: &str,
        body: Bytes,
        content_type: Option<&str>,
        max: usize,
    ) -> Result<Bytes, HttpError> {
        let resp = self.send(method, path, body, content_type).await?;
        let limited = http_body_util::Limited::new(resp.into_body(), max);
        let got = tokio::time::timeout(self.timeout, limited.collect())
            .await
            .map_err(|_| HttpError::Io(format!("{method} {path}: body not complete in time")))?
            .map_err(|e| HttpError::Io(format!("{method} {path}: reading the answer: {e}")))?;
        Ok(got.to_bytes())
    }
}

/// A client nonce: unique per request within the process.
fn cnonce(nc: u32) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    md5_hex(&format!("{t}:{nc}:{}", std::process::id()))[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5, the worked example.
    #[test]
    fn rfc2617_example() {
        let c = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert!(c.qop_auth);
        assert_eq!(
            c.opaque.as_deref(),
            Some("5ccc069c403ebaf9f0171e9517f40e41")
        );
        let r = response(
            &c,
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            1,
            "0a4f113b",
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    /// RFC 7616 §3.9.1, the MD5 example.
    #[test]
    fn rfc7616_md5_example() {
        let c = Challenge::parse(
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=MD5, \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
             opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
        )
        .unwrap();
        let r = response(
            &c,
            "Mufasa",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            1,
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        );
        assert_eq!(r, "8ca523f5e9506fed4657c9700eebdbec");
        let h = authorization(
            &c,
            "Mufasa",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            1,
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        );
        assert!(h.contains("nc=00000001"), "{h}");
        assert!(h.contains("qop=auth,") || h.contains("qop=auth, "), "{h}");
        assert!(h.contains("opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""));
    }

    /// RFC 2069 style (no qop): MD5(HA1:nonce:HA2).
    #[test]
    fn no_qop_and_stale() {
        let c = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", stale=TRUE",
        )
        .unwrap();
        assert!(!c.qop_auth && c.stale);
        let ha1 = md5_hex("Mufasa:testrealm@host.com:Circle Of Life");
        let ha2 = md5_hex("GET:/dir/index.html");
        assert_eq!(
            response(
                &c,
                "Mufasa",
                "Circle Of Life",
                "GET",
                "/dir/index.html",
                1,
                "x"
            ),
            md5_hex(&format!("{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:{ha2}"))
        );
        assert!(Challenge::parse("Basic realm=\"x\"").is_none());
        assert!(Challenge::parse("Digest realm=\"x\"").is_none());
        assert!(Challenge::parse("Dig").is_none());
        assert!(Challenge::parse("Digest realm=\"ünï\", nonce=\"a\\\"b\"").is_some());
    }

    /// Values from the device's challenge are quoted again in the answer:
    /// a nonce holding a quote cannot end its value and add parameters.
    #[test]
    fn challenge_values_are_re_escaped() {
        let c = Challenge::parse(
            r#"Digest realm="r\"x", nonce="n\", evil=\"1", qop="auth", algorithm=MD5"#,
        )
        .unwrap();
        assert_eq!(c.nonce, r#"n", evil="1"#);
        let h = authorization(&c, "u\"s", "p", "GET", "/a", 1, "c");
        // Read back, the header has exactly the parameters attendd writes,
        // with the device's values intact.
        let back = params(&h["Digest".len()..]);
        let keys: Vec<&str> = back.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "username",
                "realm",
                "nonce",
                "uri",
                "response",
                "algorithm",
                "qop",
                "nc",
                "cnonce"
            ],
            "{h}"
        );
        let value = |k: &str| back.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
        assert_eq!(value("nonce").as_deref(), Some(c.nonce.as_str()));
        assert_eq!(value("realm").as_deref(), Some("r\"x"));
        assert_eq!(value("username").as_deref(), Some("u\"s"));
        assert_eq!(quoted("a\"b\\c\r\nd"), "\"a\\\"b\\\\cd\"");
    }

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://10.0.0.21").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.prefix.as_str()),
            ("10.0.0.21", 80, "")
        );
        let e = Endpoint::parse("http://127.0.0.1:8081/x/").unwrap();
        assert_eq!((e.port, e.prefix.as_str()), (8081, "/x"));
        assert!(Endpoint::parse("https://a").is_err());
        assert!(Endpoint::parse("http://a:port").is_err());
        assert!(Endpoint::parse("http://").is_err());
    }
}
