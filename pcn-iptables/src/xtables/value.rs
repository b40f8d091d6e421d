//! The value grammars of iptables' options, with libc's and libxtables' number rules: C integer
//! literals (`0x10`, `010`), dotted quads with implicit zero bytes (`10.1`), `inet_aton` forms,
//! masks, port ranges and protocol names.

use std::net::Ipv4Addr;

use nom::{
    IResult, Parser,
    branch::alt,
    bytes::complete::{tag_no_case, take_while, take_while1},
    character::complete::{char, one_of},
    combinator::{opt, recognize},
    sequence::{preceded, tuple},
};

use super::netdb::NameDb;

/// C's `isspace` in the "C" locale.
pub(crate) fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// The digits of a C integer literal and its radix: `0x1f` is hex, `017` octal, `17` decimal.
fn c_digits(input: &str) -> IResult<&str, (&str, u32)> {
    alt((
        preceded(
            tag_no_case("0x"),
            take_while1(|c: char| c.is_ascii_hexdigit()),
        )
        .map(|d| (d, 16)),
        recognize(preceded(
            char('0'),
            take_while(|c: char| ('0'..='7').contains(&c)),
        ))
        .map(|d| (d, 8)),
        take_while1(|c: char| c.is_ascii_digit()).map(|d| (d, 10)),
    ))
    .parse(input)
}

/// Decimal digits only, as `strtoul(s, &end, 10)` takes them.
fn decimal_digits(input: &str) -> IResult<&str, (&str, u32)> {
    take_while1(|c: char| c.is_ascii_digit())
        .map(|d| (d, 10))
        .parse(input)
}

/// An integer as `strtoumax(3)` reads it: leading blanks, an optional sign, then digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CNumber<'a> {
    pub negative: bool,
    /// The magnitude, or `None` when it overflows 64 bits (strtoumax's ERANGE).
    pub magnitude: Option<u64>,
    pub rest: &'a str,
}

impl CNumber<'_> {
    /// The value strtoumax returns: a negative number wraps around, overflow saturates.
    pub fn value(&self) -> u64 {
        match self.magnitude {
            None => u64::MAX,
            Some(m) if self.negative => m.wrapping_neg(),
            Some(m) => m,
        }
    }
}

/// `strtoumax(s, &end, base)` for base 0 (`c_literal`) or 10; `None` when no digit was read.
fn strtoumax(s: &str, c_literal: bool) -> Option<CNumber<'_>> {
    let digits = if c_literal { c_digits } else { decimal_digits };
    let (rest, (negative, (digits, radix))) = preceded(
        take_while(is_c_space),
        tuple((opt(one_of("+-")).map(|sign| sign == Some('-')), digits)),
    )
    .parse(s)
    .ok()?;
    let magnitude = digits.chars().try_fold(0u64, |acc, d| {
        acc.checked_mul(u64::from(radix))?
            .checked_add(u64::from(d.to_digit(radix)?))
    });
    Some(CNumber {
        negative,
        magnitude,
        rest,
    })
}

/// A C integer literal (`%i`, `strtoul(s, &end, 0)`), with what follows it.
pub fn c_number(s: &str) -> Option<CNumber<'_>> {
    strtoumax(s, true)
}

/// A decimal integer (`%u`, `strtoul(s, &end, 10)`), with what follows it.
pub fn decimal_number(s: &str) -> Option<CNumber<'_>> {
    strtoumax(s, false)
}

/// `xtables_strtoui(s, NULL, &v, min, max)`: the whole string is a non-negative C integer
/// literal within `min..=max`.
pub fn xtables_uint(s: &str, min: u64, max: u64) -> Option<u64> {
    if s.trim_start_matches(is_c_space).starts_with('-') {
        return None;
    }
    let n = c_number(s)?;
    let v = n.magnitude?;
    (n.rest.is_empty() && (min..=max).contains(&v)).then_some(v)
}

