//! `ul.*`: the location table over RPC, Kamailio's `ul_rpc.c` methods.
//!
//! Every method works on the same [`LocationTable`] the registrar uses, so
//! a binding removed here no longer answers a SIP query, and one added here
//! is returned by it.
//!
//! [`LocationTable`]: crate::usrloc::LocationTable

use std::collections::HashMap;
use std::sync::Arc;

use common::api::error;
use common::types::{
    AorEntry, AorInfo, ContactEntry, Domain, DomainEntry, DomainStats, UlDump, UlDumpPage,
    UlLookup, TABLE,
};
use common::Raw;
use jsonrpsee::types::ErrorObjectOwned;

use super::api::State;
use super::shape::{self, SLOTS};
use crate::registrar::save;
use crate::sip::Uri;
use crate::usrloc::{q_from_number, unix_now, Aor, Binding, Growth, Parts, TableFull, PERMANENT};

type Result<T> = std::result::Result<T, ErrorObjectOwned>;

/// Call-ID, CSeq and User-Agent of bindings made by `ul.add`, the way
/// Kamailio marks its own (`…@kamailio.rpc`, "SIP Router - RPC Server").
const ADD_CALL_ID: &str = "ul.add@kamrs.rpc";
const ADD_CSEQ: u32 = 1;
pub(super) const ADD_USER_AGENT: &str = "kamrs - RPC Server";

fn invalid(what: String) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(error::INVALID_PARAMS, what, None::<()>)
}

fn aor_not_found() -> ErrorObjectOwned {
    ErrorObjectOwned::owned(error::NOT_FOUND, error::AOR_NOT_FOUND, None::<()>)
}

/// kamrs has one table; Kamailio answers an unknown one with "Domain table
/// not found", we also say which one exists.
fn check_table(table: &str) -> Result<()> {
    if table == TABLE {
        Ok(())
    } else {
        Err(invalid(format!(
            "argument 1 `table`: unknown table {table:?}; kamrs has one table, \"{TABLE}\""
        )))
    }
}

/// The AoR key the registrar would use for `aor` (Kamailio's
/// `rpc_fix_aor`), through the same [`Aor`] normalisation: the domain
/// dropped unless `use_domain`, lower-cased when kept; an AoR that a
/// REGISTER could not have made (control characters, `@` in the user) is
/// refused. A `sip:`/`sips:` prefix is tolerated, since admins paste URIs.
pub(super) fn fix_aor(state: &State, aor: &str) -> Result<String> {
    let mut a = aor.trim();
    for scheme in ["sip:", "sips:"] {
        if a.len() >= scheme.len() && a[..scheme.len()].eq_ignore_ascii_case(scheme) {
            a = &a[scheme.len()..];
            break;
        }
    }
    if a.is_empty() {
        return Err(invalid("argument 2 `aor` is empty".to_owned()));
    }
    Aor::from_text(a, state.settings.use_domain)
        .map(|k| k.as_str().to_owned())
        .map_err(|e| invalid(format!("argument 2 `aor`: {:?}: {e}", aor)))
}

/// Refuses a value bound for a SIP header (Contact, Path) or a log line
/// that holds a control character: a CR/LF would split the header kamrs
/// sends, and an ESC or C1 control would reach an admin's terminal. The
/// message shows the value escaped.
fn no_controls(position: usize, name: &str, value: &str) -> Result<()> {
    if value.chars().any(char::is_control) {
        return Err(invalid(format!(
            "argument {position} `{name}`: {value:?} contains a control character (CR, LF, NUL, ESC, …), which a SIP header cannot carry"
        )));
    }
    Ok(())
}

/// `ul.lookup location AOR`.
pub fn lookup(state: &State, table: &str, aor: &str) -> Result<UlLookup> {
    check_table(table)?;
    let aor = fix_aor(state, aor)?;
    let now = unix_now();
    let bindings = state.table().lookup(&aor, now).ok_or_else(aor_not_found)?;
    Ok(UlLookup {
        contacts: contacts(&bindings, now, state.settings.nat_bit()),
        aor,
    })
}

