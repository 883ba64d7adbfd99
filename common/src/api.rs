//! The control API: one jsonrpsee trait with Kamailio's method names and
//! argument order (docs/design.md §6). The daemon implements the generated
//! `CtlServer` (feature `server`); kamrsctl calls the generated
//! `CtlClient` (feature `client`). A method added here is therefore added
//! to both sides at once, with the same name and types.
//!
//! Arguments are positional, as Kamailio's `kamcmd`/`jsonrpcs` send them:
//! `{"method": "ul.lookup", "params": ["location", "alice"]}`. The daemon
//! checks them before they reach the methods, so a bad argument is answered
//! with an error that names it (see `kamrs::rpc::params`).

// `ul.add` has Kamailio's nine arguments; the generated server and client
// code repeats them, out of reach of an item-level `allow`.
#![allow(clippy::too_many_arguments)]

// The client-only expansion rewrites the return types and leaves this unused.
#[allow(unused_imports)]
use jsonrpsee::core::RpcResult;
use jsonrpsee::proc_macros::rpc;

use crate::raw::Raw;
use crate::types::{
    CoreInfo, PikeSource, SubscriberEntry, TlsConnection, TlsInfo, UlDump, UlDumpPage, UlLookup,
    Uptime,
};
// Only the client side names the item type.
#[allow(unused_imports)]
use crate::types::UlEvent;
#[allow(unused_imports)]
use jsonrpsee::core::SubscriptionResult;

/// The client's error type, so the CLI needs no direct jsonrpsee-core
/// dependency to inspect a failed call.
#[cfg(feature = "client")]
pub use jsonrpsee::core::ClientError;

/// For `kamrsctl call METHOD ARGS…`: a call to any method by name, with
/// positional params, outside the typed trait.
#[cfg(feature = "client")]
pub use jsonrpsee::core::{client::ClientT, params::ArrayParams};

/// Method names, for `system.listMethods`, the daemon's argument checks and
/// tests.
pub mod method {
    pub const UL_DUMP: &str = "ul.dump";
    pub const UL_DUMP_PAGE: &str = "ul.dump_page";
    pub const UL_DUMP_PREFIX: &str = "ul.dump_prefix";
    pub const UL_LOOKUP: &str = "ul.lookup";
    pub const UL_RM: &str = "ul.rm";
    pub const UL_RM_CONTACT: &str = "ul.rm_contact";
    pub const UL_ADD: &str = "ul.add";
    pub const UL_FLUSH: &str = "ul.flush";
    pub const GET_STATISTICS: &str = "stats.get_statistics";
    pub const RESET_STATISTICS: &str = "stats.reset_statistics";
    pub const CORE_VERSION: &str = "core.version";
    pub const CORE_UPTIME: &str = "core.uptime";
    pub const LIST_METHODS: &str = "system.listMethods";
    pub const SUBSCRIBER_ADD: &str = "subscriber.add";
    pub const SUBSCRIBER_RM: &str = "subscriber.rm";
    pub const SUBSCRIBER_LIST: &str = "subscriber.list";
    pub const SUBSCRIBER_RELOAD: &str = "subscriber.reload";
    pub const AUTH_REALM: &str = "auth.realm";
    pub const PIKE_TOP: &str = "pike.top";
    pub const UL_DB_USERS: &str = "ul.db_users";
    pub const UL_DB_CONTACTS: &str = "ul.db_contacts";
    pub const UL_DB_EXPIRED_CONTACTS: &str = "ul.db_expired_contacts";
    pub const CORE_INFO: &str = "core.info";
    pub const TLS_LIST: &str = "tls.list";
    pub const TLS_INFO: &str = "tls.info";
    pub const TLS_RELOAD: &str = "tls.reload";
    pub const UL_SUBSCRIBE: &str = "ul.subscribe";
    pub const UL_UNSUBSCRIBE: &str = "ul.unsubscribe";
    /// The notification method events arrive as (each a batch).
    pub const UL_EVENTS: &str = "ul.events";
}

/// Error codes the daemon answers with, besides JSON-RPC's own.
pub mod error {
    /// Kamailio's code for a missing AoR or contact.
    pub const NOT_FOUND: i32 = 404;
    pub const AOR_NOT_FOUND: &str = "AOR not found";
    pub const CONTACT_NOT_FOUND: &str = "Contact not found";
    /// JSON-RPC 2.0 "Invalid params"; the message names the argument.
    pub const INVALID_PARAMS: i32 = -32602;
    /// JSON-RPC 2.0 "Parse error" (malformed JSON).
    pub const PARSE_ERROR: i32 = -32700;
    /// An internal failure (Kamailio uses 500 too).
    pub const INTERNAL: i32 = 500;
    /// `subscriber.rm` of a subscriber that does not exist (code 404).
    pub const SUBSCRIBER_NOT_FOUND: &str = "Subscriber not found";
    /// The method's feature is turned off in the config (`[auth] mode =
    /// "none"` for `subscriber.*`/`auth.*`, `[pike] enabled = false` for
    /// `pike.top`); the message says how to turn it on.
    pub const DISABLED: i32 = 503;
    /// `ul.add` refused because the location table is full
    /// (`max_bindings` / `max_table_bytes`); the message says which.
    pub const TABLE_FULL: i32 = 503;
}

