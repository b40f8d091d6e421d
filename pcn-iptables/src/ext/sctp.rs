//! libxt_sctp: `[!] --source-port|--sport port[:port]`, `[!] --destination-port|--dport
//! port[:port]` and `[!] --chunk-types any|all|only chunktype[:flags][,...]` of SCTP packets
//! (`-p sctp` loads it).
//!
//! `--chunk-types` keeps libxt_sctp's ways: names in any case (no numbers), `ALL` and `NONE`
//! only alone, empty names between commas skipped; flag letters from the type's row of its
//! table (upper case: set, lower case: clear; `-` names bit 7 of any type), merged per type
//! into at most 4 checks; a check names its type by the place of the name in the table, which
//! is the type itself only up to SHUTDOWN_COMPLETE (so I_DATA's letters check nothing and
//! are not shown, as with iptables). The data plane walks the packet's chunks where a rule
//! has the option (`pcn_iptables_common::sctp_chunks`).

use std::fmt::Write as _;

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, bang, entry, inv};
use crate::error::Result;
use crate::model::{Match, Negatable, PortRange, SctpChunkFlags, SctpChunkMatch, SctpChunks};
use crate::xtables::{param, value::xtables_uint};
use pcn_iptables_common::IPPROTO_SCTP;

pub struct Sctp;

pub const ENTRIES: [Entry; 5] = [
    entry("source-port", 0, true, 0),
    entry("sport", 0, true, 0),
    entry("destination-port", 1, true, 0),
    entry("dport", 1, true, 0),
    entry("chunk-types", 2, true, 0),
];

impl Extension for Sctp {
    fn hotdrops(&self, _: &Match) -> u8 {
        pcn_iptables_common::hotdrop::SCTP
    }

    fn name(&self) -> &'static str {
        "sctp"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    /// An old-style parse: its own messages for an option given twice.
    fn generic_checks(&self) -> bool {
        false
    }

    fn init(&self) -> Value {
        Value::Match(Match::Sctp {
            sport: None,
            dport: None,
            chunks: None,
        })
    }

    fn parse(
        &self,
        v: &mut Value,
        id: u8,
        arg: &str,
        invert: bool,
        cx: &mut Context,
    ) -> Result<()> {
        let Match::Sctp {
            sport,
            dport,
            chunks,
        } = v.as_match()
        else {
            unreachable!("an sctp instance holds an sctp match");
        };
        let (slot, long_name) = match id {
            0 => (sport, "source-port"),
            1 => (dport, "destination-port"),
            _ => {
                if chunks.is_some() {
                    return Err(param("Only one `--chunk-types' allowed"));
                }
                // The list is the next argument.
                let list =
                    (cx.next_arg)().ok_or_else(|| param("--chunk-types requires two args"))?;
                *chunks = Some(Negatable {
                    value: parse_chunks(arg, &list)?,
                    negated: invert,
                });
                return Ok(());
            }
        };
        if slot.is_some() {
            return Err(param(format!("Only one `--{long_name}' allowed")));
        }
        *slot = Some(Negatable {
            value: ports(cx.db, arg)?,
            negated: invert,
        });
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        if let Match::Sctp {
            sport,
            dport,
            chunks,
        } = m
        {
            save_ports([sport, dport], out);
            if let Some(c) = chunks {
                let _ = write!(out, "{} --chunk-types", bang(c.negated));
                print_chunks(&c.value, false, out);
            }
        }
    }

    fn print(&self, m: &Match, show: &Show, out: &mut String) {
        out.push_str(" sctp");
        if let Match::Sctp {
            sport,
            dport,
            chunks,
        } = m
        {
            print_ports([sport, dport], "sctp", show, out);
            if let Some(c) = chunks {
                out.push_str(bang(c.negated));
                print_chunks(&c.value, show.numeric, out);
            }
        }
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        let Match::Sctp {
            sport,
            dport,
            chunks,
        } = m
        else {
            return None;
        };
        match field {
            Field::Ports => Some(Want::Ports {
                proto: IPPROTO_SCTP,
                sport: sport.clone(),
                dport: dport.clone(),
                dccp_types: None,
                dccp_option: None,
            }),
            Field::SctpChunks => chunks.clone().map(Want::SctpChunks),
            _ => None,
        }
    }

    /// The ports are not in the flow cache's key, nor are the chunks.
    fn per_packet(&self, _: &Match) -> bool {
        true
    }
}

