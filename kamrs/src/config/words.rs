//! Config errors in the admin's words.
//!
//! serde and toml describe a bad value in Rust's terms (`invalid type:
//! string "3600", expected u32`). Every key is listed here with what kind
//! of value it takes, so that [`value_message`] can say instead "expected a
//! whole number of seconds, e.g. 3600, not the string "3600" (write it
//! without quotes)", and [`unknown_key_message`] can suggest the key the
//! admin probably meant. A unit test checks that the list matches
//! [`super::Config`], so a new key cannot be forgotten here.

/// What a key takes, in the words an error message uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Seconds,
    Milliseconds,
    Bytes,
    /// A whole number that is not a duration or a size.
    Count,
    Bool,
    /// `listen`: `udp:IP:PORT` / `tcp:` / `tls:` / `ws:` / `wss:` entries.
    Addresses,
    /// A list of strings; the example is written as TOML.
    Strings(&'static str),
    /// One string; the example is written as TOML.
    Text(&'static str),
    /// One of these strings.
    Choice(&'static [&'static str]),
    /// A `[table]`.
    Table,
}

/// Every key of the configuration (dotted for table keys) and its kind.
pub(super) const KEYS: &[(&str, Kind)] = &[
    ("listen", Kind::Addresses),
    ("default_expires", Kind::Seconds),
    ("min_expires", Kind::Seconds),
    ("min_expires_mode", Kind::Choice(&["reject", "raise"])),
    ("max_expires", Kind::Seconds),
    ("max_contacts", Kind::Count),
    (
        "max_contacts_policy",
        Kind::Choice(&["reject", "evict-oldest"]),
    ),
    ("use_domain", Kind::Bool),
    ("use_path", Kind::Bool),
    ("contact_max_size", Kind::Bytes),
    ("callid_max_size", Kind::Bytes),
    ("user_agent_max_size", Kind::Bytes),
    ("nat_uac_test", Kind::Count),
    ("nat_bflag", Kind::Count),
    ("flow_timer", Kind::Seconds),
    ("ka_mode", Kind::Count),
    ("ka_interval", Kind::Seconds),
    ("ka_randomize", Kind::Bool),
    ("ka_method", Kind::Choice(&["OPTIONS", "CRLF"])),
    (
        "ka_from",
        Kind::Text("\"sip:keepalive@registrar.example.com\""),
    ),
    ("ka_timeout", Kind::Seconds),
    ("server_id", Kind::Count),
    ("max_bindings", Kind::Count),
    ("max_table_bytes", Kind::Bytes),
    ("max_message_size", Kind::Bytes),
    ("max_headers", Kind::Count),
    ("max_line_length", Kind::Bytes),
    ("tcp_connection_lifetime", Kind::Seconds),
    ("handle_lost_tcp", Kind::Bool),
    ("close_expired_tcp", Kind::Bool),
    ("tcp_max_connections", Kind::Count),
    ("tcp_accept_iplimit", Kind::Count),
    ("tcp_msg_read_timeout", Kind::Seconds),
    ("tcp_msg_data_timeout", Kind::Seconds),
    ("tcp_conn_wq_max", Kind::Bytes),
    ("tcp_send_timeout", Kind::Seconds),
    ("tcp_wq_max", Kind::Bytes),
    ("force_rport", Kind::Bool),
    ("udp_workers", Kind::Count),
    ("udp_reply_max_size", Kind::Bytes),
    ("ctl", Kind::Table),
    (
        "ctl.listen",
        Kind::Text("\"unix:/run/kamrs/kamrs.sock\" or \"http://127.0.0.1:5065\""),
    ),
    ("ctl.token_file", Kind::Text("\"/etc/kamrs/ctl.token\"")),
    ("ctl.max_request_size", Kind::Bytes),
    ("ctl.max_response_size", Kind::Bytes),
    ("ctl.max_batch", Kind::Count),
    ("ctl.max_connections", Kind::Count),
    (
        "ctl.allowed_origins",
        Kind::Strings("[\"https://admin.example.com\"]"),
    ),
    ("store", Kind::Table),
    ("store.backend", Kind::Choice(&["none", "sqlite", "redis"])),
    ("store.path", Kind::Text("\"/var/lib/kamrs/location.db\"")),
    ("store.url", Kind::Text("\"redis://127.0.0.1:6379\"")),
    ("store.mode", Kind::Choice(&["write-through", "write-back"])),
    ("store.write_back_interval", Kind::Milliseconds),
    ("store.queue_size", Kind::Count),
    ("auth", Kind::Table),
    ("auth.mode", Kind::Choice(&["none", "digest"])),
    ("auth.realm", Kind::Text("\"example.com\"")),
    ("auth.algorithms", Kind::Strings("[\"SHA-256\", \"MD5\"]")),
    ("auth.nonce_expires", Kind::Seconds),
    ("auth.max_failures", Kind::Count),
    (
        "auth.secret_file",
        Kind::Text("\"/var/lib/kamrs/nonce.secret\""),
    ),
    (
        "auth.subscribers",
        Kind::Text("\"/etc/kamrs/subscribers.toml\""),
    ),
    ("auth.allow_open_registrar", Kind::Bool),
    ("auth.lockout_failures", Kind::Count),
    ("auth.lockout_source_failures", Kind::Count),
    ("auth.lockout_user_failures", Kind::Count),
    ("auth.lockout_window", Kind::Seconds),
    ("auth.lockout_time", Kind::Seconds),
    ("pike", Kind::Table),
    ("pike.enabled", Kind::Bool),
    ("pike.window", Kind::Seconds),
    ("pike.max_requests", Kind::Count),
    ("pike.block_time", Kind::Seconds),
    (
        "pike.trusted",
        Kind::Strings("[\"10.0.0.0/8\", \"192.0.2.7\"]"),
    ),
    ("pike.max_tracked", Kind::Count),
    ("log", Kind::Table),
    (
        "log.level",
        Kind::Choice(&["off", "error", "warn", "info", "debug", "trace"]),
    ),
    ("log.format", Kind::Choice(&["text", "json"])),
    (
        "log.refreshes",
        Kind::Choice(&["off", "error", "warn", "info", "debug", "trace"]),
    ),
    ("events", Kind::Table),
    (
        "events.webhook",
        Kind::Text("\"http://127.0.0.1:8080/kamrs-events\""),
    ),
    (
        "events.webhook_token_file",
        Kind::Text("\"/etc/kamrs/webhook.token\""),
    ),
    ("events.webhook_batch", Kind::Count),
    ("events.webhook_queue", Kind::Count),
    ("events.webhook_timeout", Kind::Seconds),
    ("tls", Kind::Table),
    (
        "tls.certificate",
        Kind::Text("\"/etc/kamrs/tls/fullchain.pem\""),
    ),
    (
        "tls.private_key",
        Kind::Text("\"/etc/kamrs/tls/privkey.pem\""),
    ),
    ("tls.verify_client", Kind::Bool),
    (
        "tls.ca_list",
        Kind::Text("\"/etc/kamrs/tls/clients-ca.pem\""),
    ),
    ("tls.min_version", Kind::Choice(&["1.2", "1.3"])),
    ("tls.handshake_timeout", Kind::Seconds),
    ("websocket", Kind::Table),
    (
        "websocket.allowed_origins",
        Kind::Strings("[\"https://phone.example.com\"]"),
    ),
    ("websocket.keepalive_timeout", Kind::Seconds),
    ("websocket.handshake_timeout", Kind::Seconds),
    ("websocket.handle_lost_tcp", Kind::Bool),
    ("route", Kind::Table),
    (
        "route.mode",
        Kind::Choice(&["registrar", "proxy", "redirect"]),
    ),
    ("route.domains", Kind::Strings("[\"example.com\"]")),
    ("route.relay_foreign", Kind::Bool),
    ("route.record_route", Kind::Bool),
    ("route.fr_timer", Kind::Milliseconds),
    ("route.fr_inv_timer", Kind::Milliseconds),
    ("route.max_transactions", Kind::Count),
    ("route.serial_forking", Kind::Bool),
    ("route.authenticate_calls", Kind::Bool),
    ("route.accept_foreign_callers", Kind::Bool),
    (
        "route.secret",
        Kind::Text("\"a long random string, the same on every node\""),
    ),
];

