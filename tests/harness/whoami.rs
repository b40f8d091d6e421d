//! A server that tells each client what it saw, for the nat tests: where a connection came
//! from (the peer address and port after any SNAT/MASQUERADE) and where it arrived (the local
//! address and port after any DNAT/REDIRECT).
//!
//! On every port given, a TCP listener writes `"<peer> <local>\n"` (e.g.
//! `198.18.30.1:40000 198.18.20.2:80`) to each connection it accepts and keeps it open until
//! the client closes it; a UDP socket answers each datagram with the same line, sent from the
//! address the datagram was sent to. Optionally a raw ICMP socket records the source of every
//! echo request the namespace receives. Everything seen is also kept server-side
//! ([`Whoami::seen`]).
//!
//! The client side ([`tcp_ask`], [`tcp_open_many`], [`udp_ask`]) returns what the server said,
//! or what the socket got instead: `"timeout"`, `"ECONNREFUSED"`, ...

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::lab::{Ns, ip4};
use crate::traffic::{udp_recv_to, udp_send_from};

/// What the server saw of one TCP connection, UDP datagram or ICMP echo request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    /// `"tcp"`, `"udp"` or `"icmp"`.
    pub proto: &'static str,
    /// Where it came from (port 0 for ICMP).
    pub peer: SocketAddrV4,
    /// Where it arrived (port 0 and address 0.0.0.0 for ICMP).
    pub local: SocketAddrV4,
}

/// The server; stops (closing every socket) when dropped.
pub struct Whoami {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

enum Sock {
    Listener(OwnedFd),
    Udp(OwnedFd),
    Icmp(OwnedFd),
}

impl Sock {
    fn fd(&self) -> RawFd {
        match self {
            Sock::Listener(f) | Sock::Udp(f) | Sock::Icmp(f) => f.as_raw_fd(),
        }
    }
}

impl Whoami {
    /// TCP and UDP on `ports` of `ns` (every address), and the ICMP echo recorder if `icmp`.
    pub fn start(ns: &Ns, ports: &[u16], icmp: bool) -> Whoami {
        let ports = ports.to_vec();
        let socks: Vec<Sock> = ns.in_ns(|| {
            let mut v = Vec::new();
            for &p in &ports {
                let t = socket(libc::SOCK_STREAM).expect("tcp socket");
                set_int_opt(t.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
                bind(t.as_raw_fd(), Ipv4Addr::UNSPECIFIED, p)
                    .unwrap_or_else(|e| panic!("whoami: bind tcp {p}: {e}"));
                // SAFETY: listen on a bound socket.
                assert_eq!(unsafe { libc::listen(t.as_raw_fd(), 512) }, 0, "listen {p}");
                v.push(Sock::Listener(t));
                let u = socket(libc::SOCK_DGRAM).expect("udp socket");
                set_int_opt(u.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
                set_int_opt(u.as_raw_fd(), libc::IPPROTO_IP, libc::IP_PKTINFO, 1);
                bind(u.as_raw_fd(), Ipv4Addr::UNSPECIFIED, p)
                    .unwrap_or_else(|e| panic!("whoami: bind udp {p}: {e}"));
                v.push(Sock::Udp(u));
            }
            if icmp {
                // SAFETY: plain socket(2); owned at once.
                let fd = unsafe {
                    libc::socket(
                        libc::AF_INET,
                        libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                        libc::IPPROTO_ICMP,
                    )
                };
                assert!(
                    fd >= 0,
                    "raw icmp socket: {}",
                    std::io::Error::last_os_error()
                );
                // SAFETY: fd is fresh and ours.
                v.push(Sock::Icmp(unsafe { OwnedFd::from_raw_fd(fd) }));
            }
            v
        });
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop2, seen2) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || serve(&socks, &stop2, &seen2));
        Whoami {
            stop,
            thread: Some(thread),
            seen,
        }
    }

    /// Everything seen so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// What was seen of `proto` so far.
    pub fn seen_of(&self, proto: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.proto == proto)
            .collect()
    }