/// `xtables_strtoui(s, &end, &v, 0, max)`: a non-negative C integer literal of at most `max`
/// at the start of `s` (after blanks), and what follows it.
pub fn xtables_uint_prefix(s: &str, max: u64) -> Option<(u64, &str)> {
    if s.trim_start_matches(is_c_space).starts_with('-') {
        return None;
    }
    let n = c_number(s)?;
    let v = n.magnitude.filter(|v| *v <= max)?;
    Some((v, n.rest))
}

/// `xtables_numeric_to_ipaddr` / `xtables_numeric_to_ipmask`: up to four dotted bytes, each a C
/// integer literal; an address (not a mask) may stop early, the missing bytes being zero (`10.1`
/// is 10.1.0.0). libxtables copies the text into a 20-byte buffer first, hence the truncation.
pub fn dotted_quad(s: &str, is_mask: bool) -> Option<Ipv4Addr> {
    let truncated = s.get(..s.len().min(19))?;
    let mut bytes = [0u8; 4];
    let mut rest = truncated;
    for (i, byte) in bytes.iter_mut().enumerate() {
        let (part, next) = match rest.split_once('.') {
            Some((part, next)) if i < 3 => (part, Some(next)),
            _ if i < 3 && is_mask => return None,
            _ => (rest, None),
        };
        *byte = xtables_uint(part, 0, 255)? as u8;
        match next {
            Some(next) => rest = next,
            None => break,
        }
    }
    Some(Ipv4Addr::from(bytes))
}

/// `inet_pton(AF_INET, ...)`: exactly four dotted decimal bytes, no leading zeros.
pub fn inet_pton(s: &str) -> Option<Ipv4Addr> {
    let mut bytes = [0u8; 4];
    let mut parts = s.split('.');
    for byte in &mut bytes {
        let part = parts.next()?;
        let digits = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !digits || (part.len() > 1 && part.starts_with('0')) {
            return None;
        }
        *byte = part.parse().ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(bytes))
}

/// glibc's `inet_aton_exact`, which `getaddrinfo(3)` applies to a numeric host: one to four
/// dotted C integers, the last one filling the remaining bytes (`1.65535` is 1.0.255.255).
pub fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    const LAST_MAX: [u64; 4] = [0xffff_ffff, 0xff_ffff, 0xffff, 0xff];
    let mut bytes: Vec<u8> = Vec::new();
    let mut rest = s;
    loop {
        if !rest.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        let n = c_number(rest)?;
        let value = n.magnitude.filter(|&v| v <= 0xffff_ffff)?;
        match n.rest.strip_prefix('.') {
            Some(next) if bytes.len() < 3 && value <= 0xff => {
                bytes.push(value as u8);
                rest = next;
            }
            Some(_) => return None,
            None if n.rest.is_empty() && value <= LAST_MAX[bytes.len()] => {
                let mut head = [0u8; 4];
                head[..bytes.len()].copy_from_slice(&bytes);
                return Some(Ipv4Addr::from(u32::from_be_bytes(head) | value as u32));
            }
            None => return None,
        }
    }
}

/// Every address a host or network name stands for, as libxtables' `ipparse_hostnetwork` finds
/// them: a dotted quad, an /etc/networks name, then what `getaddrinfo(3)` would answer from
/// numbers and /etc/hosts.
pub fn host_addresses(db: &NameDb, name: &str) -> Vec<Ipv4Addr> {
    if let Some(addr) = dotted_quad(name, false) {
        return vec![addr];
    }
    if let Some(net) = db.network_by_name(name) {
        return vec![Ipv4Addr::from(net)];
    }
    if let Some(addr) = inet_aton(name) {
        return vec![addr];
    }
    db.host_addresses(name)
}

