//! Who may register: HA1 hashes per user and domain, never passwords
//! (Kamailio's `subscriber` table keeps `ha1` the same way).
//!
//! The file source is TOML an admin can edit; it is read at start and on
//! reload (SIGHUP or the control API), and rewritten atomically when the
//! control API adds or removes a subscriber.
//!
//! With `use_domain = false` (Kamailio's default) an AoR is the user part
//! alone, so subscribers of two domains would share AoRs: `alice@evil.org`,
//! with her own password, would register into `alice@example.com`'s
//! bindings. The list is then held to one domain at start, at
//! every reload and at every add.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use md5::Md5;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One subscriber as stored: Kamailio's column names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscriber {
    pub username: String,
    pub domain: String,
    /// hex MD5(username:realm:password)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha1: Option<String>,
    /// hex SHA-256(username:realm:password)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha1_sha256: Option<String>,
}

impl Subscriber {
    /// A subscriber whose HA1s are computed from a password for `realm`.
    /// The password is used here and dropped; only hashes are kept.
    pub fn with_password(username: &str, domain: &str, realm: &str, password: &str) -> Subscriber {
        Subscriber {
            username: username.to_owned(),
            domain: domain.to_owned(),
            ha1: Some(ha1_md5(username, realm, password)),
            ha1_sha256: Some(ha1_sha256(username, realm, password)),
        }
    }
}

pub fn ha1_md5(user: &str, realm: &str, password: &str) -> String {
    crate::util::hex(&Md5::digest(format!("{user}:{realm}:{password}")))
}

pub fn ha1_sha256(user: &str, realm: &str, password: &str) -> String {
    crate::util::hex(&Sha256::digest(format!("{user}:{realm}:{password}")))
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    subscriber: Vec<Subscriber>,
}

/// The subscriber list, looked up by (username, domain).
pub struct Subscribers {
    path: Option<PathBuf>,
    map: RwLock<HashMap<(String, String), Subscriber>>,
    /// `use_domain = false`: every subscriber must be in one domain.
    single_domain: bool,
    /// That domain, while `single_domain` and the list is not empty.
    domain: RwLock<Option<String>>,
}

impl Subscribers {
    /// An in-memory list (tests), any number of domains.
    pub fn in_memory(list: Vec<Subscriber>) -> Subscribers {
        Subscribers {
            path: None,
            map: RwLock::new(index(list)),
            single_domain: false,
            domain: RwLock::new(None),
        }
    }

    /// An in-memory list held to one domain (tests of `use_domain = false`).
    pub fn in_memory_single_domain(list: Vec<Subscriber>) -> Result<Subscribers, String> {
        let map = index(list);
        let domain = only_domain(&map, "the subscriber list")?;
        Ok(Subscribers {
            path: None,
            map: RwLock::new(map),
            single_domain: true,
            domain: RwLock::new(domain),
        })
    }

    /// Reads `path`; a missing file is an empty list (created on first add).
    /// `single_domain` (`use_domain = false`) refuses a list of several
    /// domains, now and at every reload and add.
    pub fn open(path: &Path, single_domain: bool) -> Result<Subscribers, String> {
        let s = Subscribers {
            path: Some(path.to_owned()),
            map: RwLock::new(HashMap::new()),
            single_domain,
            domain: RwLock::new(None),
        };
        s.reload()?;
        Ok(s)
    }

    /// Whether a REGISTER for `domain` may be served: always with
    /// `use_domain = true`; otherwise only for the list's one domain.
    pub fn serves_domain(&self, domain: &str) -> bool {
        if !self.single_domain {
            return true;
        }
        self.domain
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_deref()
            .is_none_or(|d| d.eq_ignore_ascii_case(domain))
    }

    /// Whether a subscriber in `domain` may be added: an error saying why
    /// not (a second domain with `use_domain = false`) and what to do.
    pub fn admits(&self, domain: &str) -> Result<(), String> {
        if !self.single_domain {
            return Ok(());
        }
        match self
            .domain
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_deref()
        {
            Some(d) if !d.eq_ignore_ascii_case(domain) => {
                let new = domain.to_ascii_lowercase();
                Err(format!(
                    "{new} would be a second subscriber domain beside {d}, which needs `use_domain = true`: with `use_domain = false` an AoR is only the user part, so alice@{new} would register into the bindings of alice@{d}. Set `use_domain = true` in kamrs's config (top level) and restart kamrs, or add subscribers of {d} only"
                ))
            }
            _ => Ok(()),
        }
    }

    fn set_domain(&self, map: &HashMap<(String, String), Subscriber>) {
        if self.single_domain {
            *self
                .domain
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                map.keys().next().map(|(_, d)| d.clone());
        }
    }