#[cfg_attr(all(feature = "server", feature = "client"), rpc(server, client))]
#[cfg_attr(all(feature = "server", not(feature = "client")), rpc(server))]
#[cfg_attr(all(feature = "client", not(feature = "server")), rpc(client))]
pub trait Ctl {
    /// `ul.dump [brief]`: every AoR with its bindings; with `"brief"` only
    /// the AoR names.
    #[method(name = "ul.dump")]
    async fn ul_dump(&self, brief: Option<String>) -> RpcResult<Raw<UlDump>>;

    /// `ul.dump_page CURSOR LIMIT [brief]` (kamrs extension, not in
    /// Kamailio): `{Next, AoRs}`, up to LIMIT (1 to 10000) AoRs whose names
    /// sort after CURSOR (`""` for the first page), in name order, each as
    /// in `ul.dump`'s `AoRs`. Call again with `Next` until it is `null`.
    /// Every page is small, so a table of any size can be read.
    #[method(name = "ul.dump_page")]
    async fn ul_dump_page(
        &self,
        cursor: String,
        limit: u32,
        brief: Option<String>,
    ) -> RpcResult<Raw<UlDumpPage>>;

    /// `ul.dump_prefix PREFIX CURSOR LIMIT [brief]` (kamrs extension, not
    /// in Kamailio): as `ul.dump_page`, but only the AoRs whose names start
    /// with PREFIX (bytewise, after dropping a `sip:` scheme and
    /// lower-casing the domain after an `@`). The web view's search.
    #[method(name = "ul.dump_prefix")]
    async fn ul_dump_prefix(
        &self,
        prefix: String,
        cursor: String,
        limit: u32,
        brief: Option<String>,
    ) -> RpcResult<Raw<UlDumpPage>>;

    /// `ul.lookup location AOR`: the live bindings of one AoR, or error
    /// 404 "AOR not found".
    #[method(name = "ul.lookup")]
    async fn ul_lookup(&self, table: String, aor: String) -> RpcResult<UlLookup>;

    /// `ul.rm location AOR`: removes the AoR and all its bindings (404 when
    /// it has none).
    #[method(name = "ul.rm")]
    async fn ul_rm(&self, table: String, aor: String) -> RpcResult<()>;

    /// `ul.rm_contact location AOR CONTACT`: removes one binding, matched
    /// by its Contact URI exactly as stored.
    #[method(name = "ul.rm_contact")]
    async fn ul_rm_contact(&self, table: String, aor: String, contact: String) -> RpcResult<()>;

