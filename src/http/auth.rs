//! Bearer tokens and roles for the HTTP API.
//!
//! Each token (`[[http.tokens]]`) carries one role:
//!
//! - `hr`: everything;
//! - `supervisor:{team}`: reads and records for one team's employees only;
//! - `terminal-admin`: the quarantine list and the terminals, nothing else.
//!
//! A missing or unknown token is answered 401, a known token outside its
//! role or team 403. Neither response says which tokens or employees
//! exist. Secrets are compared in constant time.

pub use crate::config::token::{ApiToken, MIN_SECRET_LEN, Role};

/// Who is calling: the matched token's name and role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Token name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// Byte-wise comparison whose time does not depend on where the inputs
/// differ (only on their lengths).
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The caller for an `Authorization` header value, when it is
/// `Bearer <known secret>`. The scheme is case-insensitive (RFC 9110
/// 11.1: `bearer` and `BEARER` are the same scheme).
pub fn authenticate(tokens: &[ApiToken], header: Option<&str>) -> Option<Caller> {
    let (scheme, given) = header?.trim_start().split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let given = given.trim();
    let mut found = None;
    // Every token is compared, so timing does not tell which one matched.
    for t in tokens {
        if same(t.secret.as_bytes(), given.as_bytes()) && found.is_none() {
            found = Some(Caller {
                name: t.name.clone(),
                role: t.role.clone(),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use crate::config::RawToken;

    /// Issue 13: `Authorization: bearer …` (lower case) was refused.
    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let toks = vec![ApiToken {
            name: "a".into(),
            secret: "0123456789abcdef".into(),
            role: Role::Hr,
        }];
        for h in [
            "bearer 0123456789abcdef",
            "BEARER 0123456789abcdef",
            "BeArEr  0123456789abcdef",
        ] {
            assert!(authenticate(&toks, Some(h)).is_some(), "{h}");
        }
    }

    use super::*;

    fn raw(token: Option<&str>, env: Option<&str>, role: &str) -> RawToken {
        RawToken {
            name: None,
            token: token.map(String::from),
            token_env: env.map(String::from),
            role: role.into(),
        }
    }

    #[test]
    fn roles_parse() {
        assert_eq!(Role::parse("hr"), Ok(Role::Hr));
        assert_eq!(
            Role::parse("supervisor:seats-a"),
            Ok(Role::Supervisor("seats-a".into()))
        );
        assert_eq!(Role::parse("terminal-admin"), Ok(Role::TerminalAdmin));
        assert!(Role::parse("supervisor:").is_err());
        assert!(Role::parse("admin").is_err());
    }

    #[test]
    fn secrets_from_env_and_errors_name_the_field() {
        let env = |v: &str| (v == "ATTENDD_TOKEN_HR").then(|| "s3cret-s3cret-s3cret".to_string());
        let t = ApiToken::resolve(&raw(None, Some("ATTENDD_TOKEN_HR"), "hr"), env).unwrap();
        assert_eq!(t.secret, "s3cret-s3cret-s3cret");
        assert_eq!(t.name, "hr");
        assert_eq!(
            ApiToken::resolve(&raw(None, Some("ATTENDD_MISSING"), "hr"), env)
                .unwrap_err()
                .0,
            "token_env"
        );
        assert_eq!(
            ApiToken::resolve(&raw(Some("short"), None, "hr"), env)
                .unwrap_err()
                .0,
            "token"
        );
        assert_eq!(
            ApiToken::resolve(&raw(Some("long-enough-secret"), None, "boss"), env)
                .unwrap_err()
                .0,
            "role"
        );
        assert!(!format!("{t:?}").contains("s3cret"));
    }

    #[test]
    fn bearer_matching() {
        let toks = vec![ApiToken {
            name: "a".into(),
            secret: "0123456789abcdef".into(),
            role: Role::Hr,
        }];
        assert!(authenticate(&toks, Some("Bearer 0123456789abcdef")).is_some());
        assert!(authenticate(&toks, Some("Bearer 0123456789abcdeX")).is_none());
        assert!(authenticate(&toks, Some("0123456789abcdef")).is_none());
        assert!(authenticate(&toks, Some("Basic 0123456789abcdef")).is_none());
        assert!(authenticate(&toks, Some("Bearer")).is_none());
        assert!(authenticate(&toks, Some("Bearer ")).is_none());
        assert!(authenticate(&toks, None).is_none());
    }
}
