//! `--log-follow`: the records `-j LOG` rules leave in the pinned ring buffer `PCN_LOG`,
//! printed one line each in the layout of the kernel's nf_log_ipv4 (what iptables' LOG target
//! writes to the kernel log), after the rule's `--log-level` as the kernel log shows a
//! message's priority to its readers: `<4>` (/dev/kmsg, `dmesg -r`; systemd-cat and
//! `logger --prio-prefix` read it as the line's priority).

use std::{
    fmt::Write as _,
    io::Write,
    os::fd::{AsFd as _, AsRawFd as _},
    path::Path,
};

use anyhow::{Context as _, Result, bail};
use aya::maps::{Map, MapData, PerCpuArray, RingBuf};
use pcn_iptables_common::{LogRecord, log_flag};

pub const RING: &str = "PCN_LOG";
pub const LOST: &str = "PCN_LOG_LOST";

/// Reads records until the process is killed (or `out` fails), printing each as a line on
/// `out`; records the data plane could not store are reported on stderr as they are counted.
pub fn follow(dir: &Path, out: &mut impl Write) -> Result<()> {
    let path = dir.join(RING);
    if !path.exists() {
        bail!("no LOG ring buffer here: pcn-iptables is not installed in this network namespace");
    }
    let data = MapData::from_pin(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut ring = RingBuf::try_from(Map::RingBuf(data)).context("PCN_LOG")?;
    let lost_map = match MapData::from_pin(dir.join(LOST)) {
        Ok(data) => Some(PerCpuArray::<MapData, u64>::try_from(Map::PerCpuArray(
            data,
        ))?),
        Err(_) => None,
    };
    let lost = || -> u64 {
        lost_map
            .as_ref()
            .and_then(|m| m.get(&0, 0).ok())
            .map(|v| v.iter().sum())
            .unwrap_or(0)
    };
    let mut reported = lost();
    let names = InterfaceNames;
    loop {
        while let Some(item) = ring.next() {
            if item.len() < std::mem::size_of::<LogRecord>() {
                continue;
            }
            // SAFETY: the item holds a whole LogRecord, plain old data, read unaligned.
            let rec: LogRecord = unsafe { std::ptr::read_unaligned(item.as_ptr().cast()) };
            drop(item);
            writeln!(out, "{}", line(&rec, &|i| names.name(i)))?;
        }
        out.flush()?;
        let now = lost();
        if now > reported {
            eprintln!(
                "pcn-iptables: {} LOG records lost (ring buffer full)",
                now - reported
            );
            reported = now;
        }
        let mut pfd = libc::pollfd {
            fd: ring.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one live pollfd.
        unsafe { libc::poll(&mut pfd, 1, 500) };
    }
}

/// Interface names by index, looked up when a record needs them (interfaces come and go).
#[derive(Default)]
struct InterfaceNames;

impl InterfaceNames {
    fn name(&self, index: u32) -> String {
        if index == 0 {
            return String::new();
        }
        let mut buf = [0u8; libc::IF_NAMESIZE];
        // SAFETY: the buffer has IF_NAMESIZE bytes, as if_indextoname requires.
        let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr().cast()) };
        if p.is_null() {
            return format!("if{index}");
        }
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    }
}

/// One record's line: its syslog priority (the kernel facility's, which is the level) as a
/// `<N>` prefix, then the message.
pub fn line(rec: &LogRecord, name: &dyn Fn(u32) -> String) -> String {
    format!("<{}>{}", rec.level & 7, format(rec, name))
}

