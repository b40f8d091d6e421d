//! Datagrams as they arrived: a UDP socket that reads each datagram's skb mark (SO_RCVMARK),
//! TOS byte and TTL, where the rules' MARK, TOS, DSCP and TTL targets end up.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::Ns;

/// SO_RCVMARK (Linux 6.0): each datagram comes with its skb's mark.
const SO_RCVMARK: libc::c_int = 75;

/// A UDP socket of `ns` on `port` that receives marks, TOS bytes and TTLs.
pub fn receiver(ns: &Ns, port: u16) -> OwnedFd {
    // SAFETY: plain socket calls on a descriptor this function owns, with pointers to live
    // locals of the sizes given.
    ns.in_ns(|| unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let fd = OwnedFd::from_raw_fd(fd);
        let one: libc::c_int = 1;
        let set = |level, opt, v: &libc::c_int| {
            let len = std::mem::size_of::<libc::c_int>() as u32;
            let r = libc::setsockopt(fd.as_raw_fd(), level, opt, (v as *const i32).cast(), len);
            assert_eq!(
                r,
                0,
                "setsockopt {opt}: {}",
                std::io::Error::last_os_error()
            );
        };
        set(libc::SOL_SOCKET, SO_RCVMARK, &one);
        set(libc::IPPROTO_IP, libc::IP_RECVTOS, &one);
        set(libc::IPPROTO_IP, libc::IP_RECVTTL, &one);
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 300_000,
        };
        let r = libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        );
        assert_eq!(r, 0);
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr { s_addr: 0 },
            sin_zero: [0; 8],
        };
        let r = libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        );
        assert_eq!(r, 0, "bind {port}: {}", std::io::Error::last_os_error());
        fd
    })
}

/// What a datagram arrived with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Datagram {
    pub mark: u32,
    pub tos: u8,
    pub ttl: u8,
}

/// The marks of the datagrams waiting on `fd`, in order.
pub fn marks(fd: &OwnedFd) -> Vec<u32> {
    datagrams(fd).iter().map(|d| d.mark).collect()
}

/// The datagrams waiting on `fd`, in order.
pub fn datagrams(fd: &OwnedFd) -> Vec<Datagram> {
    let mut out = Vec::new();
    loop {
        let mut buf = [0u8; 64];
        let mut control = [0u64; 16];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: a zeroed msghdr is an empty one.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        // SAFETY: `msg` points at `iov` and `control`, live and of the sizes it says.
        if unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, 0) } < 0 {
            return out;
        }
        let mut d = Datagram::default();
        // SAFETY: the control messages recvmsg wrote into `control`, walked with the
        // kernel's macros; SO_MARK's and IP_TTL's data is an int, IP_TOS's a byte.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                let data = libc::CMSG_DATA(c);
                match ((*c).cmsg_level, (*c).cmsg_type) {
                    (libc::SOL_SOCKET, libc::SO_MARK) => {
                        d.mark = std::ptr::read_unaligned(data.cast::<u32>());
                    }
                    (libc::IPPROTO_IP, libc::IP_TOS) => d.tos = *data,
                    (libc::IPPROTO_IP, libc::IP_TTL) => {
                        d.ttl = std::ptr::read_unaligned(data.cast::<i32>()) as u8;
                    }
                    _ => {}
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        out.push(d);
    }
}
