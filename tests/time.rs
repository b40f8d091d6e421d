//! `-m time`: rules with daytimes, weekdays and dates around the time the test runs, each
//! matching or not as netfilter's do at that moment.

use std::time::{SystemTime, UNIX_EPOCH};

use pcn_iptables_tests::topo::*;
use pcn_iptables_tests::{Drop, Fw, Pair, Pass, scenarios};

scenarios!(time_windows_match_the_clock);

const DAY: u64 = 86_400;
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn hms(t: u64) -> String {
    let t = t % DAY;
    format!("{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
}

/// A daytime window around now (an hour each way, across midnight when it falls there) drops
/// port 7000; one two hours ahead leaves 7001 alone; today's weekday drops 7002, every other
/// day leaves 7003 alone; a date range that ended yesterday leaves 7004 alone, one from
/// yesterday to tomorrow drops 7005.
fn time_windows_match_the_clock(fw: Fw) {
    let Pair { lab, host, c1, .. } = Pair::new(fw);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let today = WEEKDAYS[((now / DAY + 3) % 7) as usize];
    let date = |t: u64| {
        let out = std::process::Command::new("date")
            .args(["-u", "-d", &format!("@{t}"), "+%Y-%m-%dT%H:%M:%S"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    lab.serve(&host, &[7000, 7001, 7002, 7003, 7004, 7005]);
    lab.ipt_lines(
        &host,
        &format!(
            "-A INPUT -p udp --dport 7000 -m time --timestart {} --timestop {} -j DROP
             -A INPUT -p udp --dport 7001 -m time --timestart {} --timestop {} -j DROP
             -A INPUT -p udp --dport 7002 -m time --weekdays {today} -j DROP
             -A INPUT -p udp --dport 7003 -m time ! --weekdays {today} -j DROP
             -A INPUT -p udp --dport 7004 -m time --datestop {} -j DROP
             -A INPUT -p udp --dport 7005 -m time --datestart {} --datestop {} -j DROP",
            hms(now + DAY - 3600),
            hms(now + 3600),
            hms(now + 2 * 3600),
            hms(now + 3 * 3600),
            date(now - DAY),
            date(now - DAY),
            date(now + DAY),
        ),
    );
    for (port, want) in [
        (7000, Drop),
        (7001, Pass),
        (7002, Drop),
        (7003, Pass),
        (7004, Pass),
        (7005, Drop),
    ] {
        lab.expect(&c1.udp(HOST1, port), want);
    }
    lab.check();
    let counts = lab.counts(&host, "INPUT");
    assert_eq!(counts[1] + counts[3] + counts[4], 0, "{counts:?}");
    assert!(
        counts[0] >= 1 && counts[2] >= 1 && counts[5] >= 1,
        "{counts:?}"
    );
}
