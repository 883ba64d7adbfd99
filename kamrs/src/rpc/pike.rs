//! `pike.top`: the flood filter's busiest sources, in the spirit of
//! Kamailio's pike module `pike.top`.

use common::api::error;
use common::types::{PikeSource, PIKE_TOP_DEFAULT};
use jsonrpsee::types::ErrorObjectOwned;

use super::api::State;

/// What `pike.top` answers when `[pike] enabled = false`.
pub const PIKE_OFF: &str = "flood protection is off ([pike] enabled = false), so no source is tracked: set `[pike] enabled = true` in kamrs's config and restart kamrs";

/// `pike.top [N]`: blocked sources first, then the busiest. Trusted
/// sources (`[pike] trusted`) are never counted and never listed.
pub fn top(state: &State, n: Option<u32>) -> Result<Vec<PikeSource>, ErrorObjectOwned> {
    let Some(pike) = state.core.pike.as_ref() else {
        return Err(ErrorObjectOwned::owned(
            error::DISABLED,
            PIKE_OFF,
            None::<()>,
        ));
    };
    let n = usize::try_from(n.unwrap_or(PIKE_TOP_DEFAULT)).unwrap_or(usize::MAX);
    Ok(pike
        .top(n)
        .into_iter()
        .map(|s| PikeSource {
            // IPv6 sources are counted per /64 (crate::net::source_prefix).
            ip: match s.ip {
                std::net::IpAddr::V6(v6) => format!("{v6}/64"),
                v4 => v4.to_string(),
            },
            requests_in_window: s.requests_in_window,
            blocked: s.blocked,
            dropped: s.dropped,
        })
        .collect())
}

#[cfg(test)]
mod tests;
