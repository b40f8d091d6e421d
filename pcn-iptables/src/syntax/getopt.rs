//! glibc's `getopt_long` as iptables drives it: optstring `-:...` (non-options returned in
//! order, `:` for a missing argument), unique prefixes of long options, `--name=value`, clustered
//! short options (`-nvL`) and attached arguments (`-AINPUT`). iptables' messages quote
//! `argv[optind - 1]`, so `optind` moves exactly as glibc moves it.

pub use crate::xtables::HasArg;

/// A long option; two entries are interchangeable for prefix matching when both their value and
/// `has_arg` agree.
#[derive(Clone, Copy, Debug)]
pub struct LongOpt<V> {
    pub name: &'static str,
    pub has_arg: HasArg,
    pub val: V,
}

/// What one `getopt_long` call returns.
#[derive(Debug, PartialEq, Eq)]
pub enum Got<'a, V> {
    /// An option and its argument (`optarg`).
    Opt(V, Option<&'a str>),
    /// A non-option argument (getopt's `1` in RETURN_IN_ORDER mode).
    NonOption(&'a str),
    /// `:`: a required argument is missing.
    Missing,
    /// `?`: unknown or ambiguous option.
    Unknown,
    /// `-1`: no more options.
    End,
}

pub struct Getopt<'a> {
    argv: Vec<&'a str>,
    pub optind: usize,
    /// Where the next short option of a cluster starts: (argv index, byte offset).
    nextchar: Option<(usize, usize)>,
}

impl<'a> Getopt<'a> {
    /// `argv[0]` is the program name, as in C.
    pub fn new(argv: Vec<&'a str>) -> Self {
        Getopt {
            argv,
            optind: 1,
            nextchar: None,
        }
    }

