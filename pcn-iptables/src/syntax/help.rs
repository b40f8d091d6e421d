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
            name => crate::ext::by_name(name)
                .unwrap_or_else(|| unreachable!("no help for {name}"))
                .help(),
        };
    }
    out
}
