//! `pcn-iptables-restore`: the pcn-iptables program, which answers as iptables-restore by this name.

fn main() {
    std::process::exit(pcn_iptables::cli::main());
}
