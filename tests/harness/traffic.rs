//! Real packets: ping through `ip netns exec`, TCP and UDP from Rust sockets made inside the
//! namespace, and the small servers that answer them.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::lab::{Ns, ip4};

/// What a flow is expected to meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Drop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// One ICMP echo request (and its reply).
    Icmp,
    /// A TCP connect (three-way handshake, then an RST to close).
    Tcp(u16),
    /// One UDP datagram (16 bytes of payload) and its echo.
    Udp(u16),
}

/// One probe: from a namespace (optionally from a given source address and port) to `dst`.
#[derive(Clone, Debug)]
pub struct Flow {
    pub from: Ns,
    pub src: Option<Ipv4Addr>,
    pub sport: Option<u16>,
    pub dst: Ipv4Addr,
    pub proto: Proto,
}

/// UDP payload length of a probe.
pub const UDP_PAYLOAD: usize = 16;

static NONCE: AtomicU64 = AtomicU64::new(1);

impl Flow {
    pub fn new(from: &Ns, proto: Proto, dst: &str) -> Flow {
        Flow {
            from: from.clone(),
            src: None,
            sport: None,
            dst: ip4(dst),
            proto,
        }
    }

    /// Sends from this source address (which must be configured in the namespace).
    pub fn src(mut self, a: &str) -> Flow {
        self.src = Some(ip4(a));
        self
    }

    /// Sends from this source port (UDP only: TCP probes always use an ephemeral port).
    pub fn sport(mut self, p: u16) -> Flow {
        assert!(
            matches!(self.proto, Proto::Udp(_)),
            "sport is for UDP probes"
        );
        self.sport = Some(p);
        self
    }

    /// One attempt: did the request get through and the answer come back within `timeout`?
    pub fn attempt(&self, timeout: Duration) -> bool {
        match self.proto {
            Proto::Icmp => {
                let w = format!("{:.3}", timeout.as_secs_f64());
                let dst = self.dst.to_string();
                let src = self.src.map(|s| s.to_string());
                let mut args = vec!["ping", "-n", "-q", "-c1", "-W", &w];
                if let Some(s) = &src {
                    args.extend(["-I", s.as_str()]);
                }
                args.push(&dst);
                self.from
                    .exec_timeout(&args, timeout + Duration::from_secs(10))
                    .success()
            }
            Proto::Tcp(port) => {
                let (src, dst) = (self.src, self.dst);
                let fd = self.from.in_ns(|| tcp_socket(src));
                fd.map(|fd| tcp_connect(&fd, dst, port, timeout))
                    .unwrap_or(false)
            }
            Proto::Udp(port) => {
                let (src, sport, dst) = (self.src, self.sport, self.dst);
                let fd = self.from.in_ns(|| udp_socket(src, sport));
                fd.map(|fd| udp_echo(&fd, dst, port, timeout))
                    .unwrap_or(false)
            }
        }
    }
}

impl std::fmt::Display for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.proto {
            Proto::Icmp => "ping".to_string(),
            Proto::Tcp(p) => format!("tcp:{p}"),
            Proto::Udp(p) => format!("udp:{p}"),
        };
        write!(f, "{what} {}", self.from.role)?;
        match (self.src, self.sport) {
            (Some(s), Some(p)) => write!(f, "({s}:{p})")?,
            (Some(s), None) => write!(f, "({s})")?,
            (None, Some(p)) => write!(f, "(:{p})")?,
            (None, None) => {}
        }
        write!(f, " -> {}", self.dst)
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn sockaddr(a: Ipv4Addr, port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(a).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn new_socket(ty: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_int_opt(fd: RawFd, level: i32, opt: i32, v: i32) {
    // SAFETY: setsockopt with a pointer to a live i32.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&v as *const i32).cast(),
            size_of::<i32>() as u32,
        );
    }
}

