//! Argument checking for every method, before jsonrpsee's typed parsing.
//!
//! jsonrpsee rejects a bad argument with a bare "Invalid params" whose
//! detail is a serde message ("invalid type: string, expected u32 at line 1
//! column 40") that never names the argument. An admin typing
//! `ul.add location alice sip:a@h soon …` deserves "argument 4 `expires`:
//! expected seconds…". So this RPC middleware checks each call against the
//! method's signature, answers bad calls itself with -32602 and a message
//! naming the argument and what it must be, and hands the method a
//! normalised positional array.
//!
//! Normalising is also where Kamailio compatibility lives: numbers sent as
//! strings (`"3600"`) and AoRs sent as numbers (`1001`) are accepted, as
//! Kamailio's clients send both; named params (`{"aor": …}`) become
//! positional; and `stats.get_statistics a b` (Kamailio's variadic form)
//! becomes the single array argument the typed method takes.

use std::borrow::Cow;
use std::future::Future;

use common::api::{error, method};
use jsonrpsee::core::middleware::{Batch, BatchEntry, BatchEntryErr, Notification, RpcServiceT};
use jsonrpsee::types::{ErrorObjectOwned, Request};
use jsonrpsee::MethodResponse;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// What an argument must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A string (a number is taken as its decimal text).
    Str,
    /// A subscription id as `ul.subscribe` gave it (a number or a
    /// string), passed on unchanged: jsonrpsee matches it by type.
    SubscriptionId,
    /// 0..=4294967295 (a numeric string is accepted).
    U32,
    /// Seconds, 0..=4294967295, 0 meaning permanent.
    Expires,
    /// A q-value: 0..1, or -1 for "unset".
    Q,
    /// The word `brief`.
    Brief,
    /// One or more statistic names, Kamailio's variadic tail.
    Names,
    /// A subscriber's user name: what a SIP URI's user part may hold
    /// (RFC 3261 `user`), 1 to [`MAX_USERNAME`] bytes.
    User,
    /// A domain: a host name or IP address (IPv6 in brackets), 1 to
    /// [`MAX_DOMAIN`] bytes.
    Domain,
    /// An MD5 HA1: 32 hex digits, or `""` for none. Lower-cased.
    Ha1Md5,
    /// A SHA-256 HA1: 64 hex digits, or `""` for none. Lower-cased.
    Ha1Sha256,
    /// How many `pike.top` sources: 1 to [`crate::pike::MAX_TRACKED`].
    Top,
    /// How many AoRs a `ul.dump_page` returns: 1 to
    /// [`crate::rpc::ul::MAX_PAGE`].
    PageLimit,
}

/// Longest subscriber user name (Kamailio's `subscriber.username` column
/// is 64 characters).
pub const MAX_USERNAME: usize = 64;
/// Longest domain (a DNS name is at most 253 characters).
pub const MAX_DOMAIN: usize = 253;

#[derive(Debug, Clone, Copy)]
struct Arg {
    name: &'static str,
    kind: Kind,
    optional: bool,
}

const fn req(name: &'static str, kind: Kind) -> Arg {
    Arg {
        name,
        kind,
        optional: false,
    }
}

const TABLE: Arg = req("table", Kind::Str);
const AOR: Arg = req("aor", Kind::Str);
const CONTACT: Arg = req("contact", Kind::Str);
const NAMES: Arg = req("names", Kind::Names);
const USERNAME: Arg = req("username", Kind::User);
const DOMAIN: Arg = req("domain", Kind::Domain);

