//! Command-line values in the user's words: `--expires -1`
//! says what expires may be, not clap's "to pass '-1' as a value, use
//! '-- -1'", and a bad number says "expected a whole number", not Rust's
//! "invalid digit found in string".

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// `--expires`: whole seconds, 0 or more.
pub fn expires(s: &str) -> Result<u32, String> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i64>() {
        if n < 0 {
            return Err("expires must be 0 or more seconds (0: never expires)".to_owned());
        }
    }
    t.parse::<u32>().map_err(|_| {
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            format!("expires must be at most {} seconds", u32::MAX)
        } else {
            "expected a whole number of seconds, e.g. 3600 (0: never expires)".to_owned()
        }
    })
}

/// `--q`: a q-value from 0 to 1, or -1 for none.
pub fn q(s: &str) -> Result<f64, String> {
    let why = "q must be a number from 0 to 1, e.g. 0.5 (or -1 to leave it unset)";
    let q: f64 = s.trim().parse().map_err(|_| why.to_owned())?;
    if q == -1.0 || (0.0..=1.0).contains(&q) {
        Ok(q)
    } else {
        Err(why.to_owned())
    }
}

/// `--flags`, `--cflags`, `--methods`: a 32-bit mask, as a decimal number.
pub fn bits(s: &str) -> Result<u32, String> {
    s.trim()
        .parse::<u32>()
        .map_err(|_| format!("expected a whole number from 0 to {}", u32::MAX))
}

/// One line for a bad value or an unexpected negative number, or None to
/// let clap print its own message.
pub fn usage_line(e: &clap::Error) -> Option<String> {
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    match e.kind() {
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            let arg = context(ContextKind::InvalidArg)?;
            let value = context(ContextKind::InvalidValue).unwrap_or_default();
            // `--expires <SECONDS>` → `--expires`; `[N]` → `N`.
            let name = arg
                .split_whitespace()
                .next()
                .unwrap_or(&arg)
                .trim_matches(|c| matches!(c, '<' | '>' | '[' | ']' | '.'));
            let why = std::error::Error::source(e)
                .map(|s| plain(&s.to_string()))
                .or_else(|| {
                    // A value not among the possible ones: clap lists them.
                    match e.get(ContextKind::ValidValue) {
                        Some(ContextValue::Strings(v)) => {
                            Some(format!("expected one of {}", v.join(", ")))
                        }
                        _ => None,
                    }
                })?;
            Some(format!("{name} {value:?}: {why}"))
        }
        ErrorKind::UnknownArgument => {
            let arg = context(ContextKind::InvalidArg)?;
            arg.parse::<f64>().is_ok().then(|| {
                format!("unexpected argument {arg}: this command takes no negative number here (see its --help)")
            })
        }
        _ => None,
    }
}

/// Rust's parse errors, as clap passes them on, in plain words.
fn plain(why: &str) -> String {
    match why {
        "invalid digit found in string" | "cannot parse integer from empty string" => {
            "expected a whole number".to_owned()
        }
        "invalid float literal" | "cannot parse float from empty string" => {
            "expected a number".to_owned()
        }
        "number too large to fit in target type" => "the number is too large".to_owned(),
        "number too small to fit in target type" => "the number is too small".to_owned(),
        _ => why.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_says_what_it_may_be() {
        assert_eq!(expires("3600"), Ok(3600));
        assert_eq!(expires("0"), Ok(0));
        assert_eq!(
            expires("-1").unwrap_err(),
            "expires must be 0 or more seconds (0: never expires)"
        );
        assert!(expires("1h")
            .unwrap_err()
            .contains("whole number of seconds"));
        assert!(expires("99999999999")
            .unwrap_err()
            .contains("at most 4294967295"));
    }

    #[test]
    fn q_is_0_to_1_or_minus_1() {
        assert_eq!(q("0.5"), Ok(0.5));
        assert_eq!(q("-1"), Ok(-1.0));
        assert_eq!(q("1"), Ok(1.0));
        for bad in ["2", "-0.5", "abc", "NaN", "inf", ""] {
            assert!(q(bad).unwrap_err().starts_with("q must be"), "{bad}");
        }
    }

    #[test]
    fn rust_parse_errors_become_words() {
        assert_eq!(
            plain("invalid digit found in string"),
            "expected a whole number"
        );
        assert_eq!(plain("invalid float literal"), "expected a number");
        assert_eq!(
            bits("x").unwrap_err(),
            "expected a whole number from 0 to 4294967295"
        );
        assert_eq!(
            bits("-1").unwrap_err(),
            "expected a whole number from 0 to 4294967295"
        );
    }
}
