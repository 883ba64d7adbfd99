//! Digest authentication of REGISTER (RFC 3261 §22, RFC 7616, RFC 8760):
//! the tutorial's warning made default. Without it anyone can register
//! anyone's AoR and take their calls.
//!
//! Nonces carry their own issue time, failure count, process id and MAC
//! ([`nonce`]); a nonce is good only in the process that issued it, whose
//! nonce-count table ([`replay`]) stops its replays. Wrong answers are
//! counted per subscriber and source, and guessers are locked out
//! ([`lockout`]), with one log line per failure ([`log`]).

pub mod digest;
pub mod lockout;
mod log;
pub mod nonce;
mod replay;
pub mod subscribers;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use md5::Md5;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use self::digest::Credentials;
use self::lockout::{Lockout, LockoutSettings};
use self::log::Failure;
use self::nonce::{NonceCheck, Nonces};
use self::replay::{NonceCounts, Use};
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
            Algorithm::Md5 => crate::util::hex(&Md5::digest(data)),
            Algorithm::Sha256 => crate::util::hex(&Sha256::digest(data)),
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

/// Default `[auth] algorithms`: MD5 alone, which every mainstream UA
/// answers (SIPp and baresip 1.0 fail on any SHA-256 challenge).
pub const DEFAULT_ALGORITHMS: &[Algorithm] = &[Algorithm::Md5];

/// Settings of the authenticator (the `[auth]` config table, mapped onto
/// this by `config/settings.rs`).
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// A fixed realm, or `None` for the AoR's domain (Kamailio's default).
    pub realm: Option<String>,
    /// Offered in this order (RFC 8760: preferred first); by default MD5
    /// alone ([`DEFAULT_ALGORITHMS`]).
    pub algorithms: Vec<Algorithm>,
    /// Wrong answers answered with a new 401 before a 403.
    pub max_failures: u8,
    /// Brute-force lock-out (`[auth] lockout_*`).
    pub lockout: LockoutSettings,
    /// `[pike] trusted` networks (own proxies, loopback): shared by many
    /// users, so only the user lock-out scope counts there.
    pub trusted_networks: Vec<(std::net::IpAddr, u8)>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            realm: None,
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            max_failures: 3,
            lockout: LockoutSettings::default(),
            trusted_networks: Vec::new(),
        }
    }
}

/// The reason phrase of the 403 during a lock-out.
pub const LOCKED_OUT: &str = "Locked Out After Failed Authentications";

pub struct Authenticator {
    settings: AuthSettings,
    nonces: Nonces,
    counts: NonceCounts,
    lockout: Lockout,
    subscribers: Subscribers,
    stats: AuthStats,
    /// Caps failure and lock-out log lines (log.rs).
    log_limit: log::Limiter,
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
    /// An authenticator whose nonces carry a fresh random process id
    /// ([`nonce::random_boot_id`]).
    pub fn new(
        settings: AuthSettings,
        secret: Vec<u8>,
        nonce_lifetime: u64,
        subscribers: Subscribers,
    ) -> Self {
        Authenticator::with_boot_id(
            settings,
            secret,
            nonce_lifetime,
            subscribers,
            nonce::random_boot_id(),
        )
    }

    /// The same with a chosen process id (tests: two "processes").
    pub fn with_boot_id(
        settings: AuthSettings,
        secret: Vec<u8>,
        nonce_lifetime: u64,
        subscribers: Subscribers,
        boot: u64,
    ) -> Self {
        Authenticator {
            lockout: Lockout::new(settings.lockout)
                .with_trusted_networks(settings.trusted_networks.clone()),
            settings,
            nonces: Nonces::new(secret, nonce_lifetime, boot),
            counts: NonceCounts::default(),
            subscribers,
            stats: AuthStats::default(),
            log_limit: log::Limiter::default(),
        }
    }

    /// The counters of what [`check`](Self::check) decided.
    pub fn stats(&self) -> &AuthStats {
        &self.stats
    }

    /// The lock-out tables and their counters.
    pub fn lockout(&self) -> &Lockout {
        &self.lockout
    }

    /// Nonces whose counts are tracked now (`auth:nc_tracked`).
    pub fn nc_tracked(&self) -> usize {
        self.counts.len()
    }

    /// Nonce-count entries evicted from the full table (`auth:nc_evicted`).
    pub fn nc_evicted(&self) -> &AtomicU64 {
        &self.counts.evicted
    }

    pub fn subscribers(&self) -> &Subscribers {
        &self.subscribers
    }

