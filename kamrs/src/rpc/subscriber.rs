//! `subscriber.*` and `auth.realm`: who may register, managed over RPC
//! (issue 6, docs/design.md §8).
//!
//! Only HA1 hashes cross the socket: `kamrsctl subscriber add` asks
//! `auth.realm` for the realm, hashes the password itself and sends the
//! hashes. Nothing here ever answers with a hash, and nothing logs one.
//!
//! The functions take the [`Authenticator`] rather than the whole state:
//! `api.rs` looks it up ([`auth`]) and runs them on a blocking thread.
//!
//! While `[auth] mode = "none"` they manage the `[auth] subscribers` file
//! all the same (issue 14), with the realm rule and `use_domain` rule
//! digest will use, so an admin can add every subscriber before switching
//! authentication on and no phone is refused after the restart. The file
//! is re-read at every call then (nothing else reads it: no SIGHUP
//! reload), so hand edits are never overwritten by an older copy.

use std::sync::Arc;

use common::api::{error, method};
use common::types::SubscriberEntry;
use jsonrpsee::types::ErrorObjectOwned;

use super::api::State;
use super::params::usage_for;
use crate::auth::subscribers::Subscriber;
use crate::auth::{Algorithm, Authenticator};

type Result<T> = std::result::Result<T, ErrorObjectOwned>;

/// The start of what `subscriber.*` and `auth.realm` answer when the
/// subscriber file cannot be managed while `[auth] mode = "none"`.
pub const AUTH_OFF: &str = "authentication is off ([auth] mode = \"none\")";

/// The authenticator REGISTERs are checked with; while authentication is
/// off, one holding only the `[auth] subscribers` file (re-read now), or
/// an error saying what is wrong with that file and what to do. Blocking:
/// call it on a blocking thread.
pub fn auth(state: &State) -> Result<Arc<Authenticator>> {
    if let Some(a) = state.router.registrar().auth() {
        return Ok(Arc::clone(a));
    }
    let cfg = &state.settings.auth;
    let off = |e: String| {
        ErrorObjectOwned::owned(
            error::INTERNAL,
            format!(
                "{AUTH_OFF} and its subscriber list cannot be managed: {e}; fix the file, or set `[auth] subscribers` to a file kamrs may read and write, and restart kamrs"
            ),
            None::<()>,
        )
    };
    let mut slot = state
        .subscribers_while_off
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match &*slot {
        Some(a) => {
            a.subscribers().reload().map_err(off)?;
            Ok(Arc::clone(a))
        }
        None => {
            let a = crate::auth::for_management(
                cfg.settings.clone(),
                cfg.nonce_expires,
                &cfg.path,
                state.settings.use_domain,
            )
            .map_err(off)?;
            tracing::info!(
                file = %cfg.path.display(),
                "authentication is off: subscriber.* manage the subscriber file, used once `[auth] mode = \"digest\"`"
            );
            *slot = Some(Arc::clone(&a));
            Ok(a)
        }
    }
}

fn invalid(method: &str, what: String) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        error::INVALID_PARAMS,
        format!("{method}: {what}"),
        usage_for(method).map(|u| format!("usage: {u}")),
    )
}

fn internal(what: String) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(error::INTERNAL, what, None::<()>)
}

/// `""` (the params check's "none") as `None`.
fn hash(h: String) -> Option<String> {
    (!h.is_empty()).then(|| h.to_ascii_lowercase())
}