/// A mask after `/`: a dotted quad (possibly non-contiguous) or a prefix length.
pub fn mask(s: &str) -> Option<Ipv4Addr> {
    dotted_quad(s, true).or_else(|| {
        let bits = xtables_uint(s, 0, 32)?;
        Some(Ipv4Addr::from(
            u32::MAX.checked_shl(32 - bits as u32).unwrap_or(0),
        ))
    })
}

/// A port as the tcp match reads it (`xtables_parse_port(s, "tcp")`): a C integer up to 65535
/// or a tcp service name.
pub fn tcp_port(db: &NameDb, s: &str) -> Option<u16> {
    xtables_uint(s, 0, u64::from(u16::MAX))
        .map(|v| v as u16)
        .or_else(|| db.service_port(s, "tcp"))
}

/// A port as the udp match reads it (libxtables' `xtables_getportbyname`, i.e. `getaddrinfo(3)`
/// with only a service): a decimal number truncated to 16 bits, unless it is negative as a C
/// `int`, or a service name of any transport protocol, tcp's first.
pub fn service_port(db: &NameDb, s: &str) -> Option<u16> {
    if let Some(n) = decimal_number(s).filter(|n| n.rest.is_empty()) {
        let as_int = n.value() as u32 as i32;
        if as_int >= 0 {
            return Some(as_int as u16);
        }
    }
    ["tcp", "udp", "dccp", "udplite", "sctp"]
        .iter()
        .find_map(|proto| db.service_port(s, proto))
}

/// Protocols iptables knows by name without /etc/protocols (libxtables' `xtables_chain_protos`,
/// 1.8.9 order).
pub const CHAIN_PROTOS: [(&str, u8); 13] = [
    ("tcp", 6),
    ("sctp", 132),
    ("udp", 17),
    ("udplite", 136),
    ("icmp", 1),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("esp", 50),
    ("ah", 51),
    ("mobility-header", 135),
    ("ipv6-mh", 135),
    ("mh", 135),
    ("all", 0),
];

/// `xtables_parse_protocol`, on the already lower-cased name: a number, `all`, an /etc/protocols
/// name, or one of CHAIN_PROTOS.
pub fn protocol(db: &NameDb, s: &str) -> Option<u8> {
    if let Some(n) = xtables_uint(s, 0, 255) {
        return Some(n as u8);
    }
    if s == "all" {
        return Some(0);
    }
    db.protocol_by_name(s).or_else(|| {
        CHAIN_PROTOS
            .iter()
            .find(|(name, _)| *name == s)
            .map(|&(_, n)| n)
    })
}

