//! Request authentication of the push listeners: HTTP basic auth and a
//! secret first path segment, resolved from the environment.

use axum::http::{HeaderMap, header};

use crate::config::push::{RawListener, path_safe};

/// Standard base64 with padding (RFC 4648 §4), for the basic auth header.
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The resolved credentials of a listener.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    /// The exact `Authorization` header value required, when basic auth is on.
    basic: Option<String>,
    /// The first path segment required, when a path secret is on.
    pub path_secret: Option<String>,
}

impl Auth {
    /// True when the request carries the basic auth credentials (or none
    /// are required).
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(want) = &self.basic else {
            return true;
        };
        let got = headers
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        // Compare every byte so the time taken does not tell how much matched.
        got.len() == want.len()
            && got
                .iter()
                .zip(want.as_bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl RawListener {
    /// Resolves the secrets from the environment.
    pub fn auth(&self) -> Auth {
        let basic = self.username.as_ref().map(|u| {
            let p = self
                .password_env
                .as_ref()
                .and_then(|v| std::env::var(v).ok())
                .unwrap_or_default();
            format!("Basic {}", base64(format!("{u}:{p}").as_bytes()))
        });
        let path_secret = self
            .path_secret_env
            .as_ref()
            .and_then(|v| std::env::var(v).ok())
            .filter(|s| path_safe(s));
        Auth { basic, path_secret }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn auth_compares_the_whole_header() {
        let a = Auth {
            basic: Some(format!("Basic {}", base64(b"zk:s3cret"))),
            path_secret: None,
        };
        let mut h = HeaderMap::new();
        assert!(!a.allows(&h));
        h.insert(header::AUTHORIZATION, "Basic ems6czNjcmV0".parse().unwrap());
        assert!(a.allows(&h));
        h.insert(header::AUTHORIZATION, "Basic ems6czNjcmV".parse().unwrap());
        assert!(!a.allows(&h));
        assert!(Auth::default().allows(&HeaderMap::new()));
    }
}
