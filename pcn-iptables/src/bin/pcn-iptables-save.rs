//! `pcn-iptables-save`: the pcn-iptables program, which answers as iptables-save by this name.

fn main() {
    std::process::exit(pcn_iptables::cli::main());
}