fn contacts(bindings: &[Binding], now: u64, nat_bit: u32) -> Vec<ContactEntry> {
    bindings
        .iter()
        .map(|b| ContactEntry {
            contact: shape::contact(b, now, nat_bit),
        })
        .collect()
}

/// `ul.rm location AOR`. Kamailio answers success for an AoR it does not
/// have; we answer 404 so `kamrsctl ul.rm typo` says so.
pub fn rm(state: &State, table: &str, aor: &str) -> Result<()> {
    check_table(table)?;
    let aor = fix_aor(state, aor)?;
    if state.table().remove(&aor) {
        tracing::info!(aor, "ul.rm: AoR removed over the control API");
        Ok(())
    } else {
        Err(aor_not_found())
    }
}

/// `ul.rm_contact location AOR CONTACT`: the first binding whose Contact
/// is `contact` by the registrar's own rule ([`save::has_contact`]: the
/// same bytes, or the same URI by RFC 3261 §19.1.4); a `contact` that is
/// not a URI can only match byte for byte.
pub fn rm_contact(state: &State, table: &str, aor: &str, contact: &str) -> Result<()> {
    check_table(table)?;
    let aor = fix_aor(state, aor)?;
    let now = unix_now();
    let outcome = state.table().update(&aor, now, |bindings| {
        if bindings.is_empty() {
            return Err(aor_not_found());
        }
        let at = match Uri::parse(contact.as_bytes()) {
            Some(wanted) => save::find_contact(bindings, &wanted),
            None => bindings.iter().position(|b| b.contact() == contact),
        };
        match at {
            Some(i) => {
                bindings.remove(i);
                Ok(())
            }
            None => Err(ErrorObjectOwned::owned(
                error::NOT_FOUND,
                error::CONTACT_NOT_FOUND,
                None::<()>,
            )),
        }
    });
    if outcome.is_ok() {
        tracing::info!(
            aor,
            contact,
            "ul.rm_contact: binding removed over the control API"
        );
    }
    outcome
}

/// The arguments of `ul.add` after the table.
#[derive(Debug, Clone)]
pub struct Add {
    pub aor: String,
    pub contact: String,
    pub expires: u32,
    pub q: f64,
    pub path: String,
    pub flags: u32,
    pub cflags: u32,
    pub methods: u32,
}

/// `ul.add location AOR CONTACT EXPIRES Q PATH FLAGS CFLAGS METHODS`: adds
/// the binding, or replaces the AoR's binding with an equivalent Contact.
pub fn add(state: &State, table: &str, a: Add) -> Result<()> {
    check_table(table)?;
    let aor = fix_aor(state, &a.aor)?;
    let contact = a.contact.trim();
    no_controls(3, "contact", contact)?;
    if contact.len() > state.settings.contact_max_size {
        return Err(invalid(format!(
            "argument 3 `contact` is {} bytes long; contact_max_size is {}",
            contact.len(),
            state.settings.contact_max_size
        )));
    }
    let Some(uri) = Uri::parse(contact.as_bytes()) else {
        return Err(invalid(format!(
            "argument 3 `contact`: {contact:?} is not a SIP URI (sip:user@host[:port], sips:… or tel:…)"
        )));
    };
    // The params check let only -1 and 0..=1 through; anything else here
    // would be a bug, so it is refused rather than stored.
    let Some(q) = q_from_number(a.q) else {
        return Err(invalid(format!(
            "argument 5 `q`: {} is outside 0..1 (or -1 for none)",
            a.q
        )));
    };
    // Kamailio's "not set" spellings for the optional path.
    let path = match a.path.trim() {
        "" | "0" | "." => None,
        p => Some(p),
    };
    if let Some(p) = path {
        no_controls(6, "path", p)?;
    }
    let now = unix_now();
    let binding = Binding::new(Parts {
        contact,
        expires_at: if a.expires == 0 {
            PERMANENT
        } else {
            now + u64::from(a.expires)
        },
        q,
        call_id: ADD_CALL_ID,
        cseq: ADD_CSEQ,
        user_agent: Some(state.add_user_agent.clone()),
        source: None,
        path,
        instance: None,
        reg_id: 0,
        methods: a.methods,
        flags: a.flags,
        cflags: a.cflags,
        server_id: state.settings.server_id,
        ruid: state.new_ruid(),
        last_modified: now,
    });
    let table = state.table();
    table
        .update(&aor, now, |bindings| {
            let same = save::find_contact(bindings, &uri);
            // The table's bounds apply to the API as to REGISTERs.
            let growth = match same {
                Some(i) => Growth::replace(&bindings[i], &binding),
                None => Growth::add(&binding),
            };
            table.admit(&aor, bindings, growth)?;
            match same {
                Some(i) => bindings[i] = binding,
                None => bindings.push(binding),
            }
            Ok(())
        })
        .map_err(|full: TableFull| {
            ErrorObjectOwned::owned(error::TABLE_FULL, full.to_string(), None::<()>)
        })?;
    tracing::info!(
        aor,
        contact,
        expires = a.expires,
        "ul.add: binding added over the control API"
    );
    Ok(())
}