pub(super) fn kind_of(key: &str) -> Option<Kind> {
    KEYS.iter().find(|(k, _)| *k == key).map(|&(_, kind)| kind)
}

/// An example value for `key`: its default when that says something (not
/// 0), else one typical of its kind.
fn example(key: &str, kind: Kind) -> String {
    let fallback = match kind {
        Kind::Seconds => "3600",
        Kind::Milliseconds => "1000",
        Kind::Bytes => "65536",
        Kind::Count => "10",
        _ => "",
    };
    default_number(key)
        .filter(|&n| n != 0)
        .map(|n| n.to_string())
        .unwrap_or_else(|| fallback.to_owned())
}

/// The default of a numeric key, from [`super::Config::default`].
fn default_number(key: &str) -> Option<i64> {
    let text = super::Config::default().to_toml_string();
    let doc: toml::Table = toml::from_str(&text).ok()?;
    let mut value: Option<&toml::Value> = None;
    let mut table = &doc;
    for part in key.split('.') {
        let v = table.get(part)?;
        if let Some(t) = v.as_table() {
            table = t;
        }
        value = Some(v);
    }
    value?.as_integer()
}

/// What `key` must be, e.g. "expected a whole number of seconds, e.g. 3600".
pub(super) fn expected(key: &str, kind: Kind) -> String {
    match kind {
        Kind::Seconds => format!(
            "expected a whole number of seconds, e.g. {}",
            example(key, kind)
        ),
        Kind::Milliseconds => format!(
            "expected a whole number of milliseconds, e.g. {}",
            example(key, kind)
        ),
        Kind::Bytes => format!(
            "expected a whole number of bytes, e.g. {}",
            example(key, kind)
        ),
        Kind::Count => format!("expected a whole number, e.g. {}", example(key, kind)),
        Kind::Bool => "expected true or false".to_owned(),
        Kind::Addresses => {
            "expected a list of addresses, e.g. [\"udp:0.0.0.0:5060\", \"tcp:0.0.0.0:5060\"]"
                .to_owned()
        }
        Kind::Strings(ex) => format!("expected a list of quoted strings, e.g. {ex}"),
        Kind::Text(ex) => format!("expected a quoted string, e.g. {ex}"),
        Kind::Choice(values) => format!("expected {}", one_of(values)),
        Kind::Table => {
            let name = key.rsplit('.').next().unwrap_or(key);
            format!("expected a table: write `[{name}]` on a line of its own, with its keys on the lines below")
        }
    }
}

