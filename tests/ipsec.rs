//! `-m esp` and `-m ah`: ESP and AH packets judged by their SPI as netfilter judges them.

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::traffic::send_raw;
use pcn_iptables_tests::{Fw, Pair, scenarios};

scenarios!(spis_match);

/// An ESP header (SPI, sequence number) and an AH one (next header, length, reserved, SPI,
/// sequence number, ICV), with some payload.
fn esp(spi: u32) -> Vec<u8> {
    [&spi.to_be_bytes()[..], &[0, 0, 0, 1], b"encrypted"].concat()
}

fn ah(spi: u32) -> Vec<u8> {
    [
        &[4, 4, 0, 0][..],
        &spi.to_be_bytes(),
        &[0, 0, 0, 1],
        &[0; 12],
    ]
    .concat()
}

/// ESP with SPIs 5, 7 and 100, AH with 7 and 8: the first rule drops SPI 5:6, the second
/// counts ESP outside 0:99, the third AH's SPI 7.
fn spis_match(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    lab.ipt_lines(
        &host,
        "-A INPUT -p esp -m esp --espspi 5:6 -j DROP
         -A INPUT -p esp -m esp ! --espspi 0:99
         -A INPUT -p ah --ahspi 7",
    );
    for spi in [5, 7, 100] {
        send_raw(&c1, HOST1, 50, &esp(spi));
    }
    for spi in [7, 8] {
        send_raw(&c1, HOST1, 51, &ah(spi));
    }
    assert_eq!(lab.counts(&host, "INPUT"), vec![1, 1, 1]);
}
