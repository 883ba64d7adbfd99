//! `subscriber.*` and `auth.realm`: who may register, managed over RPC
//! (docs/design.md §8).
//!
//! Only HA1 hashes cross the socket: `kamrsctl subscriber add` asks
//! `auth.realm` for the realm, hashes the password itself and sends the
//! hashes. Nothing here ever answers with a hash, and nothing logs one.
//!
//! The functions take the [`Authenticator`] rather than the whole state:
//! `api.rs` looks it up ([`auth`]) and runs them on a blocking thread.
//!
//! While `[auth] mode = "none"` they manage the `[auth] subscribers` file
//! all the same, with the realm rule and `use_domain` rule
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
    if let Some(a) = state.core.auth.as_ref() {
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
    // the first's: refused with what to do.
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
mod tests;
