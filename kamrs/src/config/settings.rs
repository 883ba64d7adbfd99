//! The file's shape mapped onto each subsystem's own settings: the
//! subsystems never see the file.

use super::{AuthConfig, AuthMode, Config, CtlConfig, PikeConfig, StoreBackend, StoreConfig};
use crate::sip::Limits;

impl StoreConfig {
    /// The store `[store]` names, with its settings.
    pub fn backend(&self) -> crate::store::Backend {
        use crate::store::{redis, sqlite, Backend};
        match self.backend {
            StoreBackend::None => Backend::None,
            StoreBackend::Sqlite => Backend::Sqlite(sqlite::Settings {
                path: self.path.clone(),
                mode: self.mode,
                write_back_interval: self.write_back_interval(),
                queue_size: self.queue_size,
            }),
            StoreBackend::Redis => Backend::Redis(redis::Settings {
                url: self.url.clone(),
                mode: self.mode,
                write_back_interval: self.write_back_interval(),
                queue_size: self.queue_size,
            }),
        }
    }
}

impl AuthConfig {
    /// The authenticator's settings; `trusted_networks` is `[pike] trusted`
    /// ([`PikeConfig::networks`]).
    pub fn settings(
        &self,
        trusted_networks: Vec<(std::net::IpAddr, u8)>,
    ) -> crate::auth::AuthSettings {
        crate::auth::AuthSettings {
            realm: self.realm.clone(),
            algorithms: self.algorithms.clone(),
            max_failures: self.max_failures,
            lockout: self.lockout(),
            trusted_networks,
        }
    }

    /// Builds the authenticator of `[auth]`, or `None` for `mode = "none"`
    /// ([`crate::auth::open`]).
    pub fn authenticator(
        &self,
        use_domain: bool,
        trusted_networks: Vec<(std::net::IpAddr, u8)>,
    ) -> Result<Option<std::sync::Arc<crate::auth::Authenticator>>, String> {
        if self.mode == AuthMode::None {
            return Ok(None);
        }
        crate::auth::open(
            self.settings(trusted_networks),
            self.nonce_expires,
            &self.secret_file,
            &self.subscribers,
            use_domain,
        )
        .map(Some)
    }

    /// The lock-out settings of the authenticator.
    pub fn lockout(&self) -> crate::auth::lockout::LockoutSettings {
        crate::auth::lockout::LockoutSettings {
            failures: self.lockout_failures,
            source_failures: self.lockout_source_failures,
            user_failures: self.lockout_user_failures,
            window: self.lockout_window,
            time: self.lockout_time,
        }
    }
}

impl PikeConfig {
    /// `trusted` parsed (checked valid by `check`): also used, enabled or
    /// not, by the TCP per-IP cap and the auth lock-out.
    pub fn networks(&self) -> Vec<(std::net::IpAddr, u8)> {
        self.trusted
            .iter()
            .filter_map(|t| crate::pike::parse_net(t))
            .collect()
    }

    /// The settings the flood filter runs with, if enabled.
    pub fn settings(&self) -> Option<crate::pike::PikeSettings> {
        self.enabled.then(|| crate::pike::PikeSettings {
            window: std::time::Duration::from_secs(self.window),
            max_requests: self.max_requests,
            block_time: std::time::Duration::from_secs(self.block_time),
            trusted: self.networks(),
            max_tracked: self.max_tracked,
        })
    }
}

impl Config {
    /// The location table's global bounds.
    pub fn table_limits(&self) -> crate::usrloc::TableLimits {
        crate::usrloc::TableLimits {
            max_bindings: self.max_bindings,
            max_bytes: self.max_table_bytes,
        }
    }

    /// The SIP-layer limits, for [`crate::route::Router::new`].
    // `..Limits::default()` keeps this compiling, with sane values, when the
    // SIP layer grows a limit that has no config key yet.
    #[allow(clippy::needless_update)]
    pub fn limits(&self) -> Limits {
        Limits {
            max_message_size: self.max_message_size,
            max_headers: self.max_headers,
            max_line_length: self.max_line_length,
            ..Limits::default()
        }
    }
}