    /// Re-reads the file. On error the old list stays in force.
    pub fn reload(&self) -> Result<usize, String> {
        let Some(path) = &self.path else {
            return Ok(self.len());
        };
        let list = match std::fs::read_to_string(path) {
            Ok(text) => {
                toml::from_str::<File>(&text)
                    .map_err(|e| {
                        // The line, for an admin who edited the file by hand.
                        let at = e.span().map_or(String::new(), |span| {
                            let upto = text.get(..span.start).unwrap_or("");
                            format!(" line {}:", upto.matches('\n').count() + 1)
                        });
                        format!("{}:{at} {}", path.display(), e.message())
                    })?
                    .subscriber
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        for s in &list {
            for (name, h, len) in [("ha1", &s.ha1, 32), ("ha1_sha256", &s.ha1_sha256, 64)] {
                if let Some(h) = h {
                    if h.len() != len || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(format!(
                            "{}: subscriber {}@{}: {name} must be {len} hex digits",
                            path.display(),
                            s.username,
                            s.domain
                        ));
                    }
                }
            }
        }
        let map = index(list);
        if self.single_domain {
            only_domain(&map, &path.display().to_string())?;
        }
        let n = map.len();
        let mut current = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *current = map;
        self.set_domain(&current);
        Ok(n)
    }

    pub fn get(&self, username: &str, domain: &str) -> Option<Subscriber> {
        self.map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(username.to_owned(), domain.to_ascii_lowercase()))
            .cloned()
    }

    pub fn len(&self) -> usize {
        self.map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every subscriber, sorted, without hashes (for listing).
    pub fn list(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self
            .map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// Adds or replaces a subscriber and saves the file.
    pub fn add(&self, s: Subscriber) -> Result<(), String> {
        let mut map = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Checked under the write lock, so two adds cannot both pass.
        self.admits(&s.domain)?;
        let key = (s.username.clone(), s.domain.to_ascii_lowercase());
        let old = map.insert(key.clone(), s);
        if let Err(e) = self.save(&map) {
            match old {
                Some(o) => map.insert(key, o),
                None => map.remove(&key),
            };
            return Err(e);
        }
        self.set_domain(&map);
        Ok(())
    }

    /// Removes a subscriber and saves the file; false if there was none.
    pub fn remove(&self, username: &str, domain: &str) -> Result<bool, String> {
        let mut map = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (username.to_owned(), domain.to_ascii_lowercase());
        let Some(old) = map.remove(&key) else {
            return Ok(false);
        };
        if let Err(e) = self.save(&map) {
            map.insert(key, old);
            return Err(e);
        }
        self.set_domain(&map);
        Ok(true)
    }

    /// Writes the list to a temporary file and renames it over the old one,
    /// so a crash never leaves a half-written file; mode 0600.
    fn save(&self, map: &HashMap<(String, String), Subscriber>) -> Result<(), String> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut list: Vec<Subscriber> = map.values().cloned().collect();
        list.sort_by(|a, b| (&a.domain, &a.username).cmp(&(&b.domain, &b.username)));
        let body = toml::to_string(&File { subscriber: list }).map_err(|e| e.to_string())?;
        let text = format!("# kamrs subscribers: HA1 hashes only, never passwords.\n# Managed with `kamrsctl subscriber add|rm|list`; hand edits are read on SIGHUP.\n\n{body}");
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

/// The one domain of `map` (`None` when empty), or the error for a list of
/// several, naming `origin`.
fn only_domain(
    map: &HashMap<(String, String), Subscriber>,
    origin: &str,
) -> Result<Option<String>, String> {
    let mut domains: Vec<&str> = map.keys().map(|(_, d)| d.as_str()).collect();
    domains.sort_unstable();
    domains.dedup();
    match domains.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some((*one).to_owned())),
        several => Err(two_domains_error(origin, several)),
    }
}

fn two_domains_error(origin: &str, domains: &[&str]) -> String {
    let shown: Vec<&str> = domains.iter().copied().take(5).collect();
    format!(
        "{origin}: subscribers in more than one domain ({}{}) need `use_domain = true`: with `use_domain = false` an AoR is only the user part, so alice@{} would register into the bindings of alice@{}. Set `use_domain = true` in kamrs's config (top level) and restart kamrs, or keep every subscriber in one domain",
        shown.join(", "),
        if domains.len() > shown.len() { ", …" } else { "" },
        domains.get(1).copied().unwrap_or("other.domain"),
        domains.first().copied().unwrap_or("example.com"),
    )
}

fn index(list: Vec<Subscriber>) -> HashMap<(String, String), Subscriber> {
    list.into_iter()
        .map(|s| ((s.username.clone(), s.domain.to_ascii_lowercase()), s))
        .collect()
}

#[cfg(test)]
mod tests;
