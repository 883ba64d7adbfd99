//! Making text from the network safe to print on the admin's terminal.
//!
//! A User-Agent, Contact or AoR is whatever a phone (or an attacker) sent.
//! Printed raw, `ESC [ 2 J` clears the screen, `ESC ] 0 ; … BEL` retitles
//! the window, C1 controls (U+0080..U+009F) do the same on terminals that
//! read them, backspace and CR overwrite what is already shown, and a LF
//! forges a line of `ul.dump --brief`. Every human output of kamrsctl
//! (table cells, brief lists, one-line messages, error messages) goes
//! through [`safe`]; `--json` does not need it (JSON escapes controls).
//!
//! One form for all: `\u{1b}`, the code point in hex in braces, as Rust
//! writes it. Unicode's invisible direction and zero-width format
//! characters (U+200B..U+200F, U+202A..U+202E, U+2060..U+2064,
//! U+2066..U+2069, U+FEFF) are shown the same way: they can make one
//! string read as another.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` must not reach a terminal as is.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// `s` with every control or invisible format character replaced by
/// `\u{XX}`; borrowed when there is none (the usual case).
pub fn safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if unsafe_char(c) {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`safe`] as an owned string, for table cells.
pub fn cell(s: &str) -> String {
    safe(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_as_code_points() {
        assert_eq!(
            safe("\x1b[2J\x1b]0;pwned\x07x"),
            "\\u{1b}[2J\\u{1b}]0;pwned\\u{7}x"
        );
        assert_eq!(safe("a\r\nX-Inj"), "a\\u{d}\\u{a}X-Inj");
        assert_eq!(safe("\0\x08\x7f\t"), "\\u{0}\\u{8}\\u{7f}\\u{9}");
        assert_eq!(safe("\u{9b}31m\u{85}"), "\\u{9b}31m\\u{85}");
        assert_eq!(safe("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
    }

    #[test]
    fn printable_text_is_untouched_and_not_copied() {
        for s in [
            "Yealink SIP-T46S 66.86.0.15",
            "jörg",
            "sip:a@[::1]:5060",
            "",
            "\\u{1b}",
        ] {
            assert!(matches!(safe(s), Cow::Borrowed(b) if b == s), "{s}");
        }
    }

    #[test]
    fn nothing_unsafe_survives() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let out = safe(&all);
        assert!(!out.chars().any(unsafe_char));
        assert!(!out.bytes().any(|b| b < 0x20 || b == 0x7f));
    }
}