    /// Forgets what was seen so far.
    pub fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

impl Drop for Whoami {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(socks: &[Sock], stop: &AtomicBool, seen: &Mutex<Vec<Seen>>) {
    let mut pfds: Vec<libc::pollfd> = socks
        .iter()
        .map(|s| libc::pollfd {
            fd: s.fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut accepted: Vec<OwnedFd> = Vec::new();
    let mut buf = [0u8; 2048];
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
            match &socks[i] {
                Sock::Listener(l) => {
                    while let Some(c) = accept_one(l.as_raw_fd(), seen) {
                        accepted.push(c);
                    }
                }
                Sock::Udp(u) => while udp_answer_one(u.as_raw_fd(), &mut buf, seen) {},
                Sock::Icmp(s) => while icmp_record_one(s.as_raw_fd(), &mut buf, seen) {},
            }
        }
    }
}

/// Accepts one connection, tells it what was seen, and hands it back (kept open).
fn accept_one(fd: RawFd, seen: &Mutex<Vec<Seen>>) -> Option<OwnedFd> {
    // SAFETY: accept4 without peer address; the new fd is owned at once.
    let c = unsafe { libc::accept4(fd, std::ptr::null_mut(), std::ptr::null_mut(), 0) };
    if c < 0 {
        return None;
    }
    // SAFETY: c is a fresh descriptor we own.
    let c = unsafe { OwnedFd::from_raw_fd(c) };
    let (Some(peer), Some(local)) = (peer_name(c.as_raw_fd()), sock_name(c.as_raw_fd())) else {
        return Some(c);
    };
    seen.lock().unwrap().push(Seen {
        proto: "tcp",
        peer,
        local,
    });
    let line = format!("{peer} {local}\n");
    // SAFETY: send from a live buffer (a fresh socket's buffer takes a line).
    unsafe {
        libc::send(
            c.as_raw_fd(),
            line.as_ptr().cast(),
            line.len(),
            libc::MSG_NOSIGNAL,
        )
    };
    Some(c)
}

/// Answers one datagram, if any is waiting, from the address it was sent to.
fn udp_answer_one(fd: RawFd, buf: &mut [u8], seen: &Mutex<Vec<Seen>>) -> bool {
    let Some((_, sa, local_addr)) = udp_recv_to(fd, buf) else {
        return false;
    };
    let peer = from_sockaddr(&sa);
    let port = sock_name(fd).map(|a| a.port()).unwrap_or(0);
    let local = SocketAddrV4::new(
        local_addr
            .map(|a| Ipv4Addr::from(u32::from_be(a.s_addr)))
            .unwrap_or(Ipv4Addr::UNSPECIFIED),
        port,
    );
    seen.lock().unwrap().push(Seen {
        proto: "udp",
        peer,
        local,
    });
    udp_send_from(fd, format!("{peer} {local}\n").as_bytes(), &sa, local_addr);
    true
}

/// Records the source of one ICMP echo request, if any packet is waiting.
fn icmp_record_one(fd: RawFd, buf: &mut [u8], seen: &Mutex<Vec<Seen>>) -> bool {
    // SAFETY: recv into a live buffer of the given size.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return false;
    }
    let p = &buf[..n as usize];
    if p.len() >= 21 {
        let ihl = usize::from(p[0] & 0x0f) * 4;
        if p.len() > ihl && p[ihl] == 8 {
            let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
            seen.lock().unwrap().push(Seen {
                proto: "icmp",
                peer: SocketAddrV4::new(src, 0),
                local: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
            });
        }
    }
    true
}

/// What the client learnt from one exchange with a [`Whoami`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The client socket's own address and port.
    pub me: SocketAddrV4,
    /// Where the server saw the client come from.
    pub peer: SocketAddrV4,
    /// Where the server saw the client arrive.
    pub local: SocketAddrV4,
}

impl Reply {
    /// Whether the server saw the client's own source port.
    pub fn port_kept(&self) -> bool {
        self.peer.port() == self.me.port()
    }
}

/// A TCP connection from `ns` to `dst:port` (from `src` when given: address, port; 0 for any):
/// the server's line, or what the socket got instead. The connection is then closed (RST).
pub fn tcp_ask(
    ns: &Ns,
    dst: &str,
    port: u16,
    src: Option<(&str, u16)>,
    timeout: Duration,
) -> Result<Reply, String> {
    let dst = ip4(dst);
    let src = src.map(|(a, p)| {
        (
            if a.is_empty() {
                Ipv4Addr::UNSPECIFIED
            } else {
                ip4(a)
            },
            p,
        )
    });
    ns.in_ns(|| tcp_exchange(src, dst, port, timeout))
        .map(|(_, r)| r)
}

