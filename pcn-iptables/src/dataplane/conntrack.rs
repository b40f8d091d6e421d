//! The connection table from userspace: listing it, and seeding it when pcn-iptables first
//! loads in a namespace with what the kernel already knows, so that turning the firewall on
//! never cuts a connection that was open before.

use std::{
    fs,
    net::Ipv4Addr,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    path::Path,
};

use anyhow::{Context as _, Result, bail};
use aya::maps::{HashMap, Map, MapData};
use pcn_iptables_common::conntrack::{self, CtEntry, CtKey, Tuple, status, tcp};

pub const MAP: &str = "PCN_CONNTRACK";

/// CLOCK_MONOTONIC in nanoseconds: the clock of bpf_ktime_get_ns(), hence of `expires`.
pub fn now() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

fn open(dir: &Path) -> Result<HashMap<MapData, CtKey, CtEntry>> {
    let path = dir.join(MAP);
    let data = MapData::from_pin(&path).with_context(|| format!("opening {}", path.display()))?;
    let map = Map::from_map_data(data)?;
    Ok(HashMap::try_from(map)?)
}

/// The live connections.
pub fn entries(dir: &Path) -> Result<Vec<(CtKey, CtEntry)>> {
    if !dir.join(MAP).exists() {
        return Ok(Vec::new());
    }
    let map = open(dir)?;
    let now = now();
    Ok(map
        .iter()
        .filter_map(|r| r.ok())
        .filter(|(_, e)| e.expires > now)
        .collect())
}

/// Stores one connection (the benchmarks use it to time packets of a known flow).
pub fn insert(dir: &Path, key: CtKey, entry: CtEntry) -> Result<()> {
    open(dir)?.insert(key, entry, 0)?;
    Ok(())
}

/// A connection the kernel already has, as (tuple of its first packet, replied, TCP state).
struct Known {
    tuple: Tuple,
    replied: bool,
    tcp_state: u8,
}

/// Fills the table with the namespace's open sockets and netfilter's own connections.
pub fn seed(dir: &Path) -> Result<usize> {
    let mut known = sockets().unwrap_or_default();
    known.extend(netfilter_connections());
    let mut map = open(dir)?;
    let now = now();
    let mut n = 0;
    for k in known {
        let (key, origin) = k.tuple.key();
        let timeout = match k.tuple.proto {
            6 => conntrack::tcp_timeout(k.tcp_state),
            17 => conntrack::udp_timeout(k.replied),
            _ => conntrack::ICMP_TIMEOUT,
        };
        // Connections older than this install: replied ones are assured, as they would be
        // by now (a TCP handshake done, a UDP stream).
        let entry = CtEntry {
            origin,
            tcp_state: k.tcp_state,
            status: if k.replied {
                status::SEEN_REPLY | status::ASSURED
            } else {
                0
            },
            expires: now + timeout,
            stream_at: now,
            ..Default::default()
        };
        if map.insert(key, entry, 0).is_ok() {
            n += 1;
        }
    }
    Ok(n)
}

/// Established TCP sockets and connected UDP sockets (sock_diag). A socket whose local port
/// also has a listener was opened by the other end.
fn sockets() -> Result<Vec<Known>> {
    const TCP_ESTABLISHED: u32 = 1;
    const TCP_LISTEN: u32 = 10;
    let mut out = Vec::new();
    let listeners: Vec<u16> = diag(libc::IPPROTO_TCP as u8, 1 << TCP_LISTEN)?
        .into_iter()
        .map(|(local, _)| local.1)
        .collect();
    for (proto, state) in [(6u8, tcp::ESTABLISHED), (17u8, 0)] {
        for (local, remote) in diag(proto, 1 << TCP_ESTABLISHED)? {
            let (src, dst) = if proto == 6 && listeners.contains(&local.1) {
                (remote, local)
            } else {
                (local, remote)
            };
            out.push(Known {
                tuple: Tuple {
                    src: src.0,
                    dst: dst.0,
                    sport: src.1,
                    dport: dst.1,
                    proto,
                    _pad: 0,
                },
                replied: true,
                tcp_state: state,
            });
        }
    }
    Ok(out)
}

/// (local, remote) address and port of the IPv4 sockets of `proto` in the `states` bitmask.
/// An address and port.
type Endpoint = ([u8; 4], u16);

