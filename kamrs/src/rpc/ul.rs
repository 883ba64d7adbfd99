//! `ul.*`: the location table over RPC, Kamailio's `ul_rpc.c` methods.
//!
//! Every method works on the same [`LocationTable`] the registrar uses, so
//! a binding removed here no longer answers a SIP query, and one added here
//! is returned by it.
//!
//! [`LocationTable`]: crate::usrloc::LocationTable

use std::collections::HashMap;

use common::api::error;
use common::types::{
    AorEntry, AorInfo, ContactEntry, Domain, DomainEntry, DomainStats, UlDump, UlDumpPage,
    UlLookup, TABLE,
};
use common::Raw;
use jsonrpsee::types::ErrorObjectOwned;

use super::api::State;
use super::shape::{self, SLOTS};
use crate::sip::Uri;
use crate::usrloc::{unix_now, Aor, Binding, Growth, Parts, TableFull, PERMANENT};

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
fn fix_aor(state: &State, aor: &str) -> Result<String> {
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
        contacts: contacts(&bindings, now),
        aor,
    })
}

fn contacts(bindings: &[Binding], now: u64) -> Vec<ContactEntry> {
    bindings
        .iter()
        .map(|b| ContactEntry {
            contact: shape::contact(b, now),
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

/// `ul.rm_contact location AOR CONTACT`: the binding whose Contact URI is
/// `contact` byte for byte or, failing that, equivalent by RFC 3261
/// §19.1.4 (the registrar's own rule).
pub fn rm_contact(state: &State, table: &str, aor: &str, contact: &str) -> Result<()> {
    check_table(table)?;
    let aor = fix_aor(state, aor)?;
    let now = unix_now();
    let outcome = state.table().update(&aor, now, |bindings| {
        if bindings.is_empty() {
            return Err(aor_not_found());
        }
        let at = bindings
            .iter()
            .position(|b| b.contact() == contact)
            .or_else(|| {
                let wanted = Uri::parse(contact.as_bytes())?;
                bindings.iter().position(|b| {
                    Uri::parse(b.contact().as_bytes()).is_some_and(|u| u.equivalent(&wanted))
                })
            });
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
    let q = if a.q == -1.0 {
        None
    } else if (0.0..=1.0).contains(&a.q) {
        Some((a.q * 1000.0).round() as u16)
    } else {
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
        ruid: state.new_ruid(),
        last_modified: now,
    });
    let table = state.table();
    table
        .update(&aor, now, |bindings| {
            let same = bindings.iter().position(|b| {
                b.contact() == contact
                    || Uri::parse(b.contact().as_bytes()).is_some_and(|u| u.equivalent(&uri))
            });
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
        entries.push(aor_entry(&aor, hash_id, &bindings, now, brief));
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
fn aor_entry(aor: &str, hash_id: u32, bindings: &[Binding], now: u64, brief: bool) -> AorEntry {
    if brief {
        AorEntry::Brief {
            aor: aor.to_owned(),
        }
    } else {
        AorEntry::Full {
            info: AorInfo {
                aor: aor.to_owned(),
                hash_id,
                contacts: contacts(bindings, now),
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
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(invalid(format!(
            "argument 2 `limit`: expected a page size from 1 to {MAX_PAGE}, got {limit}"
        )));
    }
    let table = state.table();
    let (names, more) = state.dump_names.page(table, cursor, limit as usize);
    let next = more.then(|| names.last().map(|n| n.to_string())).flatten();
    let now = unix_now();
    let mut aors = Vec::with_capacity(names.len());
    for aor in &names {
        // Gone since the names were taken, or only expired bindings left:
        // skipped, but the cursor still moves past it.
        let Some(bindings) = table.lookup(aor, now) else {
            continue;
        };
        aors.push(aor_entry(aor, shape::core_hash(aor), &bindings, now, brief));
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
mod tests {
    use super::*;
    use crate::rpc::api::tests::{state, state_with_domain};
    use common::types::Expires;

    fn add_args(aor: &str, contact: &str, expires: u32) -> Add {
        Add {
            aor: aor.into(),
            contact: contact.into(),
            expires,
            q: -1.0,
            path: "0".into(),
            flags: 0,
            cflags: 0,
            methods: u32::MAX,
        }
    }

    #[test]
    fn add_lookup_rm_contact_rm() {
        let s = state();
        add(
            &s,
            "location",
            add_args("alice", "sip:alice@192.0.2.1:5060", 3600),
        )
        .unwrap();
        add(
            &s,
            "location",
            Add {
                q: 0.7,
                path: "<sip:edge.example.com;lr>".into(),
                ..add_args("alice", "sip:alice@192.0.2.2", 0)
            },
        )
        .unwrap();
        let l = lookup(&s, "location", "alice").unwrap();
        assert_eq!(l.aor, "alice");
        assert_eq!(l.contacts.len(), 2);
        let c1 = &l.contacts[0].contact;
        assert!(
            matches!(c1.expires, Expires::Seconds(3599..=3600)),
            "{:?}",
            c1.expires
        );
        assert_eq!(c1.q, -1.0);
        assert_eq!(c1.path, "[not set]");
        assert_eq!(c1.call_id, ADD_CALL_ID);
        assert_eq!(c1.user_agent, ADD_USER_AGENT);
        let c2 = &l.contacts[1].contact;
        assert_eq!(c2.expires, Expires::Permanent);
        assert_eq!(c2.q, 0.7);
        assert_eq!(c2.path, "<sip:edge.example.com;lr>");
        assert_ne!(c1.ruid, c2.ruid);

        // The same contact (equivalent URI) replaces, not duplicates.
        add(
            &s,
            "location",
            add_args("alice", "SIP:alice@192.0.2.1:5060", 60),
        )
        .unwrap();
        assert_eq!(lookup(&s, "location", "alice").unwrap().contacts.len(), 2);

        let e = rm_contact(&s, "location", "alice", "sip:nobody@192.0.2.9").unwrap_err();
        assert_eq!((e.code(), e.message()), (404, "Contact not found"));
        rm_contact(&s, "location", "alice", "sip:alice@192.0.2.2").unwrap();
        assert_eq!(lookup(&s, "location", "alice").unwrap().contacts.len(), 1);
        let e = rm_contact(&s, "location", "bob", "sip:bob@h").unwrap_err();
        assert_eq!((e.code(), e.message()), (404, "AOR not found"));

        rm(&s, "location", "alice").unwrap();
        let e = lookup(&s, "location", "alice").unwrap_err();
        assert_eq!((e.code(), e.message()), (404, "AOR not found"));
        assert_eq!(rm(&s, "location", "alice").unwrap_err().code(), 404);
        assert!(s.table().is_empty());
    }

    fn page(s: &State, cursor: &str, limit: u32, brief: bool) -> UlDumpPage {
        dump_page(s, cursor, limit, brief).unwrap().parse().unwrap()
    }

    fn names(p: &UlDumpPage) -> Vec<String> {
        p.aors.iter().map(|e| e.aor().to_owned()).collect()
    }

    #[test]
    fn dump_pages_walk_the_table_in_name_order() {
        let s = state();
        let empty = page(&s, "", 10, false);
        assert_eq!((empty.next, empty.aors.len()), (None, 0));
        for i in 0..25 {
            add(&s, "location", add_args(&format!("u{i:02}"), "sip:c@h", 60)).unwrap();
        }
        let first = page(&s, "", 10, false);
        assert_eq!(first.next.as_deref(), Some("u09"));
        assert_eq!(
            names(&first),
            (0..10).map(|i| format!("u{i:02}")).collect::<Vec<_>>()
        );
        let AorEntry::Full { info } = &first.aors[3] else {
            panic!("a full page has Info entries");
        };
        assert_eq!(info.hash_id, shape::core_hash("u03"));
        assert_eq!(info.contacts.len(), 1);
        // The same objects as `ul.dump`'s.
        let whole: UlDump = dump(&s, false).unwrap().parse().unwrap();
        assert_eq!(whole.domains[0].domain.aors[..10], first.aors[..]);

        let brief = page(&s, "u09", 10, true);
        assert_eq!(brief.next.as_deref(), Some("u19"));
        assert_eq!(brief.aors[0], AorEntry::Brief { aor: "u10".into() });
        let last = page(&s, "u19", 10, false);
        assert_eq!(last.next, None, "a short page is the last");
        assert_eq!(names(&last), ["u20", "u21", "u22", "u23", "u24"]);
        // A full last page is followed by an empty one.
        let exact = page(&s, "u14", 10, false);
        assert_eq!(exact.next.as_deref(), Some("u24"));
        let after = page(&s, "u24", 10, false);
        assert_eq!((after.next, after.aors.len()), (None, 0));
        // A cursor need not be an existing AoR.
        assert_eq!(names(&page(&s, "u105", 2, true)), ["u11", "u12"]);

        for bad in [0, MAX_PAGE + 1] {
            let e = dump_page(&s, "", bad, false).unwrap_err();
            assert_eq!(e.code(), error::INVALID_PARAMS);
            assert!(
                e.message().contains("argument 2 `limit`"),
                "{}",
                e.message()
            );
        }
    }

    #[test]
    fn dump_pages_tolerate_changes_between_pages() {
        let s = state();
        // "s…" AoRs stay throughout; "t…" come and go between pages.
        for i in 0..100 {
            add(&s, "location", add_args(&format!("s{i:03}"), "sip:c@h", 60)).unwrap();
        }
        for i in (0..100).step_by(2) {
            add(&s, "location", add_args(&format!("t{i:03}"), "sip:c@h", 60)).unwrap();
        }
        let mut seen = Vec::new();
        let mut cursor = String::new();
        let mut round = 0;
        loop {
            let p = page(&s, &cursor, 7, round % 2 == 0);
            seen.extend(names(&p));
            // Between pages: remove some AoRs already listed and some not
            // yet, add some before and after the cursor.
            for i in [round * 3, 60 + round] {
                let _ = rm(&s, "location", &format!("t{:03}", i % 100));
            }
            for name in [
                format!("a{round}"),
                format!("s{:03}x", round * 7),
                format!("z{round}"),
            ] {
                add(&s, "location", add_args(&name, "sip:c@h", 60)).unwrap();
            }
            round += 1;
            match p.next {
                Some(next) => cursor = next,
                None => break,
            }
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, seen, "pages come in order, without duplicates");
        for i in 0..100 {
            let name = format!("s{i:03}");
            assert!(
                seen.contains(&name),
                "{name} existed throughout but was skipped"
            );
        }
        assert!(
            !seen.iter().any(|n| n.starts_with('a')),
            "added before the cursor"
        );
        // The names were listed when the dump began (dump_names.rs): AoRs
        // added later wait for the next dump, wherever they sort.
        assert!(
            !seen.iter().any(|n| n.starts_with('z') || n.ends_with('x')),
            "added after the dump began"
        );
    }

    #[test]
    fn aors_are_fixed_like_the_registrar_does() {
        let s = state();
        add(
            &s,
            "location",
            add_args("sip:carol@Example.COM", "sip:c@h", 60),
        )
        .unwrap();
        assert_eq!(lookup(&s, "location", "carol").unwrap().aor, "carol");
        assert_eq!(
            lookup(&s, "location", "carol@elsewhere").unwrap().aor,
            "carol"
        );

        let d = state_with_domain();
        add(&d, "location", add_args("carol@Example.COM", "sip:c@h", 60)).unwrap();
        assert_eq!(
            lookup(&d, "location", "carol@example.com").unwrap().aor,
            "carol@example.com"
        );
        let e = lookup(&d, "location", "carol").unwrap_err();
        assert_eq!(e.code(), error::INVALID_PARAMS);
        assert!(e.message().contains("use_domain is on"), "{}", e.message());
    }

    #[test]
    fn bad_arguments_say_which_and_why() {
        let s = state();
        let e = lookup(&s, "locaton", "alice").unwrap_err();
        assert_eq!(e.code(), error::INVALID_PARAMS);
        assert!(
            e.message().contains("`table`") && e.message().contains("\"location\""),
            "{}",
            e.message()
        );
        let e = add(&s, "location", add_args("alice", "not a uri", 60)).unwrap_err();
        assert!(e.message().contains("`contact`"), "{}", e.message());
        let long = format!("sip:{}@h", "a".repeat(600));
        let e = add(&s, "location", add_args("alice", &long, 60)).unwrap_err();
        assert!(e.message().contains("contact_max_size"), "{}", e.message());
        let e = add(
            &s,
            "location",
            Add {
                q: 2.0,
                ..add_args("alice", "sip:a@h", 60)
            },
        )
        .unwrap_err();
        assert!(e.message().contains("`q`"), "{}", e.message());
        let e = lookup(&s, "location", "").unwrap_err();
        assert!(e.message().contains("empty"), "{}", e.message());
        let e = lookup(&s, "location", &"x".repeat(300)).unwrap_err();
        assert!(e.message().contains("at most 256"), "{}", e.message());
    }

    #[test]
    fn control_characters_and_unmanageable_aors_are_refused() {
        let s = state();
        for aor in ["t\r\nX-Inj", "a\0b", "\x1b[2J", "a\u{9b}"] {
            let e = add(&s, "location", add_args(aor, "sip:a@h", 60)).unwrap_err();
            assert_eq!(e.code(), error::INVALID_PARAMS, "{aor:?}");
            assert!(e.message().contains("control character"), "{}", e.message());
            // The message quotes the value escaped, never raw.
            assert!(
                !e.message().chars().any(char::is_control),
                "{}",
                e.message()
            );
            assert!(lookup(&s, "location", aor).is_err());
        }
        let e = add(&s, "location", add_args("alice", "sip:a@h;x=\x1b", 60)).unwrap_err();
        assert!(e.message().contains("`contact`"), "{}", e.message());
        let e = add(
            &s,
            "location",
            Add {
                path: "<sip:p.example.com;lr>\r\nX-Inj: 1".into(),
                ..add_args("alice", "sip:a@h", 60)
            },
        )
        .unwrap_err();
        assert!(
            e.message().contains("`path`") && e.message().contains("control character"),
            "{}",
            e.message()
        );
        assert!(
            s.table().lookup("alice", unix_now()).is_none(),
            "nothing stored"
        );

        let d = state_with_domain();
        let e = add(
            &d,
            "location",
            add_args("victim@other.org@example.com", "sip:a@h", 60),
        )
        .unwrap_err();
        assert!(e.message().contains("domain"), "{}", e.message());
    }

    #[test]
    fn dump_full_and_brief() {
        let s = state();
        for aor in ["bob", "alice", "7777"] {
            add(
                &s,
                "location",
                add_args(aor, &format!("sip:{aor}@192.0.2.1"), 600),
            )
            .unwrap();
        }
        add(
            &s,
            "location",
            add_args("alice", "sip:alice@192.0.2.2", 600),
        )
        .unwrap();
        let full = dump(&s, false).unwrap().parse().unwrap();
        let d = &full.domains[0].domain;
        assert_eq!((d.name.as_str(), d.size), ("location", 1024));
        assert_eq!(d.stats.records, 3);
        assert!(d.stats.max_slots >= 1);
        let aors: Vec<&str> = d.aors.iter().map(AorEntry::aor).collect();
        assert_eq!(aors, ["7777", "alice", "bob"], "sorted");
        let AorEntry::Full { info } = &d.aors[0] else {
            panic!("full entry expected")
        };
        assert_eq!(info.hash_id, 836_344_572);
        let AorEntry::Full { info } = &d.aors[1] else {
            panic!("full entry expected")
        };
        assert_eq!(info.contacts.len(), 2);

        let brief = dump(&s, true).unwrap();
        assert!(
            brief.get().contains(r#"{"AoR":"alice"}"#),
            "{}",
            brief.get()
        );
        assert!(!brief.get().contains("Contacts"), "{}", brief.get());

        let empty = dump(&state(), false).unwrap().parse().unwrap();
        assert_eq!(
            empty.domains[0].domain.stats,
            DomainStats {
                records: 0,
                max_slots: 0
            }
        );
    }
}
