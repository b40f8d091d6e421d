//! What libxt_NAT's targets share (SNAT, DNAT, MASQUERADE, REDIRECT; each has its own file):
//! the parsing of `ADDR[-ADDR][:PORT[-PORT]]` and of port ranges, with iptables 1.8.9's
//! messages, and the printing of a range (`sprint_range`, `__NAT_print`).

use std::fmt::Write as _;

use pcn_iptables_common::{Action, nat_kind, nat_range, verdict};

use super::api::{Context, Entry, Extension, Kind, Value};
use crate::error::Result;
use crate::model::{Nat, NatKind, Target};
use crate::xtables::netdb::NameDb;
use crate::xtables::value::{inet_pton, xtables_uint_prefix};
use crate::xtables::{param, unsupported};

/// libxt_NAT's option ids.
pub const O_TO_DEST: u8 = 0;
pub const O_TO_SRC: u8 = 1;
pub const O_TO_PORTS: u8 = 2;
pub const O_RANDOM: u8 = 3;
pub const O_RANDOM_FULLY: u8 = 4;
pub const O_PERSISTENT: u8 = 5;

/// The kernel's `NF_NAT_RANGE_PROTO_OFFSET` (DNAT's `/PORT`), which pcn-iptables does not
/// have: the parse keeps it in the value only for the final check to refuse it.
pub const PROTO_OFFSET: u32 = 32;

/// A nat target of `kind` with nothing set (the extension's `init`).
pub fn init(kind: NatKind) -> Target {
    Target::Nat(Nat {
        kind,
        min_addr: 0,
        max_addr: 0,
        min_port: 0,
        max_port: 0,
        flags: 0,
    })
}

fn nat(t: &mut Target) -> &mut Nat {
    match t {
        Target::Nat(n) => n,
        _ => unreachable!("a nat target instance holds a nat target"),
    }
}

/// The protocols whose ports a range may name: `-p` as given before the option (its `!` does
/// not matter, as in `__NAT_parse`).
fn port_ok(cx: &Context) -> bool {
    const PORTED: [u8; 5] = [6, 17, 132, 33, 1];
    cx.proto.is_some_and(|p| PORTED.contains(&p.value))
}

/// nf_nat maps the ports of SCTP (whose CRC32c it recomputes over the packet) and DCCP
/// connections, which conntrack tells apart by their ports; pcn-iptables tracks those by
/// their addresses alone, so a range with ports for them is refused rather than applied to
/// the addresses only.
fn ports_mapped(n: &Nat, cx: &Context) -> Result<()> {
    const BY_ADDRESS: [(u8, &str); 2] = [(132, "SCTP"), (33, "DCCP")];
    let proto = cx.proto.filter(|p| !p.negated).map(|p| p.value);
    match BY_ADDRESS.iter().find(|(p, _)| Some(*p) == proto) {
        Some((_, name)) if n.flags & nat_range::PROTO_SPECIFIED != 0 => {
            Err(unsupported(format!("nat of {name} ports")))
        }
        _ => Ok(()),
    }
}

/// `__NAT_parse`: option `id` of a libxt_NAT target.
pub fn parse(t: &mut Target, id: u8, arg: &str, cx: &mut Context) -> Result<()> {
    let portok = port_ok(cx);
    let n = nat(t);
    match id {
        O_TO_DEST | O_TO_SRC => parse_to(n, arg, portok, cx.db).and_then(|()| ports_mapped(n, cx)),
        O_TO_PORTS => parse_ports(n, arg, portok, cx.db).and_then(|()| ports_mapped(n, cx)),
        O_PERSISTENT => {
            n.flags |= nat_range::PERSISTENT;
            Ok(())
        }
        O_RANDOM => {
            n.flags |= nat_range::PROTO_RANDOM;
            Ok(())
        }
        O_RANDOM_FULLY => {
            n.flags |= nat_range::PROTO_RANDOM_FULLY;
            Ok(())
        }
        _ => unreachable!("libxt_NAT has no option {id}"),
    }
}

/// `xtables_service_to_port(name, NULL)`: a service of any protocol.
fn service(db: &NameDb, name: &str) -> Option<u16> {
    db.service_port_any(name)
}

