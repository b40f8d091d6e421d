//! The grammar of iptables-save's text as iptables-restore 1.8.9 reads it (line kinds, chain
//! lines, `[packets:bytes]` counters), and the flags of iptables-save and iptables-restore as
//! glibc's `getopt_long` reads them.

use pcn_iptables_common::Counter;

use crate::error::{Error, Result};

/// One line of iptables-restore's input, classified as `ip46tables_restore_main` does: what a
/// line is depends on whether a table is open.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A line that is just a newline.
    Blank,
    /// `#` in the first column.
    Comment,
    /// `*TABLE`, outside a table: the table's name (its first word), if any.
    Table(Option<&'a str>),
    /// `:CHAIN POLICY [packets:bytes]`, inside a table: its words.
    Chain {
        name: Option<&'a str>,
        policy: Option<&'a str>,
        counters: Option<&'a str>,
    },
    /// Exactly `COMMIT`, inside a table.
    Commit,
    /// Anything else inside a table: an iptables command line, maybe after `[packets:bytes]`.
    Command(&'a str),
    /// Anything else outside a table.
    Stray,
}

/// `strtok(s, " \t\n")`'s words.
fn tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split([' ', '\t', '\n']).filter(|w| !w.is_empty())
}

impl<'a> Line<'a> {
    /// `line` as read, newline included (the last line of a file may lack it).
    pub fn parse(line: &'a str, in_table: bool) -> Line<'a> {
        match line.as_bytes().first() {
            Some(b'\n') => Line::Blank,
            Some(b'#') => Line::Comment,
            _ if in_table && line == "COMMIT\n" => Line::Commit,
            Some(b'*') if !in_table => Line::Table(tokens(&line[1..]).next()),
            Some(b':') if in_table => {
                let mut words = tokens(&line[1..]);
                Line::Chain {
                    name: words.next(),
                    policy: words.next(),
                    counters: words.next(),
                }
            }
            _ if in_table => Line::Command(line),
            _ => Line::Stray,
        }
    }
}

/// glibc's `strtoull(s, .., 10)` as `sscanf("%llu")` uses it: leading blanks, a sign (a minus
/// wraps), at least one digit, saturating; what follows the digits is ignored.
fn scan_u64(s: &str) -> Option<(u64, &str)> {
    let s = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let value = s[..digits].parse::<u64>().unwrap_or(u64::MAX);
    Some((
        if negative {
            value.wrapping_neg()
        } else {
            value
        },
        &s[digits..],
    ))
}

/// `sscanf(s, "[%llu:%llu]")` == 2: a chain line's policy counters.
pub fn policy_counters(s: &str) -> Option<Counter> {
    let (packets, rest) = scan_u64(s.strip_prefix('[')?)?;
    let (bytes, _) = scan_u64(rest.strip_prefix(':')?)?;
    Some(Counter { packets, bytes })
}

/// `[packets:bytes]` in front of a command line (iptables' `tokenize_rule_counters`), as the two
/// words iptables passes to `--set-counters`, and the command line after them.
pub fn rule_counters(line: &str, number: usize) -> Result<(Option<(&str, &str)>, &str)> {
    let Some(inner) = line.strip_prefix('[') else {
        return Ok((None, line));
    };
    let need = |what| Error::parameter(format!("Bad line {number}: need {what}"));
    let close = inner.find(']').ok_or_else(|| need(']'))?;
    let (packets, bytes) = inner[..close]
        .trim_start_matches(':')
        .split_once(':')
        .ok_or_else(|| need(']'))?;
    Ok((Some((packets, bytes)), &inner[close + 1..]))
}

/// `sscanf(s, "%i")`: a C integer (decimal, `0x` hex or `0` octal) after optional blanks and
/// sign; what follows is ignored.
pub fn scan_int(s: &str) -> Option<i64> {
    let s = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, s) = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (16, hex)
    } else if s.starts_with('0') {
        (8, s)
    } else {
        (10, s)
    };
    let digits = s.chars().take_while(|c| c.is_digit(radix)).count();
    if digits == 0 {
        return None;
    }
    let value = i64::from_str_radix(&s[..digits], radix)
        .unwrap_or(i64::MAX)
        .min(i64::from(i32::MAX));
    Some(if negative { -value } else { value })
}