/// One record as the kernel's LOG target prints it (without the syslog level).
pub fn format(rec: &LogRecord, name: &dyn Fn(u32) -> String) -> String {
    let mut m = String::new();
    let prefix = &rec.prefix;
    let end = prefix.iter().position(|b| *b == 0).unwrap_or(prefix.len());
    m += &String::from_utf8_lossy(&prefix[..end]);
    let _ = write!(
        m,
        "IN={} OUT={} ",
        name(rec.in_ifindex),
        name(rec.out_ifindex)
    );
    if rec.in_ifindex != 0 {
        m += "MAC=";
        if rec.has_mac != 0 {
            let mac: Vec<String> = rec.mac.iter().map(|b| format!("{b:02x}")).collect();
            m += &mac.join(":");
        }
        m += " ";
    }
    let caplen = (rec.caplen as usize).min(rec.packet.len());
    let packet = &rec.packet[..caplen];
    // Where the kernel stops early (a truncated header), neither UID nor MARK follow.
    if !dump_ipv4(&mut m, packet, rec.ip_len as usize, rec.flags, true) {
        return m;
    }
    if rec.flags & log_flag::UID != 0 && rec.has_uid != 0 {
        let _ = write!(m, "UID={} GID={} ", rec.uid, rec.gid);
    }
    if rec.mark != 0 {
        let _ = write!(m, "MARK=0x{:x} ", rec.mark);
    }
    m
}

/// `data`: the captured bytes from this IP header on; `avail`: how many the packet has.
/// Returns false where the kernel returns early (a truncated transport header).
fn dump_ipv4(m: &mut String, data: &[u8], avail: usize, flags: u8, outer: bool) -> bool {
    if data.len() < 20 || avail < 20 {
        *m += "TRUNCATED";
        return false;
    }
    let Some((ihl, fragment)) = dump_ip_header(m, data, flags) else {
        return false;
    };
    let l4 = data.get(ihl..).unwrap_or(&[]);
    let l4_avail = avail.saturating_sub(ihl);
    let _ = write!(m, "PROTO={} ", proto_name(data[9]));
    // A later fragment has no transport header.
    fragment || dump_transport(m, data[9], l4, l4_avail, flags, outer)
}

/// The IP header's fields and (with `--log-ip-options`) options; `data` holds at least 20
/// bytes. Returns the header's length and whether the packet is a later fragment; `None`
/// where the kernel stops (truncated options).
fn dump_ip_header(m: &mut String, data: &[u8], flags: u8) -> Option<(usize, bool)> {
    let ih = data;
    let ihl = ((ih[0] & 0x0f) as usize) * 4;
    let _ = write!(
        m,
        "SRC={}.{}.{}.{} DST={}.{}.{}.{} ",
        ih[12], ih[13], ih[14], ih[15], ih[16], ih[17], ih[18], ih[19]
    );
    let _ = write!(
        m,
        "LEN={} TOS=0x{:02X} PREC=0x{:02X} TTL={} ID={} ",
        u16::from_be_bytes([ih[2], ih[3]]),
        ih[1] & 0x1e,
        ih[1] & 0xe0,
        ih[8],
        u16::from_be_bytes([ih[4], ih[5]])
    );
    let frag = u16::from_be_bytes([ih[6], ih[7]]);
    for (bit, name) in [(0x8000, "CE "), (0x4000, "DF "), (0x2000, "MF ")] {
        if frag & bit != 0 {
            *m += name;
        }
    }
    let offset = frag & 0x1fff;
    if offset != 0 {
        let _ = write!(m, "FRAG:{offset} ");
    }
    if flags & log_flag::IP_OPTIONS != 0 && ihl > 20 {
        let Some(op) = data.get(20..ihl) else {
            *m += "TRUNCATED";
            return None;
        };
        dump_options(m, op);
    }
    Some((ihl, offset != 0))
}

/// `PROTO=`'s value: the name the kernel gives the protocols it decodes, else the number.
fn proto_name(proto: u8) -> String {
    match proto {
        6 => "TCP".into(),
        17 => "UDP".into(),
        136 => "UDPLITE".into(),
        1 => "ICMP".into(),
        51 => "AH".into(),
        50 => "ESP".into(),
        p => p.to_string(),
    }
}