    /// `argv[optind - 1]`, the element iptables names in its messages.
    pub fn last(&self) -> &'a str {
        self.argv[self.optind - 1]
    }

    /// `argv[optind]` when it can be an option's separate optional argument (iptables'
    /// `xs_has_arg`: present and not starting with `-` or `!`); consumes it.
    pub fn take_optional(&mut self) -> Option<&'a str> {
        let arg = *self.argv.get(self.optind)?;
        if arg.starts_with(['-', '!']) {
            return None;
        }
        self.optind += 1;
        Some(arg)
    }

    /// iptables' `optind--` to parse an option again after loading a match.
    pub fn rewind(&mut self) {
        self.optind -= 1;
    }

    /// Whether arguments are left after `--`.
    pub fn has_rest(&self) -> bool {
        self.optind < self.argv.len()
    }

    pub fn next<V: Copy + PartialEq>(
        &mut self,
        short: impl Fn(char) -> Option<(V, HasArg)>,
        long: &[LongOpt<V>],
    ) -> Got<'a, V> {
        let argc = self.argv.len();
        let (index, offset) = match self.nextchar {
            Some(at) => at,
            None => {
                if self.optind < argc && self.argv[self.optind] == "--" {
                    self.optind += 1;
                    return Got::End;
                }
                let Some(&arg) = self.argv.get(self.optind) else {
                    return Got::End;
                };
                if !arg.starts_with('-') || arg == "-" {
                    self.optind += 1;
                    return Got::NonOption(arg);
                }
                if let Some(body) = arg.strip_prefix("--") {
                    return self.long(body, long);
                }
                (self.optind, 1)
            }
        };
        let element = self.argv[index];
        let c = element[offset..]
            .chars()
            .next()
            .expect("nextchar points into its element");
        let rest = &element[offset + c.len_utf8()..];
        let cluster_end = rest.is_empty();
        self.nextchar = (!cluster_end).then_some((index, offset + c.len_utf8()));
        if cluster_end {
            self.optind += 1;
        }
        let Some((val, has_arg)) = short(c) else {
            return Got::Unknown;
        };
        match has_arg {
            HasArg::No => Got::Opt(val, None),
            HasArg::Required | HasArg::Optional if !cluster_end => {
                self.optind += 1;
                self.nextchar = None;
                Got::Opt(val, Some(rest))
            }
            HasArg::Optional => Got::Opt(val, None),
            HasArg::Required => match self.argv.get(self.optind) {
                Some(&arg) => {
                    self.optind += 1;
                    Got::Opt(val, Some(arg))
                }
                None => Got::Missing,
            },
        }
    }

    fn long<V: Copy + PartialEq>(&mut self, body: &'a str, long: &[LongOpt<V>]) -> Got<'a, V> {
        let (name, value) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        self.optind += 1;
        let found = long.iter().find(|o| o.name == name).or_else(|| {
            let mut prefixed = long.iter().filter(|o| o.name.starts_with(name));
            let first = prefixed.next()?;
            prefixed
                .all(|o| o.val == first.val && o.has_arg == first.has_arg)
                .then_some(first)
        });
        let Some(opt) = found else {
            return Got::Unknown;
        };
        match (opt.has_arg, value) {
            (HasArg::No, Some(_)) => Got::Unknown,
            (_, Some(value)) => Got::Opt(opt.val, Some(value)),
            (HasArg::Required, None) => match self.argv.get(self.optind) {
                Some(&arg) => {
                    self.optind += 1;
                    Got::Opt(opt.val, Some(arg))
                }
                None => Got::Missing,
            },
            (_, None) => Got::Opt(opt.val, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: [LongOpt<char>; 4] = [
        LongOpt {
            name: "list",
            has_arg: HasArg::Optional,
            val: 'L',
        },
        LongOpt {
            name: "list-rules",
            has_arg: HasArg::Optional,
            val: 'S',
        },
        LongOpt {
            name: "source",
            has_arg: HasArg::Required,
            val: 's',
        },
        LongOpt {
            name: "src",
            has_arg: HasArg::Required,
            val: 's',
        },
    ];

    fn short(c: char) -> Option<(char, HasArg)> {
        match c {
            'L' | 'S' => Some((c, HasArg::Optional)),
            'A' | 's' => Some((c, HasArg::Required)),
            'n' | 'v' => Some((c, HasArg::No)),
            _ => None,
        }
    }

    fn scan(args: &[&str]) -> Vec<(Got<'static, char>, usize)> {
        let argv: Vec<&'static str> = std::iter::once("iptables")
            .chain(args.iter().map(|a| &*a.to_string().leak()))
            .collect();
        let mut g = Getopt::new(argv);
        let mut out = Vec::new();
        loop {
            let got = g.next(short, &LONG);
            let end = got == Got::End;
            out.push((got, g.optind));
            if end || out.len() > 20 {
                return out;
            }
        }
    }

    #[test]
    fn clusters_and_attached_arguments() {
        assert_eq!(
            scan(&["-nvLINPUT", "-AFOO", "-s", "-x"]),
            [
                (Got::Opt('n', None), 1),
                (Got::Opt('v', None), 1),
                (Got::Opt('L', Some("INPUT")), 2),
                (Got::Opt('A', Some("FOO")), 3),
                (Got::Opt('s', Some("-x")), 5),
                (Got::End, 5),
            ]
        );
    }

    #[test]
    fn long_options_by_unique_prefix() {
        assert_eq!(scan(&["--list-r"])[0], (Got::Opt('S', None), 2));
        assert_eq!(scan(&["--lis"])[0], (Got::Unknown, 2));
        assert_eq!(scan(&["--sr", "x"])[0], (Got::Opt('s', Some("x")), 3));
        assert_eq!(scan(&["--list=FOO"])[0], (Got::Opt('L', Some("FOO")), 2));
        assert_eq!(scan(&["--source"])[0], (Got::Missing, 2));
        assert_eq!(scan(&["-vA"])[1], (Got::Missing, 2));
        assert_eq!(scan(&["-vy"])[1], (Got::Unknown, 2));
        assert_eq!(scan(&["-yv"])[0], (Got::Unknown, 1));
    }

    #[test]
    fn non_options_and_double_dash() {
        assert_eq!(
            scan(&["x", "!"])[..2],
            [(Got::NonOption("x"), 2), (Got::NonOption("!"), 3)]
        );
        assert_eq!(scan(&["--", "x"])[0], (Got::End, 2));
    }
}
