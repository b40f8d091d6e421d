//! A route netlink socket, for what aya does not do: dumping filters and links, deleting a
//! qdisc.

use std::collections::HashSet;
use std::os::fd::{AsRawFd as _, OwnedFd};

use anyhow::{Context as _, Result};
use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkExtentMask, LinkInfo, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::compile::Link;

/// A route netlink socket.
pub struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

impl Rtnl {
    pub fn open() -> Result<Self> {
        use nix::sys::socket::{
            AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, socket,
        };
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .context("opening a route netlink socket")?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).context("binding a netlink socket")?;
        Ok(Rtnl { fd, seq: 0 })
    }

    /// Sends `message`, returns the answers: a dump's (`NLM_F_DUMP`), or those before the
    /// acknowledgement (`NLM_F_ACK`, with `NLM_F_ECHO` for a get's answer).
    pub fn request(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        nix::sys::socket::send(
            self.fd.as_raw_fd(),
            &buf,
            nix::sys::socket::MsgFlags::empty(),
        )
        .context("sending a netlink request")?;
        let mut answers = Vec::new();
        // Not zeroed: only the pages an answer fills get touched (a page fault each).
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
        loop {
            // SAFETY: recv writes at most `capacity` bytes into the buffer and says how many.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.capacity(),
                    0,
                )
            };
            if n < 0 {
                return Err(std::io::Error::last_os_error()).context("reading a netlink answer");
            }
            let n = n as usize;
            // SAFETY: the kernel wrote the first n bytes.
            unsafe { buf.set_len(n) };
            let mut at = 0;
            while at < n {
                let len = NetlinkBuffer::new_checked(&buf[at..n])
                    .context("a short netlink answer")?
                    .length() as usize;
                let message =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[at..at + len])
                        .context("decoding a netlink answer")?;
                at += len.next_multiple_of(4);
                if message.header.sequence_number != self.seq {
                    continue;
                }
                match message.payload {
                    NetlinkPayload::InnerMessage(m) => answers.push(m),
                    NetlinkPayload::Done(d) if d.code != 0 => {
                        return Err(std::io::Error::from_raw_os_error(-d.code).into());
                    }
                    NetlinkPayload::Done(_) => return Ok(answers),
                    NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io().into()),
                    // The acknowledgement.
                    NetlinkPayload::Error(_) => return Ok(answers),
                    _ => {}
                }
            }
        }
    }
}

/// The interfaces of the current network namespace where netfilter's hooks see packets, in
/// the kernel's order: all but the ports of a bridge, bond or
/// team: netfilter sees what they receive on their master (a bridge passes up what is for the
/// host as its own), and the kernel refuses XDP on a port once its master has some. One dump,
/// without statistics (what `if_nameindex(3)` would ask again).
pub fn links() -> Result<Vec<Link>> {
    let mut request = LinkMessage::default();
    request
        .attributes
        .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    let answers = Rtnl::open()?
        .request(RouteNetlinkMessage::GetLink(request), NLM_F_DUMP)
        .context("listing interfaces")?;
    let links: Vec<LinkMessage> = answers
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => Some(l),
            _ => None,
        })
        .collect();
    let kind = |l: &LinkMessage| {
        l.attributes.iter().find_map(|a| match a {
            LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
                LinkInfo::Kind(k) => Some(k.clone()),
                _ => None,
            }),
            _ => None,
        })
    };
    let aggregates: HashSet<u32> = links
        .iter()
        .filter(|l| {
            matches!(
                kind(l),
                Some(InfoKind::Bridge | InfoKind::Bond | InfoKind::Team)
            )
        })
        .map(|l| l.header.index)
        .collect();
    Ok(links
        .iter()
        .filter(|l| {
            !l.attributes
                .iter()
                .any(|a| matches!(a, LinkAttribute::Controller(m) if aggregates.contains(m)))
        })
        .filter_map(|l| {
            let name = l.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            })?;
            Some(Link {
                ifindex: l.header.index,
                name,
            })
        })
        .collect())
}

/// The namespace's IPv4 addresses in the kernel's order: (ifindex, address, prefix length).
/// The local address where an interface has a peer, as `getifaddrs(3)` gives it.
pub fn ipv4_addrs() -> Result<Vec<(u32, std::net::Ipv4Addr, u8)>> {
    let mut request = AddressMessage::default();
    request.header.family = AddressFamily::Inet;
    let answers = Rtnl::open()?
        .request(RouteNetlinkMessage::GetAddress(request), NLM_F_DUMP)
        .context("listing addresses")?;
    Ok(answers
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewAddress(a) if a.header.family == AddressFamily::Inet => {
                let v4 = |a: &AddressAttribute| match a {
                    AddressAttribute::Local(std::net::IpAddr::V4(v)) => Some((0, *v)),
                    AddressAttribute::Address(std::net::IpAddr::V4(v)) => Some((1, *v)),
                    _ => None,
                };
                let (_, addr) = a.attributes.iter().filter_map(v4).min()?;
                Some((a.header.index, addr, a.header.prefix_len))
            }
            _ => None,
        })
        .collect())
}

/// The IPv4 routes of the local table (255): (prefix, `rtn::*` type, output device).
pub fn local_table() -> Result<Vec<(std::net::Ipv4Addr, u8, u8, u32)>> {
    use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
    let mut request = RouteMessage::default();
    request.header.address_family = AddressFamily::Inet;
    let answers = Rtnl::open()?
        .request(RouteNetlinkMessage::GetRoute(request), NLM_F_DUMP)
        .context("listing routes")?;
    Ok(answers
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewRoute(r) if r.header.address_family == AddressFamily::Inet => {
                let table = r.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Table(t) => Some(*t),
                    _ => None,
                });
                if table.unwrap_or(r.header.table as u32) != LOCAL_TABLE {
                    return None;
                }
                let mut dst = std::net::Ipv4Addr::UNSPECIFIED;
                let mut oif = 0;
                for a in &r.attributes {
                    match a {
                        RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = *d,
                        RouteAttribute::Oif(i) => oif = *i,
                        _ => {}
                    }
                }
                let len = r.header.destination_prefix_length;
                Some((dst, len, u8::from(r.header.kind), oif))
            }
            _ => None,
        })
        .collect())
}

/// `RT_TABLE_LOCAL`
const LOCAL_TABLE: u32 = 255;

/// What the namespace's IPv4 routing rules select by, of what mangle OUTPUT can change: the
/// packet's mark (`ip rule add fwmark ...`) and its TOS (`ip rule add tos ...`).
pub fn rule_selectors() -> Result<(bool, bool)> {
    use netlink_packet_route::rule::{RuleAttribute, RuleMessage};
    let mut request = RuleMessage::default();
    request.header.family = AddressFamily::Inet;
    let answers = Rtnl::open()?
        .request(RouteNetlinkMessage::GetRule(request), NLM_F_DUMP)
        .context("listing routing rules")?;
    let (mut mark, mut tos) = (false, false);
    for m in &answers {
        if let RouteNetlinkMessage::NewRule(r) = m
            && r.header.family == AddressFamily::Inet
        {
            mark |= r
                .attributes
                .iter()
                .any(|a| matches!(a, RuleAttribute::FwMark(_) | RuleAttribute::FwMask(_)));
            tos |= r.header.tos != 0;
        }
    }
    Ok((mark, tos))
}