fn bind(fd: RawFd, a: Ipv4Addr, port: u16) -> std::io::Result<()> {
    let sa = sockaddr(a, port);
    // SAFETY: bind with a pointer to a live sockaddr_in and its size.
    let r = unsafe {
        libc::bind(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as u32,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Polls one fd for `events` until `deadline`; returns the revents (0 on timeout).
fn poll_one(fd: RawFd, events: i16, deadline: Instant) -> i16 {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut p = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: poll on one live pollfd.
        let r = unsafe { libc::poll(&mut p, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if r < 0 && errno() == libc::EINTR {
            continue;
        }
        return if r > 0 { p.revents } else { 0 };
    }
}

fn tcp_socket(src: Option<Ipv4Addr>) -> std::io::Result<OwnedFd> {
    let fd = new_socket(libc::SOCK_STREAM)?;
    // Close with an RST (no FIN handshake, no TIME_WAIT): a fixed, small packet count.
    let lg = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt with a pointer to a live linger.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&lg as *const libc::linger).cast(),
            size_of::<libc::linger>() as u32,
        );
    }
    if let Some(s) = src {
        bind(fd.as_raw_fd(), s, 0)?;
    }
    Ok(fd)
}

/// Non-blocking connect, waiting at most `timeout` for the handshake.
fn tcp_connect(fd: &OwnedFd, dst: Ipv4Addr, port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let sa = sockaddr(dst, port);
    // SAFETY: connect with a pointer to a live sockaddr_in and its size.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as u32,
        )
    };
    if r == 0 {
        return true;
    }
    if errno() != libc::EINPROGRESS {
        return false;
    }
    if poll_one(fd.as_raw_fd(), libc::POLLOUT, deadline) == 0 {
        return false;
    }
    let mut err: i32 = 0;
    let mut len = size_of::<i32>() as u32;
    // SAFETY: getsockopt into a live i32.
    unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut i32).cast(),
            &mut len,
        );
    }
    err == 0
}

fn udp_socket(src: Option<Ipv4Addr>, sport: Option<u16>) -> std::io::Result<OwnedFd> {
    let fd = new_socket(libc::SOCK_DGRAM)?;
    set_int_opt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
    if src.is_some() || sport.is_some() {
        bind(
            fd.as_raw_fd(),
            src.unwrap_or(Ipv4Addr::UNSPECIFIED),
            sport.unwrap_or(0),
        )?;
    }
    Ok(fd)
}