/// `"a" or "b"`, `one of "a", "b", "c"`.
fn one_of(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
    match quoted.as_slice() {
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        _ => format!("one of {}", quoted.join(", ")),
    }
}

fn is_number_kind(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Seconds | Kind::Milliseconds | Kind::Bytes | Kind::Count
    )
}

/// A hint for a number written with a unit (`1h`, `64k`), else "".
fn no_units(kind: Kind, written: &str) -> &'static str {
    let w = written.trim();
    if !(w.starts_with(|c: char| c.is_ascii_digit())
        && w.ends_with(|c: char| c.is_ascii_alphabetic()))
    {
        return "";
    }
    match kind {
        Kind::Seconds => " (no units: write the number of seconds)",
        Kind::Milliseconds => " (no units: write the number of milliseconds)",
        Kind::Bytes => " (no units: write the number of bytes)",
        _ => " (no units: write a plain number)",
    }
}

/// The text between the first pair of `open`/`close` after `prefix`.
fn quoted_after<'a>(message: &'a str, prefix: &str, open: char, close: char) -> Option<&'a str> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    let rest = rest.strip_prefix(open)?;
    Some(&rest[..rest.find(close)?])
}

/// The largest value of the integer type serde names ("expected u32").
fn type_max(message: &str) -> Option<u64> {
    let ty = message.rsplit("expected ").next()?.trim();
    Some(match ty {
        "u8" => u64::from(u8::MAX),
        "u16" => u64::from(u16::MAX),
        "u32" => u64::from(u32::MAX),
        "u64" | "usize" => u64::MAX,
        _ => return None,
    })
}