/// `parse_ports`: `PORT[-PORT[/PORT]]`.
fn parse_ports(n: &mut Nat, arg: &str, portok: bool, db: &NameDb) -> Result<()> {
    if !portok {
        return Err(param("Need TCP, UDP, SCTP or DCCP with port specification"));
    }
    n.flags |= nat_range::PROTO_SPECIFIED;
    let not_valid = |text: &str| param(format!("Port `{text}' not valid"));
    let (port, end) = match xtables_uint_prefix(arg, u64::from(u16::MAX)) {
        Some((port, end)) => (port as u16, end),
        None => (service(db, arg).ok_or_else(|| not_valid(arg))?, ""),
    };
    let arg = match end.chars().next() {
        None => {
            (n.min_port, n.max_port) = (port, port);
            return Ok(());
        }
        Some('-') => &end[1..],
        Some(':') => return Err(param("Invalid port:port syntax - use dash")),
        Some(_) => return Err(param(format!("Garbage after port value: `{end}'"))),
    };
    // A range: no service names.
    let (max, end) = xtables_uint_prefix(arg, u64::from(u16::MAX)).ok_or_else(|| not_valid(arg))?;
    let max = max as u16;
    if max < port {
        return Err(param(format!("Port range `{arg}' funky")));
    }
    (n.min_port, n.max_port) = (port, max);
    let arg = match end.chars().next() {
        None => return Ok(()),
        Some('/') => &end[1..],
        Some(_) => return Err(param(format!("Garbage after port range: `{end}'"))),
    };
    let base = xtables_uint_prefix(arg, u64::from(u16::MAX)).filter(|(base, _)| *base >= 1);
    if base.is_none() && service(db, arg).is_none() {
        return Err(not_valid(arg));
    }
    n.flags |= PROTO_OFFSET;
    Ok(())
}

/// `parse_to`: `[ADDR[-ADDR]][:PORT[-PORT]]` (IPv4: no brackets; two colons make the whole an
/// address, which then is a bad one).
fn parse_to(n: &mut Nat, arg: &str, portok: bool, db: &NameDb) -> Result<()> {
    if arg.contains('[') {
        return Err(param("Invalid address format"));
    }
    let colon = arg.find(':').filter(|&c| !arg[c + 1..].contains(':'));
    let addrs = match colon {
        Some(c) => {
            parse_ports(n, &arg[c + 1..], portok, db)?;
            // "Starts with colon or [] colon? No IP info...": the test of the brackets'
            // place applies to any two characters.
            if c == 0 || c == 2 {
                return Ok(());
            }
            &arg[..c]
        }
        None => arg,
    };
    n.flags |= nat_range::MAP_IPS;
    let bad = |text: &str| param(format!("Bad IP address \"{text}\""));
    let (min, max) = match addrs.split_once('-') {
        Some((min, max)) => (min, Some(max)),
        None => (addrs, None),
    };
    n.min_addr = inet_pton(min).ok_or_else(|| bad(min))?.into();
    n.max_addr = match max {
        Some(max) => inet_pton(max).ok_or_else(|| bad(max))?.into(),
        None => n.min_addr,
    };
    Ok(())
}

/// The final check shared by SNAT, DNAT and MASQUERADE: a shifted port range (`/PORT`), which
/// iptables takes and pcn-iptables cannot translate, is refused.
pub fn refuse_offset(t: &Target) -> Result<()> {
    match t {
        Target::Nat(n) if n.flags & PROTO_OFFSET != 0 => {
            Err(unsupported("a shifted port range (`PORT-PORT/BASE')"))
        }
        _ => Ok(()),
    }
}

/// `sprint_range` for IPv4.
fn range(n: &Nat) -> String {
    let mut out = String::new();
    if n.flags & nat_range::MAP_IPS != 0 {
        let _ = write!(out, "{}", std::net::Ipv4Addr::from(n.min_addr));
        if n.max_addr != n.min_addr {
            let _ = write!(out, "-{}", std::net::Ipv4Addr::from(n.max_addr));
        }
    }
    if n.flags & nat_range::PROTO_SPECIFIED != 0 {
        let _ = write!(out, ":{}", n.min_port);
        if n.max_port != n.min_port {
            let _ = write!(out, "-{}", n.max_port);
        }
    }
    out
}

/// `__NAT_print`: the range after `option` (`to:` for `-L`, `--to-source ` for `-S`), then
/// the flags, each after `flag_prefix`. MASQUERADE and REDIRECT print their ports without
/// the colon (`skip_colon`).
pub fn print(t: &Target, option: &str, flag_prefix: &str, skip_colon: bool, out: &mut String) {
    let Target::Nat(n) = t else { return };
    let text = range(n);
    if !text.is_empty() {
        let text = match text.strip_prefix(':') {
            Some(ports) if skip_colon => ports,
            _ => &text,
        };
        let _ = write!(out, " {option}{text}");
    }
    for (bit, name) in [
        (nat_range::PROTO_RANDOM, "random"),
        (nat_range::PROTO_RANDOM_FULLY, "random-fully"),
        (nat_range::PERSISTENT, "persistent"),
    ] {
        if n.flags & bit != 0 {
            let _ = write!(out, " {flag_prefix}{name}");
        }
    }
}

