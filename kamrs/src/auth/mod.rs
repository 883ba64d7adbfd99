//! Digest authentication of REGISTER (RFC 3261 §22, RFC 7616, RFC 8760):
//! the tutorial's warning made default. Without it anyone can register
//! anyone's AoR and take their calls.
//!
//! Stateless: nonces carry their own issue time, failure count and MAC
//! ([`nonce`]), so a restart or a second node with the same secret needs
//! nothing shared. The only state is nonce-count tracking ([`replay`]).

pub mod digest;
pub mod nonce;
mod replay;
pub mod subscribers;

use std::sync::atomic::{AtomicU64, Ordering};

use md5::Md5;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use self::digest::Credentials;
use self::nonce::{NonceCheck, Nonces};
use self::replay::NonceCounts;
use self::subscribers::Subscribers;
use crate::sip::{HeaderName, Request};

/// Digest algorithms we verify (RFC 8760 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Algorithm {
    #[serde(rename = "SHA-256")]
    Sha256,
    #[serde(rename = "MD5")]
    Md5,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Md5 => "MD5",
        }
    }

    fn parse(s: Option<&str>) -> Option<Algorithm> {
        match s {
            None => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("MD5") => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("SHA-256") => Some(Algorithm::Sha256),
            _ => None,
        }
    }

    fn hash_hex(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => nonce::hex(&Md5::digest(data)),
            Algorithm::Sha256 => nonce::hex(&Sha256::digest(data)),
        }
    }
}