/// libxt_sctp's `sctp_chunk_names`, in its order: name, type, and the flag letters of bits 7
/// down to 0 (`-`: none; yet `-` itself names bit 7, the first one found).
const CHUNKS: [(&str, u8, &[u8; 8]); 22] = [
    ("DATA", 0, b"----IUBE"),
    ("INIT", 1, b"--------"),
    ("INIT_ACK", 2, b"--------"),
    ("SACK", 3, b"--------"),
    ("HEARTBEAT", 4, b"--------"),
    ("HEARTBEAT_ACK", 5, b"--------"),
    ("ABORT", 6, b"-------T"),
    ("SHUTDOWN", 7, b"--------"),
    ("SHUTDOWN_ACK", 8, b"--------"),
    ("ERROR", 9, b"--------"),
    ("COOKIE_ECHO", 10, b"--------"),
    ("COOKIE_ACK", 11, b"--------"),
    ("ECN_ECNE", 12, b"--------"),
    ("ECN_CWR", 13, b"--------"),
    ("SHUTDOWN_COMPLETE", 14, b"-------T"),
    ("I_DATA", 64, b"----IUBE"),
    ("RE_CONFIG", 130, b"--------"),
    ("PAD", 132, b"--------"),
    ("ASCONF", 193, b"--------"),
    ("ASCONF_ACK", 128, b"--------"),
    ("FORWARD_TSN", 192, b"--------"),
    ("I_FORWARD_TSN", 194, b"--------"),
];

/// xt_sctp's `XT_NUM_SCTP_FLAGS`.
const MAX_FLAG_CHECKS: usize = pcn_iptables_common::sctp_chunks::MAX_CHECKS;

fn has(map: &[u64; 4], t: u8) -> bool {
    map[(t >> 6) as usize] & (1 << (t & 63)) != 0
}

/// libxt_sctp's `parse_sctp_chunks`: the match type, then the list (`parse_sctp_chunk`).
fn parse_chunks(kind: &str, list: &str) -> Result<SctpChunks> {
    let kind = match kind.to_ascii_uppercase().as_str() {
        "ANY" => SctpChunkMatch::Any,
        "ALL" => SctpChunkMatch::All,
        "ONLY" => SctpChunkMatch::Only,
        _ => {
            return Err(param(
                "Match type has to be one of \"ALL\", \"ANY\" or \"ONLY\"",
            ));
        }
    };
    let mut chunks = SctpChunks {
        kind,
        map: [0; 4],
        flags: Vec::new(),
    };
    if list.eq_ignore_ascii_case("ALL") {
        chunks.map = [u64::MAX; 4];
        return Ok(chunks);
    }
    if list.eq_ignore_ascii_case("NONE") {
        return Ok(chunks);
    }
    // strtok: empty names between commas are skipped.
    for token in list.split(',').filter(|t| !t.is_empty()) {
        let (name, letters) = token.split_once(':').unwrap_or((token, ""));
        let i = CHUNKS
            .iter()
            .position(|(n, ..)| n.eq_ignore_ascii_case(name))
            .ok_or_else(|| param(format!("Unknown sctp chunk `{name}'")))?;
        let (_, t, valid) = CHUNKS[i];
        chunks.map[(t >> 6) as usize] |= 1 << (t & 63);
        for letter in letters.bytes() {
            let bit = valid
                .iter()
                .position(|&v| v == letter.to_ascii_uppercase())
                .map(|p| 7 - p)
                .ok_or_else(|| param(format!("Invalid flags for chunk type {i}")))?;
            flag_check(&mut chunks.flags, i as u8, bit, letter.is_ascii_uppercase())?;
        }
    }
    Ok(chunks)
}

/// libxt_sctp's `save_chunk_flag_info`: bit `bit` of type `chunk`'s check, which must be set
/// when `set` (a clear one stays as an earlier letter set it).
fn flag_check(flags: &mut Vec<SctpChunkFlags>, chunk: u8, bit: usize, set: bool) -> Result<()> {
    let f = match flags.iter().position(|f| f.chunk == chunk) {
        Some(i) => &mut flags[i],
        None if flags.len() == MAX_FLAG_CHECKS => {
            return Err(param(
                "Number of chunk types with flags exceeds currently allowed limit. Increasing \
                 this limit involves changing IPT_NUM_SCTP_FLAGS and recompiling both the kernel \
                 space and user space modules",
            ));
        }
        None => {
            flags.push(SctpChunkFlags {
                chunk,
                flag: 0,
                mask: 0,
            });
            flags.last_mut().expect("just pushed")
        }
    };
    f.mask |= 1 << bit;
    if set {
        f.flag |= 1 << bit;
    }
    Ok(())
}