/// The transport header of a first fragment (or a whole packet) of protocol `proto`: `l4`
/// the captured bytes from it on, `avail` how many the packet has. Returns false where the
/// kernel returns early.
fn dump_transport(
    m: &mut String,
    proto: u8,
    l4: &[u8],
    avail: usize,
    flags: u8,
    outer: bool,
) -> bool {
    match proto {
        6 => dump_tcp(m, l4, avail, flags),
        17 | 136 => dump_udp(m, l4, avail),
        1 => {
            dump_icmp(m, l4, avail, flags, outer);
            true
        }
        // AH: the SPI after next header, length and reserved; ESP: first.
        51 => {
            dump_spi(m, l4, avail, 4);
            true
        }
        50 => {
            dump_spi(m, l4, avail, 0);
            true
        }
        _ => true,
    }
}

fn incomplete(m: &mut String, avail: usize) {
    let _ = write!(m, "INCOMPLETE [{avail} bytes] ");
}

/// Options, in hex.
fn dump_options(m: &mut String, op: &[u8]) {
    *m += "OPT (";
    for b in op {
        let _ = write!(m, "{b:02X}");
    }
    *m += ") ";
}

fn dump_tcp(m: &mut String, th: &[u8], avail: usize, flags: u8) -> bool {
    if th.len() < 20 {
        incomplete(m, avail);
        return false;
    }
    let _ = write!(
        m,
        "SPT={} DPT={} ",
        u16::from_be_bytes([th[0], th[1]]),
        u16::from_be_bytes([th[2], th[3]])
    );
    if flags & log_flag::TCP_SEQUENCE != 0 {
        let _ = write!(
            m,
            "SEQ={} ACK={} ",
            u32::from_be_bytes([th[4], th[5], th[6], th[7]]),
            u32::from_be_bytes([th[8], th[9], th[10], th[11]])
        );
    }
    let _ = write!(m, "WINDOW={} ", u16::from_be_bytes([th[14], th[15]]));
    let _ = write!(m, "RES=0x{:02x} ", (th[12] & 0x0f) << 2);
    for (bit, name) in [
        (0x80, "CWR "),
        (0x40, "ECE "),
        (0x20, "URG "),
        (0x10, "ACK "),
        (0x08, "PSH "),
        (0x04, "RST "),
        (0x02, "SYN "),
        (0x01, "FIN "),
    ] {
        if th[13] & bit != 0 {
            *m += name;
        }
    }
    let _ = write!(m, "URGP={} ", u16::from_be_bytes([th[18], th[19]]));
    let doff = ((th[12] >> 4) as usize) * 4;
    if flags & log_flag::TCP_OPTIONS != 0 && doff > 20 {
        let Some(op) = th.get(20..doff) else {
            *m += "OPT (TRUNCATED)";
            return false;
        };
        dump_options(m, op);
    }
    true
}

/// UDP and UDP-Lite.
fn dump_udp(m: &mut String, l4: &[u8], avail: usize) -> bool {
    if l4.len() < 8 {
        incomplete(m, avail);
        return false;
    }
    let _ = write!(
        m,
        "SPT={} DPT={} LEN={} ",
        u16::from_be_bytes([l4[0], l4[1]]),
        u16::from_be_bytes([l4[2], l4[3]]),
        u16::from_be_bytes([l4[4], l4[5]])
    );
    true
}

/// AH's or ESP's SPI, at byte `at` of the header.
fn dump_spi(m: &mut String, l4: &[u8], avail: usize, at: usize) {
    match l4.get(at..at + 4).filter(|_| l4.len() >= at + 8) {
        Some(spi) => {
            let _ = write!(
                m,
                "SPI=0x{:x} ",
                u32::from_be_bytes([spi[0], spi[1], spi[2], spi[3]])
            );
        }
        None => incomplete(m, avail),
    }
}

