//! `kamrsctl subscriber add|rm|list --file PATH`: the subscriber file
//! managed offline, without a daemon, in the format kamrs reads
//! (`[[subscriber]]` tables of `username`, `domain`, `ha1`, `ha1_sha256`).
//!
//! The HA1s are computed here with `--realm` (what kamrs will challenge
//! with: `[auth] realm`, else the domain). With `use_domain = false`, kamrs's
//! default, every subscriber must be in one domain (an AoR is then only the
//! user part), so a second domain is refused unless `--use-domain` says
//! kamrs's config sets `use_domain = true`. Writes go to a temporary file in
//! the same directory, synced and renamed over the old one (never a
//! half-written file), mode 0600, keeping the old file's owner so the
//! daemon's user can still read it.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use common::types::SubscriberEntry;
use serde::{Deserialize, Serialize};

use crate::client::{exit, Failure};

/// Longest user name (as kamrs: Kamailio's `subscriber.username` column).
const MAX_USERNAME: usize = 64;
/// Longest domain (a DNS name).
const MAX_DOMAIN: usize = 253;

/// One `[[subscriber]]`, as kamrs stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub username: String,
    pub domain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha1_sha256: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBody {
    #[serde(default)]
    subscriber: Vec<Entry>,
}

fn failed(message: String) -> Failure {
    Failure::new(exit::FAILED, message)
}

/// The subscribers in `path`; a missing file is an empty list.
pub fn load(path: &Path) -> Result<Vec<Entry>, Failure> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(failed(format!("cannot read {}: {e}", path.display()))),
    };
    toml::from_str::<FileBody>(&text)
        .map(|f| f.subscriber)
        .map_err(|e| {
            let at = e.span().map_or(String::new(), |span| {
                let upto = text.get(..span.start).unwrap_or("");
                format!(" line {}:", upto.matches('\n').count() + 1)
            });
            failed(format!(
                "{}:{at} {} (nothing was changed; fix the file, it is the one kamrs reads as `[auth] subscribers`)",
                path.display(),
                e.message().trim_end()
            ))
        })
}

/// Names only, sorted by user then domain (as `subscriber.list`).
pub fn list(path: &Path) -> Result<Vec<SubscriberEntry>, Failure> {
    let mut v: Vec<SubscriberEntry> = load(path)?
        .into_iter()
        .map(|e| SubscriberEntry {
            username: e.username,
            domain: e.domain,
        })
        .collect();
    v.sort_by(|a, b| (&a.username, &a.domain).cmp(&(&b.username, &b.domain)));
    Ok(v)
}

/// Checks `user` and `domain` as kamrs's `subscriber.add` does; the domain
/// lower-cased.
pub fn checked(user: &str, domain: &str) -> Result<String, Failure> {
    let usage = |m: String| Failure::new(exit::USAGE, format!("{m}; nothing was changed"));
    if user.len() > MAX_USERNAME {
        return Err(usage(format!(
            "the user name is {} bytes long; at most {MAX_USERNAME}",
            user.len()
        )));
    }
    let bytes = user.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            if !bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
            {
                return Err(usage(format!(
                    "the user name {user:?} has a `%` not followed by two hex digits"
                )));
            }
            i += 3;
            continue;
        }
        if !(b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b)) {
            return Err(usage(format!(
                "the user name {user:?} has a character a SIP user name cannot hold (letters, digits and -_.!~*'()&=+$,;?/ only)"
            )));
        }
        i += 1;
    }
    let ok = domain.len() <= MAX_DOMAIN
        && match domain.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
            None => domain.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }),
        };
    if !ok {
        return Err(usage(format!(
            "expected a domain such as example.com (a host name or IP address, IPv6 in brackets), got {domain:?}"
        )));
    }
    Ok(domain.to_ascii_lowercase())
}

/// Adds or replaces `entry` (its domain already [`checked`]) in `path`:
/// whether it replaced one.
pub fn add(path: &Path, use_domain: bool, entry: Entry) -> Result<bool, Failure> {
    let mut list = load(path)?;
    if !use_domain {
        if let Some(other) = list
            .iter()
            .find(|e| !e.domain.eq_ignore_ascii_case(&entry.domain))
        {
            let (new, d) = (&entry.domain, &other.domain);
            return Err(Failure::new(
                exit::USAGE,
                format!(
                    "{new} would be a second subscriber domain beside {d} in {}, which needs `use_domain = true`: with `use_domain = false` (kamrs's default) an AoR is only the user part, so {u}@{new} would register into the bindings of {u}@{d}. If kamrs's config sets `use_domain = true`, give --use-domain; else add subscribers of {d} only. Nothing was changed",
                    path.display(),
                    u = entry.username
                ),
            ));
        }
    }
    let at = list
        .iter()
        .position(|e| e.username == entry.username && e.domain.eq_ignore_ascii_case(&entry.domain));
    let replaced = at.is_some();
    match at {
        Some(i) => list[i] = entry,
        None => list.push(entry),
    }
    save(path, list)?;
    Ok(replaced)
}