    /// `ul.add location AOR CONTACT EXPIRES Q PATH FLAGS CFLAGS METHODS`:
    /// adds or replaces a binding. `expires` 0 makes it permanent; `q` -1
    /// leaves it unset; `path` "0" or "." leaves it unset.
    #[method(name = "ul.add")]
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
    ) -> RpcResult<()>;

    /// `ul.flush`: writes the table to the store. Without a store (the
    /// memory-only mode, Kamailio's db_mode 0) there is nothing to write.
    #[method(name = "ul.flush")]
    async fn ul_flush(&self) -> RpcResult<()>;

    /// `stats.get_statistics all | GROUP: | NAME…`: `"group:name = value"`
    /// lines. Kamailio clients send the names as separate arguments
    /// (`["usrloc:", "registrar:accepted_regs"]`); a single array argument
    /// is accepted too.
    #[method(name = "stats.get_statistics")]
    async fn get_statistics(&self, names: Vec<String>) -> RpcResult<Vec<String>>;

    /// `stats.reset_statistics all | GROUP: | NAME…`: zeroes counters
    /// (gauges such as `usrloc:registered_users` are not resettable).
    #[method(name = "stats.reset_statistics")]
    async fn reset_statistics(&self, names: Vec<String>) -> RpcResult<()>;

    /// `core.version`: `"kamrs 0.1.0 (x86_64/linux)"`.
    #[method(name = "core.version")]
    async fn core_version(&self) -> RpcResult<String>;

    /// `core.uptime`: `{now, up_since, uptime}`.
    #[method(name = "core.uptime")]
    async fn core_uptime(&self) -> RpcResult<Uptime>;

    /// `system.listMethods`: the names of every method.
    #[method(name = "system.listMethods")]
    async fn list_methods(&self) -> RpcResult<Vec<String>>;

    /// `subscriber.add USER DOMAIN HA1 HA1_SHA256`: adds or replaces a
    /// subscriber (digest credentials). Only HA1 hashes cross the socket,
    /// never the password: `ha1` is hex MD5(user:realm:password) (32
    /// digits), `ha1_sha256` hex SHA-256 of the same (64 digits), with the
    /// realm `auth.realm DOMAIN` answers. Either may be `""` to leave it
    /// unset, not both. Error 503 when authentication is off.
    #[method(name = "subscriber.add")]
    async fn subscriber_add(
        &self,
        username: String,
        domain: String,
        ha1: String,
        ha1_sha256: String,
    ) -> RpcResult<()>;

    /// `subscriber.rm USER DOMAIN`: removes a subscriber, or error 404
    /// "Subscriber not found".
    #[method(name = "subscriber.rm")]
    async fn subscriber_rm(&self, username: String, domain: String) -> RpcResult<()>;

    /// `subscriber.list`: every subscriber as `{username, domain}`, sorted;
    /// never a hash.
    #[method(name = "subscriber.list")]
    async fn subscriber_list(&self) -> RpcResult<Vec<SubscriberEntry>>;

    /// `subscriber.reload`: re-reads the subscriber file (as SIGHUP does);
    /// the number of subscribers now in force. A bad file is refused and
    /// the old list stays.
    #[method(name = "subscriber.reload")]
    async fn subscriber_reload(&self) -> RpcResult<u64>;

    /// `auth.realm DOMAIN`: the realm challenges for DOMAIN carry, which
    /// HA1s for its users must be computed with: `[auth] realm` if set,
    /// else the domain itself (lower-cased).
    #[method(name = "auth.realm")]
    async fn auth_realm(&self, domain: String) -> RpcResult<String>;

    /// `pike.top [N]`: the N (default 20) busiest sources of the flood
    /// filter, blocked ones first. Error 503 when `[pike]` is disabled.
    #[method(name = "pike.top")]
    async fn pike_top(&self, n: Option<u32>) -> RpcResult<Vec<PikeSource>>;

    /// `ul.db_users TABLE`: AoRs with a live binding in the store's copy
    /// (Kamailio's name). Error 503 without a store (`[store] backend`).
    #[method(name = "ul.db_users")]
    async fn ul_db_users(&self, table: String) -> RpcResult<u64>;

    /// `ul.db_contacts TABLE`: live bindings in the store's copy.
    #[method(name = "ul.db_contacts")]
    async fn ul_db_contacts(&self, table: String) -> RpcResult<u64>;

    /// `ul.db_expired_contacts TABLE`: stored bindings past their expiry
    /// that the store has not cleaned up yet.
    #[method(name = "ul.db_expired_contacts")]
    async fn ul_db_expired_contacts(&self, table: String) -> RpcResult<u64>;

    /// `core.info`: version and how this daemon runs (store backend and
    /// mode, authentication).
    #[method(name = "core.info")]
    async fn core_info(&self) -> RpcResult<CoreInfo>;

    /// `tls.list`: every open TLS connection (`tls:` and `wss:`
    /// listeners), oldest first. Error 503 without `[tls]`.
    #[method(name = "tls.list")]
    async fn tls_list(&self) -> RpcResult<Vec<TlsConnection>>;

    /// `tls.info`: connection counts, the certificate in force and the
    /// handshake counters. Error 503 without `[tls]`.
    #[method(name = "tls.info")]
    async fn tls_info(&self) -> RpcResult<TlsInfo>;

    /// `tls.reload`: read `[tls] certificate` and `private_key` (and
    /// `ca_list`) again; new connections get the new certificate, open
    /// ones keep theirs. A file that cannot be used is refused (error 500
    /// saying why) and the certificate in force stays. SIGHUP does the
    /// same.
    #[method(name = "tls.reload")]
    async fn tls_reload(&self) -> RpcResult<String>;

    /// `ul.subscribe [AOR]` (kamrs extension; WebSocket only): every change
    /// of the location table from now on, or only those of AOR, as
    /// `ul.events` notifications whose result is an array of [`UlEvent`]s
    /// in order: each carries what happened since the previous one (at
    /// most a few hundred events, some 20 ms' worth), so a busy registrar
    /// sends a few notifications a second, not one per REGISTER. A
    /// subscriber that falls behind by more than the daemon's event buffer
    /// gets one last `[{"Event": "lagged", "Lost": N}]` and the
    /// subscription ends: registrations never wait for a reader.
    #[subscription(name = "ul.subscribe" => "ul.events", unsubscribe = "ul.unsubscribe", item = Vec<UlEvent>)]
    async fn ul_subscribe(&self, aor: Option<String>) -> SubscriptionResult;
}