/// The least an ICMP message of each type must hold for the kernel to decode it.
fn icmp_required_len(kind: u8) -> usize {
    match kind {
        0 | 8 => 4,
        3 | 4 | 5 | 11 | 12 => 8 + 20,
        13 | 14 => 20,
        17 | 18 => 12,
        _ => 0,
    }
}

fn dump_icmp(m: &mut String, l4: &[u8], avail: usize, flags: u8, outer: bool) {
    if l4.len() < 8 {
        incomplete(m, avail);
        return;
    }
    let (kind, code) = (l4[0], l4[1]);
    let _ = write!(m, "TYPE={kind} CODE={code} ");
    let required = icmp_required_len(kind);
    if kind <= 18 && required != 0 && avail < required {
        incomplete(m, avail);
        return;
    }
    match kind {
        0 | 8 => {
            let _ = write!(
                m,
                "ID={} SEQ={} ",
                u16::from_be_bytes([l4[4], l4[5]]),
                u16::from_be_bytes([l4[6], l4[7]])
            );
        }
        12 => {
            let _ = write!(m, "PARAMETER={} ", l4[4]);
        }
        3 | 4 | 5 | 11 => {
            if kind == 5 {
                let _ = write!(m, "GATEWAY={}.{}.{}.{} ", l4[4], l4[5], l4[6], l4[7]);
            }
            if outer {
                *m += "[";
                dump_ipv4(m, &l4[8..], avail - 8, flags, false);
                *m += "] ";
            }
            if kind == 3 && code == 4 {
                let _ = write!(m, "MTU={} ", u16::from_be_bytes([l4[6], l4[7]]));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcn_iptables_common::{LOG_PACKET_BYTES, LOG_PREFIX_LEN};

    fn record(prefix: &str, packet: &[u8], flags: u8, in_if: u32, out_if: u32) -> LogRecord {
        let mut p = [0u8; LOG_PREFIX_LEN];
        p[..prefix.len()].copy_from_slice(prefix.as_bytes());
        let mut data = [0u8; LOG_PACKET_BYTES];
        data[..packet.len()].copy_from_slice(packet);
        LogRecord {
            time_ns: 0,
            in_ifindex: in_if,
            out_ifindex: out_if,
            mark: 0,
            caplen: packet.len() as u16,
            ip_len: u16::from_be_bytes([packet[2], packet[3]]),
            level: 4,
            flags,
            has_mac: (in_if != 0) as u8,
            _pad: 0,
            mac: [0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0],
            _pad2: [0; 2],
            prefix: p,
            packet: data,
            uid: 0,
            gid: 0,
            has_uid: 0,
            _pad3: [0; 3],
        }
    }

    fn names(i: u32) -> String {
        if i == 0 {
            String::new()
        } else {
            format!("eth{i}")
        }
    }

    /// A SYN from 198.18.1.1:40000 to 198.18.1.2:80 with an MSS option.
    fn syn() -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 44, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 198, 18, 1, 1, 198, 18, 1, 2,
        ];
        p.extend([
            0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x02, 0xfa, 0xf0, 0, 0, 0, 0, 2, 4, 5,
            0xb4,
        ]);
        p
    }

    #[test]
    fn tcp_syn_as_nf_log_ipv4() {
        let r = record("fw: ", &syn(), 0, 1, 0);
        assert_eq!(
            format(&r, &names),
            "fw: IN=eth1 OUT= MAC=02:00:00:00:00:01:02:00:00:00:00:02:08:00 \
             SRC=198.18.1.1 DST=198.18.1.2 LEN=44 TOS=0x00 PREC=0x00 TTL=64 ID=4660 DF \
             PROTO=TCP SPT=40000 DPT=80 WINDOW=64240 RES=0x00 SYN URGP=0 "
        );
        let r = record(
            "",
            &syn(),
            log_flag::TCP_SEQUENCE | log_flag::TCP_OPTIONS,
            0,
            2,
        );
        assert_eq!(
            format(&r, &names),
            "IN= OUT=eth2 SRC=198.18.1.1 DST=198.18.1.2 LEN=44 TOS=0x00 PREC=0x00 TTL=64 \
             ID=4660 DF PROTO=TCP SPT=40000 DPT=80 SEQ=1 ACK=0 WINDOW=64240 RES=0x00 SYN \
             URGP=0 OPT (020405B4) "
        );
    }

    #[test]
    fn level_uid_and_mark_as_nf_log_ipv4() {
        let mut r = record("out: ", &syn(), log_flag::UID, 0, 2);
        r.level = 6;
        (r.uid, r.gid, r.has_uid, r.mark) = (1000, 100, 1, 0x2a);
        assert_eq!(
            line(&r, &names),
            "<6>out: IN= OUT=eth2 SRC=198.18.1.1 DST=198.18.1.2 LEN=44 TOS=0x00 PREC=0x00 \
             TTL=64 ID=4660 DF PROTO=TCP SPT=40000 DPT=80 WINDOW=64240 RES=0x00 SYN URGP=0 \
             UID=1000 GID=100 MARK=0x2a "
        );
        // No socket with a file: nothing; no --log-uid: nothing.
        r.has_uid = 0;
        assert!(line(&r, &names).ends_with(" URGP=0 MARK=0x2a "));
        (r.has_uid, r.flags) = (1, 0);
        assert!(line(&r, &names).ends_with(" URGP=0 MARK=0x2a "));
        // Where the kernel stops early (a truncated TCP header), neither follows.
        let mut short = record("", &syn()[..30], log_flag::UID, 0, 2);
        (short.uid, short.has_uid, short.mark) = (1000, 1, 0x2a);
        assert_eq!(
            line(&short, &names),
            "<4>IN= OUT=eth2 SRC=198.18.1.1 DST=198.18.1.2 LEN=44 TOS=0x00 PREC=0x00 TTL=64 \
             ID=4660 DF PROTO=TCP INCOMPLETE [24 bytes] "
        );
    }

    #[test]
    fn udp_and_icmp_errors_as_nf_log_ipv4() {
        let mut udp = vec![
            0x45, 0x10, 0, 36, 0, 7, 0, 0, 63, 17, 0, 0, 198, 18, 3, 1, 198, 18, 4, 1,
        ];
        udp.extend([0x30, 0x39, 0, 53, 0, 16, 0, 0]);
        udp.extend([0u8; 8]);
        let r = record("", &udp, 0, 1, 2);
        assert_eq!(
            format(&r, &names),
            "IN=eth1 OUT=eth2 MAC=02:00:00:00:00:01:02:00:00:00:00:02:08:00 SRC=198.18.3.1 \
             DST=198.18.4.1 LEN=36 TOS=0x10 PREC=0x00 TTL=63 ID=7 PROTO=UDP SPT=12345 DPT=53 \
             LEN=16 "
        );
        let mut icmp = vec![
            0x45, 0xc0, 0, 56, 0, 9, 0, 0, 64, 1, 0, 0, 198, 18, 4, 1, 198, 18, 3, 1,
        ];
        icmp.extend([3, 3, 0, 0, 0, 0, 0, 0]);
        icmp.extend(&udp[..28]);
        let r = record("", &icmp, 0, 1, 0);
        assert_eq!(
            format(&r, &names),
            "IN=eth1 OUT= MAC=02:00:00:00:00:01:02:00:00:00:00:02:08:00 SRC=198.18.4.1 \
             DST=198.18.3.1 LEN=56 TOS=0x00 PREC=0xC0 TTL=64 ID=9 PROTO=ICMP TYPE=3 CODE=3 \
             [SRC=198.18.3.1 DST=198.18.4.1 LEN=36 TOS=0x10 PREC=0x00 TTL=63 ID=7 PROTO=UDP \
             SPT=12345 DPT=53 LEN=16 ] "
        );
    }
}
