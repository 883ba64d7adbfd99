//! Registrar replies: the 200 listing the AoR's bindings, and refusals
//! carrying the header the RFC asks for plus `P-Registrar-Error`.

use std::cell::RefCell;
use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use smallvec::SmallVec;

use super::error::Reject;
use crate::peer::Peer;
use crate::sip::{reply, Request};
use crate::usrloc::Binding;

/// 200 OK with one Contact per live binding, highest q first (no q counts
/// as 1.0), most recently changed first among equals; plus `Date` (RFC 3261
/// §10.3 step 8) and, when asked for, the stored Path (RFC 3327 §5.3).
pub fn ok(
    out: &mut Vec<u8>,
    req: &Request<'_>,
    peer: &Peer,
    now: u64,
    bindings: &[Binding],
    echo_path: bool,
) {
    reply::begin(out, req, peer, 200, "OK");
    ok_rest(out, now, bindings, echo_path);
}

/// The part of the 200 after [`reply::begin`]: the Contacts, Path, Date
/// and the end of the header section. Split from [`ok`] so the registrar
/// can measure the head and decide whether the whole reply will fit before
/// it changes anything (see [`super::budget`]).
pub fn ok_rest(out: &mut Vec<u8>, now: u64, bindings: &[Binding], echo_path: bool) {
    ok_rest_with(out, now, bindings, echo_path, None);
}

/// [`ok_rest`], with `pub-gruu` and `temp-gruu` on the Contacts of
/// bindings with an instance when `gruu` is given (RFC 5627 §5.2).
pub fn ok_rest_with(
    out: &mut Vec<u8>,
    now: u64,
    bindings: &[Binding],
    echo_path: bool,
    gruu: Option<&super::gruu::Issuer<'_>>,
) {
    let mut order: SmallVec<[usize; 8]> = (0..bindings.len())
        .filter(|&i| bindings[i].is_live(now))
        .collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&bindings[a], &bindings[b]);
        y.q.unwrap_or(1000)
            .cmp(&x.q.unwrap_or(1000))
            .then(y.last_modified.cmp(&x.last_modified))
            .then(b.cmp(&a))
    });
    for &i in &order {
        let b = &bindings[i];
        out.extend_from_slice(b"Contact: <");
        out.extend_from_slice(b.contact().as_bytes());
        out.extend_from_slice(b">;expires=");
        // Permanent bindings (ul.add with expires 0) are shown with the
        // largest value a UA can hold.
        let remaining = if b.is_permanent() {
            u64::from(u32::MAX)
        } else {
            b.remaining(now)
        };
        reply::write_u64(out, remaining);
        if let Some(q) = b.q {
            out.extend_from_slice(b";q=");
            write_q(out, q);
        }
        if let Some(g) = gruu {
            g.write_params(out, b);
        }
        if let Some(instance) = b.instance() {
            // Rare (RFC 5626 UAs only): core::fmt is fine here.
            let _ = write!(out, ";+sip.instance=\"{instance}\"");
            if b.reg_id > 0 {
                out.extend_from_slice(b";reg-id=");
                reply::write_u64(out, u64::from(b.reg_id));
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    if echo_path {
        // Every binding of one request shares its Path; show the newest.
        if let Some(path) = order.first().and_then(|&i| bindings[i].path()) {
            reply::header(out, "Path", path);
        }
    }
    write_date(out, now);
    reply::finish(out);
}

/// A refusal: status, reason, the RFC's companion header, and Kamailio's
/// `P-Registrar-Error` naming the cause for whoever reads the trace.
pub fn refuse(out: &mut Vec<u8>, req: &Request<'_>, peer: &Peer, reject: &Reject) {
    reply::begin(out, req, peer, reject.status(), reject.reason());
    match reject {
        Reject::IntervalTooBrief(min) => {
            let _ = write!(out, "Min-Expires: {min}\r\n");
        }
        Reject::TooManyContacts(retry) => {
            let _ = write!(out, "Retry-After: {retry}\r\n");
        }
        Reject::Unsupported(tags) => reply::header(out, "Unsupported", tags),
        // A store outage is usually short; tell the phone when to retry
        // rather than letting it back off for its full interval.
        Reject::StoreUnavailable => reply::header(out, "Retry-After", "5"),
        Reject::TableFull(retry) => {
            let _ = write!(out, "Retry-After: {retry}\r\n");
        }
        Reject::Challenge(challenges) => {
            for c in challenges {
                reply::header(out, "WWW-Authenticate", c);
            }
        }
        _ => {}
    }
    reply::header(out, "P-Registrar-Error", reject.reason());
    reply::finish(out);
}

/// q in thousandths as the shortest decimal: 1000 → `1`, 500 → `0.5`.
pub fn write_q(out: &mut Vec<u8>, q: u16) {
    if q >= 1000 {
        out.push(b'1');
    } else if q == 0 {
        out.push(b'0');
    } else {
        // Three digits, trailing zeros dropped; no format! (it allocated
        // once per Contact with a q).
        let d = [
            b'0' + (q / 100) as u8,
            b'0' + (q / 10 % 10) as u8,
            b'0' + (q % 10) as u8,
        ];
        let mut end = d.len();
        while end > 1 && d[end - 1] == b'0' {
            end -= 1;
        }
        out.extend_from_slice(b"0.");
        out.extend_from_slice(&d[..end]);
    }
}

/// `Date:` in RFC 1123 form, formatted once per second per thread.
fn write_date(out: &mut Vec<u8>, now: u64) {
    thread_local! {
        static CACHE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != now {
            c.1 = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(now));
            c.0 = now;
        }
        out.extend_from_slice(b"Date: ");
        out.extend_from_slice(c.1.as_bytes());
        out.extend_from_slice(b"\r\n");
    });
}

#[cfg(test)]
mod tests;