/// `sscanf(s, "%u")`.
pub fn scan_uint(s: &str) -> Option<u32> {
    scan_u64(s).map(|(n, _)| n as u32)
}

/// Whether a long option takes an argument (`struct option`'s `has_arg`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HasArg {
    No,
    Required,
    /// Only as `--name=value`.
    Optional,
}

/// A program's options as it hands them to `getopt_long`: the optstring and the long options
/// with the short option each stands for.
pub struct OptionSpec {
    pub optstring: &'static str,
    pub long: &'static [(&'static str, HasArg, char)],
}

/// iptables-save's `"bcdt:M:f:V"` and long options.
pub const SAVE_OPTIONS: OptionSpec = OptionSpec {
    optstring: "bcdt:M:f:V",
    long: &[
        ("counters", HasArg::No, 'c'),
        ("dump", HasArg::No, 'd'),
        ("table", HasArg::Required, 't'),
        ("modprobe", HasArg::Required, 'M'),
        ("file", HasArg::Required, 'f'),
        ("version", HasArg::No, 'V'),
    ],
};

/// iptables-restore's `"bcvVthnwWM:T:"` and long options.
pub const RESTORE_OPTIONS: OptionSpec = OptionSpec {
    optstring: "bcvVthnwWM:T:",
    long: &[
        ("counters", HasArg::No, 'c'),
        ("verbose", HasArg::No, 'v'),
        ("version", HasArg::No, 'V'),
        ("test", HasArg::No, 't'),
        ("help", HasArg::No, 'h'),
        ("noflush", HasArg::No, 'n'),
        ("modprobe", HasArg::Required, 'M'),
        ("table", HasArg::Required, 'T'),
        ("wait", HasArg::Optional, 'w'),
        ("wait-interval", HasArg::Optional, 'W'),
    ],
};

/// glibc's `getopt_long` in its default (permuting) mode: options one at a time, in order, so
/// that the caller acts on each as the C tools do; operands are collected for afterwards. An
/// error is glibc's message (without newline), after which the tools print a hint and exit.
pub struct Flags<'a> {
    prog: &'a str,
    spec: &'static OptionSpec,
    args: &'a [String],
    /// `optind`: the next element to look at.
    next: usize,
    /// Inside a cluster of short options: the byte offset of the next one in `args[next]`.
    cluster: Option<usize>,
    operands: Vec<&'a str>,
}

pub type Flag<'a> = std::result::Result<(char, Option<&'a str>), String>;

impl<'a> Flags<'a> {
    pub fn new(prog: &'a str, spec: &'static OptionSpec, args: &'a [String]) -> Self {
        Flags {
            prog,
            spec,
            args,
            next: 0,
            cluster: None,
            operands: Vec::new(),
        }
    }