/// Every method's arguments, in Kamailio's order. A unit test checks that
/// each method the server registers is listed here.
const SIGNATURES: &[(&str, &[Arg])] = &[
    (
        method::UL_DUMP,
        &[Arg {
            name: "brief",
            kind: Kind::Brief,
            optional: true,
        }],
    ),
    (
        method::UL_DUMP_PAGE,
        &[
            req("cursor", Kind::Str),
            req("limit", Kind::PageLimit),
            Arg {
                name: "brief",
                kind: Kind::Brief,
                optional: true,
            },
        ],
    ),
    (
        method::UL_DUMP_PREFIX,
        &[
            req("prefix", Kind::Str),
            req("cursor", Kind::Str),
            req("limit", Kind::PageLimit),
            Arg {
                name: "brief",
                kind: Kind::Brief,
                optional: true,
            },
        ],
    ),
    (method::UL_LOOKUP, &[TABLE, AOR]),
    (method::UL_RM, &[TABLE, AOR]),
    (method::UL_RM_CONTACT, &[TABLE, AOR, CONTACT]),
    (
        method::UL_ADD,
        &[
            TABLE,
            AOR,
            CONTACT,
            req("expires", Kind::Expires),
            req("q", Kind::Q),
            req("path", Kind::Str),
            req("flags", Kind::U32),
            req("cflags", Kind::U32),
            req("methods", Kind::U32),
        ],
    ),
    (method::UL_FLUSH, &[]),
    (method::GET_STATISTICS, &[NAMES]),
    (method::RESET_STATISTICS, &[NAMES]),
    (method::CORE_VERSION, &[]),
    (method::CORE_UPTIME, &[]),
    (method::LIST_METHODS, &[]),
    (
        method::SUBSCRIBER_ADD,
        &[
            USERNAME,
            DOMAIN,
            req("ha1", Kind::Ha1Md5),
            req("ha1_sha256", Kind::Ha1Sha256),
        ],
    ),
    (method::SUBSCRIBER_RM, &[USERNAME, DOMAIN]),
    (method::SUBSCRIBER_LIST, &[]),
    (method::UL_DB_USERS, &[TABLE]),
    (method::UL_DB_CONTACTS, &[TABLE]),
    (method::UL_DB_EXPIRED_CONTACTS, &[TABLE]),
    (method::CORE_INFO, &[]),
    (method::TLS_LIST, &[]),
    (method::TLS_INFO, &[]),
    (method::TLS_RELOAD, &[]),
    (
        method::UL_SUBSCRIBE,
        &[Arg {
            name: "aor",
            kind: Kind::Str,
            optional: true,
        }],
    ),
    (
        method::UL_UNSUBSCRIBE,
        &[req("subscription", Kind::SubscriptionId)],
    ),
    (method::SUBSCRIBER_RELOAD, &[]),
    (method::AUTH_REALM, &[DOMAIN]),
    (
        method::PIKE_TOP,
        &[Arg {
            name: "n",
            kind: Kind::Top,
            optional: true,
        }],
    ),
];

fn signature(name: &str) -> Option<&'static [Arg]> {
    SIGNATURES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, args)| *args)
}

/// The usage line of `method` (`subscriber.rm username domain`), for
/// errors the methods themselves answer.
pub(super) fn usage_for(method: &str) -> Option<String> {
    signature(method).map(|args| usage(method, args))
}

/// `ul.add table aor contact …`, for error messages.
fn usage(method: &str, args: &[Arg]) -> String {
    let mut s = method.to_owned();
    for a in args {
        s.push(' ');
        match (a.optional, a.kind) {
            (_, Kind::Names) => s.push_str("NAME…"),
            (true, _) => {
                s.push('[');
                s.push_str(a.name);
                s.push(']');
            }
            (false, _) => s.push_str(a.name),
        }
    }
    s
}

fn invalid(method: &str, args: &[Arg], what: String) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        error::INVALID_PARAMS,
        format!("{method}: {what}"),
        Some(format!("usage: {}", usage(method, args))),
    )
}

/// Checks the params of a call to `method`. `Ok(Some(p))`: call with `p`
/// instead; `Ok(None)`: not one of ours, let jsonrpsee answer it.
pub fn check(
    method: &str,
    params: Option<&RawValue>,
) -> Result<Option<Box<RawValue>>, ErrorObjectOwned> {
    let Some(args) = signature(method) else {
        return Ok(None);
    };
    let bad = |what: String| invalid(method, args, what);
    let given: Value = match params {
        None => Value::Array(Vec::new()),
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|e| bad(format!("params are not valid JSON: {e}")))?,
    };
    let positional = match given {
        Value::Null => Vec::new(),
        Value::Array(items) => items,
        Value::Object(map) => by_name(map, args).map_err(bad)?,
        other => {
            return Err(bad(format!(
                "params must be an array of arguments, got {}",
                type_name(&other)
            )))
        }
    };
    let normalised = normalise(positional, args).map_err(bad)?;
    let text = Value::Array(normalised).to_string();
    RawValue::from_string(text)
        .map(Some)
        .map_err(|e| bad(format!("cannot re-encode the params: {e}")))
}