/// What the registrar must do with a REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Authorized,
    /// 401 with fresh challenges; `failures` so far goes into the nonce.
    Challenge {
        stale: bool,
        failures: u8,
    },
    /// 403: authenticated but not allowed, or too many wrong answers.
    Forbidden(&'static str),
    /// 400: the credentials are not even well formed.
    Malformed(&'static str),
}

/// Settings of the authenticator (the `[auth]` config table).
pub struct AuthSettings {
    /// A fixed realm, or `None` for the AoR's domain (Kamailio's default).
    pub realm: Option<String>,
    /// Offered in this order (RFC 8760: strongest first).
    pub algorithms: Vec<Algorithm>,
    /// Wrong answers answered with a new 401 before a 403.
    pub max_failures: u8,
}

pub struct Authenticator {
    settings: AuthSettings,
    nonces: Nonces,
    counts: NonceCounts,
    subscribers: Subscribers,
    stats: AuthStats,
}

/// What the authenticator decided, counted for `stats.get_statistics`
/// (`auth:` group).
#[derive(Debug, Default)]
pub struct AuthStats {
    /// REGISTERs whose credentials were right (and owned the AoR).
    pub authorized: AtomicU64,
    /// REGISTERs answered 401 (no, stale, replayed or wrong credentials).
    pub challenges: AtomicU64,
    /// Answers with a wrong password or an unknown user.
    pub wrong_credentials: AtomicU64,
    /// REGISTERs answered 403 (another user's AoR, too many failures).
    pub forbidden: AtomicU64,
    /// Authorization headers too malformed to check (400).
    pub malformed: AtomicU64,
}

impl Authenticator {
    pub fn new(
        settings: AuthSettings,
        secret: Vec<u8>,
        nonce_lifetime: u64,
        subscribers: Subscribers,
    ) -> Self {
        Authenticator {
            settings,
            nonces: Nonces::new(secret, nonce_lifetime),
            counts: NonceCounts::default(),
            subscribers,
            stats: AuthStats::default(),
        }
    }

    /// The counters of what [`check`](Self::check) decided.
    pub fn stats(&self) -> &AuthStats {
        &self.stats
    }

    pub fn subscribers(&self) -> &Subscribers {
        &self.subscribers
    }

    /// The algorithms challenges offer, strongest first (`[auth] algorithms`).
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.settings.algorithms
    }

    /// The realm challenges for `domain` use.
    pub fn realm<'a>(&'a self, domain: &'a str) -> &'a str {
        self.settings.realm.as_deref().unwrap_or(domain)
    }

    /// Checks a REGISTER for the AoR `user@domain` (the To URI).
    pub fn check(&self, req: &Request<'_>, user: &str, domain: &str, now: u64) -> Verdict {
        let verdict = self.verdict(req, user, domain, now);
        let counter = match verdict {
            Verdict::Authorized => &self.stats.authorized,
            Verdict::Challenge { .. } => &self.stats.challenges,
            Verdict::Forbidden(_) => &self.stats.forbidden,
            Verdict::Malformed(_) => &self.stats.malformed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        verdict
    }

    fn verdict(&self, req: &Request<'_>, user: &str, domain: &str, now: u64) -> Verdict {
        let realm = self.realm(domain);
        // Credentials for another realm are not for us (RFC 3261 §22.4).
        let creds = req
            .raw
            .headers_named(HeaderName::Authorization)
            .filter_map(|v| digest::parse(v).ok())
            .find(|c| c.realm == realm);
        let Some(c) = creds else {
            if req.raw.headers_named(HeaderName::Authorization).any(|v| {
                matches!(
                    digest::parse(v),
                    Err(digest::DigestError::Malformed | digest::DigestError::Missing(_))
                )
            }) {
                return Verdict::Malformed("Malformed Authorization Header");
            }
            return Verdict::Challenge {
                stale: false,
                failures: 0,
            };
        };
        let (failures, id, issued_at) = match self.nonces.check(&c.nonce, now, realm) {
            NonceCheck::Valid {
                failures,
                id,
                issued_at,
            } => (failures, id, issued_at),
            NonceCheck::Stale { failures } => {
                return Verdict::Challenge {
                    stale: true,
                    failures,
                }
            }
            NonceCheck::Invalid => {
                return Verdict::Challenge {
                    stale: false,
                    failures: 0,
                }
            }
        };
        let Some(alg) = Algorithm::parse(c.algorithm.as_deref())
            .filter(|a| self.settings.algorithms.contains(a))
        else {
            return Verdict::Challenge {
                stale: false,
                failures,
            };
        };
        // We offer qop="auth" only; the RFC 2069 form without qop has no
        // nonce count and is refused.
        if c.qop.as_deref() != Some("auth") {
            return Verdict::Challenge {
                stale: false,
                failures,
            };
        }
        let (Some(nc_text), Some(_)) = (c.nc.as_deref(), c.cnonce.as_deref()) else {
            return Verdict::Malformed("Digest Without nc Or cnonce");
        };
        let Some(nc) = u32::from_str_radix(nc_text, 16)
            .ok()
            .filter(|_| nc_text.len() == 8)
        else {
            return Verdict::Malformed("Malformed Digest nc");
        };
        // The digest `uri` is hashed as sent. It is not required to equal
        // the Request-URI: SIPp, for one, puts the registrar's address
        // there, Kamailio does not compare either, and replays are stopped
        // by the nonce count, not by the URI.
        if !self.answer_is_right(&c, alg, domain, realm) {
            return self.wrong(failures);
        }
        if !self
            .counts
            .accept(id, nc, issued_at, now, self.nonces.lifetime())
        {
            // A replayed (or reordered) answer: make the UA start afresh.
            return Verdict::Challenge {
                stale: false,
                failures,
            };
        }
        // Kamailio's auth_check with the To check: alice may not register bob.
        if *c.username != *user {
            return Verdict::Forbidden("Auth User Does Not Own The AoR");
        }
        Verdict::Authorized
    }

    fn wrong(&self, failures: u8) -> Verdict {
        self.stats.wrong_credentials.fetch_add(1, Ordering::Relaxed);
        let failures = failures.saturating_add(1);
        if failures >= self.settings.max_failures {
            Verdict::Forbidden("Too Many Failed Authentications")
        } else {
            Verdict::Challenge {
                stale: false,
                failures,
            }
        }
    }

    /// RFC 7616 §3.4.1 with qop=auth, compared in constant time.
    fn answer_is_right(
        &self,
        c: &Credentials<'_>,
        alg: Algorithm,
        domain: &str,
        realm: &str,
    ) -> bool {
        let Some(sub) = self.subscribers.get(&c.username, domain) else {
            // Spend the same work on unknown users as on known ones.
            let _ = alg.hash_hex(realm);
            return false;
        };
        let ha1 = match alg {
            Algorithm::Md5 => sub.ha1,
            Algorithm::Sha256 => sub.ha1_sha256,
        };
        let Some(ha1) = ha1 else {
            return false;
        };
        let ha2 = alg.hash_hex(&format!("REGISTER:{}", c.uri));
        let expected = alg.hash_hex(&format!(
            "{}:{}:{}:{}:auth:{ha2}",
            ha1.to_ascii_lowercase(),
            c.nonce,
            c.nc.as_deref().unwrap_or(""),
            c.cnonce.as_deref().unwrap_or("")
        ));
        let got = c.response.to_ascii_lowercase();
        expected.len() == got.len() && bool::from(expected.as_bytes().ct_eq(got.as_bytes()))
    }

    /// `WWW-Authenticate` values for a 401: one per algorithm, strongest
    /// first (RFC 8760 §2.4).
    pub fn challenges(&self, domain: &str, stale: bool, failures: u8, now: u64) -> Vec<String> {
        let realm = self.realm(domain);
        let nonce = self.nonces.issue(now, failures, realm);
        self.settings
            .algorithms
            .iter()
            .map(|a| {
                format!(
                    "Digest realm=\"{realm}\", nonce=\"{nonce}\", qop=\"auth\", algorithm={}{}",
                    a.as_str(),
                    if stale { ", stale=true" } else { "" }
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;

/// Builds the authenticator of `[auth]`, or `None` for `mode = "none"`.
/// Reads (or creates) the nonce secret and the subscriber list; errors say
/// which file and what to do.
pub fn from_config(
    cfg: &crate::config::AuthConfig,
) -> Result<Option<std::sync::Arc<Authenticator>>, String> {
    if cfg.mode == crate::config::AuthMode::None {
        return Ok(None);
    }
    let secret = load_or_create_secret(&cfg.secret_file)?;
    let subscribers = Subscribers::open(&cfg.subscribers)?;
    if subscribers.is_empty() {
        tracing::warn!(
            file = %cfg.subscribers.display(),
            "digest authentication is on but there are no subscribers: every REGISTER will be refused (add one with `kamrsctl subscriber add USER@DOMAIN`)"
        );
    }
    Ok(Some(std::sync::Arc::new(Authenticator::new(
        AuthSettings {
            realm: cfg.realm.clone(),
            algorithms: cfg.algorithms.clone(),
            max_failures: cfg.max_failures,
        },
        secret,
        cfg.nonce_expires,
        subscribers,
    ))))
}

/// The nonce secret: 32 random bytes kept in a 0600 file so nonces survive
/// restarts and can be shared by nodes that share the file.
fn load_or_create_secret(path: &std::path::Path) -> Result<Vec<u8>, String> {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() >= 16 => return Ok(bytes),
        Ok(_) => {
            return Err(format!(
                "{}: the nonce secret is shorter than 16 bytes; delete the file and kamrs creates a new one",
                path.display()
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read the nonce secret {}: {e}", path.display())),
    }
    let mut secret = vec![0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut secret))
        .map_err(|e| format!("cannot read /dev/urandom for a nonce secret: {e}"))?;
    let create = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(&secret)?;
        f.sync_all()
    };
    match create() {
        Ok(()) => Ok(secret),
        // Another node sharing the directory created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read(path)
            .map_err(|e| format!("cannot read the nonce secret {}: {e}", path.display())),
        Err(e) => Err(format!(
            "cannot create the nonce secret {}: {e} (set `[auth] secret_file` to a writable path)",
            path.display()
        )),
    }
}