fn diag(proto: u8, states: u32) -> Result<Vec<(Endpoint, Endpoint)>> {
    const NETLINK_SOCK_DIAG: i32 = 4;
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        bail!("sock_diag socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // struct nlmsghdr (16) + struct inet_diag_req_v2 (56).
    let mut req = [0u8; 72];
    req[0..4].copy_from_slice(&72u32.to_ne_bytes());
    req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req[6..8].copy_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
    req[16] = libc::AF_INET as u8;
    req[17] = proto;
    req[20..24].copy_from_slice(&states.to_ne_bytes());
    // SAFETY: req is a valid buffer of the length given.
    if unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) } < 0 {
        bail!("sock_diag request: {}", std::io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        // SAFETY: buf is a valid buffer of the length given.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n <= 0 {
            break;
        }
        let mut msg = &buf[..n as usize];
        while msg.len() >= 16 {
            let len = u32::from_ne_bytes(msg[0..4].try_into()?) as usize;
            let kind = u16::from_ne_bytes(msg[4..6].try_into()?);
            if kind == libc::NLMSG_DONE as u16 || kind == libc::NLMSG_ERROR as u16 {
                return Ok(out);
            }
            if len < 16 + 24 || len > msg.len() {
                break;
            }
            // struct inet_diag_msg: family, state, timer, retrans, then inet_diag_sockid:
            // sport, dport (big endian), src[16], dst[16].
            let d = &msg[16..len];
            let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
            let addr = |b: &[u8]| [b[0], b[1], b[2], b[3]];
            out.push((
                (addr(&d[8..12]), port(&d[4..6])),
                (addr(&d[24..28]), port(&d[6..8])),
            ));
            msg = &msg[len.next_multiple_of(4).min(msg.len())..];
        }
    }
    Ok(out)
}

/// netfilter's own table (/proc/net/nf_conntrack), when conntrack is in use in the namespace.
fn netfilter_connections() -> Vec<Known> {
    let Ok(text) = fs::read_to_string("/proc/net/nf_conntrack") else {
        return Vec::new();
    };
    text.lines().filter_map(parse_nf_conntrack_line).collect()
}

/// One line of /proc/net/nf_conntrack: `ipv4 2 tcp 6 431999 ESTABLISHED src=… dst=… sport=…
/// dport=… src=… … [ASSURED] …` (the first src/dst/ports are the original direction).
fn parse_nf_conntrack_line(line: &str) -> Option<Known> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.first() != Some(&"ipv4") {
        return None;
    }
    let proto: u8 = words.get(3)?.parse().ok()?;
    let field = |name: &str| {
        words
            .iter()
            .find_map(|w| w.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
    };
    let src: Ipv4Addr = field("src")?.parse().ok()?;
    let dst: Ipv4Addr = field("dst")?.parse().ok()?;
    let (sport, dport, tcp_state) = match proto {
        6 | 17 => {
            let state = if proto == 6 {
                tcp::NAMES.iter().position(|n| *n == words[5])? as u8
            } else {
                0
            };
            (
                field("sport")?.parse().ok()?,
                field("dport")?.parse().ok()?,
                state,
            )
        }
        1 => {
            let kind: u8 = field("type")?.parse().ok()?;
            conntrack::icmp_reply_type(kind)?;
            (field("id")?.parse().ok()?, kind as u16, 0)
        }
        _ => return None,
    };
    Some(Known {
        tuple: Tuple {
            src: src.octets(),
            dst: dst.octets(),
            sport,
            dport,
            proto,
            _pad: 0,
        },
        replied: !words.contains(&"[UNREPLIED]"),
        tcp_state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nf_conntrack_lines() {
        let k = parse_nf_conntrack_line("ipv4     2 tcp      6 431999 ESTABLISHED src=198.18.0.1 dst=198.18.0.2 sport=40000 dport=22 src=198.18.0.2 dst=198.18.0.1 sport=22 dport=40000 [ASSURED] mark=0 zone=0 use=2").unwrap();
        assert_eq!(
            k.tuple,
            Tuple {
                src: [198, 18, 0, 1],
                dst: [198, 18, 0, 2],
                sport: 40000,
                dport: 22,
                proto: 6,
                _pad: 0,
            }
        );
        assert_eq!((k.replied, k.tcp_state), (true, tcp::ESTABLISHED));
        let k = parse_nf_conntrack_line("ipv4     2 udp      17 25 src=198.18.0.1 dst=198.18.0.2 sport=5000 dport=53 [UNREPLIED] src=198.18.0.2 dst=198.18.0.1 sport=53 dport=5000 mark=0 use=1").unwrap();
        assert!(!k.replied);
        let k = parse_nf_conntrack_line("ipv4     2 icmp     1 29 src=198.18.0.1 dst=198.18.0.2 type=8 code=0 id=77 src=198.18.0.2 dst=198.18.0.1 type=0 code=0 id=77 mark=0 use=1").unwrap();
        assert_eq!((k.tuple.sport, k.tuple.dport), (77, 8));
        assert!(parse_nf_conntrack_line("ipv6 10 tcp 6 1 CLOSE src=::1").is_none());
    }
}
