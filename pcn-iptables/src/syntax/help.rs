//! `-h`: iptables 1.8.9's help text (`xtables_printhelp`) under the program's name, and that of
//! the extensions the command line named.

/// The usage lines, each naming the program.
const USAGE: [&str; 10] = [
    "-[ACD] chain rule-specification [options]",
    "-I chain [rulenum] rule-specification [options]",
    "-R chain rulenum rule-specification [options]",
    "-D chain rulenum [options]",
    "-[LS] [chain [rulenum]] [options]",
    "-[FZ] [chain] [options]",
    "-[NX] chain",
    "-E old-chain-name new-chain-name",
    "-P chain target [options]",
    "-h (print this help information)",
];

/// The commands and options, after the usage.
const OPTIONS: &str = concat!(
    "Commands:\n",
    "Either long or short options are allowed.\n",
    "  --append  -A chain\t\tAppend to chain\n",
    "  --check   -C chain\t\tCheck for the existence of a rule\n",
    "  --delete  -D chain\t\tDelete matching rule from chain\n",
    "  --delete  -D chain rulenum\n",
    "\t\t\t\tDelete rule rulenum (1 = first) from chain\n",
    "  --insert  -I chain [rulenum]\n",
    "\t\t\t\tInsert in chain as rulenum (default 1=first)\n",
    "  --replace -R chain rulenum\n",
    "\t\t\t\tReplace rule rulenum (1 = first) in chain\n",
    "  --list    -L [chain [rulenum]]\n",
    "\t\t\t\tList the rules in a chain or all chains\n",
    "  --list-rules -S [chain [rulenum]]\n",
    "\t\t\t\tPrint the rules in a chain or all chains\n",
    "  --flush   -F [chain]\t\tDelete all rules in  chain or all chains\n",
    "  --zero    -Z [chain [rulenum]]\n",
    "\t\t\t\tZero counters in chain or all chains\n",
    "  --new     -N chain\t\tCreate a new user-defined chain\n",
    "  --delete-chain\n",
    "            -X [chain]\t\tDelete a user-defined chain\n",
    "  --policy  -P chain target\n",
    "\t\t\t\tChange policy on chain to target\n",
    "  --rename-chain\n",
    "            -E old-chain new-chain\n",
    "\t\t\t\tChange chain name, (moving any references)\n",
    "\n",
    "Options:\n",
    "    --ipv4\t-4\t\tNothing (line is ignored by ip6tables-restore)\n",
    "    --ipv6\t-6\t\tError (line is ignored by iptables-restore)\n",
    "[!] --protocol\t-p proto\tprotocol: by number or name, eg. `tcp'\n",
    "[!] --source\t-s address[/mask][...]\n",
    "\t\t\t\tsource specification\n",
    "[!] --destination -d address[/mask][...]\n",
    "\t\t\t\tdestination specification\n",
    "[!] --in-interface -i input name[+]\n",
    "\t\t\t\tnetwork interface name ([+] for wildcard)\n",
    " --jump\t-j target\n",
    "\t\t\t\ttarget for rule (may load target extension)\n",
    "  --goto      -g chain\n",
    "\t\t\t       jump to chain with no return\n",
    "  --match\t-m match\n",
    "\t\t\t\textended match (may load extension)\n",
    "  --numeric\t-n\t\tnumeric output of addresses and ports\n",
    "[!] --out-interface -o output name[+]\n",
    "\t\t\t\tnetwork interface name ([+] for wildcard)\n",
    "  --table\t-t table\ttable to manipulate (default: `filter')\n",
    "  --verbose\t-v\t\tverbose mode\n",
    "  --wait\t-w [seconds]\tmaximum wait to acquire xtables lock before give up\n",
    "  --line-numbers\t\tprint line numbers when listing\n",
    "  --exact\t-x\t\texpand numbers (display exact values)\n",
    "[!] --fragment\t-f\t\tmatch second or further fragments only\n",
    "  --modprobe=<command>\t\ttry to insert modules using this command\n",
    "  --set-counters -c PKTS BYTES\tset the counter during insert/append\n",
    "[!] --version\t-V\t\tprint package version.\n",
);

const STANDARD: &str = concat!(
    "\n",
    "standard match options:\n",
    "(If target is DROP, ACCEPT, RETURN or nothing)\n",
);

const TCP: &str = concat!(
    "\n",
    "tcp match options:\n",
    "[!] --tcp-flags mask comp\tmatch when TCP flags & mask == comp\n",
    "\t\t\t\t(Flags: SYN ACK FIN RST URG PSH ALL NONE)\n",
    "[!] --syn\t\t\tmatch when only SYN flag set\n",
    "\t\t\t\t(equivalent to --tcp-flags SYN,RST,ACK,FIN SYN)\n",
    "[!] --source-port port[:port]\n",
    " --sport ...\n",
    "\t\t\t\tmatch source port(s)\n",
    "[!] --destination-port port[:port]\n",
    " --dport ...\n",
    "\t\t\t\tmatch destination port(s)\n",
    "[!] --tcp-option number        match if TCP option set\n",
);