/// Sends one datagram with a fresh nonce and waits for the same bytes to come back.
fn udp_echo(fd: &OwnedFd, dst: Ipv4Addr, port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let sa = sockaddr(dst, port);
    let raw = fd.as_raw_fd();
    // SAFETY: connect with a pointer to a live sockaddr_in and its size.
    let r = unsafe {
        libc::connect(
            raw,
            (&sa as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as u32,
        )
    };
    if r < 0 {
        return false;
    }
    let nonce = NONCE.fetch_add(1, Ordering::Relaxed) ^ (u64::from(std::process::id()) << 40);
    let payload = format!("pcnt{:012x}", nonce & 0xffff_ffff_ffff);
    debug_assert_eq!(payload.len(), UDP_PAYLOAD);
    // SAFETY: send from a live buffer.
    let r = unsafe { libc::send(raw, payload.as_ptr().cast(), payload.len(), 0) };
    if r < 0 {
        return false;
    }
    let mut buf = [0u8; 64];
    loop {
        if poll_one(raw, libc::POLLIN, deadline) == 0 {
            return false;
        }
        // SAFETY: recv into a live buffer of the given size.
        let n = unsafe { libc::recv(raw, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = errno();
            if e == libc::EAGAIN || e == libc::EINTR {
                continue;
            }
            return false; // ECONNREFUSED (ICMP port unreachable) and the like
        }
        if &buf[..n as usize] == payload.as_bytes() {
            return true;
        }
    }
}

/// TCP listeners (accept, and hold until the server stops) and UDP echo servers on some ports
/// of one namespace.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(ns: &Ns, ports: &[u16]) -> Server {
        let ports = ports.to_vec();
        let fds: Vec<(bool, OwnedFd)> = ns.in_ns(|| {
            let mut v = Vec::new();
            for &p in &ports {
                let t = new_socket(libc::SOCK_STREAM).expect("tcp socket");
                set_int_opt(t.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
                bind(t.as_raw_fd(), Ipv4Addr::UNSPECIFIED, p)
                    .unwrap_or_else(|e| panic!("bind tcp {p}: {e}"));
                // SAFETY: listen on a bound socket.
                assert_eq!(unsafe { libc::listen(t.as_raw_fd(), 128) }, 0, "listen {p}");
                v.push((true, t));
                let u = new_socket(libc::SOCK_DGRAM).expect("udp socket");
                set_int_opt(u.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
                set_int_opt(u.as_raw_fd(), libc::IPPROTO_IP, libc::IP_PKTINFO, 1);
                bind(u.as_raw_fd(), Ipv4Addr::UNSPECIFIED, p)
                    .unwrap_or_else(|e| panic!("bind udp {p}: {e}"));
                v.push((false, u));
            }
            v
        });
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || serve_loop(&fds, &stop2));
        Server {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_loop(fds: &[(bool, OwnedFd)], stop: &AtomicBool) {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|(_, fd)| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut buf = [0u8; 2048];
    // Accepted connections stay open (the client closes them with an RST): a server-side
    // close would race the client's RST and send a FIN now and then, which would make the
    // packet counts of a TCP probe vary.
    let mut accepted: Vec<OwnedFd> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: poll over a live vector of pollfds.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 50) };
        if r <= 0 {
            continue;
        }
        for (i, p) in pfds.iter_mut().enumerate() {
            if p.revents == 0 {
                continue;
            }
            p.revents = 0;
            let (is_tcp, fd) = (fds[i].0, fds[i].1.as_raw_fd());
            if is_tcp {
                loop {
                    // SAFETY: accept4 without peer address; the new fd is closed at once.
                    let c = unsafe {
                        libc::accept4(
                            fd,
                            std::ptr::null_mut(),
                            std::ptr::null_mut(),
                            libc::SOCK_CLOEXEC,
                        )
                    };
                    if c < 0 {
                        break;
                    }
                    // SAFETY: c is a fresh descriptor we own.
                    accepted.push(unsafe { OwnedFd::from_raw_fd(c) });
                }
            } else {
                while udp_echo_one(fd, &mut buf) {}
            }
        }
    }
}

/// Answers one datagram, if any is waiting (false when none is): the echo leaves from the
/// address the request was sent to (IP_PKTINFO), as a multihomed UDP server must.
fn udp_echo_one(fd: RawFd, buf: &mut [u8]) -> bool {
    let Some((n, peer, local)) = udp_recv_to(fd, buf) else {
        return false;
    };
    udp_send_from(fd, &buf[..n], &peer, local);
    true
}

/// One datagram waiting on `fd` (with IP_PKTINFO on): its length, its sender, and the local
/// address it was sent to.
pub(crate) fn udp_recv_to(
    fd: RawFd,
    buf: &mut [u8],
) -> Option<(usize, libc::sockaddr_in, Option<libc::in_addr>)> {
    // SAFETY: recvmsg with iovec, address and control buffers that all outlive the call; the
    // control messages are walked with the libc CMSG helpers within `control`.
    unsafe {
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        let mut control = [0u64; 16];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = (&mut sa as *mut libc::sockaddr_in).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of_val(&control);
        let n = libc::recvmsg(fd, &mut msg, 0);
        if n < 0 {
            return None;
        }
        let mut local = None;
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::IPPROTO_IP && (*c).cmsg_type == libc::IP_PKTINFO {
                let pi = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::in_pktinfo>());
                local = Some(pi.ipi_addr);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        Some((n as usize, sa, local))
    }
}

/// Sends `data` to `to` from the local address `from` (IP_PKTINFO), if given.
pub(crate) fn udp_send_from(
    fd: RawFd,
    data: &[u8],
    to: &libc::sockaddr_in,
    from: Option<libc::in_addr>,
) {
    // SAFETY: sendmsg with iovec, address and control buffers that all outlive the call; the
    // one control message is written with the libc CMSG helpers within `control`.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        let mut to = *to;
        let mut control = [0u64; 8];
        let mut out: libc::msghdr = std::mem::zeroed();
        out.msg_name = (&mut to as *mut libc::sockaddr_in).cast();
        out.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
        out.msg_iov = &mut iov;
        out.msg_iovlen = 1;
        if let Some(addr) = from {
            out.msg_control = control.as_mut_ptr().cast();
            out.msg_controllen = libc::CMSG_SPACE(size_of::<libc::in_pktinfo>() as u32) as usize;
            let c = libc::CMSG_FIRSTHDR(&out);
            (*c).cmsg_level = libc::IPPROTO_IP;
            (*c).cmsg_type = libc::IP_PKTINFO;
            (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as usize;
            let pi = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: addr,
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::in_pktinfo>(), pi);
        }
        libc::sendmsg(fd, &out, 0);
    }
}