/// Named params (`{"table": …, "aor": …}`) in signature order.
fn by_name(mut map: Map<String, Value>, args: &[Arg]) -> Result<Vec<Value>, String> {
    let mut out = Vec::with_capacity(args.len());
    for a in args {
        match map.remove(a.name) {
            Some(v) => out.push(v),
            None if a.optional => break,
            None => return Err(format!("argument `{}` is missing", a.name)),
        }
    }
    if let Some(extra) = map.keys().next() {
        let known: Vec<&str> = args.iter().map(|a| a.name).collect();
        return Err(format!(
            "unknown argument `{extra}` (arguments: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ));
    }
    Ok(out)
}

fn normalise(mut given: Vec<Value>, args: &[Arg]) -> Result<Vec<Value>, String> {
    // The variadic tail: `["usrloc:", "registrar:"]` or `[["usrloc:", …]]`.
    if args.last().is_some_and(|a| a.kind == Kind::Names) {
        let names = match given.as_slice() {
            [Value::Array(inner)] => inner.clone(),
            _ => std::mem::take(&mut given),
        };
        if names.is_empty() {
            return Err(
                "give at least one statistic: `all`, a group such as `usrloc:`, or a name such as `usrloc:registered_users`"
                    .to_owned(),
            );
        }
        let mut out = Vec::with_capacity(names.len());
        for (i, n) in names.into_iter().enumerate() {
            match n {
                Value::String(s) if !s.is_empty() => out.push(Value::String(s)),
                other => {
                    return Err(format!(
                        "statistic name {} must be a non-empty string, got {}",
                        i + 1,
                        shown(&other)
                    ))
                }
            }
        }
        return Ok(vec![Value::Array(out)]);
    }
    if given.len() > args.len() {
        return Err(format!(
            "takes {} argument{}, got {}",
            args.len(),
            if args.len() == 1 { "" } else { "s" },
            given.len()
        ));
    }
    let mut out = Vec::with_capacity(args.len());
    let mut given = given.into_iter();
    for (i, a) in args.iter().enumerate() {
        let at = || format!("argument {} `{}`", i + 1, a.name);
        match given.next() {
            None | Some(Value::Null) if a.optional => break,
            None | Some(Value::Null) => return Err(format!("{} is missing", at())),
            Some(v) => out.push(one(v, a.kind).map_err(|why| format!("{}: {why}", at()))?),
        }
    }
    Ok(out)
}

/// Checks and normalises one argument.
fn one(v: Value, kind: Kind) -> Result<Value, String> {
    match kind {
        Kind::SubscriptionId => match v {
            Value::String(_) | Value::Number(_) => Ok(v),
            other => Err(format!(
                "expected the subscription id ul.subscribe answered, got {}",
                shown(&other)
            )),
        },
        Kind::Str => match v {
            Value::String(s) => Ok(Value::String(s)),
            Value::Number(n) => Ok(Value::String(n.to_string())),
            other => Err(format!("expected a string, got {}", shown(&other))),
        },
        Kind::U32 | Kind::Expires => {
            let what = if kind == Kind::Expires {
                "expected seconds as a whole number from 0 to 4294967295 (0 = permanent)"
            } else {
                "expected a whole number from 0 to 4294967295"
            };
            let n = match &v {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse::<u64>().ok(),
                _ => None,
            };
            match n.and_then(|n| u32::try_from(n).ok()) {
                Some(n) => Ok(Value::from(n)),
                None => Err(format!("{what}, got {}", shown(&v))),
            }
        }
        Kind::Q => {
            let q = match &v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            match q {
                Some(q) if q == -1.0 || (0.0..=1.0).contains(&q) => Ok(Value::from(q)),
                _ => Err(format!(
                    "expected a q-value from 0 to 1, or -1 for none, got {}",
                    shown(&v)
                )),
            }
        }
        Kind::Brief => match v {
            Value::String(s) if s == "brief" => Ok(Value::String(s)),
            other => Err(format!(
                "the only option is \"brief\" (AoR names only), got {}",
                shown(&other)
            )),
        },
        Kind::Names => Err("internal: variadic argument out of place".to_owned()),
        Kind::User => match v {
            Value::String(s) => username(&s).map(|()| Value::String(s)),
            Value::Number(n) => {
                let s = n.to_string();
                username(&s).map(|()| Value::String(s))
            }
            other => Err(format!("expected a user name, got {}", shown(&other))),
        },
        Kind::Domain => match v {
            Value::String(s) => domain(&s).map(|()| Value::String(s)),
            other => Err(format!(
                "expected a domain such as \"example.com\", got {}",
                shown(&other)
            )),
        },
        Kind::Ha1Md5 | Kind::Ha1Sha256 => {
            let (digits, what) = if kind == Kind::Ha1Md5 {
                (32, "MD5")
            } else {
                (64, "SHA-256")
            };
            let want = format!(
                "expected {digits} hex digits (hex {what} of \"user:realm:password\") or \"\" for none"
            );
            // The value is never quoted back: a password pasted here by
            // mistake must not travel further, even in an error.
            match v {
                Value::String(s) if s.is_empty() => Ok(Value::String(s)),
                Value::String(s) if s.len() != digits => {
                    Err(format!("{want}, got {} characters", s.chars().count()))
                }
                Value::String(s) if !s.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    Err(format!("{want}, got a character that is not a hex digit"))
                }
                Value::String(s) => Ok(Value::String(s.to_ascii_lowercase())),
                other => Err(format!("{want}, got {}", type_name(&other))),
            }
        }
        Kind::PageLimit => count(v, "AoRs per page", u64::from(super::ul::MAX_PAGE)),
        Kind::Top => count(v, "sources", crate::pike::MAX_TRACKED as u64),
    }
}

/// RFC 3261 `user`: unreserved, escaped (`%XX`) and user-unreserved
/// characters; what a digest username must equal for the AoR check.
fn username(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("the user name is empty".to_owned());
    }
    if s.len() > MAX_USERNAME {
        return Err(format!(
            "the user name is {} bytes long; at most {MAX_USERNAME}",
            s.len()
        ));
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let escaped = bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
            if !escaped {
                return Err(format!(
                    "{} has a `%` not followed by two hex digits",
                    shown(&Value::String(s.to_owned()))
                ));
            }
            i += 3;
            continue;
        }
        if !(b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b)) {
            return Err(format!(
                "{} has {}, which a SIP user name cannot hold (write the user without `sip:` and `@domain`)",
                shown(&Value::String(s.to_owned())),
                match char::from(b) {
                    '@' => "`@`".to_owned(),
                    c if c.is_ascii_graphic() => format!("`{c}`"),
                    _ => "a space, control or non-ASCII character".to_owned(),
                }
            ));
        }
        i += 1;
    }
    Ok(())
}