/// iptables' `proto_to_name`: CHAIN_PROTOS first, then /etc/protocols unless `numeric`.
pub fn protocol_name(db: &NameDb, proto: u8, numeric: bool) -> Option<&str> {
    CHAIN_PROTOS
        .iter()
        .find(|&&(_, n)| n == proto)
        .map(|&(name, _)| name)
        .or_else(|| {
            if proto != 0 && !numeric {
                db.protocol_name(proto)
            } else {
                None
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xtables::netdb::tests::debian;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn c_integers_follow_strtoul() {
        assert_eq!(xtables_uint("0x10", 0, 255), Some(16));
        assert_eq!(xtables_uint("010", 0, 255), Some(8));
        assert_eq!(xtables_uint(" +7", 0, 255), Some(7));
        assert_eq!(xtables_uint("08", 0, 255), None);
        assert_eq!(xtables_uint("-0", 0, 255), None);
        assert_eq!(xtables_uint("", 0, 255), None);
        assert_eq!(xtables_uint("256", 0, 255), None);
        assert_eq!(xtables_uint("99999999999999999999999", 0, u64::MAX), None);
        assert_eq!(
            c_number("-5x").map(|n| (n.value() as i64, n.rest)),
            Some((-5, "x"))
        );
        assert_eq!(
            decimal_number("0x10").map(|n| (n.value(), n.rest)),
            Some((0, "x10"))
        );
    }

    #[test]
    fn dotted_quads_complete_missing_bytes() {
        assert_eq!(dotted_quad("10", false), Some(ip("10.0.0.0")));
        assert_eq!(dotted_quad("10.1", false), Some(ip("10.1.0.0")));
        assert_eq!(dotted_quad("010.1.1.1", false), Some(ip("8.1.1.1")));
        assert_eq!(dotted_quad("1.2.3.256", false), None);
        assert_eq!(dotted_quad("1.2.3.4.5", false), None);
        assert_eq!(dotted_quad("255.255.255", true), None);
        assert_eq!(dotted_quad("1.2.3.4 ", false), None);
    }

    #[test]
    fn inet_aton_fills_the_last_part() {
        assert_eq!(inet_aton("0x7f000001"), Some(ip("127.0.0.1")));
        assert_eq!(inet_aton("1.65535"), Some(ip("1.0.255.255")));
        assert_eq!(inet_aton("1.2.65535"), Some(ip("1.2.255.255")));
        assert_eq!(inet_aton("4294967296"), None);
        assert_eq!(inet_aton("1.2.3.4 "), None);
        assert_eq!(inet_aton("1.256.3"), None);
        assert_eq!(inet_aton(""), None);
    }

    #[test]
    fn hosts_and_networks_resolve() {
        let db = debian();
        assert_eq!(host_addresses(&db, "localhost"), [ip("127.0.0.1")]);
        assert_eq!(host_addresses(&db, "loopback"), [ip("127.0.0.0")]);
        assert_eq!(host_addresses(&db, "box"), [ip("198.18.0.9")]);
        assert!(host_addresses(&db, "nowhere").is_empty());
    }

    #[test]
    fn masks() {
        assert_eq!(mask("24"), Some(ip("255.255.255.0")));
        assert_eq!(mask("0"), Some(ip("0.0.0.0")));
        assert_eq!(mask("0x10"), Some(ip("255.255.0.0")));
        assert_eq!(mask("255.0.255.0"), Some(ip("255.0.255.0")));
        assert_eq!(mask("33"), None);
        assert_eq!(mask(""), None);
    }

    #[test]
    fn ports_as_tcp_and_udp_read_them() {
        let db = debian();
        assert_eq!(tcp_port(&db, "ssh"), Some(22));
        assert_eq!(tcp_port(&db, "010"), Some(8));
        assert_eq!(tcp_port(&db, "65536"), None);
        assert_eq!(tcp_port(&db, "ntp"), None);
        assert_eq!(service_port(&db, "65536"), Some(0));
        assert_eq!(service_port(&db, "4294967296"), Some(0));
        assert_eq!(service_port(&db, "-0"), Some(0));
        assert_eq!(service_port(&db, "-1"), None);
        assert_eq!(service_port(&db, "010"), Some(10));
        assert_eq!(service_port(&db, "0x10"), None);
        assert_eq!(service_port(&db, " 10"), Some(10));
        assert_eq!(service_port(&db, "http"), Some(80));
        assert_eq!(service_port(&db, "ntp"), Some(123));
    }

    #[test]
    fn protocols() {
        let db = debian();
        assert_eq!(protocol(&db, "0x11"), Some(17));
        assert_eq!(protocol(&db, "all"), Some(0));
        assert_eq!(protocol(&db, "ip"), Some(0));
        assert_eq!(protocol(&db, "icmpv6"), Some(58));
        assert_eq!(protocol(&db, "mh"), Some(135));
        assert_eq!(protocol(&db, "256"), None);
        assert_eq!(protocol(&db, ""), None);
        assert_eq!(protocol_name(&db, 58, false), Some("ipv6-icmp"));
        assert_eq!(protocol_name(&db, 47, false), Some("gre"));
        assert_eq!(protocol_name(&db, 47, true), None);
        assert_eq!(protocol_name(&db, 253, false), None);
    }
}