    /// iptables' `xs_has_arg` then `argv[optind++]`: the element after the last option, when it
    /// does not start with `-` or `!` (how `-w 5` gets its value).
    pub fn take_value(&mut self) -> Option<&'a str> {
        let arg = self.args.get(self.next)?;
        if self.cluster.is_some() || arg.starts_with(['-', '!']) {
            return None;
        }
        self.next += 1;
        Some(arg)
    }

    /// The non-option arguments, once every option has been taken.
    pub fn operands(mut self) -> Vec<&'a str> {
        self.operands
            .extend(self.args[self.next..].iter().map(String::as_str));
        self.operands
    }

    fn short(&mut self, offset: usize) -> Flag<'a> {
        let element = &self.args[self.next];
        let c = element[offset..].chars().next().unwrap_or_default();
        let rest = &element[offset + c.len_utf8()..];
        if rest.is_empty() {
            self.cluster = None;
            self.next += 1;
        } else {
            self.cluster = Some(offset + c.len_utf8());
        }
        let prog = self.prog;
        let Some(at) = self.spec.optstring.find(c).filter(|_| c != ':') else {
            return Err(format!("{prog}: invalid option -- '{c}'"));
        };
        if !self.spec.optstring[at + c.len_utf8()..].starts_with(':') {
            return Ok((c, None));
        }
        if !rest.is_empty() {
            self.cluster = None;
            self.next += 1;
            return Ok((c, Some(rest)));
        }
        match self.args.get(self.next) {
            Some(arg) => {
                self.next += 1;
                Ok((c, Some(arg)))
            }
            None => Err(format!("{prog}: option requires an argument -- '{c}'")),
        }
    }

    fn long(&mut self, body: &'a str) -> Flag<'a> {
        let prog = self.prog;
        let (name, value) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let exact = self.spec.long.iter().find(|(n, ..)| *n == name);
        let candidates: Vec<_> = self
            .spec
            .long
            .iter()
            .filter(|(n, ..)| n.starts_with(name))
            .collect();
        let &(full, has_arg, c) = match (exact, candidates.as_slice()) {
            (Some(option), _) => option,
            (None, [one]) => *one,
            (None, []) => return Err(format!("{prog}: unrecognized option '--{body}'")),
            (None, many) => {
                let names: Vec<String> = many.iter().map(|(n, ..)| format!("'--{n}'")).collect();
                return Err(format!(
                    "{prog}: option '--{body}' is ambiguous; possibilities: {}",
                    names.join(" ")
                ));
            }
        };
        match (has_arg, value) {
            (HasArg::No, Some(_)) => Err(format!(
                "{prog}: option '--{full}' doesn't allow an argument"
            )),
            (HasArg::Required, None) => match self.args.get(self.next) {
                Some(arg) => {
                    self.next += 1;
                    Ok((c, Some(arg)))
                }
                None => Err(format!("{prog}: option '--{full}' requires an argument")),
            },
            _ => Ok((c, value)),
        }
    }
}

impl<'a> Iterator for Flags<'a> {
    type Item = Flag<'a>;