const UDP: &str = concat!(
    "\n",
    "udp match options:\n",
    "[!] --source-port port[:port]\n",
    " --sport ...\n",
    "\t\t\t\tmatch source port(s)\n",
    "[!] --destination-port port[:port]\n",
    " --dport ...\n",
    "\t\t\t\tmatch destination port(s)\n",
);

const CONNTRACK: &str = concat!(
    "\n",
    "conntrack match options:\n",
    "[!] --ctstate {INVALID|ESTABLISHED|NEW|RELATED|UNTRACKED|SNAT|DNAT}[,...]\n",
    "                               State(s) to match\n",
    "[!] --ctproto proto            Protocol to match; by number or name, e.g. \"tcp\"\n",
    "[!] --ctorigsrc address[/mask]\n",
    "[!] --ctorigdst address[/mask]\n",
    "[!] --ctreplsrc address[/mask]\n",
    "[!] --ctrepldst address[/mask]\n",
    "                               Original/Reply source/destination address\n",
    "[!] --ctorigsrcport port\n",
    "[!] --ctorigdstport port\n",
    "[!] --ctreplsrcport port\n",
    "[!] --ctrepldstport port\n",
    "                               TCP/UDP/SCTP orig./reply source/destination port\n",
    "[!] --ctstatus {NONE|EXPECTED|SEEN_REPLY|ASSURED|CONFIRMED}[,...]\n",
    "                               Status(es) to match\n",
    "[!] --ctexpire time[:time]     Match remaining lifetime in seconds against\n",
    "                               value or range of values (inclusive)\n",
    "    --ctdir {ORIGINAL|REPLY}   Flow direction of packet\n",
);

const STATE: &str = concat!(
    "\n",
    "state match options:\n",
    " [!] --state [INVALID|ESTABLISHED|NEW|RELATED|UNTRACKED][,...]\n",
    "\t\t\t\tState(s) to match\n",
);

const MULTIPORT: &str = concat!(
    "\n",
    "multiport match options:\n",
    "[!] --source-ports port[,port:port,port...]\n",
    " --sports ...\n",
    "\t\t\t\tmatch source port(s)\n",
    "[!] --destination-ports port[,port:port,port...]\n",
    " --dports ...\n",
    "\t\t\t\tmatch destination port(s)\n",
    "[!] --ports port[,port:port,port]\n",
    "\t\t\t\tmatch both source and destination port(s)\n",
);

const ICMP: &str = concat!(
    "\n",
    "icmp match options:\n",
    "[!] --icmp-type typename\tmatch icmp type\n",
    "[!] --icmp-type type[/code]\t(or numeric type or type/code)\n",
    "Valid ICMP Types:\n",
    "any\n",
    "echo-reply (pong)\n",
    "destination-unreachable\n",
    "   network-unreachable\n",
    "   host-unreachable\n",
    "   protocol-unreachable\n",
    "   port-unreachable\n",
    "   fragmentation-needed\n",
    "   source-route-failed\n",
    "   network-unknown\n",
    "   host-unknown\n",
    "   network-prohibited\n",
    "   host-prohibited\n",
    "   TOS-network-unreachable\n",
    "   TOS-host-unreachable\n",
    "   communication-prohibited\n",
    "   host-precedence-violation\n",
    "   precedence-cutoff\n",
    "source-quench\n",
    "redirect\n",
    "   network-redirect\n",
    "   host-redirect\n",
    "   TOS-network-redirect\n",
    "   TOS-host-redirect\n",
    "echo-request (ping)\n",
    "router-advertisement\n",
    "router-solicitation\n",
    "time-exceeded (ttl-exceeded)\n",
    "   ttl-zero-during-transit\n",
    "   ttl-zero-during-reassembly\n",
    "parameter-problem\n",
    "   ip-header-bad\n",
    "   required-option-missing\n",
    "timestamp-request\n",
    "timestamp-reply\n",
    "address-mask-request\n",
    "address-mask-reply\n",
);

const IPRANGE: &str = concat!(
    "\n",
    "iprange match options:\n",
    "[!] --src-range ip[-ip]    Match source IP in the specified range\n",
    "[!] --dst-range ip[-ip]    Match destination IP in the specified range\n",
);

const MAC: &str = concat!(
    "\n",
    "mac match options:\n",
    "[!] --mac-source XX:XX:XX:XX:XX:XX\n",
    "\t\t\t\tMatch source MAC address\n",
);

