extern crate std;
use std::vec::Vec;

use super::*;

const HZ: u64 = 250;

fn cfg(avg: u64, burst: u64) -> Config {
    Config {
        avg,
        burst,
        gc_interval: 1000,
        expire: 1000,
        srcmask: 32,
        dstmask: 32,
        ..Config::default()
    }
}

/// Packets of `len` bytes at the jiffies `times`, against one bucket as xt_hashlimit keeps
/// it: which matched.
fn run(t: &Table, rule_mode: u32, len: u32, times: &[u64]) -> Vec<bool> {
    let mut b: Option<Bucket> = None;
    times
        .iter()
        .map(|&now| {
            let b = b.get_or_insert_with(|| t.fresh(now));
            t.recalc(b, now);
            t.take(b, rule_mode, len)
        })
        .collect()
}

fn passed(v: &[bool]) -> usize {
    v.iter().filter(|m| **m).count()
}

#[test]
fn constants_are_the_kernels_at_250_and_1000_hz() {
    assert_eq!(credits_per_jiffy(250), 1 << 39);
    assert_eq!(credits_per_jiffy_bytes(250), 1 << 24);
    assert_eq!(credits_per_jiffy(1000), 1 << 37);
    assert_eq!(credits_per_jiffy_bytes(1000), 1 << 22);
    assert_eq!(msecs_to_jiffies(1000, 250), 250);
    assert_eq!(msecs_to_jiffies(1, 250), 1);
    assert_eq!(prefix_mask(24), [255, 255, 255, 0]);
    assert_eq!(prefix_mask(0), [0; 4]);
}

#[test]
fn five_a_second_burst_five() {
    // --hashlimit-upto 5/sec: avg 200000 µs a packet.
    let t = Table::new(&cfg(200_000, 5), HZ);
    let t0 = 1_000_000;
    let at_once = run(&t, 0, 60, &[t0; 8]);
    assert_eq!(passed(&at_once), 5);
    // One packet's worth of credit takes 200 ms: 50 jiffies.
    let times = [t0, t0, t0, t0, t0, t0, t0 + 49, t0 + 50, t0 + 51, t0 + 100];
    assert_eq!(
        run(&t, 0, 60, &times),
        [
            true, true, true, true, true, false, false, true, false, true
        ]
    );
    // Above: the same bucket, inverted.
    let above = run(&t, mode::INVERT, 60, &[t0; 8]);
    assert_eq!(passed(&above), 3);
}

#[test]
fn a_steady_flow_passes_at_the_rate() {
    // 3/min burst 1: a packet every 20 s; packets every second for 10 minutes.
    let t = Table::new(&cfg(20_000_000, 1), HZ);
    let times: Vec<u64> = (0..600).map(|s| 5000 + s * HZ).collect();
    assert_eq!(passed(&run(&t, 0, 60, &times)), 30);
}

#[test]
fn bytes_pass_a_second_of_credit_then_wait() {
    // 1kb/s: a second's credit, 1000-byte packets cost 63 chunks each.
    let avg = u32::MAX as u64 / ((1024 >> BYTE_SHIFT) + 1);
    let c = Config {
        mode: mode::BYTES,
        ..cfg(avg, 0)
    };
    let t = Table::new(&c, HZ);
    let t0 = 10_000;
    assert_eq!(
        run(&t, mode::BYTES, 1000, &[t0, t0, t0]),
        [true, false, false]
    );
    // Ten seconds of one packet every 100 ms: about a kilobyte a second.
    let times: Vec<u64> = (0..100).map(|i| t0 + i * 25).collect();
    let n = passed(&run(&t, mode::BYTES, 1000, &times));
    assert!((10..=11).contains(&n), "{n}");
    // A burst of 3 refills the bucket three more times.
    let burst = Table::new(&Config { burst: 3, ..c }, HZ);
    assert_eq!(passed(&run(&burst, mode::BYTES, 1000, &[t0; 8])), 4);
}