/// `ul.dump [brief]`, built and serialized on a blocking thread by the
/// caller.
///
/// The table is copied one AoR at a time: first the AoR names (each shard
/// read-locked only while its keys are cloned), then each AoR's bindings
/// through [`lookup`](crate::usrloc::LocationTable::lookup), one short lock
/// each. REGISTERs therefore never wait behind the dump for longer than one
/// AoR's copy, and the JSON is written with no lock held at all. An AoR
/// registered or removed while the dump runs may or may not appear, as in
/// Kamailio, where slots are visited one after the other.
pub fn dump(state: &State, brief: bool) -> Result<Raw<UlDump>> {
    let table = state.table();
    let mut aors = table.aors();
    // Stable output: diffs of two dumps, and tables a human scans, read best sorted.
    aors.sort_unstable();
    let now = unix_now();
    let mut entries = Vec::with_capacity(aors.len());
    let mut per_slot: HashMap<u32, u64> = HashMap::new();
    for aor in aors {
        // Gone since the names were taken, or only expired bindings left.
        let Some(bindings) = table.lookup(&aor, now) else {
            continue;
        };
        let hash_id = shape::core_hash(&aor);
        *per_slot.entry(hash_id & (SLOTS - 1)).or_default() += 1;
        entries.push(aor_entry(
            &aor,
            hash_id,
            &bindings,
            now,
            brief,
            state.settings.nat_bit(),
        ));
    }
    let stats = DomainStats {
        records: entries.len() as u64,
        max_slots: per_slot.values().copied().max().unwrap_or(0),
    };
    let dump = UlDump {
        domains: vec![DomainEntry {
            domain: Domain {
                name: TABLE.to_owned(),
                size: SLOTS,
                aors: entries,
                stats,
            },
        }],
    };
    Raw::new(&dump).map_err(|e| {
        ErrorObjectOwned::owned(
            error::INTERNAL,
            format!("cannot serialize the dump: {e}"),
            None::<()>,
        )
    })
}

/// One element of `AoRs`, as `ul.dump` and `ul.dump_page` show it.
fn aor_entry(
    aor: &str,
    hash_id: u32,
    bindings: &[Binding],
    now: u64,
    brief: bool,
    nat_bit: u32,
) -> AorEntry {
    if brief {
        AorEntry::Brief {
            aor: aor.to_owned(),
        }
    } else {
        AorEntry::Full {
            info: AorInfo {
                aor: aor.to_owned(),
                hash_id,
                contacts: contacts(bindings, now, nat_bit),
            },
        }
    }
}

/// Most AoRs `ul.dump_page` returns at once.
pub const MAX_PAGE: u32 = 10_000;

/// `ul.dump_page CURSOR LIMIT [brief]` (kamrs extension): up to `limit`
/// AoRs whose names sort (bytewise) after `cursor` (`""`: from the start),
/// in name order, and the cursor of the next page (the last name
/// considered), or `None` when there is none.
///
/// The first page sorts every AoR name once and later pages slice that
/// list (`dump_names.rs`); each AoR's bindings are read afresh when its
/// page is built, under its own shard's lock, and the JSON is written with
/// no lock held. Paging therefore tolerates concurrent changes: an AoR
/// present from the first page to the last is returned exactly once, and
/// one added or removed meanwhile may or may not be.
pub fn dump_page(state: &State, cursor: &str, limit: u32, brief: bool) -> Result<Raw<UlDumpPage>> {
    check_limit(2, limit)?;
    let (names, more) = state.dump_names.page(state.table(), cursor, limit as usize);
    page_of(state, &names, more, brief)
}