/// [`tcp_ask`] that keeps the connection open (until the returned descriptor is dropped).
pub fn tcp_open(
    ns: &Ns,
    dst: &str,
    port: u16,
    src: Option<(&str, u16)>,
    timeout: Duration,
) -> Result<(OwnedFd, Reply), String> {
    let dst = ip4(dst);
    let src = src.map(|(a, p)| {
        (
            if a.is_empty() {
                Ipv4Addr::UNSPECIFIED
            } else {
                ip4(a)
            },
            p,
        )
    });
    ns.in_ns(|| tcp_exchange(src, dst, port, timeout))
}

/// One connection per source port in `sports` (0: any), all at once from as many threads,
/// from `ns` to `dst:port`; all kept open (until the descriptors are dropped).
pub fn tcp_open_many(
    ns: &Ns,
    dst: &str,
    port: u16,
    sports: &[u16],
    timeout: Duration,
) -> Vec<Result<(OwnedFd, Reply), String>> {
    let dst = ip4(dst);
    ns.in_ns(|| {
        // Threads made here are in the namespace too (they inherit this thread's).
        std::thread::scope(|s| {
            let hs: Vec<_> = sports
                .iter()
                .map(|&sp| {
                    s.spawn(move || {
                        let src = (sp != 0).then_some((Ipv4Addr::UNSPECIFIED, sp));
                        tcp_exchange(src, dst, port, timeout)
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    })
}

/// One datagram from a connected UDP socket in `ns` (from source port `sport` when not 0) to
/// `dst:port`: the server's line, or what the socket got instead.
pub fn udp_ask(
    ns: &Ns,
    dst: &str,
    port: u16,
    sport: u16,
    timeout: Duration,
) -> Result<Reply, String> {
    let dst = ip4(dst);
    ns.in_ns(|| udp_exchange(sport, dst, port, timeout, false))
}

/// [`udp_ask`] with the datagram sent without a checksum (SO_NO_CHECK: a UDP checksum of 0,
/// which IPv4 allows).
pub fn udp_ask_no_checksum(
    ns: &Ns,
    dst: &str,
    port: u16,
    timeout: Duration,
) -> Result<Reply, String> {
    let dst = ip4(dst);
    ns.in_ns(|| udp_exchange(0, dst, port, timeout, true))
}

/// [`udp_ask`], retried (with a fresh socket each time) while it times out: for expected
/// answers, as the harness's own probes do.
pub fn udp_ask_retry(ns: &Ns, dst: &str, port: u16, sport: u16) -> Result<Reply, String> {
    let mut last = Err("timeout".to_string());
    for ms in [1000, 1500, 2500] {
        last = udp_ask(ns, dst, port, sport, Duration::from_millis(ms));
        if last.as_ref().err().is_none_or(|e| e != "timeout") {
            break;
        }
    }
    last
}

/// A short name for an errno, as the tests print them.
pub fn errno_name(e: i32) -> String {
    match e {
        libc::ECONNREFUSED => "ECONNREFUSED".into(),
        libc::ECONNRESET => "ECONNRESET".into(),
        libc::EHOSTUNREACH => "EHOSTUNREACH".into(),
        libc::ENETUNREACH => "ENETUNREACH".into(),
        libc::ETIMEDOUT => "ETIMEDOUT".into(),
        libc::EADDRINUSE => "EADDRINUSE".into(),
        libc::EPERM => "EPERM".into(),
        e => format!("errno {e}"),
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn tcp_exchange(
    src: Option<(Ipv4Addr, u16)>,
    dst: Ipv4Addr,
    port: u16,
    timeout: Duration,
) -> Result<(OwnedFd, Reply), String> {
    let deadline = Instant::now() + timeout;
    let fd = socket(libc::SOCK_STREAM).map_err(|e| format!("socket: {e}"))?;
    let raw = fd.as_raw_fd();
    let lg = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt with a pointer to a live linger.
    unsafe {
        libc::setsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&lg as *const libc::linger).cast(),
            size_of::<libc::linger>() as u32,
        );
    }
    if let Some((a, p)) = src {
        set_int_opt(raw, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
        bind(raw, a, p).map_err(|e| format!("bind {a}:{p}: {e}"))?;
    }
    let sa = sockaddr(dst, port);
    // SAFETY: connect with a pointer to a live sockaddr_in and its size.
    let r = unsafe {
        libc::connect(
            raw,
            (&sa as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as u32,
        )
    };
    if r < 0 && errno() != libc::EINPROGRESS {
        return Err(errno_name(errno()));
    }
    if poll_one(raw, libc::POLLOUT, deadline) == 0 {
        return Err("timeout".into());
    }
    let err = so_error(raw);
    if err != 0 {
        return Err(errno_name(err));
    }
    let me = sock_name(raw).ok_or("getsockname")?;
    let mut got = Vec::new();
    let mut buf = [0u8; 128];
    while !got.contains(&b'\n') {
        if poll_one(raw, libc::POLLIN, deadline) == 0 {
            return Err("connected, no answer".into());
        }
        // SAFETY: recv into a live buffer of the given size.
        let n = unsafe { libc::recv(raw, buf.as_mut_ptr().cast(), buf.len(), 0) };
        match n {
            0 => return Err("connected, closed without answer".into()),
            n if n < 0 => {
                let e = errno();
                if e == libc::EAGAIN || e == libc::EINTR {
                    continue;
                }
                return Err(errno_name(e));
            }
            n => got.extend_from_slice(&buf[..n as usize]),
        }
    }
    let (peer, local) = parse_line(&got)?;
    Ok((fd, Reply { me, peer, local }))
}

fn udp_exchange(
    sport: u16,
    dst: Ipv4Addr,
    port: u16,
    timeout: Duration,
    no_checksum: bool,
) -> Result<Reply, String> {
    let deadline = Instant::now() + timeout;
    let fd = socket(libc::SOCK_DGRAM).map_err(|e| format!("socket: {e}"))?;
    let raw = fd.as_raw_fd();
    if no_checksum {
        set_int_opt(raw, libc::SOL_SOCKET, libc::SO_NO_CHECK, 1);
    }
    if sport != 0 {
        set_int_opt(raw, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
        bind(raw, Ipv4Addr::UNSPECIFIED, sport).map_err(|e| format!("bind :{sport}: {e}"))?;
    }
    let sa = sockaddr(dst, port);
    // SAFETY: connect with a pointer to a live sockaddr_in and its size.
    let r = unsafe {
        libc::connect(
            raw,
            (&sa as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as u32,
        )
    };
    if r < 0 {
        return Err(errno_name(errno()));
    }
    let me = sock_name(raw).ok_or("getsockname")?;
    let msg = b"whoami?";
    // SAFETY: send from a live buffer.
    if unsafe { libc::send(raw, msg.as_ptr().cast(), msg.len(), 0) } < 0 {
        return Err(errno_name(errno()));
    }
    let mut buf = [0u8; 128];
    loop {
        if poll_one(raw, libc::POLLIN, deadline) == 0 {
            return Err("timeout".into());
        }
        // SAFETY: recv into a live buffer of the given size.
        let n = unsafe { libc::recv(raw, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = errno();
            if e == libc::EAGAIN || e == libc::EINTR {
                continue;
            }
            return Err(errno_name(e));
        }
        let (peer, local) = parse_line(&buf[..n as usize])?;
        return Ok(Reply { me, peer, local });
    }
}

fn parse_line(b: &[u8]) -> Result<(SocketAddrV4, SocketAddrV4), String> {
    let s = String::from_utf8_lossy(b);
    let mut w = s.split_whitespace().map(|x| x.parse::<SocketAddrV4>());
    match (w.next(), w.next()) {
        (Some(Ok(p)), Some(Ok(l))) => Ok((p, l)),
        _ => Err(format!("bad answer {s:?}")),
    }
}

fn socket(ty: i32) -> std::io::Result<OwnedFd> {
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

fn so_error(fd: RawFd) -> i32 {
    let mut err: i32 = 0;
    let mut len = size_of::<i32>() as u32;
    // SAFETY: getsockopt into a live i32.
    unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut i32).cast(),
            &mut len,
        );
    }
    err
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

fn from_sockaddr(sa: &libc::sockaddr_in) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)),
        u16::from_be(sa.sin_port),
    )
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

fn name_of(
    fd: RawFd,
    f: unsafe extern "C" fn(i32, *mut libc::sockaddr, *mut libc::socklen_t) -> i32,
) -> Option<SocketAddrV4> {
    // SAFETY: zeroed sockaddr_in is valid; get{sock,peer}name writes at most `len` bytes.
    unsafe {
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        let mut len = size_of::<libc::sockaddr_in>() as u32;
        if f(fd, (&mut sa as *mut libc::sockaddr_in).cast(), &mut len) < 0 {
            return None;
        }
        Some(from_sockaddr(&sa))
    }
}

fn sock_name(fd: RawFd) -> Option<SocketAddrV4> {
    name_of(fd, libc::getsockname)
}

fn peer_name(fd: RawFd) -> Option<SocketAddrV4> {
    name_of(fd, libc::getpeername)
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
