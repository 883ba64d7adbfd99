//! The `CtlServer` implementation: the shared state and one line per
//! method, delegating to the file of its group (`ul.rs`, `stats.rs`,
//! `system.rs`, `subscriber.rs`, `pike.rs`).

use std::sync::{Arc, OnceLock};

use common::api::{error, CtlServer};
use common::types::{
    CoreInfo, PikeSource, SubscriberEntry, TlsConnection, TlsInfo, UlDump, UlDumpPage, UlLookup,
    Uptime,
};
use common::Raw;
use jsonrpsee::core::{async_trait, RpcResult};
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::RpcModule;

use super::dump_names::DumpNames;
use super::{pike, stats, subscriber, system, tls, ul};
use crate::state::Core;
use crate::usrloc::{unix_now, LocationTable};

/// The settings the methods need (`config.rs` maps the file onto them).
#[derive(Debug, Clone)]
pub struct Settings {
    pub use_domain: bool,
    pub contact_max_size: usize,
    pub default_expires: u32,
    pub max_expires: u32,
    pub max_contacts: u32,
    /// The `cflags` bit of a NATed binding (`nat_bflag`): `Keepalive` in
    /// `ul.dump`.
    pub nat_bflag: u8,
    /// This node's `server_id`, stored in bindings `ul.add` makes.
    pub server_id: u32,
    /// `tcp_max_connections`, which `tls.info` reports.
    pub tcp_max_connections: usize,
    /// `[auth]`: while `mode = "none"`, `subscriber.*` manage its
    /// `subscribers` file with its realm rule.
    pub auth: SubscriberFile,
}

/// The registrar's values (they describe the same REGISTER rules) and
/// [`SubscriberFile::default`].
impl Default for Settings {
    fn default() -> Self {
        let r = crate::registrar::Settings::default();
        Settings {
            use_domain: r.use_domain,
            contact_max_size: r.contact_max_size,
            default_expires: r.default_expires,
            max_expires: r.max_expires,
            max_contacts: r.max_contacts,
            nat_bflag: r.nat_bflag,
            server_id: r.server_id,
            tcp_max_connections: 2048,
            auth: SubscriberFile::default(),
        }
    }
}

impl Settings {
    /// The NAT bit as a mask of `cflags`.
    pub fn nat_bit(&self) -> u32 {
        crate::registrar::nat::bit(self.nat_bflag)
    }
}

/// What `subscriber.*` need to manage the subscriber list while
/// authentication is off ([`crate::auth::for_management`]).
#[derive(Debug, Clone)]
pub struct SubscriberFile {
    /// The authenticator's settings as digest will use them.
    pub settings: crate::auth::AuthSettings,
    pub nonce_expires: u64,
    /// `[auth] subscribers`.
    pub path: std::path::PathBuf,
}

/// The embedded configuration's `[auth]` (a test in `config.rs` checks
/// they agree).
impl Default for SubscriberFile {
    fn default() -> Self {
        SubscriberFile {
            settings: crate::auth::AuthSettings::default(),
            nonce_expires: 300,
            path: std::path::PathBuf::from("/etc/kamrs/subscribers.toml"),
        }
    }
}

/// `ul.dump`s built at the same time; more wait their turn.
const MAX_CONCURRENT_DUMPS: usize = 2;

/// What every method works on.
pub struct State {
    /// The table, registrar, authenticator, flood filter and counters the
    /// router works on too.
    pub(super) core: Core,
    pub(super) settings: Settings,
    /// Unix time the API started (≈ the daemon's start), for `core.uptime`.
    pub(super) started: u64,
    pub(super) add_user_agent: Arc<str>,
    methods: OnceLock<Vec<String>>,
    /// Dumps building at once. Each holds a copy of the table and its JSON
    /// (about 1.5 KB per contact) and keeps a CPU busy; without a bound,
    /// `max_connections` clients asking together could exhaust memory.
    pub(super) dumps: tokio::sync::Semaphore,
    /// The sorted AoR names a paged dump walks (see `dump_names.rs`).
    pub(super) dump_names: DumpNames,
    /// Requests the endpoint's middleware refused (`ctl:` statistics).
    pub(super) ctl_stats: Arc<super::http::CtlStats>,
    /// The subscriber list managed while authentication is off, opened at
    /// the first `subscriber.*` call (`subscriber::auth`).
    pub(super) subscribers_while_off: std::sync::Mutex<Option<Arc<crate::auth::Authenticator>>>,
}