    fn next(&mut self) -> Option<Flag<'a>> {
        if let Some(offset) = self.cluster {
            return Some(self.short(offset));
        }
        loop {
            let arg = self.args.get(self.next)?.as_str();
            if arg == "--" {
                self.next += 1;
                return None;
            }
            if let Some(body) = arg.strip_prefix("--") {
                self.next += 1;
                return Some(self.long(body));
            }
            if arg.len() > 1 && arg.starts_with('-') {
                return Some(self.short(1));
            }
            self.operands.push(arg);
            self.next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flags getopt returns for `args`, up to the first error, then the operands. After a
    /// `-w` without a value comes `('=', what take_value() took)`, as iptables-restore asks.
    fn flags(spec: &'static OptionSpec, args: &[&str]) -> (Vec<Flag<'static>>, Vec<String>) {
        let args: &'static [String] = args
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .leak();
        let mut f = Flags::new("iptables-restore", spec, args);
        let mut got = Vec::new();
        while let Some(flag) = f.next() {
            let stop = flag.is_err();
            got.push(flag);
            if matches!(got.last(), Some(Ok(('w', None)))) {
                got.push(Ok(('=', f.take_value())));
            }
            if stop {
                break;
            }
        }
        let operands = f.operands().iter().map(|s| s.to_string()).collect();
        (got, operands)
    }

    #[test]
    fn line_kinds() {
        assert_eq!(Line::parse("\n", true), Line::Blank);
        assert_eq!(Line::parse("# x\n", false), Line::Comment);
        assert_eq!(Line::parse("COMMIT\n", true), Line::Commit);
        assert_eq!(Line::parse("COMMIT\n", false), Line::Stray);
        assert_eq!(Line::parse("COMMIT", true), Line::Command("COMMIT"));
        assert_eq!(Line::parse("COMMIT \n", true), Line::Command("COMMIT \n"));
        assert_eq!(
            Line::parse("*filter extra\n", false),
            Line::Table(Some("filter"))
        );
        assert_eq!(Line::parse("*\n", false), Line::Table(None));
        assert_eq!(Line::parse("*nat\n", true), Line::Command("*nat\n"));
        assert_eq!(
            Line::parse(":INPUT\tDROP [1:2] x\n", true),
            Line::Chain {
                name: Some("INPUT"),
                policy: Some("DROP"),
                counters: Some("[1:2]")
            }
        );
        assert_eq!(Line::parse(":INPUT DROP\n", false), Line::Stray);
        assert_eq!(Line::parse("   \n", true), Line::Command("   \n"));
    }

    #[test]
    fn counters_as_sscanf_reads_them() {
        let c = |s| policy_counters(s).map(|c| (c.packets, c.bytes));
        assert_eq!(c("[1:2]"), Some((1, 2)));
        assert_eq!(c("[1:2"), Some((1, 2)));
        assert_eq!(c("[ 1: +2]junk"), Some((1, 2)));
        assert_eq!(c("[-1:99999999999999999999]"), Some((u64::MAX, u64::MAX)));
        assert_eq!(c("[1 :2]"), None);
        assert_eq!(c("1:2"), None);
        assert_eq!(c("[a:2]"), None);

        let r = |s| rule_counters(s, 7).map_err(|e| e.message);
        assert_eq!(r("-A INPUT\n"), Ok((None, "-A INPUT\n")));
        assert_eq!(
            r("[12:34] -A INPUT\n"),
            Ok((Some(("12", "34")), " -A INPUT\n"))
        );
        assert_eq!(r("[12:] -A INPUT\n"), Ok((Some(("12", "")), " -A INPUT\n")));
        assert_eq!(r("[12] -A INPUT\n"), Err("Bad line 7: need ]".into()));
        assert_eq!(r("[1:2 -A INPUT\n"), Err("Bad line 7: need ]".into()));
        assert_eq!(scan_int(" 0x10"), Some(16));
        assert_eq!(scan_int("010"), Some(8));
        assert_eq!(scan_int("-5s"), Some(-5));
        assert_eq!(scan_int("abc"), None);
        assert_eq!(scan_uint("-1"), Some(u32::MAX));
    }

    #[test]
    fn getopt_long_as_glibc() {
        let (got, operands) = flags(
            &RESTORE_OPTIONS,
            &[
                "file", "-cn", "--ta=nat", "-w", "5", "-T", "raw", "--wait", "x", "--", "-v",
            ],
        );
        assert_eq!(
            got,
            [
                Ok(('c', None)),
                Ok(('n', None)),
                Ok(('T', Some("nat"))),
                Ok(('w', None)),
                Ok(('=', Some("5"))),
                Ok(('T', Some("raw"))),
                Ok(('w', None)),
                Ok(('=', Some("x"))),
            ]
        );
        assert_eq!(operands, ["file", "-v"]);
        let (got, _) = flags(&RESTORE_OPTIONS, &["-wc", "5"]);
        assert_eq!(got, [Ok(('w', None)), Ok(('=', None)), Ok(('c', None))]);
        let err = |args: &[&str]| flags(&RESTORE_OPTIONS, args).0.pop().unwrap().unwrap_err();
        assert_eq!(
            err(&["--ver"]),
            "iptables-restore: option '--ver' is ambiguous; possibilities: '--verbose' '--version'"
        );
        assert_eq!(
            err(&["--counters=1"]),
            "iptables-restore: option '--counters' doesn't allow an argument"
        );
        assert_eq!(
            err(&["--tab"]),
            "iptables-restore: option '--table' requires an argument"
        );
        assert_eq!(
            err(&["-T"]),
            "iptables-restore: option requires an argument -- 'T'"
        );
        assert_eq!(
            err(&["--bogus=3"]),
            "iptables-restore: unrecognized option '--bogus=3'"
        );
        assert_eq!(err(&["-x"]), "iptables-restore: invalid option -- 'x'");
        assert_eq!(err(&["-c:"]), "iptables-restore: invalid option -- ':'");
        let (got, _) = flags(&SAVE_OPTIONS, &["-tnat", "--co", "-f", "-x"]);
        assert_eq!(
            got,
            [
                Ok(('t', Some("nat"))),
                Ok(('c', None)),
                Ok(('f', Some("-x")))
            ]
        );
    }
}
