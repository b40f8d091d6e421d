//! The name databases iptables reaches through libc: /etc/protocols, /etc/services, /etc/hosts
//! and /etc/networks, read the way glibc's `files` backend reads them. DNS is never consulted, so
//! names resolve the same way with or without a network.

use std::net::Ipv4Addr;
use std::sync::OnceLock;

/// One line of /etc/protocols, /etc/networks or /etc/hosts: a value and its names (canonical
/// name first, then aliases).
#[derive(Debug)]
struct Entry<T> {
    value: T,
    names: Vec<String>,
}

#[derive(Debug)]
struct Service {
    port: u16,
    proto: String,
    names: Vec<String>,
}

/// The four databases, each read and parsed the first time a lookup needs it: most commands
/// never name a host, a network or a service.
#[derive(Debug, Default)]
pub struct NameDb {
    /// The files' texts (`None`: read them from /etc).
    texts: Option<[String; 4]>,
    protocols: OnceLock<Vec<Entry<u8>>>,
    services: OnceLock<Vec<Service>>,
    hosts: OnceLock<Vec<Entry<Ipv4Addr>>>,
    networks: OnceLock<Vec<Entry<u32>>>,
}

const FILES: [&str; 4] = [
    "/etc/protocols",
    "/etc/services",
    "/etc/hosts",
    "/etc/networks",
];

/// The fields of a line, comments stripped.
fn fields(line: &str) -> impl Iterator<Item = &str> {
    line.split('#').next().unwrap_or("").split_whitespace()
}

/// `inet_network(3)`: dotted parts folded right-aligned, so "127" is 0x7f and "127.0.0.0" is
/// 0x7f000000.
fn inet_network(text: &str) -> Option<u32> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    parts.iter().try_fold(0u32, |acc, part| {
        let byte: u8 = part.parse().ok()?;
        Some(acc << 8 | u32::from(byte))
    })
}

/// Lines of the form `name value [alias...]` (/etc/protocols, /etc/networks).
fn entries<T>(text: &str, value: impl Fn(&str) -> Option<T>) -> Vec<Entry<T>> {
    text.lines()
        .filter_map(|line| {
            let mut f = fields(line);
            let name = f.next()?;
            let value = value(f.next()?)?;
            Some(Entry {
                value,
                names: std::iter::once(name).chain(f).map(String::from).collect(),
            })
        })
        .collect()
}

fn services(text: &str) -> Vec<Service> {
    text.lines()
        .filter_map(|line| {
            let mut f = fields(line);
            let name = f.next()?;
            let (port, proto) = f.next()?.split_once('/')?;
            Some(Service {
                port: port.parse().ok()?,
                proto: proto.to_string(),
                names: std::iter::once(name).chain(f).map(String::from).collect(),
            })
        })
        .collect()
}

fn hosts(text: &str) -> Vec<Entry<Ipv4Addr>> {
    text.lines()
        .filter_map(|line| {
            let mut f = fields(line);
            let value = f.next()?.parse().ok()?;
            let names: Vec<String> = f.map(String::from).collect();
            (!names.is_empty()).then_some(Entry { value, names })
        })
        .collect()
}