impl State {
    pub fn new(core: Core, settings: Settings) -> State {
        let started = unix_now();
        State {
            core,
            settings,
            started,
            add_user_agent: Arc::from(ul::ADD_USER_AGENT),
            methods: OnceLock::new(),
            dumps: tokio::sync::Semaphore::new(MAX_CONCURRENT_DUMPS),
            dump_names: DumpNames::default(),
            ctl_stats: Arc::default(),
            subscribers_while_off: std::sync::Mutex::new(None),
        }
    }

    pub(super) fn table(&self) -> &LocationTable {
        &self.core.table
    }

    /// A unique binding id for `ul.add`: the registrar's, so ids of both
    /// origins can never collide (across restarts and nodes either).
    pub(super) fn new_ruid(&self) -> crate::usrloc::Ruid<'static> {
        self.core.registrar.new_ruid()
    }
}

/// The control API's method handlers.
#[derive(Clone)]
pub struct Api {
    state: Arc<State>,
}

impl Api {
    pub fn new(state: State) -> Api {
        Api {
            state: Arc::new(state),
        }
    }

    /// The state the methods share (for the metrics endpoint beside them).
    pub fn state(&self) -> Arc<State> {
        Arc::clone(&self.state)
    }

    /// Every method as a jsonrpsee module, with `system.listMethods`
    /// knowing their names.
    pub fn into_module(self) -> RpcModule<Api> {
        let state = Arc::clone(&self.state);
        let module = self.into_rpc();
        let mut names: Vec<String> = module.method_names().map(str::to_owned).collect();
        names.sort_unstable();
        // Set once, here, before any call can read it.
        let _ = state.methods.set(names);
        module
    }
}

fn internal(what: impl std::fmt::Display) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(error::INTERNAL, what.to_string(), None::<()>)
}

impl Api {
    /// Runs `f`, a walk over the whole table (a dump, a first page, a
    /// prefix search), under the `dumps` bound and off the async workers,
    /// which also run the SIP transports.
    async fn walk<T: Send + 'static>(
        &self,
        method: &'static str,
        f: impl FnOnce(&State) -> RpcResult<T> + Send + 'static,
    ) -> RpcResult<T> {
        let _turn = self
            .state
            .dumps
            .acquire()
            .await
            .map_err(|e| internal(format!("{method}: {e}")))?;
        let state = Arc::clone(&self.state);
        tokio::task::spawn_blocking(move || f(&state))
            .await
            .map_err(|e| internal(format!("{method} failed: {e}")))?
    }
}

#[async_trait]
impl CtlServer for Api {
    async fn ul_dump(&self, brief: Option<String>) -> RpcResult<Raw<UlDump>> {
        self.walk("ul.dump", move |state| ul::dump(state, brief.is_some()))
            .await
    }

    async fn ul_dump_page(
        &self,
        cursor: String,
        limit: u32,
        brief: Option<String>,
    ) -> RpcResult<Raw<UlDumpPage>> {
        self.walk("ul.dump_page", move |state| {
            ul::dump_page(state, &cursor, limit, brief.is_some())
        })
        .await
    }

    async fn ul_dump_prefix(
        &self,
        prefix: String,
        cursor: String,
        limit: u32,
        brief: Option<String>,
    ) -> RpcResult<Raw<UlDumpPage>> {
        self.walk("ul.dump_prefix", move |state| {
            ul::dump_prefix(state, &prefix, &cursor, limit, brief.is_some())
        })
        .await
    }

    async fn ul_lookup(&self, table: String, aor: String) -> RpcResult<UlLookup> {
        ul::lookup(&self.state, &table, &aor)
    }

    async fn ul_rm(&self, table: String, aor: String) -> RpcResult<()> {
        ul::rm(&self.state, &table, &aor)
    }

    async fn ul_rm_contact(&self, table: String, aor: String, contact: String) -> RpcResult<()> {
        ul::rm_contact(&self.state, &table, &aor, &contact)
    }

    async fn ul_add(
        &self,
        table: String,
        aor: String,
        contact: String,
        expires: u32,
        q: f64,
        path: String,
        flags: u32,
        cflags: u32,
        methods: u32,
    ) -> RpcResult<()> {
        let add = ul::Add {
            aor,
            contact,
            expires,
            q,
            path,
            flags,
            cflags,
            methods,
        };
        ul::add(&self.state, &table, add)
    }

    async fn ul_flush(&self) -> RpcResult<()> {
        // Memory only (no store): nothing to write.
        let Some(store) = self.state.table().store() else {
            return Ok(());
        };
        store.flush().await.map_err(|e| {
            internal(format!(
                "cannot flush the location store ({}): {e}",
                store.name()
            ))
        })
    }

