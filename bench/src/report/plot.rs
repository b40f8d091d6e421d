//! The PNG plot, by gnuplot.

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Result;

use super::data::{Data, sizes};

/// Writes the gnuplot data and script and renders `bench.png`.
pub(super) fn plot(d: &Data, dir: &Path) -> Result<Option<PathBuf>> {
    let mut cost = String::from("# rules udp_first udp_last udp_none classifier_last baseline\n");
    for n in sizes(&d.cost) {
        let v = |x: Option<f64>| x.map_or("NaN".into(), |v| format!("{v}"));
        let _ = writeln!(
            cost,
            "{n} {} {} {} {} {}",
            v(d.cost("udp", n, "first", "ns")),
            v(d.cost("udp", n, "last", "ns")),
            v(d.cost("udp", n, "none", "ns")),
            v(d.cost("udp", n, "last", "classifier_ns")),
            v(d.baseline_cost()),
        );
    }
    fs::write(dir.join("cost.dat"), cost)?;
    for chain in ["INPUT", "FORWARD"] {
        let mut data = String::from("# rules pcn legacy nft baseline (kpps)\n");
        for n in sizes(&d.rate) {
            let v = |x: Option<f64>| x.map_or("NaN".into(), |v| format!("{:.1}", v / 1e3));
            let _ = writeln!(
                data,
                "{n} {} {} {} {}",
                v(d.rate(chain, "pcn", Some(n))),
                v(d.rate(chain, "legacy", Some(n))),
                v(d.rate(chain, "nft", Some(n))),
                v(d.rate(chain, "baseline", Some(n))),
            );
        }
        fs::write(dir.join(format!("rate-{chain}.dat")), data)?;
    }
    let chains: Vec<&str> = ["INPUT", "FORWARD"]
        .into_iter()
        .filter(|c| d.rate.iter().any(|r| r["chain"] == *c))
        .collect();
    let panels = chains.len() + usize::from(!d.cost.is_empty());
    if panels == 0 {
        return Ok(None);
    }
    let mut script = format!(
        "set terminal pngcairo size {},560 font \"sans,11\"\nset output \"bench.png\"\n\
         set multiplot layout 1,{panels} title \"pcn-iptables vs iptables \
         (64-byte packets; rate panels: last rule matches)\"\n",
        600 * panels
    );
    script.push_str(
        r#"set logscale x
set xlabel "rules in the chain"
set xrange [0.8:25000]
set grid
set key bottom right
"#,
    );
    if !d.cost.is_empty() {
        script.push_str(
            r#"set title "Per-packet cost, BPF\\_PROG\\_TEST\\_RUN (udp)"
set ylabel "ns/packet"
set yrange [0:*]
set key top left
set offsets 0, 0, graph 0.4, 0
plot "cost.dat" u 1:2 w lp lw 2 t "pcn: first rule", \
     "" u 1:3 w lp lw 2 t "pcn: last rule", \
     "" u 1:4 w lp lw 2 t "pcn: no rule (policy)", \
     "" u 1:5 w lp lw 2 dt 2 t "pcn classifier alone: last rule", \
     "" u 1:6 w l lw 2 dt 3 lc rgb "black" t "bare XDP drop"
"#,
        );
    }
    script.push_str("set ylabel \"kpps\"\nset key bottom left\nset offsets 0, 0, 0, 0\nset logscale y\nset yrange [*:*]\n");
    for chain in chains {
        let _ = write!(
            script,
            r#"set title "{chain} chain: packet rate over veth"
plot "rate-{chain}.dat" u 1:2 w lp lw 2 t "pcn-iptables", \
     "" u 1:3 w lp lw 2 t "iptables-legacy", \
     "" u 1:4 w lp lw 2 t "iptables-nft", \
     "" u 1:5 w l lw 2 dt 3 lc rgb "black" t "bare XDP drop"
"#
        );
    }
    script.push_str("unset multiplot\n");
    fs::write(dir.join("bench.gp"), script)?;
    match Command::new("gnuplot")
        .arg("bench.gp")
        .current_dir(dir)
        .status()
    {
        Ok(s) if s.success() => Ok(Some(dir.join("bench.png"))),
        Ok(s) => {
            eprintln!("report: gnuplot failed ({s}); no plot");
            Ok(None)
        }
        Err(e) => {
            eprintln!("report: no gnuplot ({e}); no plot");
            Ok(None)
        }
    }
}
