//! Reading the file: parse, check the ranges, and turn the `toml` crate's
//! byte spans into one-line `kamrs.toml:12: key …: …` messages.

use std::path::Path;

use super::check::check_ranges;
use super::{words, Config};

/// Why the configuration could not be loaded. The `Display` text is what
/// the daemon prints, so it names the file, and the line and key when known.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the config file: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Syntax, type, unknown-key and range errors, already formatted as
    /// `file:line: key `k`: what is wrong`.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Reads and validates a config file. Errors name the file, the line and
    /// the key at fault.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses config text; `origin` names it in error messages (the file
    /// path, or anything else for tests).
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Invalid(describe(origin, text, &e)))?;
        config.validate_in(text, origin)?;
        Ok(config)
    }

    /// Checks value ranges, e.g. after command-line overrides. The error
    /// names the key (no line: the value may not come from a file).
    pub fn validate(&self) -> Result<(), ConfigError> {
        match check_ranges(self).into_iter().next() {
            None => Ok(()),
            Some((key, problem)) => Err(ConfigError::Invalid(format!("`{key}`: {problem}"))),
        }
    }

    fn validate_in(&self, text: &str, origin: &str) -> Result<(), ConfigError> {
        let Some((key, problem)) = check_ranges(self).into_iter().next() else {
            return Ok(());
        };
        let line = key_line(text, key);
        Err(ConfigError::Invalid(match line {
            Some(line) => format!("{origin}:{line}: key `{key}`: {problem}"),
            None => format!("{origin}: key `{key}`: {problem}"),
        }))
    }

    /// The effective configuration as TOML, for `--print-config`. It loads
    /// back to the same configuration.
    pub fn to_toml_string(&self) -> String {
        // Serialising plain structs of strings, integers and enums cannot
        // fail; fall back to the Debug form rather than panic if it ever did.
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

/// Turns a `toml` error into `origin:line: key `k`: message`, on one line.
fn describe(origin: &str, text: &str, err: &toml::de::Error) -> String {
    // toml's messages may span lines ("…\nexpected …"); keep ours on one.
    let message = err
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let Some(span) = err.span() else {
        return format!("{origin}: {message}");
    };
    let key = key_at(text, span.start);
    let line = line_of(
        text,
        item_named_in(text, span.start, &message).unwrap_or(span.start),
    );
    // serde says "unknown field `foo`, expected one of …": name it as a key,
    // with its table (`ctl.foo`) so the admin knows which one, and the key
    // they probably meant.
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let named = rest.strip_prefix('`').and_then(|r| r.split_once('`'));
        return match (&key, named) {
            (Some(k), Some(_)) => format!("{origin}:{line}: {}", words::unknown_key_message(k)),
            _ => format!("{origin}:{line}: unknown key {rest}"),
        };
    }
    // serde's and toml's words for a bad value ("expected u32") become the
    // admin's ("expected a whole number of seconds, e.g. 3600").
    let message = key
        .as_deref()
        .and_then(|k| words::value_message(k, &message, raw_value(text, span.start).as_deref()))
        .unwrap_or(message);
    match key {
        Some(k) => format!("{origin}:{line}: key `{k}`: {message}"),
        None => format!("{origin}:{line}: {message}"),
    }
}

/// The unquoted word at byte `pos` as written (`1h` in `max_expires =
/// 1h`), for messages that quote it; cut at 40 characters.
fn raw_value(text: &str, pos: usize) -> Option<String> {
    let rest = text.get(pos..)?;
    let word: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, '#' | ',' | ']' | '}'))
        .take(40)
        .collect();
    (!word.is_empty()).then_some(word)
}

/// 1-based line number of byte offset `pos`.
fn line_of(text: &str, pos: usize) -> usize {
    let pos = pos.min(text.len());
    text.as_bytes()[..pos]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The dotted path of the innermost key whose key or value covers byte
/// `pos`, found by re-parsing the document with spans.
fn key_at(text: &str, pos: usize) -> Option<String> {
    // The recovering parser still yields the keys around a syntax error.
    let (doc, _) = toml::de::DeTable::parse_recoverable(text);
    let mut path = Vec::new();
    find_key(doc.get_ref(), pos, &mut path);
    (!path.is_empty()).then(|| path.join("."))
}

fn find_key(table: &toml::de::DeTable<'_>, pos: usize, path: &mut Vec<String>) {
    for (k, v) in table.iter() {
        if k.span().contains(&pos) || v.span().contains(&pos) {
            path.push(k.get_ref().to_string());
            if let Some(inner) = v.get_ref().as_table() {
                find_key(inner, pos, path);
            }
            return;
        }
    }
    // A `[table]` header's value span may not cover its keys: look inside
    // every table for a key at `pos`.
    for (k, v) in table.iter() {
        if let Some(inner) = v.get_ref().as_table() {
            let before = path.len();
            path.push(k.get_ref().to_string());
            find_key(inner, pos, path);
            if path.len() > before + 1 {
                return;
            }
            path.truncate(before);
        }
    }
}

/// serde reports an error in one array element (a bad `listen` entry)
/// at the span of the whole array. When the message quotes one element's
/// string, return that element's offset so the line points at it.
fn item_named_in(text: &str, pos: usize, message: &str) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let value = doc.get_ref().values().find(|v| v.span().contains(&pos))?;
    value.get_ref().as_array()?.iter().find_map(|item| {
        let s = item.get_ref().as_str()?;
        message
            .contains(&format!("`{s}`"))
            .then(|| item.span().start)
    })
}

/// 1-based line of the top-level `key` in the document, if present.
fn key_line(text: &str, key: &str) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    // A dotted path (`ctl.max_batch`) walks into tables.
    let mut table = doc.get_ref();
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        let (k, v) = table.get_key_value(part)?;
        if parts.peek().is_none() {
            return Some(line_of(text, k.span().start));
        }
        table = v.get_ref().as_table()?;
    }
    None
}