/// Rewrites serde's or toml's message about the value of `key`, or None
/// when it is not one of the Rust-worded kinds (a custom message such as
/// a bad listen address is already in the admin's words). `raw` is the
/// value as written in the file, when known.
pub(super) fn value_message(key: &str, message: &str, raw: Option<&str>) -> Option<String> {
    let kind = kind_of(key)?;
    let want = expected(key, kind);
    // toml's own: an unquoted word such as `1h` or `yes`.
    if message.starts_with("string values must be quoted") {
        let raw = raw.filter(|r| !r.is_empty());
        return Some(match (kind, raw) {
            (k, Some(r)) if is_number_kind(k) => format!("{want}, not `{r}`{}", no_units(k, r)),
            (Kind::Bool, Some(r)) => format!("{want}, not `{r}`"),
            (_, Some(r)) => format!("{want}, not `{r}` (put it in double quotes)"),
            (_, None) => want,
        });
    }
    if let Some(s) = quoted_after(message, "invalid type: string ", '"', '"') {
        let unquoted_fits = (is_number_kind(kind) && s.trim().parse::<u64>().is_ok())
            || (kind == Kind::Bool && matches!(s.trim(), "true" | "false"));
        let hint = if unquoted_fits {
            " (write it without quotes)"
        } else if is_number_kind(kind) {
            no_units(kind, s)
        } else {
            ""
        };
        return Some(format!("{want}, not the string \"{s}\"{hint}"));
    }
    if let Some(n) = quoted_after(message, "invalid value: integer ", '`', '`') {
        if n.starts_with('-') {
            return Some(format!("{want}, not {n} (it cannot be negative)"));
        }
        if let Some(max) = type_max(message) {
            return Some(format!(
                "{want}, not {n}: that is too large (at most {max})"
            ));
        }
        return Some(format!("{want}, not {n}"));
    }
    if let Some(x) = quoted_after(message, "invalid type: floating point ", '`', '`') {
        let hint = if is_number_kind(kind) {
            " (no fractions)"
        } else {
            ""
        };
        return Some(format!("{want}, not {x}{hint}"));
    }
    if let Some(x) = quoted_after(message, "invalid type: integer ", '`', '`') {
        return Some(format!("{want}, not {x}"));
    }
    if let Some(x) = quoted_after(message, "invalid type: boolean ", '`', '`') {
        return Some(format!("{want}, not {x}"));
    }
    if message.starts_with("invalid type: sequence") {
        return Some(format!("{want}, not a list"));
    }
    if message.starts_with("invalid type: map") {
        return Some(format!("{want}, not a table"));
    }
    if message.starts_with("invalid type: ") || message.starts_with("wanted ") {
        if let Some(r) = raw.filter(|r| !r.is_empty()) {
            return Some(format!("{want}, not {r}"));
        }
        return Some(want);
    }
    if let Some(v) = quoted_after(message, "unknown variant ", '`', '`') {
        return Some(match kind {
            Kind::Choice(_) => format!("{want}, not \"{v}\""),
            // An element of a list (auth.algorithms): say which values
            // serde listed.
            _ => {
                let valid = message
                    .split_once(", expected ")
                    .map(|(_, rest)| rest)
                    .unwrap_or("");
                format!("\"{v}\" is not a valid value here; expected {valid}")
            }
        });
    }
    None
}

