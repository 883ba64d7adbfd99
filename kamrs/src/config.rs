//! The daemon's configuration: a TOML file (docs/design.md §5), every key optional.
//!
//! Key names follow Kamailio's module parameters where one exists, so an
//! admin moving from Kamailio recognises them. A bad file must stop start-up
//! with the file, line and key at fault: a registrar silently running with a
//! default the admin thought they had changed is worse than one that refuses
//! to start. That is why every struct denies unknown fields, and why
//! [`Config::load`] turns the `toml` crate's byte spans into
//! `kamrs.toml:12: …` messages.
//!
//! By job: `shape` (the tables and their defaults), `check` (ranges the
//! types cannot express), `load` (reading, and error lines), `words`
//! (errors in the admin's words), `settings` (the file mapped onto each
//! subsystem's own settings).

mod check;
mod load;
mod settings;
mod shape;
mod words;

pub use load::ConfigError;
pub use shape::{
    AuthConfig, AuthMode, Config, CtlConfig, EventsConfig, LogConfig, LogFormat, LogLevel,
    PikeConfig, RouteConfig, StoreBackend, StoreConfig, DEFAULT_REDIS_URL, DEFAULT_SECRET_FILE,
    DEFAULT_SQLITE_PATH, DEFAULT_SUBSCRIBERS,
};
pub use words::{flag_count, flag_seconds};

#[cfg(test)]
mod tests;
