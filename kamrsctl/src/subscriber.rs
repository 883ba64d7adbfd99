//! `kamrsctl subscriber add`: the password is read here (a prompt with
//! echo off, or one line of stdin), hashed here into the two HA1s, and
//! dropped; only the hashes go to kamrs. It is never taken from the
//! command line, where `ps` and the shell history would show it.

use std::io::{self, BufRead, IsTerminal, Read};

use md5::Md5;
use sha2::{Digest, Sha256};

use crate::client::{exit, Failure};

/// The longest password line `--password-stdin` accepts (bytes, without
/// the newline); a longer one is surely not a password.
pub const MAX_PASSWORD: usize = 4096;

/// `USER@DOMAIN` (a `sip:`/`sips:` prefix tolerated) as (user, domain).
pub fn parse_subscriber(arg: &str) -> Result<(String, String), Failure> {
    let mut a = arg.trim();
    for scheme in ["sip:", "sips:"] {
        if a.len() >= scheme.len() && a[..scheme.len()].eq_ignore_ascii_case(scheme) {
            a = &a[scheme.len()..];
            break;
        }
    }
    match a.rsplit_once('@') {
        Some((user, domain)) if !user.is_empty() && !domain.is_empty() => {
            Ok((user.to_owned(), domain.to_owned()))
        }
        _ => Err(Failure::new(
            exit::USAGE,
            format!(
                "give the subscriber as USER@DOMAIN, e.g. alice@example.com (got {arg:?}); the domain is the one in the phone's AoR"
            ),
        )),
    }
}

/// hex MD5 and hex SHA-256 of `user:realm:password` (RFC 7616 §3.4.2
/// HA1), what kamrs stores as `ha1` and `ha1_sha256`.
pub fn ha1s(user: &str, realm: &str, password: &str) -> (String, String) {
    let text = format!("{user}:{realm}:{password}");
    (
        hex(&Md5::digest(text.as_bytes())),
        hex(&Sha256::digest(text.as_bytes())),
    )
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// `--password-stdin`: the first line of `input`, its line end (`\n` or
/// `\r\n`) stripped and nothing else, so a password may start or end with
/// spaces.
pub fn password_from(input: impl Read) -> Result<String, Failure> {
    let mut line = Vec::new();
    // One byte more than allowed, plus room for "\r\n", tells "too long".
    let limit = (MAX_PASSWORD + 3) as u64;
    io::BufReader::new(input.take(limit))
        .read_until(b'\n', &mut line)
        .map_err(|e| {
            Failure::new(
                exit::USAGE,
                format!("cannot read the password from stdin: {e}"),
            )
        })?;
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    if line.len() > MAX_PASSWORD {
        return Err(Failure::new(
            exit::USAGE,
            format!("the password on stdin is longer than {MAX_PASSWORD} bytes; give the password alone on the first line"),
        ));
    }
    let password = String::from_utf8(line).map_err(|_| {
        Failure::new(
            exit::USAGE,
            "the password on stdin is not UTF-8 text; nothing was changed",
        )
    })?;
    check(password, "on stdin")
}

fn check(password: String, source: &str) -> Result<String, Failure> {
    if password.is_empty() {
        return Err(Failure::new(
            exit::USAGE,
            format!("the password {source} is empty; nothing was changed"),
        ));
    }
    Ok(password)
}

/// The password typed at the terminal, twice, with echo off.
pub fn password_from_prompt(who: &str) -> Result<String, Failure> {
    if !io::stdin().is_terminal() {
        return Err(Failure::new(
            exit::USAGE,
            "no terminal to ask the password on: pipe it in with --password-stdin (e.g. `printf '%s\\n' \"$PW\" | kamrsctl subscriber add alice@example.com --password-stdin`)",
        ));
    }
    let ask = |prompt: String| {
        rpassword::prompt_password(prompt).map_err(|e| {
            Failure::new(
                exit::USAGE,
                format!("cannot read the password from the terminal: {e}; nothing was changed (or use --password-stdin)"),
            )
        })
    };
    let first = check(ask(format!("Password for {who}: "))?, "typed")?;
    let again = ask(format!("Retype the password for {who}: "))?;
    if first != again {
        return Err(Failure::new(
            exit::USAGE,
            "the two passwords differ; nothing was changed",
        ));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriber_argument() {
        let ok = |a: &str| parse_subscriber(a).unwrap();
        assert_eq!(
            ok("alice@example.com"),
            ("alice".into(), "example.com".into())
        );
        assert_eq!(
            ok("sip:alice@Example.COM"),
            ("alice".into(), "Example.COM".into())
        );
        assert_eq!(ok("1001@192.0.2.1"), ("1001".into(), "192.0.2.1".into()));
        for bad in ["alice", "@example.com", "alice@", "", "sip:"] {
            let e = parse_subscriber(bad).unwrap_err();
            assert_eq!(e.code, exit::USAGE, "{bad}");
            assert!(e.message.contains("USER@DOMAIN"), "{}", e.message);
        }
    }

    #[test]
    fn ha1_known_values() {
        // RFC 2617 §3.5's user, realm and password.
        let (md5, sha) = ha1s("Mufasa", "testrealm@host.com", "Circle Of Life");
        assert_eq!(md5, "939e7578ed9e3c518a452acee763bce9");
        // RFC 7616 §3.9.1's user, realm and password (value from sha256sum).
        let (_, sha_rfc) = ha1s("Mufasa", "http-auth@example.org", "Circle of Life");
        assert_eq!(
            sha_rfc,
            "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
        );
        assert_eq!(sha.len(), 64);
    }

    #[test]
    fn stdin_password_is_the_first_line_without_its_end() {
        let read = |s: &[u8]| password_from(s);
        assert_eq!(read(b"s3cret\n").unwrap(), "s3cret");
        assert_eq!(read(b"s3cret\r\n").unwrap(), "s3cret");
        assert_eq!(read(b"s3cret").unwrap(), "s3cret");
        assert_eq!(read(b" two words \nrest\n").unwrap(), " two words ");
        assert_eq!(read("pässwörd\n".as_bytes()).unwrap(), "pässwörd");
        for bad in [&b""[..], b"\n", b"\r\n", b"\xff\xfe\n"] {
            let e = read(bad).unwrap_err();
            assert_eq!(e.code, exit::USAGE);
            assert!(e.message.contains("nothing was changed"), "{}", e.message);
        }
        let long = vec![b'x'; MAX_PASSWORD + 1];
        assert!(read(&long).unwrap_err().message.contains("longer than"));
        let mut exact = vec![b'x'; MAX_PASSWORD];
        exact.extend_from_slice(b"\r\n");
        assert_eq!(read(&exact).unwrap().len(), MAX_PASSWORD);
    }
}
