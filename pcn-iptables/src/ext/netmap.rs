//! libipt_NETMAP: `--to ADDR[/MASK]`, a network to map the source or destination prefix to.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use pcn_iptables_common::{Action, nat_range};

use super::api::{Context, Entry, Extension, Kind, Value, mandatory};
use super::nat;
use crate::error::Result;
use crate::model::{Nat, NatKind, Target};
use crate::xtables::hostmask;

pub struct Netmap;

impl Extension for Netmap {
    fn name(&self) -> &'static str {
        "NETMAP"
    }

    fn kind(&self) -> Kind {
        Kind::Target
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Target(nat::init(NatKind::Netmap))
    }

    fn parse(&self, v: &mut Value, _: u8, arg: &str, _: bool, cx: &mut Context) -> Result<()> {
        let (addr, mask, _) = hostmask(cx.db, "NETMAP", "to", arg)?;
        let min = addr & mask;
        *v.as_target() = Target::Nat(Nat {
            kind: NatKind::Netmap,
            min_addr: min,
            max_addr: min | !mask,
            min_port: 0,
            max_port: 0,
            flags: nat_range::MAP_IPS,
        });
        Ok(())
    }

    fn save_target(&self, t: &Target, out: &mut String) {
        *out += " --to ";
        print(t, out);
    }

    fn print_target(&self, t: &Target, _: bool, out: &mut String) {
        *out += " to:";
        print(t, out);
    }

    fn action(&self, t: &Target, action: &mut Action) -> u32 {
        nat::action(t, action)
    }
}

pub const ENTRIES: [Entry; 1] = [mandatory("to", 0, false)];

/// `__NETMAP_print`: the network, and its mask as a prefix length (dotted if it has holes).
fn print(t: &Target, out: &mut String) {
    let Target::Nat(n) = t else { return };
    let mask = !(n.min_addr ^ n.max_addr);
    let _ = write!(out, "{}", Ipv4Addr::from(n.min_addr));
    let bits = mask.leading_ones();
    match mask.checked_shl(bits).unwrap_or(0) {
        0 => {
            let _ = write!(out, "/{bits}");
        }
        _ => {
            let _ = write!(out, "/{}", Ipv4Addr::from(mask));
        }
    }
}

/// libipt_NETMAP's help text.
pub const HELP: &str = concat!(
    "\n",
    "NETMAP target options:\n",
    "  --to address[/mask]\n",
    "\t\t\t\tNetwork address to map to.\n",
    "\n",
);

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(arg: &str) -> Result<String> {
        let db = crate::xtables::netdb::tests::debian();
        let (addr, mask, _) = hostmask(&db, "NETMAP", "to", arg)?;
        let min = addr & mask;
        let mut out = String::new();
        print(
            &Target::Nat(Nat {
                kind: NatKind::Netmap,
                min_addr: min,
                max_addr: min | !mask,
                min_port: 0,
                max_port: 0,
                flags: nat_range::MAP_IPS,
            }),
            &mut out,
        );
        Ok(out)
    }

    #[test]
    fn networks_as_iptables_lists_them() {
        for (arg, want) in [
            ("10.0.0.1/8", "10.0.0.0/8"),
            ("10.0.0.1", "10.0.0.1/32"),
            ("10.0.0.0/0", "0.0.0.0/0"),
            ("10.0.0.0/33", "10.0.0.0/32"),
            ("10.0.0.0/255.0.255.0", "10.0.0.0/32"),
            ("10.0.0.0/255.255.0.0", "10.0.0.0/16"),
            ("10/8", "0.0.0.0/8"),
            ("localhost/8", "127.0.0.0/8"),
            ("10.0.0.0/0.0.0.0", "0.0.0.0/0"),
            ("10.0.0.0/0x10", "10.0.0.0/16"),
        ] {
            assert_eq!(listed(arg).unwrap(), want, "{arg}");
        }
    }

    #[test]
    fn bad_networks() {
        let bad_mask = "NETMAP: bad value for option \"--to\", neither a valid network mask \
                        nor valid CIDR (0-32).\n";
        for (arg, want) in [
            ("10.0.0.0/x", bad_mask),
            ("10.0.0.0/", bad_mask),
            ("10.0.0.0/08", bad_mask),
            ("/8", "getaddrinfo: Name or service not known\n"),
        ] {
            assert_eq!(listed(arg).unwrap_err().message, want, "{arg}");
        }
    }
}