/// `subscriber.add USER DOMAIN HA1 HA1_SHA256`. The arguments were checked
/// by `params.rs` (user name and domain syntax, hex lengths); what is left
/// is what needs them together, or the config.
pub fn add(
    auth: &Authenticator,
    username: String,
    domain: String,
    ha1: String,
    ha1_sha256: String,
) -> Result<()> {
    let m = method::SUBSCRIBER_ADD;
    let (ha1, ha1_sha256) = (hash(ha1), hash(ha1_sha256));
    if ha1.is_none() && ha1_sha256.is_none() {
        return Err(invalid(
            m,
            "give at least one of argument 3 `ha1` (MD5) and argument 4 `ha1_sha256`; both are \"\"".to_owned(),
        ));
    }
    // A subscriber whose only hash is for an algorithm kamrs does not offer
    // could never register: refuse it now rather than puzzle the admin later.
    let usable = auth.algorithms().iter().any(|a| match a {
        Algorithm::Md5 => ha1.is_some(),
        Algorithm::Sha256 => ha1_sha256.is_some(),
    });
    if !usable {
        let offered: Vec<&str> = auth.algorithms().iter().map(|a| a.as_str()).collect();
        return Err(invalid(
            m,
            format!(
                "kamrs offers only {} (`[auth] algorithms`), and no hash for it was given: set argument {}",
                offered.join(", "),
                if ha1.is_none() {
                    "3 `ha1` (MD5)"
                } else {
                    "4 `ha1_sha256`"
                }
            ),
        ));
    }
    let domain = domain.to_ascii_lowercase();
    let subscribers = auth.subscribers();
    // A second domain with `use_domain = false` would merge its AoRs into
    // the first's (issue 13): refused with what to do.
    // Not a usage mistake: no usage hint.
    subscribers.admits(&domain).map_err(|e| {
        ErrorObjectOwned::owned(error::INVALID_PARAMS, format!("{m}: {e}"), None::<()>)
    })?;
    let replaced = subscribers.get(&username, &domain).is_some();
    subscribers
        .add(Subscriber {
            username: username.clone(),
            domain: domain.clone(),
            ha1,
            ha1_sha256,
        })
        .map_err(|e| {
            internal(format!(
                "subscriber not saved, the list is unchanged: {e} (kamrs's user must be able to write the `[auth] subscribers` file and its directory)"
            ))
        })?;
    tracing::info!(
        username,
        domain,
        "subscriber.add: subscriber {} over the control API",
        if replaced { "replaced" } else { "added" }
    );
    Ok(())
}

/// `subscriber.rm USER DOMAIN`: 404 "Subscriber not found" when absent.
pub fn rm(auth: &Authenticator, username: &str, domain: &str) -> Result<()> {
    let domain = domain.to_ascii_lowercase();
    match auth.subscribers().remove(username, &domain) {
        Ok(true) => {
            tracing::info!(
                username,
                domain,
                "subscriber.rm: subscriber removed over the control API"
            );
            Ok(())
        }
        Ok(false) => Err(ErrorObjectOwned::owned(
            error::NOT_FOUND,
            error::SUBSCRIBER_NOT_FOUND,
            None::<()>,
        )),
        Err(e) => Err(internal(format!(
            "subscriber not removed, the list is unchanged: {e}"
        ))),
    }
}

/// `subscriber.list`: names only, sorted by user then domain.
pub fn list(auth: &Authenticator) -> Vec<SubscriberEntry> {
    auth.subscribers()
        .list()
        .into_iter()
        .map(|(username, domain)| SubscriberEntry { username, domain })
        .collect()
}

/// `subscriber.reload`: the number of subscribers in force afterwards.
pub fn reload(auth: &Authenticator) -> Result<u64> {
    let subscribers = auth.subscribers();
    match subscribers.reload() {
        Ok(n) => {
            tracing::info!("subscriber.reload: subscriber list reloaded, {n} subscribers");
            Ok(n as u64)
        }
        Err(e) => {
            let kept = subscribers.len();
            tracing::error!(
                "subscriber.reload: subscriber list not reloaded, the old one stays in force: {e}"
            );
            Err(internal(format!(
                "subscriber list not reloaded, the old one ({kept} subscribers) stays in force: {e}"
            )))
        }
    }
}

