//! The two topologies of the tests. Addresses are all in 198.18.0.0/15.
//!
//! (a) [`Pair`]: two clients, each on its own veth pair, facing one `host` where the rules go.
//! ```text
//!   c1  eth0 198.18.1.1/24 + 198.18.1.3/24 ──── eth1 198.18.1.2/24 + 198.18.1.4/24  host
//!   c2  eth0 198.18.2.1/24                 ──── eth2 198.18.2.2/24                  host
//! ```
//! Each client's default route goes through the host (so c1 can also reach 198.18.2.2).
//!
//! (b) [`Routed`]: client → router (ip_forward=1, the rules go here) → server; a second server
//! hangs off a third router interface, for `-o` tests.
//! ```text
//!   client  eth0 198.18.3.1/24 ── eth0 198.18.3.2/24  router
//!   server  eth0 198.18.4.1/24 ── eth1 198.18.4.2/24  router
//!   server2 eth0 198.18.5.1/24 ── eth2 198.18.5.2/24  router
//! ```

use crate::fw::Fw;
use crate::lab::{Lab, Ns};

pub const C1: &str = "198.18.1.1";
/// Second address of c1 (same subnet), for source-address tests.
pub const C1_ALT: &str = "198.18.1.3";
pub const HOST1: &str = "198.18.1.2";
/// Second address of the host on eth1, for destination-address tests.
pub const HOST1_ALT: &str = "198.18.1.4";
pub const C2: &str = "198.18.2.1";
pub const HOST2: &str = "198.18.2.2";

pub const CLIENT: &str = "198.18.3.1";
pub const ROUTER_C: &str = "198.18.3.2";
pub const SERVER: &str = "198.18.4.1";
pub const ROUTER_S: &str = "198.18.4.2";
pub const SERVER2: &str = "198.18.5.1";
pub const ROUTER_S2: &str = "198.18.5.2";

/// Topology (a).
pub struct Pair {
    pub lab: Lab,
    pub host: Ns,
    pub c1: Ns,
    pub c2: Ns,
}

impl Pair {
    pub fn new(fw: Fw) -> Pair {
        let mut lab = Lab::new(fw);
        let host = lab.ns("host");
        let c1 = lab.ns("c1");
        let c2 = lab.ns("c2");
        lab.veth(&c1, "eth0", &host, "eth1");
        lab.veth(&c2, "eth0", &host, "eth2");
        c1.ip(&format!("addr add {C1}/24 dev eth0"));
        c1.ip(&format!("addr add {C1_ALT}/24 dev eth0"));
        c2.ip(&format!("addr add {C2}/24 dev eth0"));
        host.ip(&format!("addr add {HOST1}/24 dev eth1"));
        host.ip(&format!("addr add {HOST1_ALT}/24 dev eth1"));
        host.ip(&format!("addr add {HOST2}/24 dev eth2"));
        c1.ip(&format!("route add default via {HOST1}"));
        c2.ip(&format!("route add default via {HOST2}"));
        Pair { lab, host, c1, c2 }
    }
}

/// Topology (b).
pub struct Routed {
    pub lab: Lab,
    pub client: Ns,
    pub router: Ns,
    pub server: Ns,
    pub server2: Ns,
}

impl Routed {
    pub fn new(fw: Fw) -> Routed {
        let mut lab = Lab::new(fw);
        let client = lab.ns("client");
        let router = lab.ns("router");
        let server = lab.ns("server");
        let server2 = lab.ns("server2");
        lab.veth(&client, "eth0", &router, "eth0");
        lab.veth(&server, "eth0", &router, "eth1");
        lab.veth(&server2, "eth0", &router, "eth2");
        client.ip(&format!("addr add {CLIENT}/24 dev eth0"));
        router.ip(&format!("addr add {ROUTER_C}/24 dev eth0"));
        router.ip(&format!("addr add {ROUTER_S}/24 dev eth1"));
        router.ip(&format!("addr add {ROUTER_S2}/24 dev eth2"));
        server.ip(&format!("addr add {SERVER}/24 dev eth0"));
        server2.ip(&format!("addr add {SERVER2}/24 dev eth0"));
        client.ip(&format!("route add default via {ROUTER_C}"));
        server.ip(&format!("route add default via {ROUTER_S}"));
        server2.ip(&format!("route add default via {ROUTER_S2}"));
        router.sysctl("net.ipv4.ip_forward=1");
        Routed {
            lab,
            client,
            router,
            server,
            server2,
        }
    }
}