/// The keepalive's knobs: its own keys, plus the NAT mark the registrar
/// sets and this node's id.
impl From<&Config> for crate::keepalive::Settings {
    fn from(c: &Config) -> Self {
        crate::keepalive::Settings {
            mode: c.ka_mode,
            interval: c.ka_interval,
            randomize: c.ka_randomize,
            method: c.ka_method,
            from: c.ka_from.clone(),
            timeout: c.ka_timeout,
            server_id: c.server_id,
            nat_bit: crate::registrar::nat::bit(c.nat_bflag),
        }
    }
}

impl Config {
    /// The TCP transport's knobs (top-level `tcp_*` keys; the per-address
    /// limit spares `[pike] trusted`).
    pub fn tcp_settings(&self) -> crate::transport::TcpSettings {
        let trusted = self.pike.networks();
        crate::transport::TcpSettings {
            idle_timeout: std::time::Duration::from_secs(self.tcp_connection_lifetime),
            max_connections: self.tcp_max_connections,
            per_ip: crate::transport::ip_limit::IpLimit::new(self.tcp_accept_iplimit, trusted),
            msg_data_timeout: std::time::Duration::from_secs(self.tcp_msg_data_timeout),
            msg_read_timeout: std::time::Duration::from_secs(self.tcp_msg_read_timeout),
            write_queue_max: self.tcp_conn_wq_max,
            write_queue_total_max: self.tcp_wq_max,
            send_timeout: std::time::Duration::from_secs(self.tcp_send_timeout),
            handle_lost_tcp: self.handle_lost_tcp,
            close_expired_tcp: self.close_expired_tcp,
            // Loaded by `main` (reading files can fail; that is reported
            // before `ready`).
            tls: None,
            websocket: crate::transport::ws::WsSettings::new(
                &self.websocket.allowed_origins,
                std::time::Duration::from_secs(self.websocket.keepalive_timeout),
                std::time::Duration::from_secs(self.websocket.handshake_timeout),
                self.websocket.handle_lost_tcp,
            ),
        }
    }

    /// `[tls]` when it names a certificate.
    pub fn tls_settings(&self) -> Option<crate::tls::Settings> {
        let t = &self.tls;
        Some(crate::tls::Settings {
            certificate: t.certificate.clone()?,
            private_key: t.private_key.clone()?,
            verify_client: t.verify_client,
            ca_list: t.ca_list.clone(),
            min_version: match t.min_version {
                super::shape::TlsMinVersion::Tls12 => crate::tls::MinVersion::Tls12,
                super::shape::TlsMinVersion::Tls13 => crate::tls::MinVersion::Tls13,
            },
            handshake_timeout: std::time::Duration::from_secs(t.handshake_timeout),
        })
    }
}

/// The control API's view of the file.
impl From<&Config> for crate::rpc::Settings {
    fn from(c: &Config) -> Self {
        crate::rpc::Settings {
            use_domain: c.use_domain,
            contact_max_size: c.contact_max_size,
            default_expires: c.default_expires,
            max_expires: c.max_expires,
            max_contacts: c.max_contacts,
            nat_bflag: c.nat_bflag,
            server_id: c.server_id,
            tcp_max_connections: c.tcp_max_connections,
            auth: crate::rpc::SubscriberFile {
                settings: c.auth.settings(Vec::new()),
                nonce_expires: c.auth.nonce_expires,
                path: c.auth.subscribers.clone(),
            },
        }
    }
}