/// `ul.dump_prefix PREFIX CURSOR LIMIT [brief]` (kamrs extension, for the
/// web view's search): as [`dump_page`], but only the AoRs whose names
/// start with `prefix` (a `sip:`/`sips:` scheme dropped, the domain after
/// an `@` lower-cased, as AoR keys are). See
/// [`DumpNames::prefix_page`](super::dump_names::DumpNames::prefix_page)
/// for what a search costs.
pub fn dump_prefix(
    state: &State,
    prefix: &str,
    cursor: &str,
    limit: u32,
    brief: bool,
) -> Result<Raw<UlDumpPage>> {
    check_limit(3, limit)?;
    let prefix = key_prefix(prefix);
    let (names, more) =
        state
            .dump_names
            .prefix_page(state.table(), &prefix, cursor, limit as usize);
    page_of(state, &names, more, brief)
}

/// What AoR keys a prefix typed by a person would start with.
fn key_prefix(prefix: &str) -> String {
    let mut p = prefix.trim();
    for scheme in ["sip:", "sips:"] {
        // By `get`: a byte index inside a multi-byte character must not
        // panic (`ul.dump_prefix "sipé"`).
        if let Some(rest) = p
            .get(..scheme.len())
            .filter(|head| head.eq_ignore_ascii_case(scheme))
            .and_then(|_| p.get(scheme.len()..))
        {
            p = rest;
            break;
        }
    }
    match p.split_once('@') {
        Some((user, domain)) => format!("{user}@{}", domain.to_ascii_lowercase()),
        None => p.to_owned(),
    }
}

/// The params middleware checks `limit` first; this keeps the methods
/// safe when called directly (tests).
fn check_limit(position: usize, limit: u32) -> Result<()> {
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(())
    } else {
        Err(invalid(format!(
            "argument {position} `limit`: expected a page size from 1 to {MAX_PAGE}, got {limit}"
        )))
    }
}

/// The page of `names` (sorted), whose bindings are read now; `more`:
/// whether another page follows.
fn page_of(state: &State, names: &[Arc<str>], more: bool, brief: bool) -> Result<Raw<UlDumpPage>> {
    let table = state.table();
    let next = more.then(|| names.last().map(|n| n.to_string())).flatten();
    let now = unix_now();
    let mut aors = Vec::with_capacity(names.len());
    for aor in names {
        // Gone since the names were taken, or only expired bindings left:
        // skipped, but the cursor still moves past it.
        let Some(bindings) = table.lookup(aor, now) else {
            continue;
        };
        aors.push(aor_entry(
            aor,
            shape::core_hash(aor),
            &bindings,
            now,
            brief,
            state.settings.nat_bit(),
        ));
    }
    Raw::new(&UlDumpPage { next, aors }).map_err(|e| {
        ErrorObjectOwned::owned(
            error::INTERNAL,
            format!("cannot serialize the page: {e}"),
            None::<()>,
        )
    })
}

/// The store's row counts for `ul.db_users`, `ul.db_contacts` and
/// `ul.db_expired_contacts`. Without a store there is no database copy to
/// count (Kamailio's db_mode 0 refuses these too).
pub(super) async fn db_counts(
    state: &State,
    table: &str,
) -> Result<crate::usrloc::persist::DbCounts> {
    check_table(table)?;
    let Some(store) = state.table().store() else {
        return Err(ErrorObjectOwned::owned(
            503,
            "no location store: the table lives in memory only (set [store] backend = \"sqlite\" or \"redis\")",
            None::<()>,
        ));
    };
    store.counts(crate::usrloc::unix_now()).await.map_err(|e| {
        ErrorObjectOwned::owned(
            500,
            format!("cannot count the {} store's rows: {e}", store.name()),
            None::<()>,
        )
    })
}

#[cfg(test)]
mod tests;