/// Edit distance with adjacent transpositions counted as one edit
/// (`levle` → `level` is one), over chars.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The known key nearest to `name`, if near enough to be a typo: at most
/// one edit in three characters.
pub(super) fn nearest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (distance(&name, c), *c))
        .min_by_key(|&(d, _)| d)
        .filter(|&(d, _)| d * 3 <= name.chars().count().max(3))
        .map(|(_, c)| c)
}

/// The known keys of the table holding `path` (`""` for the top level),
/// last part only.
fn keys_of(table: &str) -> Vec<&'static str> {
    KEYS.iter()
        .filter_map(|(k, _)| match k.rsplit_once('.') {
            Some((t, name)) if t == table => Some(name),
            None if table.is_empty() => Some(*k),
            _ => None,
        })
        .collect()
}

/// The message for an unknown key, `path` dotted (`log.levle`): the key
/// meant when it is a typo, the table a key belongs to when it is in the
/// wrong one, else the keys that table has.
pub(super) fn unknown_key_message(path: &str) -> String {
    let (table, name) = path.rsplit_once('.').unwrap_or(("", path));
    let here = keys_of(table);
    if let Some(meant) = nearest(name, &here) {
        let shown = if table.is_empty() {
            meant.to_owned()
        } else {
            format!("{table}.{meant}")
        };
        return format!("unknown key `{path}`: did you mean `{shown}`?");
    }
    // A top-level key written below a `[table]` header belongs to that
    // table in TOML: the commonest way to get this error.
    if !table.is_empty() {
        if let Some(top) = nearest(name, &keys_of("")) {
            if kind_of(top) != Some(Kind::Table) {
                return format!(
                    "unknown key `{path}`: `{top}` is a top-level key; move it above the first `[table]` header (in TOML every key below `[{table}]` belongs to it)"
                );
            }
        }
    }
    // A table key written at the top level, or in another table.
    let elsewhere = KEYS.iter().find_map(|(k, _)| {
        let (t, n) = k.rsplit_once('.')?;
        (t != table && nearest(name, &[n]).is_some()).then_some((t, n))
    });
    if let Some((t, n)) = elsewhere {
        return format!("unknown key `{path}`: did you mean `{n}` in the `[{t}]` table?");
    }
    let list: Vec<String> = here.iter().map(|k| format!("`{k}`")).collect();
    let scope = if table.is_empty() {
        "at the top level".to_owned()
    } else {
        format!("in `[{table}]`")
    };
    format!(
        "unknown key `{path}`; the keys {scope} are {}",
        list.join(", ")
    )
}

/// A command-line value of seconds (`kamrs --max-expires 3600`), with the
/// error in the words the config file uses rather than Rust's `invalid
/// digit found in string`.
pub fn flag_seconds(s: &str) -> Result<u32, String> {
    flag_number(s, "a whole number of seconds, e.g. 3600")
}

/// A command-line count (`kamrs --max-contacts 10`).
pub fn flag_count(s: &str) -> Result<u32, String> {
    flag_number(s, "a whole number, e.g. 10")
}

fn flag_number(s: &str, what: &str) -> Result<u32, String> {
    let t = s.trim();
    match t.parse::<u32>() {
        Ok(n) => Ok(n),
        Err(_) if t.parse::<i64>().is_ok_and(|n| n < 0) => {
            Err(format!("expected {what}; it cannot be negative"))
        }
        Err(_) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("expected {what}; at most {}", u32::MAX))
        }
        Err(_) => Err(format!("expected {what}")),
    }
}

#[cfg(test)]
mod tests;
