//! Kamailio's method bitmask, as shown in `ul.dump`'s `Methods` field.
//! Taken from a contact's `methods` param, else from Allow, else "all".

/// Bit values of Kamailio's `METHOD_*` constants, so dumps compare equal.
const METHODS: [(&str, u32); 14] = [
    ("INVITE", 1),
    ("CANCEL", 1 << 1),
    ("ACK", 1 << 2),
    ("BYE", 1 << 3),
    ("INFO", 1 << 4),
    ("REGISTER", 1 << 5),
    ("SUBSCRIBE", 1 << 6),
    ("NOTIFY", 1 << 7),
    ("MESSAGE", 1 << 8),
    ("OPTIONS", 1 << 9),
    ("PRACK", 1 << 10),
    ("UPDATE", 1 << 11),
    ("REFER", 1 << 12),
    ("PUBLISH", 1 << 13),
];

/// Kamailio's METHOD_OTHER bit, for methods it has no constant for.
const OTHER: u32 = 1 << 19;

/// "Every method" (Kamailio prints 4294967295 when nothing was said).
pub const ALL: u32 = u32::MAX;

/// Bitmask of a comma-separated method list (quotes already stripped).
pub fn mask(list: &[u8]) -> u32 {
    list.split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|m| !m.is_empty())
        .map(|m| {
            METHODS
                .iter()
                .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(m))
                .map_or(OTHER, |(_, bit)| *bit)
        })
        .fold(0, |acc, bit| acc | bit)
}

#[cfg(test)]
mod tests;
