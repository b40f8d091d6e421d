//! The nat tests' topology, a container host: two containers behind a router (the rules go
//! there), and one outside host. Addresses are all in 198.18.0.0/15.
//! ```text
//!   c1   eth0 198.18.20.2/24 ── eth0 198.18.20.1/24  router  eth1 198.18.30.1/24 ── eth0 198.18.30.2/24  ext
//!   c2   eth0 198.18.22.2/24 ── eth2 198.18.22.1/24  router
//! ```
//! [`Gateway::with_bridge`] is Docker's layout instead: both containers on one bridge,
//! `docker0` (198.18.20.1/24) in the router, c2 at 198.18.20.3 ([`C2_ON_BRIDGE`]).
//!
//! Every veth end has transmit checksum offload off, so that each packet carries a complete
//! checksum that its receiver verifies: a translation that leaves a wrong IP, TCP, UDP or ICMP
//! checksum gets the packet dropped, and counted ([`csum_errors`], checked by
//! [`Checks::finish`]).
//!
//! The containers' default route goes through the router (ip_forward=1). `ext` has no route
//! to the inside networks (198.18.20.0/22), as an Internet host would not: an answer reaches
//! a container only if the router translated the connection (MASQUERADE/SNAT on the way out,
//! DNAT with its reverse mapping on the way in).
//!
//! Also here: [`Checks`], observations compared with the expected ones and kept in the
//! scenario's [`Transcript`] (so that the differential run compares them too).

use std::fmt::Debug;

use crate::diff::Transcript;
use crate::fw::Fw;
use crate::lab::{Lab, Ns};

/// The first container.
pub const C1: &str = "198.18.20.2";
/// The router on c1's network.
pub const ROUTER_IN: &str = "198.18.20.1";
/// The second container (another inside network).
pub const C2: &str = "198.18.22.2";
/// The router on c2's network.
pub const ROUTER_IN2: &str = "198.18.22.1";
/// The second container in [`Gateway::with_bridge`] (on c1's network).
pub const C2_ON_BRIDGE: &str = "198.18.20.3";
/// Both inside networks.
pub const INSIDE: &str = "198.18.20.0/22";
/// The router's outside address (on eth1).
pub const ROUTER_OUT: &str = "198.18.30.1";
/// Another address in the outside network, for renumbering.
pub const ROUTER_OUT2: &str = "198.18.30.11";
/// The outside host.
pub const EXT: &str = "198.18.30.2";

/// The topology.
pub struct Gateway {
    pub lab: Lab,
    pub c1: Ns,
    pub c2: Ns,
    pub router: Ns,
    pub ext: Ns,
}

impl Gateway {
    pub fn new(fw: Fw) -> Gateway {
        let mut lab = Lab::new(fw);
        let c1 = lab.ns("c1");
        let c2 = lab.ns("c2");
        let router = lab.ns("router");
        let ext = lab.ns("ext");
        lab.veth(&c1, "eth0", &router, "eth0");
        lab.veth(&ext, "eth0", &router, "eth1");
        lab.veth(&c2, "eth0", &router, "eth2");
        c1.ip(&format!("addr add {C1}/24 dev eth0"));
        c2.ip(&format!("addr add {C2}/24 dev eth0"));
        router.ip(&format!("addr add {ROUTER_IN}/24 dev eth0"));
        router.ip(&format!("addr add {ROUTER_OUT}/24 dev eth1"));
        router.ip(&format!("addr add {ROUTER_IN2}/24 dev eth2"));
        ext.ip(&format!("addr add {EXT}/24 dev eth0"));
        c1.ip(&format!("route add default via {ROUTER_IN}"));
        c2.ip(&format!("route add default via {ROUTER_IN2}"));
        router.sysctl("net.ipv4.ip_forward=1");
        for (ns, ifs) in [
            (&c1, &["eth0"][..]),
            (&c2, &["eth0"]),
            (&ext, &["eth0"]),
            (&router, &["eth0", "eth1", "eth2"]),
        ] {
            for i in ifs {
                tx_checksum_off(ns, i);
            }
        }
        Gateway {
            lab,
            c1,
            c2,
            router,
            ext,
        }
    }
}

impl Gateway {
    /// Docker's layout: c1 and c2 on the bridge `docker0` of the router (ports `veth1`,
    /// `veth2`), which holds 198.18.20.1/24; c2 at [`C2_ON_BRIDGE`].
    pub fn with_bridge(fw: Fw) -> Gateway {
        let mut lab = Lab::new(fw);
        let c1 = lab.ns("c1");
        let c2 = lab.ns("c2");
        let router = lab.ns("router");
        let ext = lab.ns("ext");
        router.ip("link add docker0 type bridge");
        router.ip("link set docker0 up");
        lab.veth(&c1, "eth0", &router, "veth1");
        lab.veth(&c2, "eth0", &router, "veth2");
        lab.veth(&ext, "eth0", &router, "eth1");
        router.ip("link set veth1 master docker0");
        router.ip("link set veth2 master docker0");
        c1.ip(&format!("addr add {C1}/24 dev eth0"));
        c2.ip(&format!("addr add {C2_ON_BRIDGE}/24 dev eth0"));
        router.ip(&format!("addr add {ROUTER_IN}/24 dev docker0"));
        router.ip(&format!("addr add {ROUTER_OUT}/24 dev eth1"));
        ext.ip(&format!("addr add {EXT}/24 dev eth0"));
        c1.ip(&format!("route add default via {ROUTER_IN}"));
        c2.ip(&format!("route add default via {ROUTER_IN}"));
        router.sysctl("net.ipv4.ip_forward=1");
        for (ns, ifs) in [
            (&c1, &["eth0"][..]),
            (&c2, &["eth0"]),
            (&ext, &["eth0"]),
            (&router, &["veth1", "veth2", "eth1"]),
        ] {
            for i in ifs {
                tx_checksum_off(ns, i);
            }
        }
        Gateway {
            lab,
            c1,
            c2,
            router,
            ext,
        }
    }
}

