fn main() {
    std::process::exit(pcn_iptables::cli::main());
}