/// libxt_sctp's `print_chunks`: the match type, then `NONE`, `ALL`, or each type of the map
/// in order (by name, or `0x%04X` when numeric) with its flags.
fn print_chunks(c: &SctpChunks, numeric: bool, out: &mut String) {
    out.push_str(match c.kind {
        SctpChunkMatch::Any => " any",
        SctpChunkMatch::All => " all",
        SctpChunkMatch::Only => " only",
    });
    if c.map == [0; 4] {
        out.push_str(" NONE");
        return;
    }
    if c.map == [u64::MAX; 4] {
        out.push_str(" ALL");
        return;
    }
    let mut sep = ' ';
    for t in (0..=255u8).filter(|&t| has(&c.map, t)) {
        out.push(sep);
        sep = ',';
        match CHUNKS.iter().find(|(_, ty, _)| *ty == t) {
            _ if numeric => {
                let _ = write!(out, "0x{t:04X}");
            }
            Some((name, ..)) => out.push_str(name),
            None => {}
        }
        for f in c.flags.iter().filter(|f| f.chunk == t) {
            print_flags(t, f, out);
        }
    }
}

/// libxt_sctp's `print_chunk_flags`: from bit 7 down, each checked bit's letter, upper case
/// when it must be set (the letters of the table's row `t`, as libxt_sctp takes them).
fn print_flags(t: u8, f: &SctpChunkFlags, out: &mut String) {
    let Some((_, _, letters)) = CHUNKS.get(t as usize) else {
        return;
    };
    if f.mask != 0 {
        out.push(':');
    }
    for bit in (0..8).rev().filter(|b| f.mask & (1 << b) != 0) {
        let letter = letters[7 - bit] as char;
        out.push(match f.flag & (1 << bit) {
            0 => letter.to_ascii_lowercase(),
            _ => letter,
        });
    }
}

pub(super) type Ports<'a> = [&'a Option<Negatable<PortRange>>; 2];

/// libxt_sctp's and libxt_dccp's save of the source and destination ranges given.
pub(super) fn save_ports(ports: Ports, out: &mut String) {
    for (option, p) in ["sport", "dport"].into_iter().zip(ports) {
        let Some(p) = p else { continue };
        let _ = write!(out, "{} --{option} {}", bang(p.negated), p.value.first);
        if p.value.first != p.value.last {
            let _ = write!(out, ":{}", p.value.last);
        }
    }
}

/// Their `print_ports`, services of `proto` by name unless numeric; a whole range not
/// negated is not shown.
pub(super) fn print_ports(ports: Ports, proto: &str, show: &Show, out: &mut String) {
    let port = |p: u16| match show.db.service_name(p, proto).filter(|_| !show.numeric) {
        Some(name) => name.to_string(),
        None => p.to_string(),
    };
    for (label, p) in ["spt", "dpt"].into_iter().zip(ports) {
        let Some(p) = p.as_ref() else { continue };
        if p.value.first == 0 && p.value.last == u16::MAX && !p.negated {
            continue;
        }
        let (first, last) = (port(p.value.first), port(p.value.last));
        let _ = match p.value.first == p.value.last {
            true => write!(out, " {label}:{}{first}", inv(p.negated)),
            false => write!(out, " {label}s:{}{first}:{last}", inv(p.negated)),
        };
    }
}

/// libxt_sctp's `parse_sctp_ports`: as tcp's, each port an sctp service or a number
/// (`xtables_parse_port`).
fn ports(db: &crate::xtables::netdb::NameDb, text: &str) -> Result<PortRange> {
    super::tcp::port_range(text, |s| {
        db.service_port(s, "sctp")
            .or_else(|| xtables_uint(s, 0, u16::MAX as u64).map(|p| p as u16))
    })
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "sctp match options\n",
    "[!] --source-port port[:port]                          match source port(s)\n",
    " --sport ...\n",
    "[!] --destination-port port[:port]                     match destination port(s)\n",
    " --dport ...\n",
    "[!] --chunk-types (all|any|none) (chunktype[:flags])+\tmatch if all, any or none of\n",
    "\t\t\t\t\t\t        chunktypes are present\n",
    "chunktypes - DATA INIT INIT_ACK SACK HEARTBEAT HEARTBEAT_ACK ABORT SHUTDOWN SHUTDOWN_ACK ERROR COOKIE_ECHO COOKIE_ACK ECN_ECNE ECN_CWR SHUTDOWN_COMPLETE ASCONF ASCONF_ACK FORWARD_TSN ALL NONE\n",
);