/// Sends `n` UDP datagrams from `ns` to `dst:port`, one every `gap`: from one socket (one
/// connection), or from a socket of their own each (`n` connections: the sockets stay open
/// until the last is sent, so no two share a source port). Returns after a pause that lets
/// the last one arrive.
pub fn send_udp(ns: &Ns, dst: &str, port: u16, n: usize, gap: Duration, one_socket: bool) {
    let dst = ip4(dst);
    ns.in_ns(move || {
        let socket = blocking_udp_socket;
        let sa = sockaddr(dst, port);
        let shared = socket();
        let mut own = Vec::new();
        let start = Instant::now();
        for i in 0..n {
            let when = start + gap * i as u32;
            if let Some(d) = when.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
            if !one_socket {
                own.push(socket());
            }
            send_to(own.last().unwrap_or(&shared), &sa, b"probe");
        }
    });
    std::thread::sleep(Duration::from_millis(200));
}

/// Sends one UDP datagram from `ns` to port `port` of each `(destination, TOS byte)` of `to`,
/// from one socket that may send to broadcast addresses (IP_TOS keeps all eight bits on a
/// datagram socket).
pub fn send_datagrams(ns: &Ns, port: u16, to: &[(&str, u8)]) {
    let to: Vec<(Ipv4Addr, u8)> = to.iter().map(|(d, t)| (ip4(d), *t)).collect();
    ns.in_ns(move || {
        let fd = blocking_udp_socket();
        set_option(&fd, libc::SOL_SOCKET, libc::SO_BROADCAST, 1);
        for (dst, tos) in to {
            set_option(&fd, libc::IPPROTO_IP, libc::IP_TOS, tos as libc::c_int);
            send_to(&fd, &sockaddr(dst, port), b"datagram");
        }
    });
    std::thread::sleep(Duration::from_millis(200));
}

/// A UDP socket whose sends wait for room (a burst of datagrams is not cut short).
fn blocking_udp_socket() -> OwnedFd {
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: fd is a fresh, valid descriptor that nobody else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `setsockopt(2)` of an int option, which must work.
fn set_option(fd: &OwnedFd, level: libc::c_int, option: libc::c_int, value: libc::c_int) {
    // SAFETY: a socket this process owns, and an int the call reads.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            option,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as u32,
        )
    };
    assert_eq!(r, 0, "setsockopt {level}/{option} {value:#x}");
}

/// One datagram on `fd` to `sa` (a lost one shows in the counts).
fn send_to(fd: &OwnedFd, sa: &libc::sockaddr_in, msg: &[u8]) {
    // SAFETY: a socket this process owns, valid buffers.
    unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (sa as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as u32,
        )
    };
}

/// One UDP datagram to `dst:port` from a socket that a thread of `ns` opened with fsuid
/// `uid` and fsgid `gid` (the credentials of the socket's file, which xt_owner and nf_log
/// read).
pub fn udp_as(ns: &Ns, dst: &str, port: u16, uid: u32, gid: u32) {
    udp_as_in_groups(ns, dst, port, uid, gid, &[]);
}