const LENGTH: &str = concat!(
    "\n",
    "length match options:\n",
    "[!] --length length[:length]    Match packet length against value or range\n",
    "                                of values (inclusive)\n",
);

const TTL: &str = concat!(
    "\n",
    "ttl match options:\n",
    "[!] --ttl-eq value\tMatch time to live value\n",
    "  --ttl-lt value\tMatch TTL < value\n",
    "  --ttl-gt value\tMatch TTL > value\n",
);

const ADDRTYPE: &str = concat!(
    "\n",
    "Address type match options:\n",
    " [!] --src-type type[,...]      Match source address type\n",
    " [!] --dst-type type[,...]      Match destination address type\n",
    "     --limit-iface-in           Match only on the packet's incoming device\n",
    "     --limit-iface-out          Match only on the packet's outgoing device\n",
    "\n",
    "Valid types:           \n",
    "                                UNSPEC\n",
    "                                UNICAST\n",
    "                                LOCAL\n",
    "                                BROADCAST\n",
    "                                ANYCAST\n",
    "                                MULTICAST\n",
    "                                BLACKHOLE\n",
    "                                UNREACHABLE\n",
    "                                PROHIBIT\n",
    "                                THROW\n",
    "                                NAT\n",
    "                                XRESOLVE\n",
);

const COMMENT: &str = concat!(
    "\n",
    "comment match options:\n",
    "--comment COMMENT             Attach a comment to a rule\n",
);

const LIMIT: &str = concat!(
    "\n",
    "limit match options:\n",
    "--limit avg\t\t\tmax average match rate: default 3/hour\n",
    "                                [Packets per second unless followed by \n",
    "                                /sec /minute /hour /day postfixes]\n",
    "--limit-burst number\t\tnumber to match in a burst, default 5\n",
);

const REJECT: &str = concat!(
    "\n",
    "REJECT target options:\n",
    "--reject-with type              drop input packet and send back\n",
    "                                a reply packet according to type:\n",
    "Valid reject types:\n",
    "    icmp-net-unreachable     \tICMP network unreachable\n",
    "    net-unreach              \talias\n",
    "    icmp-host-unreachable    \tICMP host unreachable\n",
    "    host-unreach             \talias\n",
    "    icmp-proto-unreachable   \tICMP protocol unreachable\n",
    "    proto-unreach            \talias\n",
    "    icmp-port-unreachable    \tICMP port unreachable (default)\n",
    "    port-unreach             \talias\n",
    "    icmp-net-prohibited      \tICMP network prohibited\n",
    "    net-prohib               \talias\n",
    "    icmp-host-prohibited     \tICMP host prohibited\n",
    "    host-prohib              \talias\n",
    "    tcp-reset                \tTCP RST packet\n",
    "    tcp-rst                  \talias\n",
    "    icmp-admin-prohibited    \tICMP administratively prohibited (*)\n",
    "    admin-prohib             \talias\n",
    "\n",
    "(*) See man page or read the INCOMPATIBILITES file for compatibility issues.\n",
);

const LOG: &str = concat!(
    "\n",
    "LOG target options:\n",
    " --log-level level\t\tLevel of logging (numeric or see syslog.conf)\n",
    " --log-prefix prefix\t\tPrefix log messages with this prefix.\n",
    " --log-tcp-sequence\t\tLog TCP sequence numbers.\n",
    " --log-tcp-options\t\tLog TCP options.\n",
    " --log-ip-options\t\tLog IP options.\n",
    " --log-uid\t\t\tLog UID owning the local socket.\n",
    " --log-macdecode\t\tDecode MAC addresses and protocol.\n",
);

/// The help as `prog` prints it (`version` is its version banner without the name): the
/// target's help (`standard`, `REJECT`, `LOG`), then the matches', in order.
pub fn help(prog: &str, version: &str, target: Option<&str>, matches: &[&str]) -> String {
    let mut out = format!("{prog} v{version}\n\n");
    for (i, usage) in USAGE.iter().enumerate() {
        let lead = if i == 0 { "Usage:" } else { "      " };
        out += &format!("{lead} {prog} {usage}\n");
    }
    out.push('\n');
    out += OPTIONS;
    for name in target.iter().chain(matches) {
        out += match *name {
            "standard" => STANDARD,
            "REJECT" => REJECT,
            "LOG" => LOG,
            "tcp" => TCP,
            "udp" => UDP,
            "conntrack" => CONNTRACK,
            "state" => STATE,
            "multiport" => MULTIPORT,
            "icmp" => ICMP,
            "iprange" => IPRANGE,
            "mac" => MAC,
            "length" => LENGTH,
            "ttl" => TTL,
            "addrtype" => ADDRTYPE,
            "comment" => COMMENT,
            "limit" => LIMIT,
            other => unreachable!("no help for {other}"),
        };
    }
    out
}