/// `auth.realm DOMAIN`: the realm HA1s for DOMAIN's users are computed with.
pub fn realm(auth: &Authenticator, domain: &str) -> String {
    auth.realm(&domain.to_ascii_lowercase()).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::subscribers::{ha1_md5, ha1_sha256, Subscribers};
    use crate::auth::AuthSettings;
    use crate::rpc::api::tests::{state_for, state_with_auth};

    fn authenticator(
        realm: Option<&str>,
        algorithms: Vec<Algorithm>,
        subs: Subscribers,
    ) -> Authenticator {
        Authenticator::new(
            AuthSettings {
                realm: realm.map(str::to_owned),
                algorithms,
                ..AuthSettings::default()
            },
            vec![7; 32],
            300,
            subs,
        )
    }

    fn both() -> Vec<Algorithm> {
        vec![Algorithm::Sha256, Algorithm::Md5]
    }

    #[test]
    fn add_list_rm() {
        let a = authenticator(None, both(), Subscribers::in_memory(Vec::new()));
        let md5 = ha1_md5("alice", "example.com", "pw");
        let sha = ha1_sha256("alice", "example.com", "pw");
        add(
            &a,
            "alice".into(),
            "Example.COM".into(),
            md5.to_uppercase(),
            sha.clone(),
        )
        .unwrap();
        add(
            &a,
            "bob".into(),
            "example.com".into(),
            String::new(),
            sha.clone(),
        )
        .unwrap();
        let stored = a.subscribers().get("alice", "example.com").unwrap();
        assert_eq!(stored.domain, "example.com");
        assert_eq!(stored.ha1.as_deref(), Some(md5.as_str()), "lower-cased");
        assert_eq!(a.subscribers().get("bob", "example.com").unwrap().ha1, None);
        let names = list(&a);
        assert_eq!(
            names,
            [
                SubscriberEntry {
                    username: "alice".into(),
                    domain: "example.com".into()
                },
                SubscriberEntry {
                    username: "bob".into(),
                    domain: "example.com".into()
                }
            ]
        );
        let text = serde_json::to_string(&names).unwrap();
        assert!(!text.contains(&md5) && !text.contains(&sha), "{text}");

        rm(&a, "alice", "EXAMPLE.com").unwrap();
        let e = rm(&a, "alice", "example.com").unwrap_err();
        assert_eq!((e.code(), e.message()), (404, "Subscriber not found"));
        assert_eq!(list(&a).len(), 1);
        assert_eq!(reload(&a).unwrap(), 1, "in memory: nothing to re-read");
    }

    #[test]
    fn add_needs_a_hash_kamrs_can_use() {
        let a = authenticator(None, both(), Subscribers::in_memory(Vec::new()));
        let e = add(&a, "alice".into(), "d".into(), String::new(), String::new()).unwrap_err();
        assert_eq!(e.code(), error::INVALID_PARAMS);
        assert!(
            e.message().starts_with("subscriber.add: ") && e.message().contains("`ha1_sha256`"),
            "{}",
            e.message()
        );
        let sha_only = authenticator(
            None,
            vec![Algorithm::Sha256],
            Subscribers::in_memory(Vec::new()),
        );
        let e = add(
            &sha_only,
            "alice".into(),
            "d".into(),
            ha1_md5("alice", "d", "pw"),
            String::new(),
        )
        .unwrap_err();
        assert!(
            e.message().contains("only SHA-256") && e.message().contains("argument 4 `ha1_sha256`"),
            "{}",
            e.message()
        );
        assert!(sha_only.subscribers().is_empty());
    }

    #[test]
    fn a_second_domain_needs_use_domain() {
        let subs = Subscribers::in_memory_single_domain(Vec::new()).unwrap();
        let a = authenticator(None, both(), subs);
        let sha = |d: &str| ha1_sha256("alice", d, "pw");
        add(
            &a,
            "alice".into(),
            "example.com".into(),
            String::new(),
            sha("example.com"),
        )
        .unwrap();
        let e = add(
            &a,
            "alice".into(),
            "evil.org".into(),
            String::new(),
            sha("evil.org"),
        )
        .unwrap_err();
        assert_eq!(e.code(), error::INVALID_PARAMS);
        assert!(
            e.message().starts_with("subscriber.add: ")
                && e.message().contains("use_domain = true"),
            "{}",
            e.message()
        );
        assert_eq!(list(&a).len(), 1);
        // use_domain = true: any number of domains.
        let a = authenticator(None, both(), Subscribers::in_memory(Vec::new()));
        add(
            &a,
            "alice".into(),
            "example.com".into(),
            String::new(),
            sha("example.com"),
        )
        .unwrap();
        add(
            &a,
            "alice".into(),
            "evil.org".into(),
            String::new(),
            sha("evil.org"),
        )
        .unwrap();
    }

    #[test]
    fn realm_is_the_configured_one_or_the_domain() {
        let a = authenticator(None, both(), Subscribers::in_memory(Vec::new()));
        assert_eq!(realm(&a, "Example.COM"), "example.com");
        let fixed = authenticator(Some("kamrs"), both(), Subscribers::in_memory(Vec::new()));
        assert_eq!(realm(&fixed, "example.com"), "kamrs");
    }

    #[test]
    fn file_errors_keep_the_old_list() {
        let dir = std::env::temp_dir().join(format!("kamrs-rpc-subs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("subscribers.toml");
        let a = authenticator(None, both(), Subscribers::open(&path, false).unwrap());
        add(
            &a,
            "alice".into(),
            "example.com".into(),
            ha1_md5("alice", "example.com", "pw"),
            String::new(),
        )
        .unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().contains("alice"));
        std::fs::write(&path, "this is not toml [").unwrap();
        let e = reload(&a).unwrap_err();
        assert_eq!(e.code(), error::INTERNAL);
        assert!(
            e.message()
                .contains("old one (1 subscribers) stays in force")
                && e.message().contains("subscribers.toml"),
            "{}",
            e.message()
        );
        assert_eq!(list(&a).len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn with_auth_on_the_registrars_authenticator() {
        let s = state_with_auth(authenticator(
            None,
            both(),
            Subscribers::in_memory(Vec::new()),
        ));
        let a = auth(&s).unwrap();
        assert!(std::ptr::eq(&*a, &**s.router.registrar().auth().unwrap()));
    }

    #[test]
    fn with_auth_off_the_subscriber_file_is_managed_as_digest_will_use_it() {
        let dir = std::env::temp_dir().join(format!("kamrs-rpc-off-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("subscribers.toml");
        let mut config = crate::config::Config::default();
        assert_eq!(config.auth.mode, crate::config::AuthMode::None);
        config.auth.subscribers = path.clone();
        config.auth.secret_file = dir.join("nonce.secret");
        config.auth.realm = Some("pbx".into());
        let s = state_for(&config);
        let a = auth(&s).unwrap();
        assert_eq!(realm(&a, "example.com"), "pbx", "the realm digest will use");
        assert_eq!(a.algorithms(), [Algorithm::Md5], "the default algorithms");
        add(
            &a,
            "alice".into(),
            "example.com".into(),
            ha1_md5("alice", "pbx", "pw"),
            String::new(),
        )
        .unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().contains("alice"));
        assert!(!config.auth.secret_file.exists(), "no secret while off");
        // use_domain = false: one domain, as digest will require.
        let e = add(
            &a,
            "bob".into(),
            "other.example".into(),
            ha1_md5("bob", "pbx", "pw"),
            String::new(),
        )
        .unwrap_err();
        assert!(e.message().contains("use_domain = true"), "{}", e.message());
        // Re-read at every call: a hand edit is seen, never overwritten.
        let hand = format!(
            "{}[[subscriber]]\nusername = \"carol\"\ndomain = \"example.com\"\nha1 = \"{}\"\n",
            std::fs::read_to_string(&path).unwrap(),
            ha1_md5("carol", "pbx", "pw")
        );
        std::fs::write(&path, hand).unwrap();
        assert_eq!(list(&auth(&s).unwrap()).len(), 2);
        // A broken file: what is wrong, where, and what to do.
        std::fs::write(&path, "[[subscriber]\n").unwrap();
        let e = auth(&s).err().unwrap();
        assert_eq!(e.code(), error::INTERNAL);
        assert!(
            e.message().starts_with(AUTH_OFF)
                && e.message().contains("subscribers.toml")
                && e.message().contains("`[auth] subscribers`"),
            "{}",
            e.message()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn with_auth_off_an_unreadable_file_says_so() {
        // A directory where the file should be: unreadable as a file, also
        // for root.
        let dir = std::env::temp_dir().join(format!("kamrs-rpc-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("subscribers.toml")).unwrap();
        let mut config = crate::config::Config::default();
        config.auth.subscribers = dir.join("subscribers.toml");
        let e = auth(&state_for(&config)).err().unwrap();
        assert!(
            e.message().contains("cannot read") && e.message().contains("subscribers.toml"),
            "{}",
            e.message()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
