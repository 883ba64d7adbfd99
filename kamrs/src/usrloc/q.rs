//! A binding's q-value as a number. In memory it is thousandths
//! ([`Binding::q`](super::Binding), `None` when the Contact had none);
//! where Kamailio shows or stores one (`ul.dump`, `ul.add`, its
//! `location` table) it is a number from 0 to 1, with -1 for none.

/// Kamailio's `Q_UNSPECIFIED`: the number of a binding without a q.
pub const Q_UNSPECIFIED: f64 = -1.0;

/// The number Kamailio shows for `q`: 0.5 for 500, -1 for none.
pub fn q_to_number(q: Option<u16>) -> f64 {
    q.map_or(Q_UNSPECIFIED, |q| f64::from(q) / 1000.0)
}

/// `q` from a number: a negative one is none (Kamailio's -1), 0 to 1 are
/// rounded to thousandths, anything else (above 1, NaN) is refused with
/// `None`.
pub fn q_from_number(q: f64) -> Option<Option<u16>> {
    if q < 0.0 {
        Some(None)
    } else if q <= 1.0 {
        Some(Some((q * 1000.0).round() as u16))
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
