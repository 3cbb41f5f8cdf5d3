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

use std::fmt;

use crate::config::RawToken;

/// Shortest secret accepted from the configuration.
pub const MIN_SECRET_LEN: usize = 16;

/// What a token may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// HR: everything.
    Hr,
    /// A supervisor: one team.
    Supervisor(String),
    /// Terminal administration: quarantine and terminals.
    TerminalAdmin,
}

impl Role {
    /// Parses `hr`, `supervisor:{team}` or `terminal-admin`.
    pub fn parse(s: &str) -> Result<Role, String> {
        match s.trim() {
            "hr" => Ok(Role::Hr),
            "terminal-admin" => Ok(Role::TerminalAdmin),
            other => match other.strip_prefix("supervisor:") {
                Some(team) if !team.trim().is_empty() => {
                    Ok(Role::Supervisor(team.trim().to_string()))
                }
                Some(_) => Err("supervisor role needs a team: supervisor:{team}".into()),
                None => Err(format!(
                    "{other:?} is not hr, supervisor:{{team}} or terminal-admin"
                )),
            },
        }
    }

    /// True when the role may see and record for this team.
    pub fn sees_team(&self, team: &str) -> bool {
        match self {
            Role::Hr => true,
            Role::Supervisor(t) => t == team,
            Role::TerminalAdmin => false,
        }
    }

    /// The team a supervisor is limited to; `None` for HR.
    pub fn team(&self) -> Option<&str> {
        match self {
            Role::Supervisor(t) => Some(t),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Hr => f.write_str("hr"),
            Role::Supervisor(t) => write!(f, "supervisor:{t}"),
            Role::TerminalAdmin => f.write_str("terminal-admin"),
        }
    }
}

/// A configured token with its secret resolved.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Name for logs and audit rows.
    pub name: String,
    /// The secret.
    pub secret: String,
    /// The role.
    pub role: Role,
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("name", &self.name)
            .field("secret", &"***")
            .field("role", &self.role)
            .finish()
    }
}

impl ApiToken {
    /// Builds a token from config, reading `token_env` through `env`.
    /// Errors name the field (`token`, `token_env`, `role`).
    pub fn resolve(
        raw: &RawToken,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ApiToken, (&'static str, String)> {
        let role = Role::parse(&raw.role).map_err(|e| ("role", e))?;
        let secret = match (&raw.token, &raw.token_env) {
            (Some(_), Some(_)) => {
                return Err(("token", "give token or token_env, not both".into()));
            }
            (None, None) => return Err(("token", "give token or token_env".into())),
            (Some(t), None) => t.clone(),
            (None, Some(var)) => match env(var) {
                Some(v) if !v.is_empty() => v,
                _ => {
                    return Err((
                        "token_env",
                        format!("environment variable {var} is not set or empty"),
                    ));
                }
            },
        };
        if secret.chars().count() < MIN_SECRET_LEN {
            return Err((
                if raw.token.is_some() {
                    "token"
                } else {
                    "token_env"
                },
                format!("the secret is shorter than {MIN_SECRET_LEN} characters"),
            ));
        }
        Ok(ApiToken {
            name: raw.name.clone().unwrap_or_else(|| role.to_string()),
            secret,
            role,
        })
    }
}

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