#[test]
fn rate_match_holds_each_window_to_its_burst() {
    // 5/sec rate-match, interval 1 s: a window passes burst + rate = 10 packets.
    let c = Config {
        mode: mode::RATE_MATCH,
        interval: 1,
        ..cfg(200_000, 5)
    };
    let t = Table::new(&c, HZ);
    let t0 = 10_000;
    let first: Vec<u64> = (0..12).map(|i| t0 + i).collect();
    assert_eq!(passed(&run(&t, mode::RATE_MATCH, 60, &first)), 10);
    // After a quiet window the count starts over; after a window over the rate, the next
    // window matches nothing.
    let mut times: Vec<u64> = (0..12).map(|i| t0 + i).collect();
    times.extend((0..3).map(|i| t0 + 300 + i));
    let v = run(&t, mode::RATE_MATCH, 60, &times);
    assert_eq!(passed(&v[12..]), 0, "{v:?}");
}

#[test]
fn buckets_go_at_the_first_tick_after_they_expire() {
    let t = Table {
        epoch: 1000,
        gc_interval: 250,
        ..Table::new(&cfg(200_000, 5), HZ)
    };
    let b = Bucket {
        expires: 1600,
        ..Bucket::default()
    };
    assert_eq!(t.last_tick(1749), 1500);
    assert_eq!(t.last_tick(1750), 1750);
    assert!(!t.gone(&b, 1600), "expired, not collected yet");
    assert!(!t.gone(&b, 1749));
    assert!(t.gone(&b, 1750));
    assert!(t.gone(&b, 9000));
}

#[test]
fn expiry_is_time_after_eq() {
    let b = Bucket {
        expires: 100,
        ..Bucket::default()
    };
    assert!(!expired(&b, 99));
    assert!(expired(&b, 100));
    assert!(expired(&b, 1000));
}

#[test]
fn keys_follow_the_mode_and_masks() {
    let c = Config {
        mode: mode::SIP | mode::DPT,
        srcmask: 24,
        ..cfg(200_000, 5)
    };
    let t = Table::new(&c, HZ);
    let k = t.key([198, 18, 0, 7], [198, 18, 1, 1], [1234, 22]);
    assert_eq!(
        k,
        Key {
            src: [198, 18, 0, 0],
            dst: [0; 4],
            sport: 0,
            dport: 22
        }
    );
}

/// The four bytes xt_hashlimit reads as ports: TCP's and UDP's ports, SCTP's and DCCP's
/// (not the DCCP type above them), ESP's and AH's SPI; nothing of any other packet.
#[test]
fn ports_are_the_four_bytes_the_kernel_reads() {
    let pkt = |proto: u8, has_ports: u8, spi: u64| crate::PacketInfo {
        proto,
        has_ports,
        sport: 1234,
        dport: 22,
        spi,
        ..Default::default()
    };
    let be = |a: u16, b: u16| [a.to_be(), b.to_be()];
    assert_eq!(ports(&pkt(6, 1, crate::SPI_NONE)), be(1234, 22));
    assert_eq!(ports(&pkt(132, 0, 0x0050_0051)), be(80, 81));
    let dccp_type = 3 << crate::SPI_DCCP_TYPE;
    assert_eq!(
        ports(&pkt(33, 0, dccp_type | 0x1000_2000)),
        be(0x1000, 0x2000)
    );
    assert_eq!(ports(&pkt(50, 0, 0xdead_beef)), be(0xdead, 0xbeef));
    assert_eq!(ports(&pkt(47, 0, crate::SPI_NONE)), [0, 0]);
}

#[test]
fn overflow_check_is_the_kernels() {
    // As iptables-legacy on a 250 Hz kernel answered (ERANGE for the first two).
    let day = SCALE * 86400;
    let hour = SCALE * 3600;
    assert!(!in_range(&cfg(day, 1_000_000), HZ));
    assert!(!in_range(&cfg(day, 10_000), HZ));
    assert!(in_range(&cfg(hour, 1_000_000), HZ));
    assert!(in_range(&cfg(hour, 10_000), HZ));
    assert!(in_range(&cfg(SCALE, 1_000_000), HZ));
    assert!(!in_range(&cfg(SCALE, 0), HZ));
}
