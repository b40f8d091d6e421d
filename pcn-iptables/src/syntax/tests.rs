//! Parser tests; the expected messages were printed by iptables-legacy 1.8.9 for the same
//! command lines in a scratch network namespace.

use super::command::parse;
use super::*;
use crate::model::{ListOptions, Policy, Wait, Zeroing};
use crate::ruleset::print::spec;
use crate::xtables::netdb::tests::debian;

fn words(line: &str) -> Vec<String> {
    split_words(line).unwrap()
}

fn invocation(line: &str) -> Invocation {
    parse(&debian(), "iptables", &words(line))
        .0
        .unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn error(line: &str) -> Error {
    match parse(&debian(), "iptables", &words(line)).0 {
        Ok(inv) => panic!("{line}: parsed as {inv:?}"),
        Err(e) => e,
    }
}

/// The rules of a rule command, as -S prints them.
fn specs(line: &str) -> Vec<String> {
    let db = debian();
    match invocation(line).command {
        Command::Append { chain, rules }
        | Command::Insert { chain, rules, .. }
        | Command::Delete { chain, rules }
        | Command::Check { chain, rules } => {
            rules.iter().map(|r| spec(&db, &chain, r, None)).collect()
        }
        Command::Replace { chain, rule, .. } => vec![spec(&db, &chain, &rule, None)],
        other => panic!("{line}: not a rule command: {other:?}"),
    }
}

/// (command line, iptables' stderr without its last line, the "Try `iptables -h'" hint).
const IPTABLES_ERRORS: &[(&str, &str)] = &[
    ("-A INPUT -s ! 1.2.3.4 -j ACCEPT", "Bad argument `1.2.3.4'"),
    (
        "-A INPUT -s foo -j ACCEPT",
        "iptables v1.8.9 (legacy): host/network `foo' not found",
    ),
    (
        "-A INPUT -p tcp --dport x -j ACCEPT",
        "iptables v1.8.9 (legacy): invalid port/service `x' specified",
    ),
    (
        "-A INPUT -p foo -j ACCEPT",
        "iptables v1.8.9 (legacy): unknown protocol \"foo\" specified",
    ),
    (
        "-A INPUT -o eth0",
        "iptables v1.8.9 (legacy): Can't use -o with INPUT\n",
    ),
    (
        "-A OUTPUT -i eth0",
        "iptables v1.8.9 (legacy): Can't use -i with OUTPUT\n",
    ),
    (
        "-A INPUT -p tcp --dport 70000",
        "iptables v1.8.9 (legacy): invalid port/service `70000' specified",
    ),
    (
        "-A INPUT --dport 22",
        "iptables v1.8.9 (legacy): unknown option \"--dport\"",
    ),
    (
        "-A INPUT -p tcp --dport 22 --dport 23",
        "iptables v1.8.9 (legacy): Only one `--destination-port' allowed",
    ),
    (
        "-A INPUT -p tcp --sport 5:3",
        "iptables v1.8.9 (legacy): invalid portrange (min > max)",
    ),
    (
        "-A",
        "iptables v1.8.9 (legacy): option \"-A\" requires an argument",
    ),
    (
        "-A INPUT -D INPUT",
        "iptables v1.8.9 (legacy): Cannot use -D with -A",
    ),
    (
        "-A INPUT -A OUTPUT",
        "iptables v1.8.9 (legacy): Cannot use -A with -A",
    ),
    (
        "-L INPUT -A INPUT",
        "iptables v1.8.9 (legacy): Cannot use -A with -L",
    ),
    (
        "-I INPUT 0 -j ACCEPT",
        "iptables v1.8.9 (legacy): Invalid rule number `0'",
    ),
    (
        "-I INPUT x -j ACCEPT",
        "iptables v1.8.9 (legacy): Invalid rule number `x'",
    ),
    (
        "-R INPUT -j DROP",
        "iptables v1.8.9 (legacy): -R requires a rule number",
    ),
    (
        "-P INPUT",
        "iptables v1.8.9 (legacy): -P requires a chain and a policy",
    ),
    (
        "-t",
        "iptables v1.8.9 (legacy): option \"-t\" requires an argument",
    ),
    (
        "-A INPUT -j ACCEPT -j DROP",
        "iptables v1.8.9 (legacy): multiple -j flags not allowed",
    ),
    (
        "-A INPUT -j ACCEPT -g DROP",
        "iptables v1.8.9 (legacy): multiple -j flags not allowed",
    ),
    (
        "-A INPUT ! -j ACCEPT",
        "iptables v1.8.9 (legacy): cannot have ! before -j",
    ),
    (
        "-w x -S INPUT",
        "iptables v1.8.9 (legacy): wait seconds not numeric",
    ),
    (
        "-w -W 1000000 -S INPUT",
        "iptables v1.8.9 (legacy): too long usec wait 1000000 > 999999 usec",
    ),
    (
        "-w -W -S INPUT",
        "iptables v1.8.9 (legacy): wait interval value required",
    ),
    (
        "-S INPUT -W",
        "iptables v1.8.9 (legacy): wait interval value required",
    ),
    (
        "-A INPUT -s 1.2.3.4/",
        "iptables v1.8.9 (legacy): invalid mask `' specified",
    ),
    (
        "-A INPUT -s 1.2.3.4/33",
        "iptables v1.8.9 (legacy): invalid mask `33' specified",
    ),
    (
        "-A INPUT -s \"1.2.3.4 \"",
        "iptables v1.8.9 (legacy): host/network `1.2.3.4 ' not found",
    ),
    (
        "-A INPUT -s 1.2.3.256",
        "iptables v1.8.9 (legacy): host/network `1.2.3.256' not found",
    ),
    (
        "-A INPUT ! -s 1.2.3.4,5.6.7.8",
        "iptables v1.8.9 (legacy): ! not allowed with multiple source or destination IP addresses",
    ),
    (
        "-R INPUT 1 -s 1.2.3.4,5.6.7.8",
        "iptables v1.8.9 (legacy): Replacement rule does not specify a unique address",
    ),
    (
        "-A INPUT -s 1.2.3.4/255.255.255",
        "iptables v1.8.9 (legacy): invalid mask `255.255.255' specified",
    ),
    (
        "-A INPUT -s \"\"",
        "iptables v1.8.9 (legacy): host/network `' not found",
    ),
    (
        "-A INPUT -s ,",
        "iptables v1.8.9 (legacy): host/network `' not found",
    ),
    (
        "-w -1 -W 100 -S INPUT",
        "iptables v1.8.9 (legacy): unknown option \"-1\"",
    ),
    (
        "-A INPUT -p tcp --dport",
        "iptables v1.8.9 (legacy): option \"--dport\" requires an argument",
    ),
    (
        "-A INPUT -p udp --dport",
        "iptables v1.8.9 (legacy): option \"--dport\" requires an argument",
    ),
    (
        "-A INPUT -m foo",
        "iptables v1.8.9 (legacy): Couldn't load match `foo':No such file or directory\n",
    ),
    (
        "-A INPUT -m",
        "iptables v1.8.9 (legacy): option \"-m\" requires an argument",
    ),
    (
        "-A INPUT -p",
        "iptables v1.8.9 (legacy): option \"-p\" requires an argument",
    ),
    (
        "-A INPUT -p \"\"",
        "iptables v1.8.9 (legacy): unknown protocol \"\" specified",
    ),
    (
        "-A INPUT -p 256",
        "iptables v1.8.9 (legacy): unknown protocol \"256\" specified",
    ),
    (
        "-A INPUT ! -p all",
        "iptables v1.8.9 (legacy): rule would never match protocol",
    ),
    (
        "-A INPUT ! -p 0",
        "iptables v1.8.9 (legacy): rule would never match protocol",
    ),
    (
        "-A INPUT -p tcp --dport ! 22",
        "iptables v1.8.9 (legacy): invalid port/service `!' specified",
    ),
    (
        "-A INPUT -s !",
        "iptables v1.8.9 (legacy): host/network `!' not found",
    ),
    (
        "-A INPUT ! ! -s 1.2.3.4",
        "iptables v1.8.9 (legacy): multiple consecutive ! not allowed",
    ),
    (
        "-A INPUT -s 1.2.3.4 !",
        "iptables v1.8.9 (legacy): nothing appropriate following !",
    ),
    (
        "-A INPUT ! -n",
        "iptables v1.8.9 (legacy): cannot have ! before -n",
    ),
    (
        "-A INPUT ! -m tcp",
        "iptables v1.8.9 (legacy): unexpected ! flag before --match",
    ),
    (
        "! -A INPUT",
        "iptables v1.8.9 (legacy): unexpected '!' flag",
    ),
    (
        "-A INPUT ! -t filter",
        "iptables v1.8.9 (legacy): unexpected ! flag before --table",
    ),
    (
        "-A INPUT -p udp --sport 1 --sport 2",
        "iptables v1.8.9 (legacy): udp: option \"--source-port\" can only be used once.\n",
    ),
    (
        "-A INPUT -p udp --sport 1:2:3",
        "iptables v1.8.9 (legacy): udp: Too many components for option \"--source-port\" (max: 2)\n",
    ),
    (
        "-A INPUT -p udp --sport 1:2:",
        "iptables v1.8.9 (legacy): udp: Too many components for option \"--source-port\" (max: 2)\n",
    ),
    (
        "-A INPUT -p udp --dport 0x10",
        "iptables v1.8.9 (legacy): Port \"0x10\" does not resolve to anything.\n",
    ),
    (
        "-A INPUT -p udp --dport -1",
        "iptables v1.8.9 (legacy): Port \"-1\" does not resolve to anything.\n",
    ),
    (
        "-A INPUT -p tcp --dport \"\"",
        "iptables v1.8.9 (legacy): invalid port/service `' specified",
    ),
    (
        "-A INPUT -p tcp --dport 1:2:3",
        "iptables v1.8.9 (legacy): invalid port/service `2:3' specified",
    ),
    (
        "-A INPUT -n -p 6 --sport 1",
        "iptables v1.8.9 (legacy): Illegal option `-n' with this command",
    ),
    (
        "-A INPUT -p icmp --dport 1",
        "iptables v1.8.9 (legacy): unknown option \"--dport\"",
    ),
    (
        "-A INPUT -p all --dport 1",
        "iptables v1.8.9 (legacy): unknown option \"--dport\"",
    ),
    (
        "-D INPUT 1 -s 1.2.3.4",
        "iptables v1.8.9 (legacy): Illegal option `-s' with this command",
    ),
    (
        "-D INPUT 1 --line-numbers",
        "iptables v1.8.9 (legacy): Illegal option `-0' with this command",
    ),
    (
        "-A INPUT --line-numbers",
        "iptables v1.8.9 (legacy): Illegal option `-0' with this command",
    ),
    (
        "-S -n",
        "iptables v1.8.9 (legacy): Illegal option `-n' with this command",
    ),
    (
        "-L -s 1.2.3.4",
        "iptables v1.8.9 (legacy): Illegal option `-s' with this command",
    ),
    (
        "-L -s foo",
        "iptables v1.8.9 (legacy): host/network `foo' not found",
    ),
    (
        "-F INPUT -v -n",
        "iptables v1.8.9 (legacy): Illegal option `-n' with this command",
    ),
    (
        "-A INPUT -i \"\"",
        "iptables v1.8.9 (legacy): Empty interface is likely to be undesired",
    ),
    (
        "-A INPUT -i abcdefghijklmnop",
        "iptables v1.8.9 (legacy): interface name `abcdefghijklmnop' must be shorter than IFNAMSIZ (15)",
    ),
    (
        "-A abcdefghijklmnopqrstuvwxyz123 -j ACCEPT",
        "iptables v1.8.9 (legacy): chain name `abcdefghijklmnopqrstuvwxyz123' too long (must be under 29 chars)",
    ),
    (
        "-A INPUT -j abcdefghijklmnopqrstuvwxyz123",
        "iptables v1.8.9 (legacy): Invalid target name `abcdefghijklmnopqrstuvwxyz123' (28 chars max)",
    ),
    (
        "-A INPUT -j \"\"",
        "iptables v1.8.9 (legacy): Invalid target name (too short)",
    ),
    (
        "-A INPUT -j \"A B\"",
        "iptables v1.8.9 (legacy): Invalid target name `A B'",
    ),
    (
        "--d INPUT",
        "iptables v1.8.9 (legacy): unknown option \"--d\"",
    ),
    (
        "--de INPUT",
        "iptables v1.8.9 (legacy): unknown option \"--de\"",
    ),
    (
        "-A INPUT -p tcp --s 1",
        "iptables v1.8.9 (legacy): unknown option \"--s\"",
    ),
    (
        "-A INPUT -p tcp --dport=5 --dest 1.1.1.1",
        "iptables v1.8.9 (legacy): unknown option \"--dest\"",
    ),
    (
        "--lis INPUT",
        "iptables v1.8.9 (legacy): unknown option \"--lis\"",
    ),
    (
        "-vA",
        "iptables v1.8.9 (legacy): option \"-vA\" requires an argument",
    ),
    ("-vy", "iptables v1.8.9 (legacy): unknown option \"-vy\""),
    ("-L -yv", "iptables v1.8.9 (legacy): unknown option \"-L\""),
    ("-L -vyn", "iptables v1.8.9 (legacy): unknown option \"-L\""),
    (
        "--foo=bar",
        "iptables v1.8.9 (legacy): unknown option \"--foo=bar\"",
    ),
    ("-A INPUT foo", "Bad argument `foo'"),
    (
        "-A INPUT -s 1.2.3.4 -j ACCEPT extra",
        "Bad argument `extra'",
    ),
    (
        "-A INPUT -s -d",
        "iptables v1.8.9 (legacy): host/network `-d' not found",
    ),
    ("-L INPUT 1 2", "Bad argument `2'"),
    (
        "-S INPUT 0",
        "iptables v1.8.9 (legacy): Invalid rule number `0'",
    ),
    ("-F INPUT extra", "Bad argument `extra'"),
    (
        "-F -w INPUT",
        "iptables v1.8.9 (legacy): wait seconds not numeric",
    ),
    (
        "-A INPUT -sx1.2.3.4",
        "iptables v1.8.9 (legacy): host/network `-sx1.2.3.4' not found",
    ),
    (
        "-A INPUT -ptcp",
        "iptables v1.8.9 (legacy): unknown protocol \"-ptcp\" specified",
    ),
    (
        "-A INPUT -oeth0",
        "iptables v1.8.9 (legacy): Can't use -o with INPUT\n",
    ),
    (
        "-A INPUT -dx",
        "iptables v1.8.9 (legacy): host/network `-dx' not found",
    ),
    (
        "-A FORWARD --source=1.2.3.4",
        "iptables v1.8.9 (legacy): host/network `--source=1.2.3.4' not found",
    ),
    (
        "-A FORWARD --protocol=tcp",
        "iptables v1.8.9 (legacy): unknown protocol \"--protocol=tcp\" specified",
    ),
    (
        "-A FORWARD --in-interface=eth0",
        "iptables v1.8.9 (legacy): interface name `--in-interface=eth0' must be shorter than IFNAMSIZ (15)",
    ),
    (
        "-A FORWARD --append=INPUT",
        "iptables v1.8.9 (legacy): Cannot use -A with -A",
    ),
    (
        "-L -- x",
        "iptables v1.8.9 (legacy): unknown arguments found on commandline",
    ),
    (
        "-A INPUT -- -j ACCEPT",
        "iptables v1.8.9 (legacy): unknown arguments found on commandline",
    ),
    ("-b -L", "iptables v1.8.9 (legacy): Unknown arg \"(null)\""),
    (
        "-A INPUT -p tcp --dport 1 -p udp",
        "iptables v1.8.9 (legacy): multiple -p flags not allowed",
    ),
    (
        "-A INPUT -s 1.2.3.4 -s 1.2.3.5",
        "iptables v1.8.9 (legacy): multiple -s flags not allowed",
    ),
    (
        "-A INPUT -n -n",
        "iptables v1.8.9 (legacy): multiple -n flags not allowed",
    ),
    (
        "-L -n -n",
        "iptables v1.8.9 (legacy): multiple -n flags not allowed",
    ),
    (
        "-L -x -x",
        "iptables v1.8.9 (legacy): multiple -x flags not allowed",
    ),
    (
        "-L --line-numbers --line-numbers",
        "iptables v1.8.9 (legacy): multiple -0 flags not allowed",
    ),
    (
        "-L ! -v",
        "iptables v1.8.9 (legacy): cannot have ! before -v",
    ),
    (
        "-A INPUT -p tcp -m foo --dport 1",
        "iptables v1.8.9 (legacy): Couldn't load match `foo':No such file or directory\n",
    ),
    (
        "-A INPUT -i eth0 -i eth1",
        "iptables v1.8.9 (legacy): multiple -i flags not allowed",
    ),
    (
        "-A INPUT -g",
        "iptables v1.8.9 (legacy): option \"-g\" requires an argument",
    ),
    (
        "-A INPUT -m abcdefghijklmnopqrstuvwxyz12345",
        "iptables v1.8.9 (legacy): Invalid match name \"abcdefghijklmnopqrstuvwxyz12345\" (28 chars max)",
    ),
    (
        "-A INPUT -m TCP",
        "iptables v1.8.9 (legacy): Couldn't load match `TCP':No such file or directory\n",
    ),
    (
        "-A INPUT -p FOO",
        "iptables v1.8.9 (legacy): unknown protocol \"foo\" specified",
    ),
    (
        "-N ACCEPT",
        "iptables v1.8.9 (legacy): chain name may not clash with target name",
    ),
    (
        "-N LOG",
        "iptables v1.8.9 (legacy): chain name may not clash with target name",
    ),
    (
        "-N -x",
        "iptables v1.8.9 (legacy): chain name not allowed to start with `-'",
    ),
    (
        "-N \"a b\"",
        "iptables v1.8.9 (legacy): Invalid chain name `a b'",
    ),
    (
        "-N abcdefghijklmnopqrstuvwxyzabc",
        "iptables v1.8.9 (legacy): chain name `abcdefghijklmnopqrstuvwxyzabc' too long (must be under 29 chars)",
    ),
    (
        "-E a",
        "iptables v1.8.9 (legacy): -E requires old-chain-name and new-chain-name",
    ),
    (
        "-N x -s 1.2.3.4",
        "iptables v1.8.9 (legacy): Illegal option `-s' with this command",
    ),
    (
        "-A INPUT -c 1",
        "iptables v1.8.9 (legacy): -c requires packet and byte counter",
    ),
    (
        "-A INPUT -c x 1",
        "iptables v1.8.9 (legacy): -c packet counter not numeric",
    ),
    (
        "-A INPUT -c 1,",
        "iptables v1.8.9 (legacy): -c byte counter not numeric",
    ),
    (
        "-D INPUT -c 1 1",
        "iptables v1.8.9 (legacy): Illegal option `-c' with this command",
    ),
];

#[test]
fn errors_match_iptables_legacy() {
    for (line, expected) in IPTABLES_ERRORS {
        let (result, warnings) = parse(&debian(), "iptables", &words(line));
        let err = result.expect_err(line);
        assert_eq!(err.code, 2, "{line}");
        assert_eq!(
            warnings.concat() + &err.render("iptables"),
            format!("{expected}\nTry `iptables -h' or 'iptables --help' for more information.\n"),
            "{line}"
        );
    }
}

#[test]
fn runtime_errors_known_while_parsing() {
    for (line, expected) in [
        ("-P FOO ACCEPT", "iptables: Bad built-in chain name.\n"),
        ("-P FOO BAR", "iptables: Bad built-in chain name.\n"),
        (
            "-P INPUT accept",
            "iptables: Bad policy name. Run `dmesg' for more information.\n",
        ),
        (
            "-P INPUT RETURN",
            "iptables: Bad policy name. Run `dmesg' for more information.\n",
        ),
    ] {
        let err = error(line);
        assert_eq!(
            (err.code, err.render("iptables").as_str()),
            (1, expected),
            "{line}"
        );
    }
    // Checked once the privileges are, like iptables' iptc_init.
    let err = invocation("-t foo -L").check_table().unwrap_err();
    assert_eq!(err.code, 3);
    assert_eq!(
        err.render("iptables"),
        "iptables v1.8.9 (legacy): can't initialize iptables table `foo': Table does not exist \
         (do you need to insmod?)\nPerhaps iptables or your kernel needs to be upgraded.\n"
    );
}

#[test]
fn warnings_come_before_errors() {
    let (result, warnings) = parse(&debian(), "iptables", &words("-W 100 -S INPUT"));
    assert_eq!(warnings, ["Ignoring deprecated --wait-interval option.\n"]);
    assert_eq!(
        result.unwrap_err().message,
        "--wait-interval only makes sense with --wait\n"
    );
    let (result, warnings) = parse(&debian(), "iptables", &words("-A INPUT -i a/b"));
    assert!(result.is_ok());
    assert_eq!(
        warnings,
        [
            "Warning: weird character in interface `a/b' ('/' and ' ' are not allowed by the kernel).\n"
        ]
    );
    assert!(
        parse(&debian(), "iptables", &words("-w -W 100 -L"))
            .0
            .is_ok()
    );
}

#[test]
fn unsupported_features_are_refused() {
    assert_eq!(
        invocation("-t security -L")
            .check_table()
            .unwrap_err()
            .message,
        "table `security' is not supported by pcn-iptables"
    );
    for table in ["filter", "nat", "mangle", "raw"] {
        assert!(invocation(&format!("-t {table} -L")).check_table().is_ok());
    }
    for (line, message) in [
        (
            "-A INPUT -j REJECT --reject-with tcp-reset -j LOG",
            "multiple -j flags not allowed",
        ),
        (
            "-A INPUT -j QUEUE",
            "target `QUEUE' is not supported by pcn-iptables",
        ),
        (
            "-A INPUT -j LOG --log-macdecode",
            "option \"--log-macdecode\" is not supported by pcn-iptables",
        ),
        (
            "-A INPUT ! -i +",
            "`! -i +' (no interface) is not supported by pcn-iptables",
        ),
        (
            "-A INPUT -p udp ! --dport 0:65535",
            "`! --dport 0:65535' (no port) is not supported by pcn-iptables",
        ),
        (
            "-A INPUT -i \"a b\"",
            "interface name `a b' with white space is not supported by pcn-iptables",
        ),
        (
            "-A INPUT -p sctp -m multiport --ports 5",
            "multiport with -p sctp is not supported by pcn-iptables",
        ),
        (
            "-L -v -v",
            "option `-v -v' (libiptc's dump of the kernel table) is not supported by pcn-iptables",
        ),
        (
            "-E a \"b c\"",
            "chain name `b c' (empty or with white space) is not supported by pcn-iptables",
        ),
        (
            "-E a \"\"",
            "chain name `' (empty or with white space) is not supported by pcn-iptables",
        ),
        (
            "-E a abcdefghijklmnopqrstuvwxyzabc",
            "chain name `abcdefghijklmnopqrstuvwxyzabc' (29 chars or more) is not supported by pcn-iptables",
        ),
        (
            "-E a LOG",
            "chain name `LOG' (a target's name) is not supported by pcn-iptables",
        ),
        (
            "-E a standard",
            "chain name `standard' (a target's name) is not supported by pcn-iptables",
        ),
    ] {
        let err = error(line);
        assert_eq!((err.code, err.message.as_str()), (2, message), "{line}");
    }
    // A typo stays a typo.
    assert_eq!(
        error("-A INPUT -p icmp --icmp-tpye 8").message,
        "unknown option \"--icmp-tpye\""
    );
}

#[test]
fn addresses_expand_source_outer_and_are_masked() {
    assert_eq!(
        specs("-A INPUT -s 1.2.3.4,5.6.7.8 -d 9.9.9.9,8.8.8.8 -j ACCEPT"),
        [
            "-A INPUT -s 1.2.3.4/32 -d 9.9.9.9/32 -j ACCEPT",
            "-A INPUT -s 1.2.3.4/32 -d 8.8.8.8/32 -j ACCEPT",
            "-A INPUT -s 5.6.7.8/32 -d 9.9.9.9/32 -j ACCEPT",
            "-A INPUT -s 5.6.7.8/32 -d 8.8.8.8/32 -j ACCEPT",
        ]
    );
    for (line, expected) in [
        (
            "-A INPUT -s 0x7f000001 -d 1.65535",
            "-A INPUT -s 127.0.0.1/32 -d 1.0.255.255/32",
        ),
        (
            "-A INPUT -s 10 -d 10.1",
            "-A INPUT -s 10.0.0.0/32 -d 10.1.0.0/32",
        ),
        (
            "-A INPUT -s 10.1.2 -d 010.1.1.1",
            "-A INPUT -s 10.1.2.0/32 -d 8.1.1.1/32",
        ),
        ("-A INPUT -s foo/0 -d localhost", "-A INPUT -d 127.0.0.1/32"),
        (
            "-A INPUT -s loopback -d link-local/16",
            "-A INPUT -s 127.0.0.0/32 -d 169.254.0.0/16",
        ),
        ("-A INPUT -s 1.2.3.5/24", "-A INPUT -s 1.2.3.0/24"),
        ("-A INPUT -s 1.2.3.4/0x10", "-A INPUT -s 1.2.0.0/16"),
        (
            "-A INPUT -d 192.168.1.7/255.255.255.0",
            "-A INPUT -d 192.168.1.0/24",
        ),
        ("-A INPUT -s 0.0.0.0/0", "-A INPUT"),
        (
            "-A INPUT ! -s 0.0.0.0/0 -p 58",
            "-A INPUT ! -s 0.0.0.0/0 -p ipv6-icmp",
        ),
        ("-A INPUT --des 1.2.3.4", "-A INPUT -d 1.2.3.4/32"),
    ] {
        assert_eq!(specs(line), [expected], "{line}");
    }
    assert_eq!(specs("-A INPUT -s \"1.2.3.4, 5.6.7.8\"").len(), 2);
    assert_eq!(specs("-A INPUT -s box.test").len(), 2);
    assert_eq!(specs("-A INPUT -s BOX"), ["-A INPUT -s 198.18.0.9/32"]);
    assert_eq!(specs("-A INPUT -s 1.2.3.4,1.2.3.4").len(), 2);
}

#[test]
fn ports_protocols_interfaces_and_targets() {
    for (line, expected) in [
        (
            "-A INPUT -p udp --dport 5:3",
            "-A INPUT -p udp -m udp --dport 5:3",
        ),
        (
            "-A INPUT -p udp --dport \"\"",
            "-A INPUT -p udp -m udp --dport 0",
        ),
        (
            "-A INPUT -p udp --dport 4294967296",
            "-A INPUT -p udp -m udp --dport 0",
        ),
        (
            "-A INPUT -p udp --dport 65536",
            "-A INPUT -p udp -m udp --dport 0",
        ),
        (
            "-A INPUT -p udp --dport -0",
            "-A INPUT -p udp -m udp --dport 0",
        ),
        (
            "-A INPUT -p udp --dport 010",
            "-A INPUT -p udp -m udp --dport 10",
        ),
        (
            "-A INPUT -p udp --dport ssh:http",
            "-A INPUT -p udp -m udp --dport 22:80",
        ),
        ("-A INPUT -p udp --dport :", "-A INPUT -p udp -m udp"),
        (
            "-A INPUT -p udp --dport 5:",
            "-A INPUT -p udp -m udp --dport 5:65535",
        ),
        (
            "-A INPUT -p udp --dport :5",
            "-A INPUT -p udp -m udp --dport 0:5",
        ),
        (
            "-A INPUT -p tcp --dport 010",
            "-A INPUT -p tcp -m tcp --dport 8",
        ),
        (
            "-A INPUT -p tcp --dport 3:3",
            "-A INPUT -p tcp -m tcp --dport 3",
        ),
        ("-A INPUT -p tcp --dport 0:65535", "-A INPUT -p tcp -m tcp"),
        (
            "-A INPUT -p tcp --dport http:",
            "-A INPUT -p tcp -m tcp --dport 80:65535",
        ),
        (
            "-A INPUT -p tcp --sport :ssh",
            "-A INPUT -p tcp -m tcp --sport 0:22",
        ),
        (
            "-A INPUT -p 6 --sport 1",
            "-A INPUT -p tcp -m tcp --sport 1",
        ),
        (
            "-A INPUT -p 0x11 --sport 1",
            "-A INPUT -p udp -m udp --sport 1",
        ),
        (
            "-A INPUT -p tcp -m tcp ! --sport 5 ! --dport 6:7",
            "-A INPUT -p tcp -m tcp ! --sport 5 ! --dport 6:7",
        ),
        (
            "-A INPUT -p tcp --dport 22 -m tcp --sport 1",
            "-A INPUT -p tcp -m tcp --dport 22 -m tcp --sport 1",
        ),
        (
            "-A INPUT -p tcp -m tcp --dport 22 -m tcp --sport 1",
            "-A INPUT -p tcp -m tcp --dport 22 -m tcp --sport 1",
        ),
        (
            "-A INPUT -p tcp --sp 1 --destination-p 2",
            "-A INPUT -p tcp -m tcp --sport 1 --dport 2",
        ),
        (
            "-A INPUT -m udp -m tcp --dport 1 -p udp",
            "-A INPUT -p udp -m udp -m tcp --dport 1",
        ),
        ("-A INPUT -p TCP", "-A INPUT -p tcp"),
        ("-A INPUT -p Ipv6-Icmp", "-A INPUT -p ipv6-icmp"),
        ("-A INPUT -p icmpv6", "-A INPUT -p ipv6-icmp"),
        ("-A INPUT -p mh", "-A INPUT -p mobility-header"),
        ("-A INPUT -p \" 6\"", "-A INPUT -p tcp"),
        ("-A INPUT -p ip", "-A INPUT"),
        ("-A INPUT -p hopopt", "-A INPUT"),
        ("-A INPUT -p 47", "-A INPUT -p gre"),
        ("-A INPUT ! -p 253", "-A INPUT ! -p 253"),
        (
            "-A FORWARD ! -i eth+ -o veth0 -j RETURN",
            "-A FORWARD ! -i eth+ -o veth0 -j RETURN",
        ),
        ("-A FORWARD -i + -o eth+0", "-A FORWARD -o eth+0"),
        ("-A FORWARD -oeth0", "-A FORWARD -o -oeth0"),
        ("-A INPUT -j DROP -ilo", "-A INPUT -i -ilo -j DROP"),
        ("-A INPUT -j USER", "-A INPUT -j USER"),
        ("-A INPUT -g USER", "-A INPUT -g USER"),
        ("-A INPUT -jaccept", "-A INPUT -j -jaccept"),
        (
            "--app INPUT -p tcp --dport=5 --src 1.1.1.1 --jump ACCEPT --in-int eth0",
            "-A INPUT -s 1.1.1.1/32 -i eth0 -p tcp -m tcp --dport 5 -j ACCEPT",
        ),
        ("-4 -M /bin/true -A INPUT ! -w -j DROP", "-A INPUT -j DROP"),
    ] {
        assert_eq!(specs(line), [expected], "{line}");
    }
}

/// `--chunk-types` as xt_sctp_info holds it: what `-C` and `-D` compare beyond the text.
#[test]
fn sctp_chunk_types() {
    use crate::model::{Match, SctpChunkFlags, SctpChunkMatch, SctpChunks};
    let chunks = |line: &str| {
        let Command::Append { rules, .. } = invocation(line).command else {
            panic!("{line}: not -A");
        };
        match &rules[0].matches[..] {
            [Match::Sctp { chunks, .. }] => chunks.clone().expect("--chunk-types"),
            other => panic!("{line}: {other:?}"),
        }
    };
    let check = |chunk, flag, mask| SctpChunkFlags { chunk, flag, mask };
    // I_DATA's check names its place in libxt_sctp's table (15), not its type (64); a clear
    // letter does not clear what an earlier one set.
    let c = chunks("-A INPUT -p sctp ! --chunk-types ONLY I_DATA:b,data:-,i_data:B,DATA:B,DATA:b");
    assert!(c.negated);
    assert_eq!(
        c.value,
        SctpChunks {
            kind: SctpChunkMatch::Only,
            map: [1, 1, 0, 0],
            flags: vec![check(15, 0x02, 0x02), check(0, 0x02, 0x82)],
        }
    );
    let c = chunks("-A INPUT -p sctp --chunk-types all ALL");
    assert_eq!(
        (c.value.kind, c.value.map),
        (SctpChunkMatch::All, [u64::MAX; 4])
    );
    let c = chunks("-A INPUT -p sctp --chunk-types any ABORT:T,SHUTDOWN_COMPLETE:-,ASCONF");
    assert_eq!(c.value.map, [1 << 6 | 1 << 14, 0, 0, 1 << 1]);
    assert_eq!(c.value.flags, [check(6, 1, 1), check(14, 0, 0x80)]);
}

#[test]
fn state_matches() {
    for (line, expected) in [
        (
            "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
            "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        ),
        (
            "-A INPUT -m conntrack --ctstate untracked,e,R,i,N",
            "-A INPUT -m conntrack --ctstate INVALID,NEW,RELATED,ESTABLISHED,UNTRACKED",
        ),
        (
            "-A INPUT -m conntrack ! --ctstate=New,NEW",
            "-A INPUT -m conntrack ! --ctstate NEW",
        ),
        (
            "-A INPUT -m state --st Established,rel",
            "-A INPUT -m state --state RELATED,ESTABLISHED",
        ),
        (
            "-A INPUT -m state ! --state INVALID",
            "-A INPUT -m state ! --state INVALID",
        ),
        (
            "-A INPUT -p tcp -m conntrack --ctstate NEW --dport 22 -j ACCEPT",
            "-A INPUT -p tcp -m conntrack --ctstate NEW -m tcp --dport 22 -j ACCEPT",
        ),
        (
            "-A INPUT -m conntrack -m state --ctstate NEW --state REL",
            "-A INPUT -m conntrack --ctstate NEW -m state --state RELATED",
        ),
        (
            "-A INPUT -m conntrack --ctstate NEW -m conntrack --ctstate EST",
            "-A INPUT -m conntrack --ctstate NEW -m conntrack --ctstate ESTABLISHED",
        ),
    ] {
        assert_eq!(specs(line), [expected], "{line}");
    }
    // The states are a set: -D and -C find the rule whatever the order or repetitions; the
    // module and the `!` count.
    let rule = |line| match invocation(line).command {
        Command::Append { mut rules, .. } => rules.remove(0),
        other => panic!("{line}: {other:?}"),
    };
    let a = rule("-A INPUT -m conntrack --ctstate NEW,ESTABLISHED -j ACCEPT");
    assert!(a.same_spec(&rule("-A INPUT -m conntrack --ctstate e,n,NEW -j ACCEPT")));
    for other in [
        "-A INPUT -m state --state NEW,ESTABLISHED -j ACCEPT",
        "-A INPUT -m conntrack ! --ctstate NEW,ESTABLISHED -j ACCEPT",
        "-A INPUT -m conntrack --ctstate NEW -j ACCEPT",
        "-A INPUT -m conntrack --ctstate NEW,ESTABLISHED",
    ] {
        assert!(!a.same_spec(&rule(other)), "{other}");
    }
    for (line, message) in [
        ("-A INPUT -m conntrack --ctstate ! NEW", "Bad ctstate \"!\""),
        ("-A INPUT -m state --state ! NEW", "Bad state \"!\""),
        (
            "-A INPUT -m conntrack --ctstate NEW,FOO,ESTABLISHED",
            "Bad ctstate \"FOO,ESTABLISHED\"",
        ),
        (
            "-A INPUT -m conntrack --ctstate NEWX",
            "Bad ctstate \"NEWX\"",
        ),
        ("-A INPUT -m conntrack --ctstate NEW,", "Bad ctstate \"\""),
        (
            "-A INPUT -m conntrack --ctstate ,NEW",
            "Bad ctstate \",NEW\"",
        ),
        ("-A INPUT -m state --state ,NEW", "Bad state \",NEW\""),
        ("-A INPUT -m state --state SNAT", "Bad state \"SNAT\""),
        (
            "-A INPUT -m state --state NEW,",
            "\"--state\" requires a list of states with no spaces, e.g. ESTABLISHED,RELATED",
        ),
        (
            "-A INPUT -m conntrack --ctstate NEW ! --ctstate NEW",
            "conntrack: option \"--ctstate\" can only be used once.\n",
        ),
        (
            "-A INPUT -m state --state NEW --state FOO",
            "state: option \"--state\" can only be used once.\n",
        ),
        (
            "-A INPUT -m conntrack -m state",
            "conntrack: At least one option is required",
        ),
        (
            "-A INPUT -m state -m conntrack",
            "state: option \"--state\" must be specified\n",
        ),
        (
            "-A INPUT -m conntrack --ctstate NEW -m conntrack",
            "conntrack: At least one option is required",
        ),
        (
            "-L -m state !",
            "state: option \"--state\" must be specified\n",
        ),
        (
            "-A INPUT -m conntrack --ctst NEW",
            "unknown option \"--ctst\"",
        ),
        ("-A INPUT --ctstate NEW", "unknown option \"--ctstate\""),
        (
            "-A INPUT -m state --ctstate NEW",
            "unknown option \"--ctstate\"",
        ),
        (
            "-A INPUT ! -m state --state NEW",
            "unexpected ! flag before --match",
        ),
    ] {
        let err = error(line);
        assert_eq!((err.code, err.message.as_str()), (2, message), "{line}");
    }
}

#[test]
fn commands() {
    let list = |line| match invocation(line).command {
        Command::List {
            chain,
            rulenum,
            options,
            zero,
        } => (chain, rulenum, options, zero),
        other => panic!("{line}: {other:?}"),
    };
    let all = ListOptions {
        numeric: true,
        verbose: true,
        exact: true,
        line_numbers: true,
    };
    assert_eq!(list("-L"), (None, None, ListOptions::default(), None));
    assert_eq!(
        list("-nvxL INPUT --line-numbers"),
        (Some("INPUT".into()), None, all, None)
    );
    assert_eq!(list("--list=FORWARD 2").1, Some(2));
    assert_eq!(list("-L -Z").3, Some(Zeroing::Chains));
    assert_eq!(list("-L INPUT 2 -Z").3, Some(Zeroing::Chains));
    assert_eq!(list("-Z -L INPUT").0.as_deref(), Some("INPUT"));
    assert_eq!(
        list("-Z INPUT 1 -L"),
        (
            Some("INPUT".into()),
            Some(1),
            ListOptions::default(),
            Some(Zeroing::Rule)
        )
    );
    assert!(matches!(
        invocation("-L -Z INPUT 1").command,
        Command::Zero { chain: Some(c), rulenum: Some(1) } if c == "INPUT"
    ));
    assert!(matches!(
        invocation("-v -S INPUT 3").command,
        Command::ListRules { chain: Some(c), rulenum: Some(3), verbose: true, zero: None } if c == "INPUT"
    ));
    assert!(matches!(
        invocation("-S -Z").command,
        Command::ListRules {
            chain: None,
            zero: Some(Zeroing::Chains),
            ..
        }
    ));
    assert!(matches!(
        invocation("-F").command,
        Command::Flush { chain: None }
    ));
    assert!(
        matches!(invocation("-FINPUT").command, Command::Flush { chain: Some(c) } if c == "INPUT")
    );
    assert!(matches!(
        invocation("-Z OUTPUT").command,
        Command::Zero {
            chain: Some(_),
            rulenum: None
        }
    ));
    assert!(matches!(
        invocation("-I INPUT -j DROP").command,
        Command::Insert { index: 1, .. }
    ));
    assert!(matches!(
        invocation("-I INPUT 3 -j DROP").command,
        Command::Insert { index: 3, .. }
    ));
    assert!(matches!(
        invocation("-D INPUT 2").command,
        Command::DeleteNum { index: 2, .. }
    ));
    assert!(matches!(
        invocation("-R INPUT 2 -j DROP").command,
        Command::Replace { index: 2, .. }
    ));
    assert!(matches!(
        invocation("-C INPUT -j DROP").command,
        Command::Check { .. }
    ));
    assert!(matches!(
        invocation("-D INPUT -j DROP").command,
        Command::Delete { .. }
    ));
    assert!(matches!(
        invocation("-P OUTPUT DROP").command,
        Command::Policy { chain, policy: Policy::Drop } if chain == "OUTPUT"
    ));
    let inv = invocation("-v -A INPUT");
    assert!(inv.verbose && inv.table == "filter" && inv.wait == Wait::NoWait);
}

#[test]
fn wait() {
    for (line, wait) in [
        ("-L", Wait::NoWait),
        ("-w -L", Wait::Forever),
        ("-L -w", Wait::Forever),
        ("-w 5 -L", Wait::Seconds(5)),
        ("-w5 -L", Wait::Seconds(5)),
        ("--wait=7 -L", Wait::Seconds(7)),
        ("-L -w 0x10", Wait::Seconds(16)),
        ("-w 3s -L", Wait::Seconds(3)),
        ("--wait=-1 -L", Wait::Forever),
        ("-w 0 -L", Wait::NoWait),
        ("-w -W 100 -L", Wait::Forever),
    ] {
        assert_eq!(invocation(line).wait, wait, "{line}");
    }
}

#[test]
fn rule_lines() {
    let db = debian();
    let (chain, rule) = parse_rule_line_with(
        &db,
        &words("-A INPUT -s 198.18.0.1/32 -p tcp -m tcp --dport 22 -j ACCEPT"),
    )
    .unwrap();
    assert_eq!(chain, "INPUT");
    assert_eq!(
        spec(&db, &chain, &rule, None),
        "-A INPUT -s 198.18.0.1/32 -p tcp -m tcp --dport 22 -j ACCEPT"
    );
    assert_eq!(rule.counter, 0);
    assert!(parse_rule_line_with(&db, &words("-I INPUT -j DROP")).is_err());
    assert!(parse_rule_line_with(&db, &words("-A INPUT -s 1.2.3.4,5.6.7.8")).is_err());
}

#[test]
fn chains_help_version_and_counters() {
    assert!(matches!(
        invocation("-N web").command,
        Command::NewChain { chain } if chain == "web"
    ));
    assert!(matches!(
        invocation("-X").command,
        Command::DeleteChain { chain: None }
    ));
    assert!(matches!(
        invocation("--delete-chain=web").command,
        Command::DeleteChain { chain: Some(c) } if c == "web"
    ));
    assert!(matches!(
        invocation("-E web www").command,
        Command::RenameChain { chain, new_name } if chain == "web" && new_name == "www"
    ));
    // -h and -V answer at once, whatever follows.
    assert!(matches!(
        invocation("-j DROP -m udp -p tcp -h --bogus").command,
        Command::Help { target: Some("standard"), matches } if matches == ["udp"]
    ));
    assert!(matches!(
        invocation("-p tcp -h").command,
        Command::Help { target: None, matches } if matches == ["tcp"]
    ));
    assert!(matches!(
        invocation("-p 6 -h").command,
        Command::Help { target: None, matches } if matches.is_empty()
    ));
    assert!(matches!(
        invocation("! -V --bogus").command,
        Command::Version { negated: true }
    ));
    let counters = |line| invocation(line).counters.map(|c| (c.packets, c.bytes));
    assert_eq!(counters("-A INPUT -c 1 2"), Some((1, 2)));
    assert_eq!(counters("-A INPUT -c 3,4"), Some((3, 4)));
    assert_eq!(
        counters("-P INPUT DROP -c -1 99999999999999999999"),
        Some((u64::MAX, u64::MAX))
    );
    assert_eq!(counters("-A INPUT"), None);
    let err = error("-6 -L");
    assert_eq!(
        (err.code, err.render("iptables").as_str()),
        (
            2,
            "Try `iptables -h' or 'iptables --help' for more information.\n"
        )
    );
}

#[test]
fn help_names_the_program() {
    let text = help(
        "pcn-iptables",
        "1.8.9 (x)",
        Some("standard"),
        &["tcp", "udp"],
    );
    assert!(text.starts_with(
        "pcn-iptables v1.8.9 (x)\n\nUsage: pcn-iptables -[ACD] chain rule-specification [options]\n       pcn-iptables -I chain"
    ));
    let standard = text.find("standard match options:").unwrap();
    let tcp = text.find("tcp match options:").unwrap();
    let udp = text.find("udp match options:").unwrap();
    assert!(standard < tcp && tcp < udp);
    assert!(text.ends_with("\t\t\t\tmatch destination port(s)\n"));
}

#[test]
fn nat_refuses_drop_and_policies_follow_the_table() {
    let nat_drop = "\nThe \"nat\" table is not intended for filtering, \
                    the use of DROP is therefore inhibited.\n\n";
    for line in [
        "-t nat -P PREROUTING DROP",
        "-t nat -A POSTROUTING -j DROP",
        "-t nat -A POSTROUTING -g DROP",
    ] {
        let (result, _) = parse(&debian(), "iptables", &words(line));
        assert_eq!(result.unwrap_err().message, nat_drop, "{line}");
    }
    assert!(
        parse(&debian(), "iptables", &words("-t raw -P PREROUTING DROP"))
            .0
            .is_ok()
    );
    let (result, _) = parse(&debian(), "iptables", &words("-t nat -P FORWARD ACCEPT"));
    assert_eq!(result.unwrap_err().message, "Bad built-in chain name");
    let (result, _) = parse(&debian(), "iptables", &words("-P PREROUTING ACCEPT"));
    assert_eq!(result.unwrap_err().message, "Bad built-in chain name");
}