    async fn get_statistics(&self, names: Vec<String>) -> RpcResult<Vec<String>> {
        stats::get(&self.state, &names)
    }

    async fn reset_statistics(&self, names: Vec<String>) -> RpcResult<()> {
        stats::reset(&self.state, &names)
    }

    async fn core_version(&self) -> RpcResult<String> {
        Ok(system::version())
    }

    async fn core_uptime(&self) -> RpcResult<Uptime> {
        Ok(system::uptime(&self.state))
    }

    async fn list_methods(&self) -> RpcResult<Vec<String>> {
        Ok(self.state.methods.get().cloned().unwrap_or_default())
    }

    async fn subscriber_add(
        &self,
        username: String,
        domain: String,
        ha1: String,
        ha1_sha256: String,
    ) -> RpcResult<()> {
        let state = Arc::clone(&self.state);
        // Saving rewrites and syncs the subscriber file (and while
        // authentication is off, finding it reads the file): off the async
        // workers.
        tokio::task::spawn_blocking(move || {
            subscriber::add(
                &*subscriber::auth(&state)?,
                username,
                domain,
                ha1,
                ha1_sha256,
            )
        })
        .await
        .map_err(|e| internal(format!("subscriber.add failed: {e}")))?
    }

    async fn subscriber_rm(&self, username: String, domain: String) -> RpcResult<()> {
        let state = Arc::clone(&self.state);
        tokio::task::spawn_blocking(move || {
            subscriber::rm(&*subscriber::auth(&state)?, &username, &domain)
        })
        .await
        .map_err(|e| internal(format!("subscriber.rm failed: {e}")))?
    }

    async fn subscriber_list(&self) -> RpcResult<Vec<SubscriberEntry>> {
        let state = Arc::clone(&self.state);
        tokio::task::spawn_blocking(move || Ok(subscriber::list(&*subscriber::auth(&state)?)))
            .await
            .map_err(|e| internal(format!("subscriber.list failed: {e}")))?
    }

    async fn subscriber_reload(&self) -> RpcResult<u64> {
        let state = Arc::clone(&self.state);
        tokio::task::spawn_blocking(move || subscriber::reload(&*subscriber::auth(&state)?))
            .await
            .map_err(|e| internal(format!("subscriber.reload failed: {e}")))?
    }

    async fn auth_realm(&self, domain: String) -> RpcResult<String> {
        let state = Arc::clone(&self.state);
        tokio::task::spawn_blocking(move || {
            Ok(subscriber::realm(&*subscriber::auth(&state)?, &domain))
        })
        .await
        .map_err(|e| internal(format!("auth.realm failed: {e}")))?
    }

    async fn ul_db_users(&self, table: String) -> RpcResult<u64> {
        Ok(ul::db_counts(&self.state, &table).await?.users)
    }

    async fn ul_db_contacts(&self, table: String) -> RpcResult<u64> {
        Ok(ul::db_counts(&self.state, &table).await?.contacts)
    }

    async fn ul_db_expired_contacts(&self, table: String) -> RpcResult<u64> {
        Ok(ul::db_counts(&self.state, &table).await?.expired_contacts)
    }

    async fn core_info(&self) -> RpcResult<CoreInfo> {
        let core = &self.state.core;
        let store = core.table.store();
        Ok(CoreInfo {
            version: crate::SERVER_NAME.to_owned(),
            store: store.map_or("none", |s| s.name()).to_owned(),
            store_mode: store.map_or("none", |s| s.mode().as_str()).to_owned(),
            auth: if core.auth.is_some() {
                "digest"
            } else {
                "none"
            }
            .to_owned(),
            pike: core.pike.is_some(),
        })
    }

    async fn ul_subscribe(
        &self,
        pending: jsonrpsee::PendingSubscriptionSink,
        aor: Option<String>,
    ) -> jsonrpsee::core::SubscriptionResult {
        super::watch::subscribe(Arc::clone(&self.state), pending, aor).await
    }

    async fn pike_top(&self, n: Option<u32>) -> RpcResult<Vec<PikeSource>> {
        pike::top(&self.state, n)
    }

    async fn tls_list(&self) -> RpcResult<Vec<TlsConnection>> {
        tls::list(&self.state)
    }

    async fn tls_info(&self) -> RpcResult<TlsInfo> {
        tls::info(&self.state)
    }

    async fn tls_reload(&self) -> RpcResult<String> {
        tls::reload(&self.state)
    }
}

#[cfg(test)]
pub(crate) mod tests;
