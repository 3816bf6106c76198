//! Detecting a changed Space secret without ever seeing or storing its value in the clear.
//!
//! The Hub returns a secret's description and `updatedAt`, never its value. When hubsync sets
//! a secret it writes a fingerprint into the description:
//! `hubsync:v1 salt=<16 random bytes, hex> fp=<PBKDF2-HMAC-SHA256(value, salt, 100000), hex> at=<unix seconds>`.
//! A later plan — on any machine, CI included — recomputes the fingerprint of the manifest's
//! value with the stored salt: equal means unchanged. The random salt and the slow KDF make the
//! fingerprint useless for guessing the value (and only the Space's maintainers can read it).
//! `at` is when hubsync set the secret: an `updatedAt` well after it means someone changed the
//! secret elsewhere, and the plan sets it again.

use pbkdf2::pbkdf2_hmac;
use sha2::Sha256;

use super::SecretReason;
use crate::remote::RemoteSecret;

const PREFIX: &str = "hubsync:v1";
const ROUNDS: u32 = 100_000;
/// Clock skew tolerated between hubsync's `at` and the Hub's `updatedAt`.
const SKEW_MS: i64 = 10 * 60 * 1000;

/// The fingerprint of a value with a salt.
pub fn fingerprint(value: &str, salt: &[u8]) -> String {
    let mut out = [0u8; 32];
    pbkdf2_hmac::<Sha256>(value.as_bytes(), salt, ROUNDS, &mut out);
    hex::encode(out)
}

/// The description hubsync writes on a secret it sets at `at_unix` seconds.
pub fn description(value: &str, salt: &[u8], at_unix: i64) -> String {
    format!(
        "{PREFIX} salt={} fp={} at={at_unix}",
        hex::encode(salt),
        fingerprint(value, salt)
    )
}

/// A parsed fingerprint description.
#[derive(Debug, PartialEq, Eq)]
pub struct Recorded {
    pub salt: Vec<u8>,
    pub fp: String,
    pub at_unix: i64,
}

pub fn parse(description: &str) -> Option<Recorded> {
    let rest = description.strip_prefix(PREFIX)?;
    let (mut salt, mut fp, mut at) = (None, None, None);
    for part in rest.split_whitespace() {
        match part.split_once('=')? {
            ("salt", v) => salt = hex::decode(v).ok(),
            ("fp", v) => fp = Some(v.to_string()),
            ("at", v) => at = v.parse().ok(),
            _ => {}
        }
    }
    Some(Recorded {
        salt: salt?,
        fp: fp?,
        at_unix: at?,
    })
}

/// `None` when the remote secret holds `value` as far as hubsync can tell; otherwise why not.
pub fn verdict(value: &str, remote: &RemoteSecret) -> Option<SecretReason> {
    let Some(rec) = remote.description.as_deref().and_then(parse) else {
        return Some(SecretReason::NotSetByHubsync);
    };
    if fingerprint(value, &rec.salt) != rec.fp {
        return Some(SecretReason::ValueChanged);
    }
    if remote.updated_at_ms > rec.at_unix * 1000 + SKEW_MS {
        return Some(SecretReason::EditedElsewhere);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_round_trip() {
        let d = description("s3cret", b"0123456789abcdef", 1_700_000_000);
        assert!(!d.contains("s3cret"));
        let remote = RemoteSecret {
            description: Some(d.clone()),
            updated_at_ms: 1_700_000_001_000,
        };
        assert_eq!(verdict("s3cret", &remote), None);
        assert_eq!(verdict("other", &remote), Some(SecretReason::ValueChanged));
        let edited = RemoteSecret {
            description: Some(d),
            updated_at_ms: 1_700_000_000_000 + 3_600_000,
        };
        assert_eq!(
            verdict("s3cret", &edited),
            Some(SecretReason::EditedElsewhere)
        );
        let foreign = RemoteSecret {
            description: Some("API key".into()),
            updated_at_ms: 0,
        };
        assert_eq!(
            verdict("s3cret", &foreign),
            Some(SecretReason::NotSetByHubsync)
        );
    }
}
