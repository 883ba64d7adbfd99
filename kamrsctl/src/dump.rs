//! `kamrsctl ul.dump`: the table read page by page with `ul.dump_page`
//! and printed as it comes, so neither the daemon nor kamrsctl ever holds
//! more than one page, whatever the table's size.
//!
//! `--json` prints the document Kamailio's `ul.dump` returns
//! (`{Domains: [{Domain: {Domain, Size, AoRs, Stats}}]}`), assembled from
//! the pages: the head, each AoR object as the daemon wrote it, then
//! `Stats`, counted here the way the daemon counts them for `ul.dump`.

use std::io::{self, Write};

use common::api::CtlClient;
use common::types::{core_hash, UlDumpPage, SLOTS, TABLE};
use jsonrpsee_ws_client::WsClient;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::client::{self, exit, Failure};
use crate::render;

/// AoRs asked for per `ul.dump_page` call: about 2.5 MB of JSON for
/// one-contact AoRs.
pub const PAGE: u32 = 5000;

/// A page's AoR objects left as text, for `--json` (`Next` was read
/// already).
#[derive(Deserialize)]
struct RawPage<'a> {
    #[serde(borrow, rename = "AoRs")]
    aors: Vec<&'a RawValue>,
}

/// Just the AoR name of an `AoRs` element, full (`{Info: {AoR}}`) or
/// brief (`{AoR}`); the contacts are skipped unparsed.
#[derive(Deserialize)]
struct Name {
    #[serde(rename = "Info")]
    info: Option<InfoName>,
    #[serde(rename = "AoR")]
    aor: Option<String>,
}

#[derive(Deserialize)]
struct InfoName {
    #[serde(rename = "AoR")]
    aor: String,
}

fn unreadable(e: serde_json::Error) -> Failure {
    Failure::new(
        exit::FAILED,
        format!(
            "ul.dump: cannot read kamrs's answer: {e}; are kamrs and kamrsctl the same version?"
        ),
    )
}

/// Why printing stopped.
enum Stop {
    Failed(Failure),
    /// stdout was closed (`| head`): not an error.
    Closed,
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Stop {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Stop::Closed
        } else {
            Stop::Failed(Failure::new(
                exit::FAILED,
                format!("cannot write the output: {e}"),
            ))
        }
    }
}

impl From<Failure> for Stop {
    fn from(f: Failure) -> Stop {
        Stop::Failed(f)
    }
}

/// `kamrsctl ul.dump [--brief]`, as tables or (`json`) Kamailio's document.
pub async fn run(
    c: &WsClient,
    brief: bool,
    json: bool,
    style: render::Style,
) -> Result<(), Failure> {
    let outcome = if json {
        as_json(c, brief).await
    } else {
        as_tables(c, brief, style).await
    };
    match outcome {
        Ok(()) | Err(Stop::Closed) => Ok(()),
        Err(Stop::Failed(f)) => Err(f),
    }
}

async fn page(c: &WsClient, cursor: &str, brief: bool) -> Result<common::Raw<UlDumpPage>, Failure> {
    c.ul_dump_page(cursor.to_owned(), PAGE, brief.then(|| "brief".to_owned()))
        .await
        .map_err(|e| client::call_failure("ul.dump", e))
}

/// Only the cursor of a page, read before the page is printed so the
/// next one can be fetched meanwhile.
#[derive(Deserialize)]
struct NextOnly {
    #[serde(rename = "Next")]
    next: Option<String>,
}

