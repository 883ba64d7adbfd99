//! Reading one AoR's bindings in place, and the runtime fields of one
//! binding (keepalive answers) that are no change of the binding: no
//! store hears of them, no counter or index moves.

use super::binding::Binding;
use super::table::LocationTable;

impl LocationTable {
    /// Runs `f` on the bindings of `aor` (expired ones included: check
    /// [`Binding::is_live`]) under that AoR's read lock, without copying
    /// them. `None` when the AoR has no record. `f` must be short: a
    /// REGISTER to the same shard waits for it.
    pub fn with_bindings<R>(&self, aor: &str, f: impl FnOnce(&[Binding]) -> R) -> Option<R> {
        let rec = self.record(aor)?;
        Some(f(rec.bindings()))
    }

    /// Runs `f` on the binding `ruid` of `aor` under that AoR's lock, for
    /// its runtime fields (`last_keepalive_us`, `ka_roundtrip_us`). What
    /// `f` returns, `None` when there is no such binding. Anything else
    /// `f` changes is not persisted nor counted: use
    /// [`update`](Self::update) for real edits.
    pub fn touch<R>(&self, aor: &str, ruid: &str, f: impl FnOnce(&mut Binding) -> R) -> Option<R> {
        let mut rec = self.record_mut(aor)?;
        let b = rec.bindings_mut().iter_mut().find(|b| b.ruid() == ruid)?;
        Some(f(b))
    }
}

#[cfg(test)]
mod tests;
