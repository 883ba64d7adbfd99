//! Human output: tables fitted to the terminal, durations as "59m 12s",
//! times in the local zone; and the `--json` pretty printer.

use std::io::{self, Write};

use chrono::{Local, TimeZone};
use comfy_table::{presets, ContentArrangement, Table};
use common::types::{
    AorEntry, Contact, Expires, PikeSource, SubscriberEntry, UlLookup, Uptime, NOT_SET,
};

// Every string that came from the daemon goes through `cell`/`safe`
// (escape.rs): it may be what a phone sent.
use crate::escape::{cell, safe};

/// `3552` → `59m 12s`: the two largest units, which is what a person
/// reading an expiry wants.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match () {
        _ if d > 0 => format!("{d}d {h}h"),
        _ if h > 0 => format!("{h}h {m}m"),
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

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        // Fits the terminal width when there is one; piped output keeps
        // whole lines for grep.
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    t
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
pub fn dump_page(entries: &[AorEntry], out: &mut impl Write) -> io::Result<(usize, usize)> {
    let mut header = vec!["AoR"];
    header.extend(CONTACT_HEADER);
    let mut t = table(&header);
    let mut contacts = 0usize;
    let mut rows = 0usize;
    for entry in entries {
        match entry {
            AorEntry::Full { info } => {
                for c in &info.contacts {
                    contacts += 1;
                    rows += 1;
                    let mut row = vec![cell(&info.aor)];
                    row.extend(contact_cells(&c.contact));
                    t.add_row(row);
                }
            }
            AorEntry::Brief { aor } => writeln!(out, "{}", safe(aor))?,
        }
    }
    if rows > 0 {
        writeln!(out, "{t}")?;
    }
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
pub fn lookup(l: &UlLookup, out: &mut impl Write) -> io::Result<()> {
    let mut t = table(&CONTACT_HEADER);
    for c in &l.contacts {
        t.add_row(contact_cells(&c.contact));
    }
    writeln!(out, "AoR {}", safe(&l.aor))?;
    writeln!(out, "{t}")
}

/// `stats`: `group:name = value` lines as a two-column table.
pub fn stats(lines: &[String], out: &mut impl Write) -> io::Result<()> {
    let mut t = table(&["Statistic", "Value"]);
    for line in lines {
        match line.split_once(" = ") {
            Some((name, value)) => t.add_row([cell(name), cell(value)]),
            None => t.add_row([cell(line), String::new()]),
        };
    }
    writeln!(out, "{t}")
}

/// `subscriber list`: user and domain, one row each.
pub fn subscribers(list: &[SubscriberEntry], out: &mut impl Write) -> io::Result<()> {
    if list.is_empty() {
        return writeln!(
            out,
            "no subscribers (add one with `kamrsctl subscriber add USER@DOMAIN`)"
        );
    }
    let mut t = table(&["User", "Domain"]);
    for s in list {
        t.add_row([cell(&s.username), cell(&s.domain)]);
    }
    writeln!(out, "{t}")?;
    writeln!(out, "{} subscriber{}", list.len(), plural(list.len()))
}

/// `pike.top`: one row per source, as the daemon ordered them.
pub fn pike_top(top: &[PikeSource], out: &mut impl Write) -> io::Result<()> {
    if top.is_empty() {
        return writeln!(
            out,
            "no sources tracked (none sent requests lately; [pike] trusted sources are never counted)"
        );
    }
    let mut t = table(&["Source", "Requests in window", "Blocked", "Dropped"]);
    for p in top {
        t.add_row([
            cell(&p.ip),
            p.requests_in_window.to_string(),
            if p.blocked { "yes" } else { "no" }.to_owned(),
            p.dropped.to_string(),
        ]);
    }
    writeln!(out, "{t}")?;
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

    #[test]
    fn durations_read_like_a_person_would_say_them() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(3552), "59m 12s");
        assert_eq!(duration(3600), "1h 0m");
        assert_eq!(duration(7322), "2h 2m");
        assert_eq!(duration(90_061), "1d 1h");
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
        let t = text(&|o| subscribers(&list, o));
        assert!(
            t.contains("alice") && t.contains("example.com") && t.ends_with("1 subscriber\n"),
            "{t}"
        );
        assert!(text(&|o| subscribers(&[], o)).starts_with("no subscribers"));
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
        let t = text(&|o| pike_top(&top, o));
        assert!(t.find("127.0.0.2") < t.find("192.0.2.1"), "{t}");
        assert!(t.contains("yes") && t.contains("79"), "{t}");
        assert!(t.ends_with("2 sources, 1 blocked\n"), "{t}");
        assert!(text(&|o| pike_top(&[], o)).starts_with("no sources tracked"));
    }

    #[test]
    fn tables_show_the_columns() {
        let c = Contact {
            address: "sip:alice@192.0.2.1:5060".into(),
            expires: Expires::Seconds(3552),
            q: 0.5,
            call_id: "c".into(),
            cseq: 1,
            user_agent: "Yealink".into(),
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
        };
        let l = UlLookup {
            aor: "alice".into(),
            contacts: vec![common::types::ContactEntry { contact: c }],
        };
        let mut out = Vec::new();
        lookup(&l, &mut out).unwrap();
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
        stats(&["usrloc:registered_users = 3".to_owned()], &mut out).unwrap();
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
        run(&|o| dump_page(std::slice::from_ref(&full), o).map(|_| ()));
        run(&|o| dump_page(std::slice::from_ref(&brief), o).map(|_| ()));
        run(&|o| {
            lookup(
                &UlLookup {
                    aor: EVIL.into(),
                    contacts: vec![entry.clone()],
                },
                o,
            )
        });
        run(&|o| stats(&[format!("{EVIL} = {EVIL}"), EVIL.to_owned()], o));
        run(&|o| {
            subscribers(
                &[SubscriberEntry {
                    username: EVIL.into(),
                    domain: EVIL.into(),
                }],
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
                o,
            )
        });
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