/// Removes `user@domain` from `path`; false if it was not there.
pub fn remove(path: &Path, user: &str, domain: &str) -> Result<bool, Failure> {
    let mut list = load(path)?;
    let before = list.len();
    list.retain(|e| !(e.username == user && e.domain.eq_ignore_ascii_case(domain)));
    if list.len() == before {
        return Ok(false);
    }
    save(path, list)?;
    Ok(true)
}

/// The file in the daemon's format, written atomically, mode 0600, owned
/// as the old one was.
fn save(path: &Path, mut list: Vec<Entry>) -> Result<(), Failure> {
    list.sort_by(|a, b| (&a.domain, &a.username).cmp(&(&b.domain, &b.username)));
    let body = toml::to_string(&FileBody { subscriber: list })
        .map_err(|e| failed(format!("cannot write the subscriber list: {e}")))?;
    let text = format!(
        "# kamrs subscribers: HA1 hashes only, never passwords.\n# Managed with `kamrsctl subscriber add|rm|list`; hand edits are read on SIGHUP.\n\n{body}"
    );
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "subscribers.toml".to_owned());
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(".{name}.kamrsctl-{}.tmp", std::process::id()));
    let old_owner = std::fs::metadata(path).ok().map(|m| (m.uid(), m.gid()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        if let Some((uid, gid)) = old_owner {
            // kamrs may run as its own user: the file must stay readable
            // to it when root edits it.
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself, durable.
        std::fs::File::open(&dir).and_then(|d| d.sync_all())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        failed(format!(
            "cannot write {}: {e}; nothing was changed (run kamrsctl as a user who may write that file and its directory, e.g. kamrs's own)",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kamrsctl-subs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn entry(user: &str, domain: &str) -> Entry {
        let (ha1, ha1_sha256) = crate::subscriber::ha1s(user, domain, "pw");
        Entry {
            username: user.into(),
            domain: domain.into(),
            ha1: Some(ha1),
            ha1_sha256: Some(ha1_sha256),
        }
    }

    #[test]
    fn add_replace_list_rm_round_trip() {
        let d = dir("rt");
        let path = d.join("subscribers.toml");
        assert!(list(&path).unwrap().is_empty(), "missing file: empty");
        assert!(!add(&path, false, entry("bob", "example.com")).unwrap());
        assert!(!add(&path, false, entry("alice", "example.com")).unwrap());
        assert!(add(&path, false, entry("alice", "example.com")).unwrap());
        let names: Vec<String> = list(&path)
            .unwrap()
            .into_iter()
            .map(|e| e.username)
            .collect();
        assert_eq!(names, ["alice", "bob"]);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("[[subscriber]]") && !text.contains("pw\""),
            "{text}"
        );
        assert!(remove(&path, "bob", "EXAMPLE.com").unwrap());
        assert!(!remove(&path, "bob", "example.com").unwrap());
        assert_eq!(load(&path).unwrap(), [entry("alice", "example.com")]);
        let left: Vec<_> = std::fs::read_dir(&d).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn one_domain_unless_use_domain() {
        let d = dir("dom");
        let path = d.join("subscribers.toml");
        add(&path, false, entry("alice", "example.com")).unwrap();
        let e = add(&path, false, entry("alice", "other.example")).unwrap_err();
        assert_eq!(e.code, exit::USAGE);
        assert!(
            e.message.contains("use_domain = true") && e.message.contains("--use-domain"),
            "{}",
            e.message
        );
        assert_eq!(list(&path).unwrap().len(), 1);
        add(&path, true, entry("alice", "other.example")).unwrap();
        assert_eq!(list(&path).unwrap().len(), 2);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_broken_file_is_left_alone_and_named() {
        let d = dir("bad");
        let path = d.join("subscribers.toml");
        std::fs::write(&path, "x = 1\n[[subscriber]\n").unwrap();
        let e = add(&path, false, entry("alice", "example.com")).unwrap_err();
        assert!(
            e.message.contains("subscribers.toml: line 2:")
                && e.message.contains("nothing was changed"),
            "{}",
            e.message
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "x = 1\n[[subscriber]\n"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn names_checked_as_kamrs_does() {
        assert_eq!(checked("alice", "Example.COM").unwrap(), "example.com");
        assert_eq!(checked("1001", "[2001:db8::1]").unwrap(), "[2001:db8::1]");
        for (u, d) in [
            ("al ice", "example.com"),
            ("a%zz", "example.com"),
            ("alice", "exa mple.com"),
            ("alice", "a..b"),
        ] {
            let e = checked(u, d).unwrap_err();
            assert_eq!(e.code, exit::USAGE, "{u}@{d}");
            assert!(e.message.contains("nothing was changed"), "{}", e.message);
        }
    }
}