impl NameDb {
    /// The databases of this machine.
    pub fn system() -> &'static NameDb {
        static DB: OnceLock<NameDb> = OnceLock::new();
        DB.get_or_init(NameDb::default)
    }

    /// Databases from the text of the four files; malformed lines are skipped, as glibc does.
    pub fn parse(protocols: &str, services: &str, hosts: &str, networks: &str) -> NameDb {
        NameDb {
            texts: Some([protocols, services, hosts, networks].map(String::from)),
            ..NameDb::default()
        }
    }

    /// The text of database `i` (in `FILES`' order); a missing file is an empty one.
    fn text(&self, i: usize) -> std::borrow::Cow<'_, str> {
        match &self.texts {
            Some(texts) => texts[i].as_str().into(),
            None => std::fs::read_to_string(FILES[i]).unwrap_or_default().into(),
        }
    }

    fn protocols(&self) -> &[Entry<u8>] {
        self.protocols
            .get_or_init(|| entries(&self.text(0), |n| n.parse().ok()))
    }

    fn services(&self) -> &[Service] {
        self.services.get_or_init(|| services(&self.text(1)))
    }

    fn hosts(&self) -> &[Entry<Ipv4Addr>] {
        self.hosts.get_or_init(|| hosts(&self.text(2)))
    }

    fn networks(&self) -> &[Entry<u32>] {
        self.networks
            .get_or_init(|| entries(&self.text(3), inet_network))
    }

    /// `getprotobyname(3)`.
    pub fn protocol_by_name(&self, name: &str) -> Option<u8> {
        self.protocols()
            .iter()
            .find(|e| e.names.iter().any(|n| n == name))
            .map(|e| e.value)
    }

    /// `getprotobynumber(3)`.
    pub fn protocol_name(&self, number: u8) -> Option<&str> {
        self.protocols()
            .iter()
            .find(|e| e.value == number)
            .map(|e| e.names[0].as_str())
    }

    /// `getservbyname(3)`.
    pub fn service_port(&self, name: &str, proto: &str) -> Option<u16> {
        self.services()
            .iter()
            .find(|s| s.proto == proto && s.names.iter().any(|n| n == name))
            .map(|s| s.port)
    }

    /// `getservbyname(3)` with no protocol: the first service of that name in the file.
    pub fn service_port_any(&self, name: &str) -> Option<u16> {
        self.services()
            .iter()
            .find(|s| s.names.iter().any(|n| n == name))
            .map(|s| s.port)
    }

    /// `getservbyport(3)`.
    pub fn service_name(&self, port: u16, proto: &str) -> Option<&str> {
        self.services()
            .iter()
            .find(|s| s.proto == proto && s.port == port)
            .map(|s| s.names[0].as_str())
    }

    /// Every IPv4 address of a host name, in file order (`getaddrinfo(3)` with AF_INET).
    pub fn host_addresses(&self, name: &str) -> Vec<Ipv4Addr> {
        self.hosts()
            .iter()
            .filter(|e| e.names.iter().any(|n| n.eq_ignore_ascii_case(name)))
            .map(|e| e.value)
            .collect()
    }

    /// The canonical name of an address (`getnameinfo(3)` answered from the hosts file).
    pub fn host_name(&self, addr: Ipv4Addr) -> Option<&str> {
        self.hosts()
            .iter()
            .find(|e| e.value == addr)
            .map(|e| e.names[0].as_str())
    }

    /// `getnetbyname(3)`: the network number, host order, right-aligned.
    pub fn network_by_name(&self, name: &str) -> Option<u32> {
        self.networks()
            .iter()
            .find(|e| e.names.iter().any(|n| n.eq_ignore_ascii_case(name)))
            .map(|e| e.value)
    }

    /// `getnetbyaddr(3)`.
    pub fn network_name(&self, net: u32) -> Option<&str> {
        self.networks()
            .iter()
            .find(|e| e.value == net)
            .map(|e| e.names[0].as_str())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Extracts of Debian's netbase files, the databases the golden strings were taken with.
    pub(crate) fn debian() -> NameDb {
        NameDb::parse(
            "ip\t0\tIP\t\t# internet protocol\nhopopt\t0\tHOPOPT\nicmp\t1\tICMP\ntcp\t6\tTCP\n\
             udp\t17\tUDP\ngre\t47\tGRE\nesp\t50\tIPSEC-ESP\nah\t51\tIPSEC-AH\n\
             ipv6-icmp\t58\tIPv6-ICMP\nsctp\t132\tSCTP\nmobility-header 135\tMobility-Header\n\
             udplite\t136\tUDPLite\n",
            "tcpmux\t\t1/tcp\nftp-data\t20/tcp\nftp\t\t21/tcp\nssh\t\t22/tcp\t\t# SSH\n\
             domain\t\t53/tcp\ndomain\t\t53/udp\nhttp\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP\n\
             ntp\t\t123/udp\nhttp-alt\t8080/tcp\twebcache\n",
            "127.0.0.1 localhost\n127.0.0.1 runsc\n::1 localhost ip6-localhost\n\
             198.18.0.9 box.test box\n198.18.0.10 box.test\n",
            "default\t\t0.0.0.0\nloopback\t127.0.0.0\nlink-local\t169.254.0.0\n",
        )
    }

    #[test]
    fn lookups_follow_glibc_files_backend() {
        let db = debian();
        assert_eq!(db.protocol_by_name("gre"), Some(47));
        assert_eq!(db.protocol_by_name("GRE"), Some(47));
        assert_eq!(db.protocol_name(0), Some("ip"));
        assert_eq!(db.service_port("www", "tcp"), Some(80));
        assert_eq!(db.service_port("http", "udp"), None);
        assert_eq!(db.service_name(53, "udp"), Some("domain"));
        let box_addrs: [Ipv4Addr; 2] = [
            "198.18.0.9".parse().unwrap(),
            "198.18.0.10".parse().unwrap(),
        ];
        assert_eq!(db.host_addresses("BOX.test"), box_addrs);
        assert_eq!(db.host_addresses("ip6-localhost"), Vec::<Ipv4Addr>::new());
        assert_eq!(
            db.host_name("127.0.0.1".parse().unwrap()),
            Some("localhost")
        );
        assert_eq!(db.network_by_name("loopback"), Some(0x7f00_0000));
        assert_eq!(db.network_name(0xa9fe_0000), Some("link-local"));
        assert_eq!(inet_network("127"), Some(127));
    }
}
