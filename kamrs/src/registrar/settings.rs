//! The registrar's knobs, taken from the config (DESIGN §5) once at start.

pub use crate::config::{MaxContactsPolicy, MinExpiresMode};

/// Registrar parameters with Kamailio's names.
#[derive(Debug, Clone)]
pub struct Settings {
    pub default_expires: u32,
    pub min_expires: u32,
    pub min_expires_mode: MinExpiresMode,
    /// 0 = no upper bound.
    pub max_expires: u32,
    /// 0 = unlimited.
    pub max_contacts: u32,
    pub max_contacts_policy: MaxContactsPolicy,
    pub use_domain: bool,
    pub use_path: bool,
    pub contact_max_size: usize,
    /// Longest Call-ID accepted (`callid_max_size`).
    pub callid_max_size: usize,
    /// Longest User-Agent stored; longer ones are cut (`user_agent_max_size`).
    pub user_agent_max_size: usize,
    /// Largest UDP reply (`udp_reply_max_size`), see [`super::budget`].
    pub udp_reply_max_size: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from(&crate::config::Config::default())
    }
}

impl From<&crate::config::Config> for Settings {
    fn from(c: &crate::config::Config) -> Self {
        Settings {
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
        }
    }
}