/// A host name (letters, digits, `-`, `.`), an IPv4 address, or an IPv6
/// address in brackets.
fn domain(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("the domain is empty".to_owned());
    }
    if s.len() > MAX_DOMAIN {
        return Err(format!(
            "the domain is {} bytes long; at most {MAX_DOMAIN}",
            s.len()
        ));
    }
    let ok = match s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        }),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected a domain such as \"example.com\" (a host name or IP address, IPv6 in brackets), got {}",
            shown(&Value::String(s.to_owned()))
        ))
    }
}

/// A count from 1 to `max`, given as a number or a numeric string (kamcmd
/// sends every argument as a string).
fn count(v: Value, what: &str, max: u64) -> Result<Value, String> {
    let n = match &v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if (1..=max).contains(&n) => Ok(Value::from(n)),
        _ => Err(format!(
            "expected how many {what}, a whole number from 1 to {max}, got {}",
            shown(&v)
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The value as JSON, cut short: error messages quote what was sent.
fn shown(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The RPC middleware running [`check`] on every call, batched or not.
#[derive(Debug, Clone)]
pub struct CheckParams<S> {
    inner: S,
}

/// Tower layer for [`CheckParams`], for `RpcServiceBuilder::layer`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckParamsLayer;

impl<S> tower::Layer<S> for CheckParamsLayer {
    type Service = CheckParams<S>;
    fn layer(&self, inner: S) -> CheckParams<S> {
        CheckParams { inner }
    }
}

impl<S> RpcServiceT for CheckParams<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = MethodResponse;
    type BatchResponse = MethodResponse;
    type NotificationResponse = MethodResponse;

    fn call<'a>(&self, mut req: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let inner = self.inner.clone();
        async move {
            match check(req.method_name(), req.params.as_deref()) {
                Ok(Some(p)) => {
                    req.params = Some(Cow::Owned(p));
                    inner.call(req).await
                }
                Ok(None) => inner.call(req).await,
                Err(e) => MethodResponse::error(req.id, e),
            }
        }
    }

    fn batch<'a>(&self, mut batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        for entry in batch.iter_mut() {
            let Ok(call) = entry else { continue };
            let checked = check(call.method_name(), call.params().map(|p| &**p));
            match (checked, &*call) {
                (Ok(Some(p)), _) => call.set_params(Some(p)),
                (Ok(None), _) => {}
                (Err(e), BatchEntry::Call(req)) => {
                    *entry = Err(BatchEntryErr::new(req.id.clone(), e));
                }
                // A notification gets no answer; let the method reject it.
                (Err(_), BatchEntry::Notification(_)) => {}
            }
        }
        self.inner.batch(batch)
    }

    fn notification<'a>(
        &self,
        mut n: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        if let Ok(Some(p)) = check(n.method_name(), n.params.as_deref()) {
            n.params = Some(Cow::Owned(p));
        }
        self.inner.notification(n)
    }
}

#[cfg(test)]
mod tests;