/// Fetches every page and hands each to `print` with `state`, on a
/// blocking thread, while the next page is fetched: the daemon builds a
/// page while kamrsctl writes the previous one. At most two pages are held.
async fn pages<S: Send + 'static>(
    c: &WsClient,
    brief: bool,
    mut state: S,
    print: fn(&mut S, common::Raw<UlDumpPage>) -> Result<(), Stop>,
) -> Result<S, Stop> {
    let mut raw = page(c, "", brief).await?;
    loop {
        let next = serde_json::from_str::<NextOnly>(raw.get())
            .map_err(unreadable)?
            .next;
        let job = tokio::task::spawn_blocking(move || {
            let done = print(&mut state, raw);
            (state, done)
        });
        let (fetched, printed) = match next {
            Some(cursor) => {
                let (fetched, printed) = tokio::join!(page(c, &cursor, brief), job);
                (Some(fetched), printed)
            }
            None => (None, job.await),
        };
        let (s, done) = printed
            .map_err(|e| Failure::new(exit::FAILED, format!("ul.dump: printing failed: {e}")))?;
        done?;
        state = s;
        match fetched {
            Some(p) => raw = p?,
            None => return Ok(state),
        }
    }
}

/// What the tables keep between pages: the totals, and the printer
/// (which layout, how many records so far).
struct Tables {
    aors: usize,
    contacts: usize,
    printer: render::Printer,
}

/// Tables, page by page, then the totals.
async fn as_tables(c: &WsClient, brief: bool, style: render::Style) -> Result<(), Stop> {
    fn print(t: &mut Tables, raw: common::Raw<UlDumpPage>) -> Result<(), Stop> {
        let p = raw.parse().map_err(unreadable)?;
        let mut out = io::stdout().lock();
        let (a, n) = render::dump_page(&p.aors, &mut t.printer, &mut out)?;
        out.flush()?;
        t.aors += a;
        t.contacts += n;
        Ok(())
    }
    let start = Tables {
        aors: 0,
        contacts: 0,
        printer: render::Printer::new(style),
    };
    let Tables { aors, contacts, .. } = pages(c, brief, start, print).await?;
    let mut out = io::stdout().lock();
    render::dump_end(aors, contacts, brief, &mut out)?;
    out.flush()?;
    Ok(())
}

/// What `--json` keeps between pages: the writer and the `Stats` counts.
struct JsonDump {
    out: render::Pretty<io::Stdout>,
    records: u64,
    per_slot: Vec<u64>,
}

/// Kamailio's `ul.dump` document, written as the pages come.
async fn as_json(c: &WsClient, brief: bool) -> Result<(), Stop> {
    fn print(d: &mut JsonDump, raw: common::Raw<UlDumpPage>) -> Result<(), Stop> {
        let p: RawPage<'_> = serde_json::from_str(raw.get()).map_err(unreadable)?;
        for entry in &p.aors {
            let name: Name = serde_json::from_str(entry.get()).map_err(unreadable)?;
            let aor = match (name.info, name.aor) {
                (Some(info), _) => info.aor,
                (None, Some(aor)) => aor,
                (None, None) => {
                    return Err(Stop::Failed(Failure::new(
                        exit::FAILED,
                        "ul.dump: kamrs answered an AoRs entry without an AoR; are kamrs and kamrsctl the same version?",
                    )))
                }
            };
            d.per_slot[(core_hash(&aor) & (SLOTS - 1)) as usize] += 1;
            if d.records > 0 {
                d.out.write(",")?;
            }
            d.records += 1;
            d.out.write(entry.get())?;
        }
        Ok(())
    }
    let mut out = render::Pretty::new(io::stdout());
    let table = serde_json::to_string(TABLE).map_err(unreadable)?;
    out.write(&format!(
        r#"{{"Domains":[{{"Domain":{{"Domain":{table},"Size":{SLOTS},"AoRs":["#
    ))?;
    let start = JsonDump {
        out,
        records: 0,
        per_slot: vec![0; SLOTS as usize],
    };
    let JsonDump {
        mut out,
        records,
        per_slot,
    } = pages(c, brief, start, print).await?;
    let max_slots = per_slot.iter().copied().max().unwrap_or(0);
    out.write(&format!(
        r#"],"Stats":{{"Records":{records},"Max-Slots":{max_slots}}}}}}}]}}"#
    ))?;
    out.finish()?;
    Ok(())
}