/// The registrar's knobs are top-level keys of the file; the registrar keeps
/// its own copy and never sees the file's shape.
impl From<&Config> for crate::registrar::Settings {
    fn from(c: &Config) -> Self {
        crate::registrar::Settings {
            default_expires: c.default_expires,
            min_expires: c.min_expires,
            min_expires_mode: c.min_expires_mode,
            max_expires: c.max_expires,
            max_contacts: c.max_contacts,
            max_contacts_policy: c.max_contacts_policy,
            use_domain: c.use_domain,
            use_path: c.use_path,
            contact_max_size: c.contact_max_size,
            callid_max_size: c.callid_max_size,
            user_agent_max_size: c.user_agent_max_size,
            udp_reply_max_size: c.udp_reply_max_size,
            nat_uac_test: c.nat_uac_test,
            nat_bflag: c.nat_bflag,
            flow_timer: c.flow_timer,
            server_id: c.server_id,
            refresh_log: c.log.refreshes.level(),
        }
    }
}

/// `[ctl]` as the control API's own settings: the file's shape stays here.
impl From<&CtlConfig> for crate::rpc::CtlSettings {
    fn from(c: &CtlConfig) -> Self {
        crate::rpc::CtlSettings {
            listen: c.listen.clone(),
            token_file: c.token_file.clone(),
            max_request_size: c.max_request_size,
            max_response_size: c.max_response_size,
            max_batch: c.max_batch,
            max_connections: c.max_connections,
            allowed_origins: c.allowed_origins.clone(),
        }
    }
}

impl Config {
    /// The control endpoint and its limits (`[ctl]`).
    pub fn ctl_settings(&self) -> crate::rpc::CtlSettings {
        crate::rpc::CtlSettings::from(&self.ctl)
    }

    /// The `[events] webhook`, `None` when off; reads its token file.
    pub fn webhook_settings(&self) -> Result<Option<crate::webhook::Settings>, String> {
        let e = &self.events;
        if e.webhook.is_empty() {
            return Ok(None);
        }
        let target = crate::webhook::Target::parse(&e.webhook)
            .map_err(|why| format!("events.webhook: {why}"))?;
        let token = e
            .webhook_token_file
            .as_deref()
            .map(crate::webhook::read_token)
            .transpose()?;
        Ok(Some(crate::webhook::Settings {
            target,
            token,
            batch: e.webhook_batch,
            queue: e.webhook_queue,
            timeout: std::time::Duration::from_secs(e.webhook_timeout),
            nat_bit: crate::registrar::nat::bit(self.nat_bflag),
        }))
    }
}

impl super::RouteConfig {
    /// The proxy's settings.
    pub fn settings(&self) -> crate::proxy::Settings {
        use std::time::Duration;
        crate::proxy::Settings {
            mode: self.mode,
            domains: self.domains.clone(),
            relay_foreign: self.relay_foreign,
            record_route: self.record_route,
            fr_timer: Duration::from_millis(self.fr_timer),
            fr_inv_timer: Duration::from_millis(self.fr_inv_timer),
            max_transactions: self.max_transactions,
            serial_forking: self.serial_forking,
            authenticate_calls: self.authenticate_calls,
            accept_foreign_callers: self.accept_foreign_callers,
            ..crate::proxy::Settings::default()
        }
    }

    /// The 32-byte key the proxy's tokens use: derived from `secret`, or
    /// random for this process when there is none.
    pub fn secret_key(&self) -> Result<[u8; 32], String> {
        use sha2::{Digest, Sha256};
        if self.secret.is_empty() {
            let mut key = [0u8; 32];
            std::io::Read::read_exact(
                &mut std::fs::File::open("/dev/urandom")
                    .map_err(|e| format!("cannot read /dev/urandom for [route] secret: {e}"))?,
                &mut key,
            )
            .map_err(|e| format!("cannot read /dev/urandom for [route] secret: {e}"))?;
            return Ok(key);
        }
        let mut h = Sha256::new();
        h.update(b"kamrs [route] secret\0");
        h.update(self.secret.as_bytes());
        Ok(h.finalize().into())
    }
}
