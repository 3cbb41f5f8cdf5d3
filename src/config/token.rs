//! API bearer tokens as the configuration gives them, resolved: the role
//! parsed and the secret read from `token` or `token_env`. The HTTP layer
//! ([`crate::http::auth`]) matches callers against these.

use std::fmt;

use super::RawToken;

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
