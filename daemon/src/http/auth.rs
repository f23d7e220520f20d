//! Bearer tokens and roles. A token's SHA-256 is compared in constant time
//! with every user's `token_sha256` (never stopping at the first match, so
//! timing says nothing about which user or how many bytes matched).

use super::AppState;
use super::error::ApiError;
use crate::config::User;
use crate::runs::Role;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use std::sync::{Arc, RwLock};
use subtle::ConstantTimeEq;
use tracing::warn;

/// A user as the server keeps it: name, token digest, roles.
#[derive(Debug, Clone)]
struct Known {
    name: String,
    digest: [u8; 32],
    roles: Vec<Role>,
}

/// The users of the config, replaceable on reload.
#[derive(Debug, Clone, Default)]
pub struct Users(Arc<RwLock<Arc<Vec<Known>>>>);

impl Users {
    /// The users of the config; entries whose digest is not 64 hex digits are skipped with a warning.
    pub fn new(users: &[User]) -> Users {
        let this = Users::default();
        this.replace(users);
        this
    }

    /// Replaces the users (SIGHUP).
    pub fn replace(&self, users: &[User]) {
        let known = users
            .iter()
            .filter_map(|user| {
                let digest = hex::decode(user.token_sha256.trim())
                    .ok()
                    .and_then(|d| <[u8; 32]>::try_from(d).ok());
                if digest.is_none() {
                    warn!(user = ?user.name, "Ignoring a user whose token_sha256 is not 64 hex digits; print one with `herald hash-token`.");
                }
                Some(Known {
                    name: user.name.clone(),
                    digest: digest?,
                    roles: user.roles.clone(),
                })
            })
            .collect();
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(known);
    }

    /// The user holding `token`, if any.
    pub fn authenticate(&self, token: &str) -> Option<Caller> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let users = self.0.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut found = None;
        for user in users.iter() {
            if bool::from(user.digest.ct_eq(&digest)) && found.is_none() {
                found = Some(Caller {
                    name: user.name.clone(),
                    roles: user.roles.clone(),
                });
            }
        }
        found
    }
}

/// What a right lets a caller do; each is held by some roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    /// Read everything under `/api/v1`.
    Read,
    /// Confirm, cancel, pause, resume, compute statistics, send proofs.
    Start,
    /// Post provider feedback.
    Feedback,
    /// Manage suppressions, erase profiles.
    Admin,
}

impl Right {
    /// Whether `role` carries this right.
    pub fn held_by(self, role: Role) -> bool {
        matches!(
            (self, role),
            (_, Role::Admin)
                | (Right::Read, Role::Viewer | Role::StartDeliveries)
                | (Right::Start, Role::StartDeliveries)
                | (Right::Feedback, Role::Feedback)
        )
    }

    /// The role to name in a `403` message.
    pub fn role(self) -> Role {
        match self {
            Right::Read => Role::Viewer,
            Right::Start => Role::StartDeliveries,
            Right::Feedback => Role::Feedback,
            Right::Admin => Role::Admin,
        }
    }
}

/// The authenticated user of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user's name in the config (recorded as `confirmed_by`, ...).
    pub name: String,
    /// The user's roles.
    pub roles: Vec<Role>,
}

impl Caller {
    /// `Ok` when the caller holds `right`; otherwise the `403` that says
    /// which role is needed for `what` (`confirm a send`, ...).
    pub fn require(&self, right: Right, what: &str) -> Result<(), ApiError> {
        if self.roles.iter().any(|role| right.held_by(*role)) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "You do not have the {} role: only users who hold it can {what}.",
                right.role()
            )))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        state
            .users
            .authenticate(token)
            .ok_or(ApiError::Unauthorized)
    }
}

/// The token of an `Authorization: Bearer TOKEN` value; the scheme's case
/// does not matter (RFC 9110, section 11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, token: &str, roles: Vec<Role>) -> User {
        User {
            name: name.to_owned(),
            token_sha256: hex::encode(Sha256::digest(token.as_bytes())),
            roles,
        }
    }

    #[test]
    fn a_token_authenticates_its_user_and_no_other() {
        let users = Users::new(&[
            user("alice", "a-secret", vec![Role::StartDeliveries]),
            user("bob", "b-secret", vec![Role::Viewer]),
        ]);
        assert_eq!(users.authenticate("b-secret").unwrap().name, "bob");
        assert!(users.authenticate("c-secret").is_none());
    }

    #[test]
    fn the_bearer_scheme_is_read_in_any_case_and_other_schemes_are_not() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("BEARER abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearerabc"), None);
    }

    #[test]
    fn viewers_read_but_cannot_confirm_and_admins_do_everything() {
        let viewer = Caller {
            name: "bob".into(),
            roles: vec![Role::Viewer],
        };
        assert!(viewer.require(Right::Read, "read").is_ok());
        let refused = viewer.require(Right::Start, "confirm a send").unwrap_err();
        assert_eq!(
            refused.to_string(),
            "You do not have the start_deliveries role: only users who hold it can confirm a send."
        );
        let feedback = Caller {
            name: "ses".into(),
            roles: vec![Role::Feedback],
        };
        assert!(feedback.require(Right::Read, "read").is_err());
        let admin = Caller {
            name: "root".into(),
            roles: vec![Role::Admin],
        };
        for right in [Right::Read, Right::Start, Right::Feedback, Right::Admin] {
            assert!(admin.require(right, "x").is_ok());
        }
    }
}