/// A nat target's action: its kind and range, as the data plane reads them.
pub fn action(t: &Target, action: &mut Action) -> u32 {
    let Target::Nat(n) = t else {
        unreachable!("a nat target")
    };
    action.nat_kind = match n.kind {
        NatKind::Snat => nat_kind::SNAT,
        NatKind::Dnat => nat_kind::DNAT,
        NatKind::Masquerade => nat_kind::MASQUERADE,
        NatKind::Redirect => nat_kind::REDIRECT,
        NatKind::Netmap => nat_kind::NETMAP,
    };
    action.nat_flags = n.flags;
    action.nat_addr = [n.min_addr.to_be_bytes(), n.max_addr.to_be_bytes()];
    action.nat_port = [n.min_port, n.max_port];
    verdict::NAT
}

/// One of libxt_NAT's targets (SNAT, DNAT, MASQUERADE, REDIRECT), as its file declares it:
/// they share their parsing, printing and action, and differ in these.
pub struct NatTarget {
    pub name: &'static str,
    pub kind: NatKind,
    pub entries: &'static [Entry],
    pub help: &'static str,
    /// `-S`'s option before the range, and `-L`'s label.
    pub save: &'static str,
    pub list: &'static str,
    /// The range is ports only (`--to-ports`).
    pub ports_only: bool,
    /// The final check of the parsed target (the `*_fcheck` of libxt_NAT).
    pub check: fn(&Target) -> Result<()>,
}