/// Turns transmit checksum offload off on `ifname` of `ns` (`ethtool -K ifname tx off`): the
/// stack then writes complete checksums, which the veth peer's stack verifies (a packet with
/// offload on carries a partial checksum that the receiver takes on trust).
#[track_caller]
pub fn tx_checksum_off(ns: &Ns, ifname: &str) {
    const SIOCETHTOOL: libc::c_ulong = 0x8946;
    const ETHTOOL_GTXCSUM: u32 = 0x16;
    const ETHTOOL_STXCSUM: u32 = 0x17;
    #[repr(C)]
    struct EthtoolValue {
        cmd: u32,
        data: u32,
    }
    let name = ifname.to_string();
    let r = ns.in_ns(move || {
        // SAFETY: an AF_INET socket for the ioctl, owned at once; the ifreq holds the
        // interface name (shorter than IFNAMSIZ) and a pointer to a live ethtool_value.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let fd = <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd);
            let mut v = EthtoolValue {
                cmd: ETHTOOL_STXCSUM,
                data: 0,
            };
            let mut ifr: libc::ifreq = std::mem::zeroed();
            for (d, s) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
                *d = s as libc::c_char;
            }
            ifr.ifr_ifru.ifru_data = (&mut v as *mut EthtoolValue).cast();
            let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
            if libc::ioctl(raw, SIOCETHTOOL as _, &mut ifr) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Read it back.
            v = EthtoolValue {
                cmd: ETHTOOL_GTXCSUM,
                data: 1,
            };
            if libc::ioctl(raw, SIOCETHTOOL as _, &mut ifr) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if v.data != 0 {
                return Err(std::io::Error::other("still on after ETHTOOL_STXCSUM"));
            }
            Ok(())
        }
    });
    if let Err(e) = r {
        panic!("turning tx checksum offload off on {ifname} in {ns}: {e}");
    }
}

/// Packets `ns` dropped for a bad checksum so far: the sum of every `InCsumErrors` counter
/// (IP, ICMP, TCP, UDP) of /proc/net/snmp and /proc/net/netstat.
pub fn csum_errors(ns: &Ns) -> u64 {
    let mut total = 0;
    for file in ["/proc/net/snmp", "/proc/net/netstat"] {
        let out = ns.exec(&["cat", file]).expect_ok().stdout;
        let lines: Vec<&str> = out.lines().collect();
        // Pairs of lines: `Proto: Name Name...` then `Proto: value value...`.
        for pair in lines.chunks(2) {
            let [names, values] = pair else { continue };
            for (n, v) in names.split_whitespace().zip(values.split_whitespace()) {
                if n == "InCsumErrors" {
                    total += v.parse::<u64>().unwrap_or(0);
                }
            }
        }
    }
    total
}

/// Observations the lab's verdicts cannot hold (what a server saw, which error a socket got,
/// counters), each compared with what netfilter gives; kept as text in the transcript (so
/// that `diff_pcn` compares them too) and as failures.
pub struct Checks {
    fw: &'static str,
    lines: Vec<String>,
    failures: Vec<String>,
}

impl Checks {
    pub fn new(lab: &Lab) -> Checks {
        Checks {
            fw: lab.fw.label(),
            lines: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// Records `what: got` and a failure unless `got == want`.
    pub fn check<T: PartialEq + Debug>(&mut self, what: &str, got: T, want: T) {
        self.lines.push(format!("{what}: {got:?}"));
        if got != want {
            let msg = format!("[{}] {what}: got {got:?}, expected {want:?}", self.fw);
            eprintln!("MISMATCH {msg}");
            self.failures.push(msg);
        }
    }

    /// Records a failure unless `ok`; `what` goes to the transcript, `detail` (which may vary
    /// from run to run, e.g. port numbers) only to the failure message.
    pub fn check_that(&mut self, what: &str, ok: bool, detail: impl Debug) {
        self.lines.push(format!("{what}: {ok}"));
        if !ok {
            let msg = format!("[{}] {what}: not so ({detail:?})", self.fw);
            eprintln!("MISMATCH {msg}");
            self.failures.push(msg);
        }
    }

    /// Takes the lab's verdicts and failures into the transcript, then these checks, after
    /// checking that no namespace of the lab dropped a packet for a bad checksum.
    pub fn finish(mut self, t: Transcript, lab: &Lab) -> Transcript {
        let bad: Vec<(String, u64)> = lab
            .namespaces()
            .iter()
            .map(|ns| (ns.role.clone(), csum_errors(ns)))
            .filter(|(_, n)| *n > 0)
            .collect();
        self.check("packets dropped for a bad checksum", bad, vec![]);
        let mut t = t.finish(lab);
        eprintln!("[{}] checks:\n  {}", self.fw, self.lines.join("\n  "));
        t.text("checks", self.lines.join("\n"));
        t.failures.extend(self.failures);
        t
    }
}
