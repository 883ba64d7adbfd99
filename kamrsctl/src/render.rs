//! Human output: tables fitted to the terminal, durations as "59m 12s",
//! times in the local zone; and the `--json` pretty printer.

use std::io::{self, Write};

use chrono::{Local, TimeZone};
use comfy_table::{presets, ContentArrangement, Table};
use common::types::{
    AorEntry, Contact, Expires, PikeSource, SubscriberEntry, UlLookup, Uptime, NOT_SET,
};
use unicode_width::UnicodeWidthStr;

// Every string that came from the daemon goes through `cell`/`safe`
// (escape.rs): it may be what a phone sent.
use crate::escape::{cell, safe};

mod tls;
pub use tls::{tls_info, tls_list};

/// `3552` → `59m 12s`, `3600` → `1h 0m 0s`: every unit from the
/// largest one needed down to seconds. The one formatter of durations in
/// kamrsctl (expiries, `ul.add`'s answer, uptime), so a binding's expiry
/// reads the same wherever it is shown and never jumps from `59m 59s` to
/// a rounded `1h 0m`.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match () {
        _ if d > 0 => format!("{d}d {h}h {m}m {s}s"),
        _ if h > 0 => format!("{h}h {m}m {s}s"),
        _ if m > 0 => format!("{m}m {s}s"),
        _ => format!("{s}s"),
    }
}

pub fn expires(e: &Expires) -> String {
    match e {
        Expires::Seconds(s) => duration(*s),
        Expires::Permanent => "permanent".to_owned(),
        Expires::Expired => "expired".to_owned(),
    }
}

/// q-value as a user wrote it (`0.5`, `1`), `-` when unset (Kamailio's -1).
pub fn q(q: f64) -> String {
    if q < 0.0 {
        "-".to_owned()
    } else {
        format!("{q}")
    }
}

/// Kamailio's `[not set]` as `-`, to keep columns narrow.
fn or_dash(s: &str) -> &str {
    if s == NOT_SET || s.is_empty() {
        "-"
    } else {
        s
    }
}

/// Unix time as local `2024-06-20 08:11:38`.
pub fn local_time(unix: i64) -> String {
    match Local.timestamp_opt(unix, 0).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => unix.to_string(),
    }
}

/// `--layout`: how tables are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Layout {
    /// A table when it fits the width (`COLUMNS`, else the terminal's),
    /// else one `Key: value` line per field.
    #[default]
    Auto,
    /// Always a table, however wide (lines are never wrapped).
    Table,
    /// Always one `Key: value` line per field, records under `-[ RECORD n ]-`.
    Vertical,
}

/// What a table's lines are drawn with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Borders {
    /// Box-drawing characters: a terminal with a UTF-8 locale.
    Utf8,
    /// `+`, `-`, `|`: a terminal whose locale is not UTF-8.
    Ascii,
    /// No lines, columns separated by two spaces: output that is not a
    /// terminal (a pipe, a file), for grep and awk.
    Plain,
}

/// How human output is laid out; decided once per run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub layout: Layout,
    /// Columns available; `None` (not a terminal, no `COLUMNS`): unlimited.
    pub width: Option<usize>,
    pub borders: Borders,
}

impl Style {
    /// From the environment: `COLUMNS`, stdout being a terminal (and its
    /// width), and the locale (`LC_ALL`, `LC_CTYPE`, `LANG`).
    pub fn detect(layout: Layout) -> Style {
        use std::io::IsTerminal;
        let tty = io::stdout().is_terminal();
        let tty_width = if tty {
            // A terminal that reports no size (0 columns, as a pty with
            // none set does) has no known width.
            Table::new().width().map(usize::from).filter(|&w| w > 0)
        } else {
            None
        };
        let var = |name: &str| std::env::var(name).ok();
        Style::decide(
            layout,
            tty,
            tty_width,
            var("COLUMNS").as_deref(),
            [var("LC_ALL"), var("LC_CTYPE"), var("LANG")],
        )
    }

    /// [`Style::detect`] without the environment, for tests.
    pub fn decide(
        layout: Layout,
        tty: bool,
        tty_width: Option<usize>,
        columns: Option<&str>,
        locale: [Option<String>; 3],
    ) -> Style {
        let columns = columns
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|&c| c > 0);
        let borders = if !tty {
            Borders::Plain
        } else if utf8_locale(&locale) {
            Borders::Utf8
        } else {
            Borders::Ascii
        };
        Style {
            layout,
            width: columns.or(tty_width),
            borders,
        }
    }
}

/// Whether the locale in force (the first of `LC_ALL`, `LC_CTYPE`,
/// `LANG` that is set and not empty, as setlocale picks it) is UTF-8.
/// None set is the C locale: ASCII.
fn utf8_locale(vars: &[Option<String>; 3]) -> bool {
    vars.iter()
        .flatten()
        .find(|v| !v.is_empty())
        .is_some_and(|v| {
            let v = v.to_ascii_lowercase();
            v.contains("utf-8") || v.contains("utf8")
        })
}

