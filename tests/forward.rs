//! FORWARD chain: client → router (the rules) → server (topology (b)).

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::{Drop, Fw, Pass, Routed, scenarios};

scenarios!(
    forward_by_interface,
    forward_by_address_and_port,
    forward_policy_drop,
    forward_chains_are_separate,
);

/// `-i`/`-o` pick the path; a rule naming the wrong output interface drops nothing.
fn forward_by_interface(fw: Fw) {
    let Routed {
        lab,
        client,
        router,
        server,
        server2,
    } = Routed::new(fw);
    lab.serve(&server, &[80]);
    lab.serve(&server2, &[80]);
    lab.expect(&client.ping(SERVER), Pass);
    lab.expect(&client.ping(SERVER2), Pass);

    // The wrong -o (and the wrong -i) for client → server: nothing dropped.
    lab.ipt_ok(&router, "-A FORWARD -i eth0 -o eth2 -p tcp -j DROP");
    lab.ipt_ok(&router, "-A FORWARD -i eth2 -o eth1 -j DROP");
    lab.expect(&client.tcp(SERVER, 80), Pass);
    lab.expect(&client.ping(SERVER), Pass);
    lab.expect(&client.tcp(SERVER2, 80), Drop);
    lab.expect(&client.udp(SERVER2, 80), Pass);

    // The right one.
    lab.ipt_ok(&router, "-F FORWARD");
    lab.ipt_ok(&router, "-A FORWARD -i eth0 -o eth1 -p icmp -j DROP");
    lab.expect(&client.ping(SERVER), Drop);
    lab.expect(&client.ping(SERVER2), Pass);
    lab.expect(&client.tcp(SERVER, 80), Pass);
    lab.expect(&server.ping(CLIENT), Drop); // the reply leg: eth0 → eth1 again
    lab.expect(&server2.ping(CLIENT), Pass);

    // -o alone, and negated.
    lab.ipt_ok(&router, "-F FORWARD");
    lab.ipt_ok(&router, "-A FORWARD -o eth2 -p udp -j DROP");
    lab.expect(&client.udp(SERVER2, 80), Drop);
    lab.expect(&client.udp(SERVER, 80), Pass);
    lab.ipt_ok(&router, "-F FORWARD");
    lab.ipt_ok(&router, "-A FORWARD -p tcp ! -o eth1 -j DROP");
    lab.expect(&client.tcp(SERVER, 80), Drop); // the SYN-ACK leaves on eth0
    lab.expect(&client.tcp(SERVER2, 80), Drop);
    lab.expect(&client.ping(SERVER), Pass);
    lab.check();
}

/// Addresses and ports in FORWARD; the reply direction is a packet of its own.
fn forward_by_address_and_port(fw: Fw) {
    let Routed {
        lab,
        client,
        router,
        server,
        server2,
    } = Routed::new(fw);
    lab.serve(&server, &[80, 81]);
    lab.serve(&server2, &[80]);
    lab.ipt_ok(
        &router,
        &format!("-A FORWARD -d {SERVER} -p tcp --dport 80 -j DROP"),
    );
    lab.expect(&client.tcp(SERVER, 80), Drop);
    lab.expect(&client.tcp(SERVER, 81), Pass);
    lab.expect(&client.tcp(SERVER2, 80), Pass);
    lab.expect(&client.ping(SERVER), Pass);

    lab.ipt_ok(&router, "-F FORWARD");
    // Drops the echo replies coming back from server, not the requests.
    lab.ipt_ok(
        &router,
        &format!("-A FORWARD -s {SERVER} -d {CLIENT} -p icmp -j DROP"),
    );
    lab.expect(&client.ping(SERVER), Drop);
    lab.expect(&client.ping(SERVER2), Pass);
    lab.expect(&client.udp(SERVER, 80), Pass);

    lab.ipt_ok(&router, "-F FORWARD");
    lab.ipt_ok(&router, "-A FORWARD -p udp --sport 80 -j DROP"); // the echoes
    lab.expect(&client.udp(SERVER, 80), Drop);
    lab.expect(&client.tcp(SERVER, 80), Pass);
    lab.check();
}

/// `-P FORWARD DROP` with a few ACCEPT rules.
fn forward_policy_drop(fw: Fw) {
    let Routed {
        lab,
        client,
        router,
        server,
        server2,
    } = Routed::new(fw);
    lab.serve(&server, &[80, 81]);
    lab.ipt_ok(&router, "-P FORWARD DROP");
    lab.expect(&client.ping(SERVER), Drop);
    lab.expect(&client.tcp(SERVER, 80), Drop);
    lab.expect(&client.ping(ROUTER_C), Pass); // the router itself: INPUT, not FORWARD
    lab.ipt_ok(&router, "-A FORWARD -p icmp -j ACCEPT");
    lab.ipt_ok(&router, "-A FORWARD -p tcp --dport 80 -j ACCEPT");
    lab.ipt_ok(&router, "-A FORWARD -p tcp --sport 80 -j ACCEPT");
    lab.expect(&client.ping(SERVER), Pass);
    lab.expect(&client.ping(SERVER2), Pass);
    lab.expect(&client.tcp(SERVER, 80), Pass);
    lab.expect(&client.tcp(SERVER, 81), Drop);
    lab.expect(&client.udp(SERVER, 80), Drop);
    lab.ipt_ok(&router, "-P FORWARD ACCEPT");
    lab.expect(&client.tcp(SERVER, 81), Pass);
    lab.expect(&server2.ping(CLIENT), Pass);
    lab.check();
}

/// INPUT rules leave forwarded traffic alone and FORWARD rules leave the router's own traffic
/// alone.
fn forward_chains_are_separate(fw: Fw) {
    let Routed {
        lab,
        client,
        router,
        server,
        ..
    } = Routed::new(fw);
    lab.serve(&server, &[80]);
    lab.serve(&router, &[80]);
    lab.ipt_ok(&router, "-A INPUT -p icmp -j DROP");
    lab.ipt_ok(&router, "-A INPUT -p tcp -j DROP");
    lab.expect(&client.ping(ROUTER_C), Drop);
    lab.expect(&client.ping(ROUTER_S), Drop); // the router's other address: still INPUT
    lab.expect(&client.tcp(ROUTER_C, 80), Drop);
    lab.expect(&client.ping(SERVER), Pass);
    lab.expect(&client.tcp(SERVER, 80), Pass);

    lab.ipt_ok(&router, "-F");
    lab.ipt_ok(&router, "-A FORWARD -p icmp -j DROP");
    lab.ipt_ok(&router, "-A FORWARD -p tcp -j DROP");
    lab.expect(&client.ping(ROUTER_C), Pass);
    lab.expect(&client.ping(ROUTER_S), Pass);
    lab.expect(&client.tcp(ROUTER_C, 80), Pass);
    lab.expect(&client.ping(SERVER), Drop);
    lab.expect(&client.tcp(SERVER, 80), Drop);

    // OUTPUT on the router does not see forwarded packets either.
    lab.ipt_ok(&router, "-F");
    lab.ipt_ok(&router, "-A OUTPUT -p icmp -j DROP");
    lab.expect(&client.ping(SERVER), Pass);
    lab.expect(&client.ping(ROUTER_C), Drop); // the router's own echo reply
    lab.check();
}
