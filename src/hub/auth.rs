//! Who may do what on the local Hub, the way the Hub decides it: tokens map to a user and a role;
//! a user writes to their own namespace and their orgs' with a write token; private repos are
//! visible only to members of their namespace.

use crate::util::secret::Secret;

/// A token's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Read,
    Write,
}

/// A configured user, with the tokens that act as them.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub orgs: Vec<String>,
    pub tokens: Vec<(Secret<String>, Role)>,
}

/// The caller of a request.
#[derive(Clone, Debug)]
pub enum Caller {
    Anonymous,
    User {
        user: User,
        role: Role,
        token_name: &'static str,
    },
}

/// Why a token was refused.
#[derive(Debug)]
pub struct InvalidToken;

/// Finds the user a bearer token belongs to. A token that matches no one is an error, as on the
/// Hub (it answers 401 rather than treating the request as anonymous).
pub fn identify(users: &[User], bearer: Option<&str>) -> Result<Caller, InvalidToken> {
    let Some(token) = bearer else {
        return Ok(Caller::Anonymous);
    };
    for user in users {
        for (secret, role) in &user.tokens {
            if constant_time_eq(secret.expose().as_bytes(), token.as_bytes()) {
                let token_name = match role {
                    Role::Read => "read token",
                    Role::Write => "write token",
                };
                return Ok(Caller::User {
                    user: user.clone(),
                    role: *role,
                    token_name,
                });
            }
        }
    }
    Err(InvalidToken)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Caller {
    pub fn name(&self) -> Option<&str> {
        match self {
            Caller::Anonymous => None,
            Caller::User { user, .. } => Some(&user.name),
        }
    }

    /// Whether the caller belongs to `namespace` (is that user or a member of that org).
    pub fn is_member(&self, namespace: &str) -> bool {
        match self {
            Caller::Anonymous => false,
            Caller::User { user, .. } => {
                user.name.eq_ignore_ascii_case(namespace)
                    || user.orgs.iter().any(|o| o.eq_ignore_ascii_case(namespace))
            }
        }
    }

    pub fn can_read(&self, namespace: &str, private: bool) -> bool {
        !private || self.is_member(namespace)
    }

    pub fn can_write(&self, namespace: &str) -> bool {
        matches!(
            self,
            Caller::User {
                role: Role::Write,
                ..
            }
        ) && self.is_member(namespace)
    }
}