/// `udp_as` from a thread whose supplementary groups are `groups` (`-m owner
/// --suppl-groups`).
pub fn udp_as_in_groups(ns: &Ns, dst: &str, port: u16, uid: u32, gid: u32, groups: &[u32]) {
    let to = format!("{dst}:{port}");
    let groups = groups.to_vec();
    ns.in_ns(move || {
        // Per thread: this one only (and it ends here). The raw setgroups system call sets
        // the calling thread's groups (glibc's sets every thread's).
        // SAFETY: setfsgid/setfsuid take plain ids; setgroups reads `groups.len()` ids.
        unsafe {
            let rc = libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr());
            assert_eq!(rc, 0, "setgroups: {}", std::io::Error::last_os_error());
            libc::setfsgid(gid);
            libc::setfsuid(uid);
        }
        let sock = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        // A DROP on OUTPUT fails the send (EPERM) with netfilter.
        let _ = sock.send_to(b"owner", &to);
    });
}

/// One IP packet of protocol `proto` with `payload` from `ns` to `dst` (a raw socket: the
/// kernel writes the IP header).
pub fn send_raw(ns: &Ns, dst: &str, proto: u8, payload: &[u8]) {
    let (dst, payload) = (ip4(dst), payload.to_vec());
    ns.in_ns(move || {
        // SAFETY: plain socket(2); the fd is owned right away.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, proto as libc::c_int) };
        assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
        // SAFETY: fd is a fresh, valid descriptor that nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        send_to(&fd, &sockaddr(dst, 0), &payload);
    });
    std::thread::sleep(Duration::from_millis(100));
}

/// The MAC address of `ifname` in `ns`.
pub fn mac(ns: &Ns, ifname: &str) -> [u8; 6] {
    let out = ns
        .exec(&["ip", "-o", "link", "show", ifname])
        .expect_ok()
        .stdout;
    let hex = out
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC in {out:?}"));
    let b: Vec<u8> = hex
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).unwrap())
        .collect();
    b.try_into().unwrap()
}

/// An IPv4 packet of protocol `proto` from `src` to `dst` carrying `payload`: a 20-byte
/// header, its checksum right.
pub fn ipv4_packet(src: &str, dst: &str, proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0];
    h[2..4].copy_from_slice(&(20 + payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&ip4(src).octets());
    h.extend_from_slice(&ip4(dst).octets());
    let mut sum: u32 = h
        .chunks(2)
        .map(|w| u16::from_be_bytes([w[0], w[1]]) as u32)
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    h[10..12].copy_from_slice(&(!sum as u16).to_be_bytes());
    [h, payload.to_vec()].concat()
}

/// Sends `frame` (Ethernet onwards, behind a virtio-net header if `vnet_hdr`) out of `ns`'s
/// eth0 to its peer `peer_mac`, through a packet socket: as a device delivers frames, with
/// whatever padding or checksum state the caller gave them.
pub fn send_frame(ns: &Ns, peer_mac: [u8; 6], frame: Vec<u8>, vnet_hdr: bool) {
    ns.in_ns(move || {
        let eth_p_ip = (libc::ETH_P_IP as u16).to_be();
        // SAFETY: socket(2), owned at once; setsockopt and sendto with live buffers and their
        // sizes.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, eth_p_ip as i32);
            assert!(
                fd >= 0,
                "packet socket: {}",
                std::io::Error::last_os_error()
            );
            let fd = OwnedFd::from_raw_fd(fd);
            if vnet_hdr {
                let on: libc::c_int = 1;
                let r = libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_PACKET,
                    libc::PACKET_VNET_HDR,
                    (&on as *const libc::c_int).cast(),
                    size_of::<libc::c_int>() as u32,
                );
                assert_eq!(r, 0, "PACKET_VNET_HDR: {}", std::io::Error::last_os_error());
            }
            let mut ll: libc::sockaddr_ll = std::mem::zeroed();
            ll.sll_family = libc::AF_PACKET as u16;
            ll.sll_protocol = eth_p_ip;
            ll.sll_ifindex = libc::if_nametoindex(c"eth0".as_ptr()) as i32;
            ll.sll_halen = 6;
            ll.sll_addr[..6].copy_from_slice(&peer_mac);
            let n = libc::sendto(
                fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&ll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            );
            assert_eq!(
                n,
                frame.len() as isize,
                "{}",
                std::io::Error::last_os_error()
            );
        }
    });
    std::thread::sleep(Duration::from_millis(100));
}
