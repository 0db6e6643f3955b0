//! Signed session tokens with an expiry, as a web service issues them: the code reads the
//! wall clock itself (`SystemTime::now()`), with no clock passed in, as most code does.
//!
//! A token is `user.issued.expires.signature`, the times in Unix seconds, the signature
//! a keyed hash of the rest. (A real service signs with HMAC-SHA-256; a keyed SipHash from
//! std keeps this example free of dependencies.)

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far a token's issue time may lie ahead of the verifier's clock: the clocks of two
/// servers never agree exactly.
pub const LEEWAY: Duration = Duration::from_secs(60);

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not of the form `user.issued.expires.signature`.
    Malformed,
    /// The signature does not match: forged or altered.
    BadSignature,
    /// Its lifetime ended this long ago.
    Expired { ago: Duration },
    /// Issued later than now (beyond [`LEEWAY`]): the issuer's clock or this one is wrong.
    NotYetValid,
}

/// Issues and verifies the tokens of one service, under one key.
pub struct Issuer {
    key: (u64, u64),
}

impl Issuer {
    /// An issuer with a signing key.
    pub fn new(key: (u64, u64)) -> Issuer {
        Issuer { key }
    }

    /// A token for `user`, valid from now for `ttl`.
    pub fn issue(&self, user: &str, ttl: Duration) -> String {
        let issued = unix_now();
        let expires = issued + ttl.as_secs();
        let body = format!("{user}.{issued}.{expires}");
        format!("{body}.{:016x}", self.sign(&body))
    }

    /// The user a token was issued to, if it is genuine and valid now.
    ///
    /// # Errors
    ///
    /// Why the token is refused.
    pub fn verify<'t>(&self, token: &'t str) -> Result<&'t str, Refused> {
        let (body, signature) = token.rsplit_once('.').ok_or(Refused::Malformed)?;
        let mut fields = body.split('.');
        let (Some(user), Some(issued), Some(expires), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(Refused::Malformed);
        };
        let issued: u64 = issued.parse().map_err(|_| Refused::Malformed)?;
        let expires: u64 = expires.parse().map_err(|_| Refused::Malformed)?;
        if u64::from_str_radix(signature, 16) != Ok(self.sign(body)) {
            return Err(Refused::BadSignature);
        }
        let now = unix_now();
        if issued > now + LEEWAY.as_secs() {
            return Err(Refused::NotYetValid);
        }
        if now >= expires {
            return Err(Refused::Expired {
                ago: Duration::from_secs(now - expires),
            });
        }
        Ok(user)
    }

    fn sign(&self, body: &str) -> u64 {
        let keyed =
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
        let mut hasher = keyed.build_hasher();
        hasher.write_u64(self.key.0);
        hasher.write(body.as_bytes());
        hasher.write_u64(self.key.1);
        hasher.finish()
    }
}

/// The wall clock in whole seconds since the epoch.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the wall clock is after 1970")
        .as_secs()
}