    /// The algorithms challenges offer, in order (`[auth] algorithms`).
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.settings.algorithms
    }

    /// The realm challenges for `domain` use.
    pub fn realm<'a>(&'a self, domain: &'a str) -> &'a str {
        self.settings.realm.as_deref().unwrap_or(domain)
    }

    /// Checks a REGISTER for the AoR `user@domain` (the To URI) from
    /// `source`. `registered` says whether `source` holds a live binding
    /// of that AoR; asked only while the user's lock-out is in force (a
    /// registered phone is spared it, lockout.rs).
    pub fn check(
        &self,
        req: &Request<'_>,
        user: &str,
        domain: &str,
        source: SocketAddr,
        now: u64,
        registered: &dyn Fn() -> bool,
    ) -> Verdict {
        self.check_in(
            req,
            HeaderName::Authorization,
            user,
            domain,
            source,
            now,
            registered,
        )
    }

    /// [`check`](Self::check) with the credentials in `header`: the
    /// proxy checks a caller's `Proxy-Authorization` (RFC 3261 §22.3)
    /// for the user of its From, with the same nonces, counts, lock-outs
    /// and logs as REGISTER.
    #[allow(clippy::too_many_arguments)]
    pub fn check_in(
        &self,
        req: &Request<'_>,
        header: HeaderName,
        user: &str,
        domain: &str,
        source: SocketAddr,
        now: u64,
        registered: &dyn Fn() -> bool,
    ) -> Verdict {
        let verdict = self.verdict(req, header, user, domain, source, now, registered);
        let counter = match verdict {
            Verdict::Authorized => &self.stats.authorized,
            Verdict::Challenge { .. } => &self.stats.challenges,
            Verdict::Forbidden(_) => &self.stats.forbidden,
            Verdict::Malformed(_) => &self.stats.malformed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        verdict
    }

    #[allow(clippy::too_many_arguments)]
    fn verdict(
        &self,
        req: &Request<'_>,
        header: HeaderName,
        user: &str,
        domain: &str,
        source: SocketAddr,
        now: u64,
        registered: &dyn Fn() -> bool,
    ) -> Verdict {
        // With `use_domain = false` the AoR is the user part alone, so a
        // REGISTER for another domain would land in the served domain's
        // AoR of the same name. The subscriber list is kept to
        // one domain then; this refuses the rest before any other work.
        if !self.subscribers.serves_domain(domain) {
            return Verdict::Forbidden("Domain Not Served (use_domain = false)");
        }
        let realm = self.realm(domain);
        // Credentials for another realm are not for us (RFC 3261 §22.4).
        let creds = req
            .raw
            .headers_named(header)
            .filter_map(|v| digest::parse(v).ok())
            .find(|c| c.realm == realm);
        let Some(c) = creds else {
            if req.raw.headers_named(header).any(|v| {
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
        // Before the answer is looked at: during a lock-out the right
        // password fails too, so guessing learns nothing.
        // The binding says something only about the AoR's own user: alice's
        // phone must not shelter guesses at bob's password.
        let registered = || *c.username == *user && registered();
        if let Some(scope) = self
            .lockout
            .refused(&c.username, realm, source.ip(), now, &registered)
        {
            log::refused(scope, &c.username, realm, source);
            return Verdict::Forbidden(LOCKED_OUT);
        }
        let (failures, serial, issued_at) =
            match self.nonces.check(&c.nonce, now, realm, source.ip()) {
                NonceCheck::Valid {
                    failures,
                    serial,
                    issued_at,
                } => (failures, serial, issued_at),
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
        // RFC 7616 §3.4: the first request with a nonce has nc=00000001.
        if nc == 0 {
            return Verdict::Malformed("Digest nc Must Start At 00000001");
        }
        // The digest `uri` is hashed as sent. It is not required to equal
        // the Request-URI: SIPp, for one, puts the registrar's address
        // there, Kamailio does not compare either, and replays are stopped
        // by the nonce count, not by the URI.
        if let Err(why) = self.answer_is_right(&c, alg, domain, realm, req.method.as_str()) {
            return self.wrong(&c.username, realm, source, why, failures, now);
        }
        match self
            .counts
            .accept(serial, nc, issued_at, now, self.nonces.lifetime())
        {
            Use::Fresh => {}
            // A replayed (or reordered) answer: make the UA start afresh.
            Use::Replayed => {
                return Verdict::Challenge {
                    stale: false,
                    failures,
                }
            }
            // Its history was evicted: it may have been used, so not a
            // first use; a fresh nonce without asking the user.
            Use::Forgotten => {
                return Verdict::Challenge {
                    stale: true,
                    failures,
                }
            }
        }
        // The password is proven from this address: trusted through source
        // and user lock-outs (lockout.rs).
        self.lockout.success(&c.username, realm, source.ip(), now);
        // Kamailio's auth_check with the To check: alice may not register bob.
        if *c.username != *user {
            return Verdict::Forbidden("Auth User Does Not Own The AoR");
        }
        Verdict::Authorized
    }

    /// A wrong answer: logged, counted towards lock-outs, and 401 again
    /// until this nonce's chain reached `max_failures`.
    fn wrong(
        &self,
        username: &str,
        realm: &str,
        source: SocketAddr,
        why: Failure,
        failures: u8,
        now: u64,
    ) -> Verdict {
        self.stats.wrong_credentials.fetch_add(1, Ordering::Relaxed);
        log::failure(&self.log_limit, now, username, realm, source, why);
        let started = self.lockout.failure(username, realm, source.ip(), now);
        for scope in &started {
            log::lockout(
                &self.log_limit,
                now,
                *scope,
                username,
                realm,
                source,
                self.settings.lockout.time,
            );
        }
        if !started.is_empty() {
            return Verdict::Forbidden(LOCKED_OUT);
        }
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
        method: &str,
    ) -> Result<(), Failure> {
        let Some(sub) = self.subscribers.get(&c.username, domain) else {
            // Spend the same work on unknown users as on known ones.
            let _ = alg.hash_hex(realm);
            return Err(Failure::UnknownUser);
        };
        let ha1 = match alg {
            Algorithm::Md5 => sub.ha1,
            Algorithm::Sha256 => sub.ha1_sha256,
        };
        let Some(ha1) = ha1 else {
            return Err(Failure::NoHashForAlgorithm);
        };
        // HA2 names the method of the request answered (RFC 2617
        // §3.2.2.3): REGISTER, or the INVITE a caller proves itself on.
        let ha2 = alg.hash_hex(&format!("{method}:{}", c.uri));
        let expected = alg.hash_hex(&format!(
            "{}:{}:{}:{}:auth:{ha2}",
            ha1.to_ascii_lowercase(),
            c.nonce,
            c.nc.as_deref().unwrap_or(""),
            c.cnonce.as_deref().unwrap_or("")
        ));
        let got = c.response.to_ascii_lowercase();
        if expected.len() == got.len() && bool::from(expected.as_bytes().ct_eq(got.as_bytes())) {
            Ok(())
        } else {
            Err(Failure::WrongPassword)
        }
    }

    /// `WWW-Authenticate` values for a 401 sent to `to`: one per
    /// algorithm, in the configured order (RFC 8760 §2.4: preferred first).
    pub fn challenges(
        &self,
        domain: &str,
        stale: bool,
        failures: u8,
        to: std::net::IpAddr,
        now: u64,
    ) -> Vec<String> {
        let realm = self.realm(domain);
        let nonce = self.nonces.issue(now, failures, realm, to);
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

/// Builds the authenticator of `[auth] mode = "digest"` (the config decides
/// whether there is one). Reads (or creates) the nonce secret and the
/// subscriber list; errors say which file and what to do.
///
/// `settings.trusted_networks` is `[pike] trusted`.
///
/// `use_domain` is the top-level key: without it the subscriber list must
/// stay within one domain ([`Subscribers::open`]).
pub fn open(
    settings: AuthSettings,
    nonce_expires: u64,
    secret_file: &std::path::Path,
    subscribers: &std::path::Path,
    use_domain: bool,
) -> Result<std::sync::Arc<Authenticator>, String> {
    let secret = load_or_create_secret(secret_file)?;
    let file = subscribers;
    let subscribers = Subscribers::open(file, !use_domain)?;
    if subscribers.is_empty() {
        tracing::warn!(
            file = %file.display(),
            "digest authentication is on but there are no subscribers: every REGISTER will be refused (add one with `kamrsctl subscriber add USER@DOMAIN`)"
        );
    }
    Ok(std::sync::Arc::new(Authenticator::new(
        settings,
        secret,
        nonce_expires,
        subscribers,
    )))
}

/// The subscriber list of `[auth] subscribers`, for managing it while
/// `[auth] mode = "none"` (so subscribers can be prepared before auth
/// is switched on). The result never checks a REGISTER (the registrar has
/// none), so it needs no nonce secret and creates none; the realm and
/// algorithms are those digest will use, and `use_domain = false` holds
/// the list to one domain as it will then.
pub fn for_management(
    settings: AuthSettings,
    nonce_expires: u64,
    subscribers: &std::path::Path,
    use_domain: bool,
) -> Result<std::sync::Arc<Authenticator>, String> {
    let subscribers = Subscribers::open(subscribers, !use_domain)?;
    Ok(std::sync::Arc::new(Authenticator::new(
        settings,
        // Never used to issue or check a nonce; random all the same.
        nonce::random_boot_id().to_le_bytes().repeat(4),
        nonce_expires,
        subscribers,
    )))
}

/// The nonce secret: 32 random bytes kept in a 0600 file. Nodes sharing it
/// recognise each other's nonces as genuine (and answer them `stale=true`
/// rather than as forgeries); only the issuing process accepts one.
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