impl Extension for NatTarget {
    fn name(&self) -> &'static str {
        self.name
    }

    fn kind(&self) -> Kind {
        Kind::Target
    }

    fn help(&self) -> &'static str {
        self.help
    }

    fn entries(&self) -> &'static [Entry] {
        self.entries
    }

    fn init(&self) -> Value {
        Value::Target(init(self.kind))
    }

    fn parse(&self, v: &mut Value, id: u8, arg: &str, _: bool, cx: &mut Context) -> Result<()> {
        parse(v.as_target(), id, arg, cx)
    }

    fn check(&self, _: u32, v: &mut Value) -> Result<()> {
        match v {
            Value::Target(t) => (self.check)(t),
            Value::Match(_) => Ok(()),
        }
    }

    fn save_target(&self, t: &Target, out: &mut String) {
        print(t, self.save, "--", self.ports_only, out);
    }

    fn print_target(&self, t: &Target, _: bool, out: &mut String) {
        print(t, self.list, "", self.ports_only, out);
    }

    fn action(&self, t: &Target, action: &mut Action) -> u32 {
        self::action(t, action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Negatable;

    fn parse_with(id: u8, arg: &str, proto: Option<u8>) -> Result<Nat> {
        let db = crate::xtables::netdb::tests::debian();
        let proto = proto.map(|value| Negatable {
            value,
            negated: false,
        });
        let mut warnings = Vec::new();
        let mut next = || None;
        let mut cx = Context {
            db: &db,
            proto: proto.as_ref(),
            warnings: &mut warnings,
            next_arg: &mut next,
        };
        let mut t = init(NatKind::Snat);
        parse(&mut t, id, arg, &mut cx)?;
        let Target::Nat(n) = t else { unreachable!() };
        Ok(n)
    }

    fn err(id: u8, arg: &str, proto: Option<u8>) -> String {
        parse_with(id, arg, proto).unwrap_err().message
    }

    #[test]
    fn addresses_and_ports() {
        let n = parse_with(O_TO_SRC, "1.2.3.4-1.2.3.9:1000-2000", Some(6)).unwrap();
        assert_eq!((n.min_addr, n.max_addr), (0x0102_0304, 0x0102_0309));
        assert_eq!((n.min_port, n.max_port), (1000, 2000));
        assert_eq!(n.flags, nat_range::MAP_IPS | nat_range::PROTO_SPECIFIED);
        assert_eq!(range(&n), "1.2.3.4-1.2.3.9:1000-2000");
        let n = parse_with(O_TO_DEST, ":0x50", Some(17)).unwrap();
        assert_eq!(
            (n.flags, n.min_port, n.max_port),
            (nat_range::PROTO_SPECIFIED, 80, 80)
        );
        assert_eq!(range(&n), ":80");
        // Two characters before the colon: no address either.
        let n = parse_with(O_TO_DEST, "ab:http", Some(1)).unwrap();
        assert_eq!((n.flags, n.min_port), (nat_range::PROTO_SPECIFIED, 80));
        let n = parse_with(O_TO_SRC, "1.2.3.9-1.2.3.4", None).unwrap();
        assert_eq!(range(&n), "1.2.3.9-1.2.3.4");
    }

    #[test]
    fn sctp_and_dccp_ports_are_refused() {
        for (proto, name) in [(132, "SCTP"), (33, "DCCP")] {
            let want = format!("nat of {name} ports is not supported by pcn-iptables");
            assert_eq!(err(O_TO_DEST, "1.2.3.4:80", Some(proto)), want);
            assert_eq!(err(O_TO_PORTS, "80-90", Some(proto)), want);
            let n = parse_with(O_TO_DEST, "1.2.3.4", Some(proto)).unwrap();
            assert_eq!(range(&n), "1.2.3.4");
        }
    }

    #[test]
    fn messages_as_iptables() {
        let need = "Need TCP, UDP, SCTP or DCCP with port specification";
        assert_eq!(err(O_TO_SRC, "bad:80", None), need);
        assert_eq!(err(O_TO_PORTS, "80", Some(0)), need);
        assert_eq!(
            err(O_TO_SRC, "1.2.3.4:65536", Some(6)),
            "Port `65536' not valid"
        );
        assert_eq!(
            err(O_TO_SRC, "1.2.3.4:080", Some(6)),
            "Garbage after port value: `80'"
        );
        assert_eq!(
            err(O_TO_PORTS, "80:90", Some(6)),
            "Invalid port:port syntax - use dash"
        );
        assert_eq!(err(O_TO_PORTS, "90-80", Some(6)), "Port range `80' funky");
        assert_eq!(err(O_TO_PORTS, "80-http", Some(6)), "Port `http' not valid");
        assert_eq!(
            err(O_TO_PORTS, "80-90x", Some(6)),
            "Garbage after port range: `x'"
        );
        assert_eq!(err(O_TO_PORTS, "80-90/0", Some(6)), "Port `0' not valid");
        assert_eq!(
            err(O_TO_SRC, "1.2.3.4:1:2", Some(6)),
            "Bad IP address \"1.2.3.4:1:2\""
        );
        assert_eq!(
            err(O_TO_SRC, "01.2.3.4", None),
            "Bad IP address \"01.2.3.4\""
        );
        assert_eq!(err(O_TO_SRC, "1.2.3.4-", None), "Bad IP address \"\"");
        assert_eq!(
            err(O_TO_SRC, "[1.2.3.4]:80", Some(6)),
            "Invalid address format"
        );
        let n = parse_with(O_TO_PORTS, "80-90/100x", Some(6)).unwrap();
        assert!(refuse_offset(&Target::Nat(n)).is_err());
    }

    #[test]
    fn printing_skips_the_colon_of_bare_ports() {
        let mut n = parse_with(O_TO_PORTS, "1000-2000", Some(6)).unwrap();
        n.flags |= nat_range::PROTO_RANDOM | nat_range::PROTO_RANDOM_FULLY;
        let mut out = String::new();
        print(&Target::Nat(n), "masq ports: ", "", true, &mut out);
        assert_eq!(out, " masq ports: 1000-2000 random random-fully");
        let mut out = String::new();
        print(&Target::Nat(n), "--to-ports ", "--", true, &mut out);
        assert_eq!(out, " --to-ports 1000-2000 --random --random-fully");
    }

    #[test]
    fn actions_carry_network_order_addresses() {
        let n = parse_with(O_TO_SRC, "198.18.0.1-198.18.0.2:5-6", Some(6)).unwrap();
        let mut a = Action::default();
        assert_eq!(action(&Target::Nat(n), &mut a), verdict::NAT);
        assert_eq!(a.nat_kind, nat_kind::SNAT);
        assert_eq!(a.nat_addr, [[198, 18, 0, 1], [198, 18, 0, 2]]);
        assert_eq!(a.nat_port, [5, 6]);
        assert_eq!(a.nat_flags, nat_range::MAP_IPS | nat_range::PROTO_SPECIFIED);
    }
}