/// A table before it is laid out: its header, its rows, and which columns
/// may be broken at spaces in the vertical layout (a User-Agent may; a
/// URI, a name or a number never is).
pub struct Grid {
    header: Vec<&'static str>,
    breakable: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Grid {
    fn new(header: &[&'static str]) -> Grid {
        Grid {
            header: header.to_vec(),
            breakable: vec![false; header.len()],
            rows: Vec::new(),
        }
    }

    fn breakable(mut self, column: &str) -> Grid {
        if let Some(i) = self.header.iter().position(|h| *h == column) {
            self.breakable[i] = true;
        }
        self
    }

    fn add(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// Each column's widest cell (header included), in terminal columns.
    fn widths(&self) -> Vec<usize> {
        let mut w: Vec<usize> = self.header.iter().map(|h| h.width()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(col) = w.get_mut(i) {
                    *col = (*col).max(cell.width());
                }
            }
        }
        w
    }

    /// The width of the longest line of this grid as a table.
    fn table_width(&self, borders: Borders) -> usize {
        let w = self.widths();
        let cells: usize = w.iter().sum();
        match borders {
            // One space of padding each side of every cell, and a line
            // left, right and between columns.
            Borders::Utf8 | Borders::Ascii => cells + 3 * w.len() + 1,
            Borders::Plain => cells + 2 * w.len().saturating_sub(1),
        }
    }
}

/// Prints [`Grid`]s in the run's [`Style`]. One per run: in the vertical
/// layout, record numbers go on across the pages of `ul.dump`, and once a
/// page needed the vertical layout the following pages keep it.
pub struct Printer {
    style: Style,
    vertical: bool,
    records: usize,
}

impl Printer {
    pub fn new(style: Style) -> Printer {
        Printer {
            style,
            vertical: style.layout == Layout::Vertical,
            records: 0,
        }
    }

    pub fn grid(&mut self, g: &Grid, out: &mut impl Write) -> io::Result<()> {
        if g.rows.is_empty() {
            return Ok(());
        }
        if self.style.layout == Layout::Auto && !self.vertical {
            self.vertical = self
                .style
                .width
                .is_some_and(|w| g.table_width(self.style.borders) > w);
        }
        if self.vertical {
            self.vertical_records(g, out)
        } else if self.style.borders == Borders::Plain {
            plain_columns(g, out)
        } else {
            bordered(g, self.style.borders, out)
        }
    }

    /// psql's `\x`: a `-[ RECORD n ]-` line, then `Key: value` lines with
    /// the values aligned. Values are never cut; only the breakable ones
    /// (User-Agent) are folded at spaces to stay within the width, onto
    /// lines indented like the value.
    fn vertical_records(&mut self, g: &Grid, out: &mut impl Write) -> io::Result<()> {
        let key_width = g.header.iter().map(|h| h.width()).max().unwrap_or(0) + 2;
        for row in &g.rows {
            self.records += 1;
            writeln!(out, "-[ RECORD {} ]-", self.records)?;
            for (i, (key, value)) in g.header.iter().zip(row).enumerate() {
                let label = format!("{key}:");
                let room = self
                    .style
                    .width
                    .map(|w| w.saturating_sub(key_width))
                    .filter(|_| g.breakable[i]);
                let lines = match room {
                    Some(room) if value.width() > room && room > 0 => fold(value, room),
                    _ => vec![value.as_str()],
                };
                for (n, line) in lines.iter().enumerate() {
                    let label = if n == 0 { label.as_str() } else { "" };
                    let pad = key_width - label.width();
                    let text = format!("{label}{:pad$}{line}", "");
                    writeln!(out, "{}", text.trim_end())?;
                }
            }
        }
        Ok(())
    }
}

/// `text` cut at spaces into lines of at most `room` columns where it can
/// be; a word longer than `room` stays whole on its own line.
fn fold(text: &str, room: usize) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text.trim();
    while rest.width() > room {
        // The last space that keeps the line within `room`.
        let mut cut = None;
        let mut width = 0;
        for (at, c) in rest.char_indices() {
            // A space ends a line as wide as what comes before it.
            if c == ' ' {
                cut = Some(at);
            }
            width += unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
            if width > room {
                break;
            }
        }
        // No space in reach: the first word goes whole.
        let cut = cut.or_else(|| rest.find(' ')).filter(|&at| at > 0);
        let Some(at) = cut else { break };
        lines.push(rest[..at].trim_end());
        rest = rest[at..].trim_start();
    }
    lines.push(rest);
    lines
}

/// Columns padded to their widest cell, two spaces apart, a header line
/// first, no borders: what `ps` and `kubectl` print.
fn plain_columns(g: &Grid, out: &mut impl Write) -> io::Result<()> {
    let widths = g.widths();
    let header: Vec<String> = g.header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(&g.rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = widths
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(cell.width());
            line.push_str(&" ".repeat(pad));
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// A comfy-table table, never wrapped: a URI split over lines could not
/// be copied back into `ul.rm_contact`.
fn bordered(g: &Grid, borders: Borders, out: &mut impl Write) -> io::Result<()> {
    let mut t = Table::new();
    t.load_preset(match borders {
        Borders::Utf8 => presets::UTF8_FULL_CONDENSED,
        _ => presets::ASCII_FULL_CONDENSED,
    })
    .set_content_arrangement(ContentArrangement::Disabled)
    .set_header(g.header.iter().copied());
    for row in &g.rows {
        t.add_row(row.iter().map(String::as_str));
    }
    writeln!(out, "{t}")
}

fn contact_cells(c: &Contact) -> Vec<String> {
    vec![
        cell(&c.address),
        expires(&c.expires),
        q(c.q),
        cell(or_dash(&c.received)),
        cell(or_dash(&c.user_agent)),
        local_time(c.last_modified),
    ]
}

const CONTACT_HEADER: [&str; 6] = [
    "Contact",
    "Expires",
    "Q",
    "Received",
    "User-Agent",
    "Last-Modified",
];

/// One page of `ul.dump`: a table with one row per binding, or (brief)
/// one AoR name per line. Returns how many AoRs and contacts it showed;
/// [`dump_end`] writes the totals after the last page.
pub fn dump_page(
    entries: &[AorEntry],
    p: &mut Printer,
    out: &mut impl Write,
) -> io::Result<(usize, usize)> {
    let mut header = vec!["AoR"];
    header.extend(CONTACT_HEADER);
    let mut g = Grid::new(&header).breakable("User-Agent");
    let mut contacts = 0usize;
    for entry in entries {
        match entry {
            AorEntry::Full { info } => {
                for c in &info.contacts {
                    contacts += 1;
                    let mut row = vec![cell(&info.aor)];
                    row.extend(contact_cells(&c.contact));
                    g.add(row);
                }
            }
            AorEntry::Brief { aor } => writeln!(out, "{}", safe(aor))?,
        }
    }
    p.grid(&g, out)?;
    Ok((entries.len(), contacts))
}

/// After the last page of `ul.dump`: the totals of a full dump, or that
/// there was nothing.
pub fn dump_end(aors: usize, contacts: usize, brief: bool, out: &mut impl Write) -> io::Result<()> {
    if aors == 0 {
        return writeln!(out, "no registered AoRs");
    }
    if brief {
        return Ok(());
    }
    writeln!(
        out,
        "{aors} AoR{}, {contacts} contact{}",
        plural(aors),
        plural(contacts)
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `ul.lookup`: the AoR, then its bindings.
pub fn lookup(l: &UlLookup, p: &mut Printer, out: &mut impl Write) -> io::Result<()> {
    let mut g = Grid::new(&CONTACT_HEADER).breakable("User-Agent");
    for c in &l.contacts {
        g.add(contact_cells(&c.contact));
    }
    writeln!(out, "AoR {}", safe(&l.aor))?;
    p.grid(&g, out)
}

/// `stats`: `group:name = value` lines as a two-column table.
pub fn stats(lines: &[String], p: &mut Printer, out: &mut impl Write) -> io::Result<()> {
    let mut g = Grid::new(&["Statistic", "Value"]);
    for line in lines {
        match line.split_once(" = ") {
            Some((name, value)) => g.add(vec![cell(name), cell(value)]),
            None => g.add(vec![cell(line), String::new()]),
        };
    }
    p.grid(&g, out)
}

/// `--json stats`: `{"usrloc:registered_users": 3, …}` in the daemon's
/// order, from its `group:name = value` lines (Kamailio's shape, which
/// `kamrsctl call stats.get_statistics all` still prints). A value that is
/// not a number stays a string; a name seen twice is kept once.
pub fn stats_object(lines: &[String]) -> String {
    let mut seen = std::collections::HashSet::new();
    let mut text = String::from("{");
    for line in lines {
        let (name, value) = line.split_once(" = ").unwrap_or((line.as_str(), ""));
        if !seen.insert(name) {
            continue;
        }
        if seen.len() > 1 {
            text.push(',');
        }
        let value = match value.trim().parse::<i64>() {
            Ok(n) => serde_json::Value::from(n),
            Err(_) => match value.trim().parse::<u64>() {
                Ok(n) => serde_json::Value::from(n),
                Err(_) => serde_json::Value::from(value),
            },
        };
        text.push_str(&serde_json::Value::from(name).to_string());
        text.push(':');
        text.push_str(&value.to_string());
    }
    text.push('}');
    text
}

/// `subscriber list`: user and domain, one row each.
pub fn subscribers(
    list: &[SubscriberEntry],
    p: &mut Printer,
    out: &mut impl Write,
) -> io::Result<()> {
    if list.is_empty() {
        return writeln!(
            out,
            "no subscribers (add one with `kamrsctl subscriber add USER@DOMAIN`)"
        );
    }
    let mut g = Grid::new(&["User", "Domain"]);
    for s in list {
        g.add(vec![cell(&s.username), cell(&s.domain)]);
    }
    p.grid(&g, out)?;
    writeln!(out, "{} subscriber{}", list.len(), plural(list.len()))
}

/// `pike.top`: one row per source, as the daemon ordered them.
pub fn pike_top(top: &[PikeSource], p: &mut Printer, out: &mut impl Write) -> io::Result<()> {
    if top.is_empty() {
        return writeln!(
            out,
            "no sources tracked (none sent requests lately; [pike] trusted sources are never counted)"
        );
    }
    let mut g = Grid::new(&["Source", "Requests in window", "Blocked", "Dropped"]);
    for s in top {
        g.add(vec![
            cell(&s.ip),
            s.requests_in_window.to_string(),
            if s.blocked { "yes" } else { "no" }.to_owned(),
            s.dropped.to_string(),
        ]);
    }
    p.grid(&g, out)?;
    let blocked = top.iter().filter(|p| p.blocked).count();
    writeln!(
        out,
        "{} source{}, {blocked} blocked",
        top.len(),
        plural(top.len())
    )
}

pub fn uptime(u: &Uptime, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "up {} (since {} UTC)",
        duration(u.uptime),
        safe(&u.up_since)
    )
}

/// Re-indents compact JSON text for `--json`, streaming: `ul.dump` of a
/// big table is tens of megabytes, and going through a `serde_json::Value`
/// would hold it twice more in memory and take several times as long.
/// Strings are copied byte for byte, so nothing is re-escaped, except DEL
/// and C1 controls (U+0080..U+009F), which JSON allows raw but a terminal
/// acts on: they are written `\u007f`, `\u009b`, the same JSON string.
pub fn pretty_json(text: &str, out: &mut impl Write) -> io::Result<()> {
    let mut p = Pretty::new(out);
    p.write(text)?;
    p.finish()
}

/// [`pretty_json`] fed in pieces: the text of one JSON document, cut
/// anywhere, is written as it arrives, with the same output as
/// `pretty_json` of the whole. kamrsctl prints `ul.dump` page by page
/// with it.
pub struct Pretty<W: Write> {
    out: io::BufWriter<W>,
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// An opening bracket not written yet: `{}`/`[]` stay on one line, so
    /// what follows decides how it is written.
    open: Option<u8>,
    /// A string's piece ended on 0xC2, the first byte of a C1 control's
    /// UTF-8 (or of another character): decided by the next piece.
    pending_c2: bool,
}

impl<W: Write> Pretty<W> {
    pub fn new(out: W) -> Self {
        Pretty {
            out: io::BufWriter::with_capacity(1 << 16, out),
            depth: 0,
            in_string: false,
            escaped: false,
            open: None,
            pending_c2: false,
        }
    }

    fn indent(&mut self) -> io::Result<()> {
        self.out.write_all(b"\n")?;
        for _ in 0..self.depth {
            self.out.write_all(b"  ")?;
        }
        Ok(())
    }

    /// Writes the next piece of the document.
    pub fn write(&mut self, text: &str) -> io::Result<()> {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if self.in_string {
                // A C2 that ended the previous piece: a C1 control if this
                // piece starts with 80..9F.
                if self.pending_c2 {
                    self.pending_c2 = false;
                    if (0x80..=0x9f).contains(&bytes[i]) {
                        write!(self.out, "\\u{:04x}", bytes[i])?;
                        i += 1;
                    } else {
                        self.out.write_all(&[0xc2])?;
                    }
                    continue;
                }
                let start = i;
                let mut end = None;
                while i < bytes.len() {
                    let b = bytes[i];
                    if self.escaped {
                        self.escaped = false;
                    } else if b == b'\\' {
                        self.escaped = true;
                    } else if b == b'"' {
                        self.in_string = false;
                        i += 1;
                        break;
                    } else if b == 0x7f || b == 0xc2 {
                        // DEL and C1 controls, which JSON allows raw but a
                        // terminal acts on: written as \u escapes, the
                        // same JSON string.
                        end = Some(i);
                        break;
                    }
                    i += 1;
                }
                let Some(at) = end else {
                    self.out.write_all(&bytes[start..i])?;
                    continue;
                };
                self.out.write_all(&bytes[start..at])?;
                if bytes[at] == 0x7f {
                    self.out.write_all(b"\\u007f")?;
                    i = at + 1;
                } else {
                    match bytes.get(at + 1) {
                        Some(&n) if (0x80..=0x9f).contains(&n) => {
                            write!(self.out, "\\u{n:04x}")?;
                            i = at + 2;
                        }
                        Some(_) => {
                            self.out.write_all(&[0xc2])?;
                            i = at + 1;
                        }
                        None => {
                            self.pending_c2 = true;
                            i = at + 1;
                        }
                    }
                }
                continue;
            }
            let b = bytes[i];
            i += 1;
            if b.is_ascii_whitespace() {
                continue;
            }
            if let Some(open) = self.open.take() {
                let close = if open == b'{' { b'}' } else { b']' };
                if b == close {
                    self.out.write_all(&[open, close])?;
                    continue;
                }
                self.depth += 1;
                self.out.write_all(&[open])?;
                self.indent()?;
            }
            match b {
                b'"' => {
                    self.in_string = true;
                    self.out.write_all(b"\"")?;
                }
                b'{' | b'[' => self.open = Some(b),
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    self.indent()?;
                    self.out.write_all(&[b])?;
                }
                b',' => {
                    self.out.write_all(b",")?;
                    self.indent()?;
                }
                b':' => self.out.write_all(b": ")?,
                c => self.out.write_all(&[c])?,
            }
        }
        Ok(())
    }

    /// Ends the document (a final newline) and flushes.
    pub fn finish(mut self) -> io::Result<()> {
        if let Some(open) = self.open.take() {
            self.depth += 1;
            self.out.write_all(&[open])?;
            self.indent()?;
        }
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bordered table, as on a UTF-8 terminal with no width limit.
    fn printer() -> Printer {
        Printer::new(Style {
            layout: Layout::Auto,
            width: None,
            borders: Borders::Utf8,
        })
    }

    fn contact(address: &str, user_agent: &str) -> Contact {
        Contact {
            address: address.into(),
            expires: Expires::Seconds(3597),
            q: -1.0,
            call_id: "c".into(),
            cseq: 1,
            user_agent: user_agent.into(),
            received: "sip:192.0.2.1:5060".into(),
            path: NOT_SET.into(),
            state: "CS_NEW".into(),
            flags: 0,
            cflags: 0,
            socket: "udp:127.0.0.1:5060".into(),
            methods: u32::MAX,
            ruid: "r".into(),
            instance: NOT_SET.into(),
            reg_id: 0,
            server_id: 0,
            tcpconn_id: -1,
            keepalive: 0,
            last_keepalive: 0,
            ka_roundtrip: 0,
            last_modified: 1_718_863_898,
        }
    }

    fn dump_text(style: Style, contacts: &[Contact]) -> String {
        let entries: Vec<AorEntry> = contacts
            .iter()
            .map(|c| AorEntry::Full {
                info: common::types::AorInfo {
                    aor: "alice".into(),
                    hash_id: 0,
                    contacts: vec![common::types::ContactEntry { contact: c.clone() }],
                },
            })
            .collect();
        let mut out = Vec::new();
        let mut p = Printer::new(style);
        dump_page(&entries, &mut p, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    const LONG_UA: &str = "Polycom/6.4.3.4533 PolycomVVX-VVX_450-UA/6.4.3.4533 extra words";

    #[test]
    fn the_style_follows_columns_the_terminal_and_the_locale() {
        let utf8 = || [None, None, Some("en_US.UTF-8".to_owned())];
        let s = Style::decide(Layout::Auto, true, Some(100), None, utf8());
        assert_eq!((s.width, s.borders), (Some(100), Borders::Utf8));
        // COLUMNS wins over the terminal, and applies to a pipe too.
        let s = Style::decide(Layout::Auto, true, Some(100), Some("60"), utf8());
        assert_eq!(s.width, Some(60));
        let s = Style::decide(Layout::Auto, false, None, Some("60"), utf8());
        assert_eq!((s.width, s.borders), (Some(60), Borders::Plain));
        // Garbage or 0 in COLUMNS is ignored.
        for bad in ["", "0", "wide", "-5"] {
            let s = Style::decide(Layout::Auto, true, Some(90), Some(bad), utf8());
            assert_eq!(s.width, Some(90), "{bad:?}");
        }
        // Not a terminal: no limit, plain columns.
        let s = Style::decide(Layout::Auto, false, None, None, utf8());
        assert_eq!((s.width, s.borders), (None, Borders::Plain));
        // LC_ALL overrides LC_CTYPE overrides LANG; empty ones are skipped;
        // none is the C locale.
        let ascii = |vars: [Option<&str>; 3]| {
            Style::decide(
                Layout::Auto,
                true,
                None,
                None,
                vars.map(|v| v.map(str::to_owned)),
            )
            .borders
        };
        assert_eq!(
            ascii([Some("C"), None, Some("en_US.UTF-8")]),
            Borders::Ascii
        );
        assert_eq!(
            ascii([Some(""), Some("de_DE.utf8"), Some("C")]),
            Borders::Utf8
        );
        assert_eq!(ascii([None, None, Some("POSIX")]), Borders::Ascii);
        assert_eq!(ascii([None, None, None]), Borders::Ascii);
    }

    #[test]
    fn a_table_that_fits_stays_a_table_of_the_width_computed() {
        let c = [contact("sip:alice@192.0.2.1:5060", "Yealink SIP-T46S")];
        for borders in [Borders::Utf8, Borders::Ascii, Borders::Plain] {
            let style = Style {
                layout: Layout::Table,
                width: None,
                borders,
            };
            let text = dump_text(style, &c);
            let widest = text.lines().map(|l| l.width()).max().unwrap();
            let mut g = Grid::new(&["AoR"]);
            g.header.extend(CONTACT_HEADER);
            g.breakable = vec![false; g.header.len()];
            let mut row = vec!["alice".to_owned()];
            row.extend(contact_cells(&c[0]));
            g.add(row);
            assert_eq!(widest, g.table_width(borders), "{borders:?}\n{text}");
            // Auto with exactly that width: still the table.
            let auto = Style {
                layout: Layout::Auto,
                width: Some(widest),
                borders,
            };
            assert_eq!(dump_text(auto, &c), text);
            assert!(!text.contains("RECORD"), "{text}");
        }
        let ascii = dump_text(
            Style {
                layout: Layout::Table,
                width: None,
                borders: Borders::Ascii,
            },
            &c,
        );
        assert!(ascii.is_ascii() && ascii.contains("+--"), "{ascii}");
        let plain = dump_text(
            Style {
                layout: Layout::Table,
                width: None,
                borders: Borders::Plain,
            },
            &c,
        );
        assert!(plain.is_ascii() && !plain.contains('|'), "{plain}");
        assert!(plain.starts_with("AoR    Contact"), "{plain}");
    }

    #[test]
    fn a_table_too_wide_becomes_records_with_every_uri_whole() {
        let uris = [
            "sip:alice@127.0.0.1:5062;transport=udp",
            "sip:alice@[2001:db8::1]:5060;ob",
        ];
        let c: Vec<Contact> = uris.iter().map(|u| contact(u, LONG_UA)).collect();
        for width in [60, 80] {
            let style = Style {
                layout: Layout::Auto,
                width: Some(width),
                borders: Borders::Utf8,
            };
            let text = dump_text(style, &c);
            assert!(
                text.starts_with("-[ RECORD 1 ]-\nAoR:           alice\n"),
                "{text}"
            );
            assert!(text.contains("-[ RECORD 2 ]-"), "{text}");
            for uri in uris {
                assert!(
                    text.lines().any(|l| l == format!("Contact:       {uri}")),
                    "{uri} whole in\n{text}"
                );
            }
            assert!(text.contains("Expires:       59m 57s"), "{text}");
            for line in text.lines() {
                assert!(line.width() <= width, "{line:?} over {width}\n{text}");
            }
            // The User-Agent was folded at spaces, all of it kept.
            let ua: Vec<&str> = text
                .lines()
                .skip_while(|l| !l.starts_with("User-Agent:"))
                .take_while(|l| !l.starts_with("Last-Modified:"))
                .map(|l| l.trim_start_matches("User-Agent:").trim())
                .collect();
            assert_eq!(ua.join(" "), LONG_UA, "{text}");
        }
        // Forced, whatever the width.
        let style = Style {
            layout: Layout::Vertical,
            width: None,
            borders: Borders::Plain,
        };
        assert!(dump_text(style, &c[..1]).starts_with("-[ RECORD 1 ]-"));
        let style = Style {
            layout: Layout::Table,
            width: Some(20),
            borders: Borders::Plain,
        };
        assert!(!dump_text(style, &c).contains("RECORD"));
    }

    #[test]
    fn records_are_numbered_across_pages_and_stay_vertical() {
        let mut p = Printer::new(Style {
            layout: Layout::Auto,
            width: Some(60),
            borders: Borders::Utf8,
        });
        let wide = AorEntry::Full {
            info: common::types::AorInfo {
                aor: "alice".into(),
                hash_id: 0,
                contacts: vec![common::types::ContactEntry {
                    contact: contact("sip:alice@192.0.2.1", LONG_UA),
                }],
            },
        };
        let mut out = Vec::new();
        dump_page(std::slice::from_ref(&wide), &mut p, &mut out).unwrap();
        // A page that would fit on its own keeps the layout chosen.
        let narrow = AorEntry::Full {
            info: common::types::AorInfo {
                aor: "b".into(),
                hash_id: 0,
                contacts: vec![common::types::ContactEntry {
                    contact: Contact {
                        received: NOT_SET.into(),
                        ..contact("sip:b@h", "x")
                    },
                }],
            },
        };
        dump_page(std::slice::from_ref(&narrow), &mut p, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("-[ RECORD 2 ]-\nAoR:           b\n"),
            "{text}"
        );
    }

    #[test]
    fn folding_cuts_at_spaces_only() {
        assert_eq!(fold("a b c", 3), ["a b", "c"]);
        assert_eq!(fold("abcdef gh", 3), ["abcdef", "gh"]);
        assert_eq!(fold("abcdef", 3), ["abcdef"]);
        assert_eq!(fold("ab  cd", 10), ["ab  cd"]);
    }

    #[test]
    fn json_stats_is_an_object_of_numbers_in_the_daemons_order() {
        let lines = [
            "usrloc:registered_users = 3".to_owned(),
            "core:rcv_requests = 18446744073709551615".to_owned(),
            "x:odd = n/a".to_owned(),
            "usrloc:registered_users = 3".to_owned(),
        ];
        let text = stats_object(&lines);
        assert_eq!(
            text,
            r#"{"usrloc:registered_users":3,"core:rcv_requests":18446744073709551615,"x:odd":"n/a"}"#
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["usrloc:registered_users"], 3);
        assert_eq!(stats_object(&[]), "{}");
    }

    #[test]
    fn durations_read_like_a_person_would_say_them() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(3552), "59m 12s");
        // Down to seconds at every size: a binding registered for an hour
        // reads 1h 0m 0s, then 59m 59s, never a rounded 1h 0m.
        assert_eq!(duration(3600), "1h 0m 0s");
        assert_eq!(duration(3599), "59m 59s");
        assert_eq!(duration(7322), "2h 2m 2s");
        assert_eq!(duration(90_061), "1d 1h 1m 1s");
        assert_eq!(expires(&Expires::Permanent), "permanent");
        assert_eq!(expires(&Expires::Expired), "expired");
        assert_eq!(expires(&Expires::Seconds(61)), "1m 1s");
    }

    #[test]
    fn q_values() {
        assert_eq!(q(-1.0), "-");
        assert_eq!(q(1.0), "1");
        assert_eq!(q(0.5), "0.5");
        assert_eq!(q(0.123), "0.123");
    }

    #[test]
    fn local_time_is_a_date_and_time() {
        let t = local_time(1_718_863_898);
        assert_eq!(t.len(), 19, "{t}");
        assert!(t.starts_with("2024-06-2"), "{t}");
    }

    fn pretty(s: &str) -> String {
        let mut out = Vec::new();
        pretty_json(s, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn pretty_json_matches_serde_json_pretty() {
        for text in [
            r#"{"a":[1,2,{"b":"x,y:{[\"}]"}],"c":{},"d":[],"e":null,"f":"[not set]"}"#,
            r#"[]"#,
            r#""just a string""#,
            r#"{"Domains":[{"Domain":{"AoRs":[{"AoR":"a\\"}],"Domain":"location"}}]}"#,
        ] {
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            let want = serde_json::to_string_pretty(&value).unwrap() + "\n";
            // (Inputs with sorted keys: serde_json's map sorts them.)
            assert_eq!(pretty(text), want, "{text}");
        }
        // Key order is kept, and the text means the same.
        let text = r#"{"z":1,"a":{"y":[true,false],"b":"\u00e9 \"q\""}}"#;
        let out = pretty(text);
        assert!(out.find("\"z\"") < out.find("\"a\""), "{out}");
        let again: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            again,
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );
    }

    #[test]
    fn pretty_json_escapes_del_and_c1_controls() {
        let text = "{\"ua\":\"a\u{9b}31m\u{7f}\u{e9}\u{c2}\u{85}\",\"k\u{9b}\":1}";
        let want = pretty(text);
        assert_eq!(
            want,
            "{\n  \"ua\": \"a\\u009b31m\\u007f\u{e9}\u{c2}\\u0085\",\n  \"k\\u009b\": 1\n}\n"
        );
        let back: serde_json::Value = serde_json::from_str(&want).unwrap();
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );
        // Cut anywhere, the C2 of a C1 control included.
        for cut in 0..=text.len() {
            if !text.is_char_boundary(cut) {
                continue;
            }
            let mut out = Vec::new();
            let mut p = Pretty::new(&mut out);
            p.write(&text[..cut]).unwrap();
            p.write(&text[cut..]).unwrap();
            p.finish().unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), want, "cut at {cut}");
        }
    }

    #[test]
    fn pretty_json_in_pieces_matches_the_whole() {
        for text in [
            r#"{"a":[1,2,{"b":"x,y:{[\"}]\\"}],"c":{},"d":[ ],"e":null,"f":"[not set]"}"#,
            r#"{"Domains":[{"Domain":{"Domain":"location","Size":1024,"AoRs":[],"Stats":{"Records":0}}}]}"#,
        ] {
            let want = pretty(text);
            // Cut at every byte: inside strings, escapes and `{}`.
            for cut in 0..=text.len() {
                let mut out = Vec::new();
                let mut p = Pretty::new(&mut out);
                p.write(&text[..cut]).unwrap();
                p.write(&text[cut..]).unwrap();
                p.finish().unwrap();
                assert_eq!(String::from_utf8(out).unwrap(), want, "{text} cut at {cut}");
            }
        }
    }

    #[test]
    fn subscriber_and_pike_tables() {
        let text = |f: &dyn Fn(&mut Vec<u8>) -> io::Result<()>| {
            let mut out = Vec::new();
            f(&mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let list = [SubscriberEntry {
            username: "alice".into(),
            domain: "example.com".into(),
        }];
        let t = text(&|o| subscribers(&list, &mut printer(), o));
        assert!(
            t.contains("alice") && t.contains("example.com") && t.ends_with("1 subscriber\n"),
            "{t}"
        );
        assert!(text(&|o| subscribers(&[], &mut printer(), o)).starts_with("no subscribers"));
        let top = [
            PikeSource {
                ip: "127.0.0.2".into(),
                requests_in_window: 21,
                blocked: true,
                dropped: 79,
            },
            PikeSource {
                ip: "192.0.2.1".into(),
                requests_in_window: 3,
                blocked: false,
                dropped: 0,
            },
        ];
        let t = text(&|o| pike_top(&top, &mut printer(), o));
        assert!(t.find("127.0.0.2") < t.find("192.0.2.1"), "{t}");
        assert!(t.contains("yes") && t.contains("79"), "{t}");
        assert!(t.ends_with("2 sources, 1 blocked\n"), "{t}");
        assert!(text(&|o| pike_top(&[], &mut printer(), o)).starts_with("no sources tracked"));
    }

    #[test]
    fn tables_show_the_columns() {
        let c = Contact {
            expires: Expires::Seconds(3552),
            q: 0.5,
            ..contact("sip:alice@192.0.2.1:5060", "Yealink")
        };
        let l = UlLookup {
            aor: "alice".into(),
            contacts: vec![common::types::ContactEntry { contact: c }],
        };
        let mut out = Vec::new();
        lookup(&l, &mut printer(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for want in [
            "AoR alice",
            "sip:alice@192.0.2.1:5060",
            "59m 12s",
            "0.5",
            "Yealink",
            "Last-Modified",
        ] {
            assert!(text.contains(want), "{want} in\n{text}");
        }
        let mut out = Vec::new();
        stats(
            &["usrloc:registered_users = 3".to_owned()],
            &mut printer(),
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("usrloc:registered_users") && text.contains('3'),
            "{text}"
        );
    }

    /// What a hostile phone can put in a binding reaches no renderer raw:
    /// the only control character in human output is each line's LF.
    #[test]
    fn every_renderer_escapes_control_characters() {
        const EVIL: &str = "x\x1b[2J\x1b]0;pwned\x07\u{9b}31m\x08\x7f\r\nFORGED";
        let c = Contact {
            address: format!("sip:{EVIL}@h"),
            expires: Expires::Seconds(60),
            q: -1.0,
            call_id: EVIL.into(),
            cseq: 1,
            user_agent: EVIL.into(),
            received: EVIL.into(),
            path: EVIL.into(),
            state: "CS_NEW".into(),
            flags: 0,
            cflags: 0,
            socket: "udp:127.0.0.1:5060".into(),
            methods: 0,
            ruid: "r".into(),
            instance: NOT_SET.into(),
            reg_id: 0,
            server_id: 0,
            tcpconn_id: -1,
            keepalive: 0,
            last_keepalive: 0,
            ka_roundtrip: 0,
            last_modified: 0,
        };
        let entry = common::types::ContactEntry { contact: c };
        let full = AorEntry::Full {
            info: common::types::AorInfo {
                aor: EVIL.into(),
                hash_id: 0,
                contacts: vec![entry.clone()],
            },
        };
        let brief = AorEntry::Brief { aor: EVIL.into() };
        let mut outputs: Vec<Vec<u8>> = Vec::new();
        let mut run = |f: &dyn Fn(&mut Vec<u8>) -> io::Result<()>| {
            let mut out = Vec::new();
            f(&mut out).unwrap();
            outputs.push(out);
        };
        for layout in [Layout::Table, Layout::Vertical] {
            for borders in [Borders::Utf8, Borders::Ascii, Borders::Plain] {
                let p = || {
                    Printer::new(Style {
                        layout,
                        width: Some(40),
                        borders,
                    })
                };
                run(&|o| dump_page(std::slice::from_ref(&full), &mut p(), o).map(|_| ()));
                run(&|o| dump_page(std::slice::from_ref(&brief), &mut p(), o).map(|_| ()));
                run(&|o| {
                    lookup(
                        &UlLookup {
                            aor: EVIL.into(),
                            contacts: vec![entry.clone()],
                        },
                        &mut p(),
                        o,
                    )
                });
                run(&|o| stats(&[format!("{EVIL} = {EVIL}"), EVIL.to_owned()], &mut p(), o));
                run(&|o| {
                    subscribers(
                        &[SubscriberEntry {
                            username: EVIL.into(),
                            domain: EVIL.into(),
                        }],
                        &mut p(),
                        o,
                    )
                });
                run(&|o| {
                    pike_top(
                        &[PikeSource {
                            ip: EVIL.into(),
                            requests_in_window: 1,
                            blocked: false,
                            dropped: 0,
                        }],
                        &mut p(),
                        o,
                    )
                });
            }
        }
        for out in outputs {
            let text = String::from_utf8(out).unwrap();
            assert!(
                !text.chars().any(|c| c.is_control() && c != '\n'),
                "{text:?}"
            );
            assert!(text.contains("\\u{1b}[2J"), "{text}");
            assert!(
                !text.lines().any(|l| l.starts_with("FORGED")),
                "a line was forged:\n{text}"
            );
        }
    }
}
