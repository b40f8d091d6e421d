//! The chains as the data plane knows them: their ids, configs (flags, policy) and the
//! actions their rules' targets become.

use pcn_iptables_common::{
    Action, ChainConfig, MAX_RULES_PER_CHAIN, chain_flag, ct_check, ct_other, ct_port, dccp_option,
    owner, pkt_check, recent, sctp_chunks, tcp_option, verdict,
};
use rustc_hash::FxHashMap;

use super::addrtype::AddressTypes;
use super::fields::{self, ct_tuple, limit, pkttype, statistic, tos};
use super::tables;
use super::types::{Actions, CompileError, Link, Slots};
use crate::ext::{Field, Want};
use crate::model::{
    AddrtypeIface, Limit, Match, Negatable, Policy, Recent, RecentList, Rule, Rules,
    SctpChunkMatch, SctpChunks, Summary, Table, TableName, Tables, Target,
};

pub(super) struct Ctx<'a> {
    pub(super) links: &'a [Link],
    pub(super) address_types: &'a AddressTypes,
}

/// Chain ids: the base chains have fixed ids, user chains follow in table order.
pub(super) fn chain_ids(table: &Table) -> Vec<String> {
    tables::names(table)
}

/// A chain's rules, policy and policy counter (a chain the tables lack: none, ACCEPT, not
/// counted; only the nat table's base chains, entered only once it is loaded).
pub(super) fn chain_of<'a>(table: &'a Table, name: &str) -> (&'a Rules, Option<Policy>, u32) {
    static NONE: Rules = Rules::new();
    match tables::chain(table, name) {
        Some(c) => (&c.rules, c.policy, c.policy_counter),
        None => (&NONE, Some(Policy::Accept), u32::MAX),
    }
}

pub(super) fn policy_verdict(policy: Option<Policy>) -> u32 {
    match policy {
        Some(Policy::Accept) => verdict::ACCEPT,
        Some(Policy::Drop) => verdict::DROP,
        None => verdict::RETURN,
    }
}

/// The actions of every chain, in chain id order (`names`, "" for none), and each chain's
/// first action. `running(id, name)`: where the running generation's actions of chain `id`
/// start and whose they are, if it has the chain: the rules it has too at the chain's ends
/// (the rules a change left alone) keep theirs.
pub(super) fn actions<'a>(
    table: &Table,
    names: &[String],
    running: impl Fn(usize, &str) -> Option<(u32, Slots<'a>)>,
) -> Result<(Actions, Vec<u32>), CompileError> {
    let ids: FxHashMap<&str, u32> = names
        .iter()
        .enumerate()
        .filter(|(_, n)| !n.is_empty())
        .map(|(i, n)| (n.as_str(), i as u32))
        .collect();
    let id_of = |name: &str| -> Result<u32, CompileError> {
        ids.get(name)
            .copied()
            .ok_or_else(|| CompileError::UnknownChain(name.to_string()))
    };
    let mut out = Actions::default();
    let mut bases = Vec::with_capacity(names.len());
    for (id, name) in names.iter().enumerate() {
        bases.push(out.len() as u32);
        if name.is_empty() {
            continue;
        }
        let Some(rules) = tables::chain(table, name).map(|c| &c.rules) else {
            continue;
        };
        if rules.len() > MAX_RULES_PER_CHAIN {
            return Err(CompileError::TooManyRules {
                chain: name.clone(),
                rules: rules.len(),
            });
        }
        let id_in = |to: &str| id_of(&tables::target_name(name, to));
        let kept = running(id, name).map(|(base, slots)| {
            let (head, tail) = slots.same_ends(&rules.counters().collect::<Vec<_>>());
            (base, head, tail, slots.len())
        });
        // A chain stored unchanged and left alone keeps every action, from its summary.
        if let (Some(s), Some((base, head, ..))) = (rules.summary(), kept)
            && head == rules.len()
            && !s.computed
        {
            out.connlimit |= s.connlimit;
            out.local_routes |= s.local_routes;
            let mut jumps = s.jumps.iter().peekable();
            for j in 0..rules.len() as u32 {
                if let Some((_, to)) = jumps.next_if(|(at, _)| *at == j) {
                    out.targets.push((out.len() as u32, id_in(to)?));
                }
                out.keep(base + j);
            }
            continue;
        }
        for (j, rule) in rules.iter().enumerate() {
            let needs = needs(rule);
            out.connlimit |= needs.connlimit;
            out.local_routes |= needs.local_routes;
            let from = kept.and_then(|(base, head, tail, old)| {
                let back = rules.len() - j;
                (j < head)
                    .then_some(base + j as u32)
                    .or_else(|| (back <= tail).then_some(base + (old - back) as u32))
            });
            match from.filter(|_| !needs.computed) {
                Some(from) => {
                    if let Some(Target::Jump(c) | Target::Goto(c)) = &rule.target {
                        out.targets.push((out.len() as u32, id_in(c)?));
                    }
                    out.keep(from);
                }
                None => {
                    let mut a = action(rule, &id_in, &table.tables)?;
                    if a.owner_match & owner::SUPPL_GROUPS != 0 {
                        a.owner_group = out.owner_group(a.owner_gid)?;
                    }
                    out.compute(a)
                }
            }
        }
    }
    Ok((out, bases))
}

/// What a rule's matches ask of the actions.
#[derive(Default)]
struct Needs {
    connlimit: bool,
    local_routes: bool,
    /// Its action is computed by every change, never kept.
    computed: bool,
}

fn needs(rule: &Rule) -> Needs {
    let mut needs = Needs::default();
    for m in &rule.matches {
        match m {
            Match::Connlimit(_) => needs.connlimit = true,
            Match::Addrtype { iface, .. } if *iface != AddrtypeIface::Any => {
                needs.local_routes = true
            }
            // Their slot and settings live with the namespace's lists and tables, not with
            // the rule.
            Match::Recent(_) | Match::Hashlimit(_) => needs.computed = true,
            // The data plane changes their bucket and count, which restart with every table
            // (as xt_limit's and xt_statistic's do): computed anew, so that a kept action is
            // the same wherever it is.
            Match::Limit(_) | Match::Statistic(_) => needs.computed = true,
            // Its range's index is into this generation's list (`owner_group`).
            Match::Owner(o) if o.suppl_groups => needs.computed = true,
            _ => {}
        }
    }
    needs
}

/// The compiler's part of what a stored chain's rules tell of themselves (`model::Summary`).
pub fn summarize(rules: &[Rule], summary: &mut Summary) {
    summary.flags = rule_flags(rules);
    summary.cacheable = cacheable(rules);
    for needs in rules.iter().map(needs) {
        summary.connlimit |= needs.connlimit;
        summary.local_routes |= needs.local_routes;
        summary.computed |= needs.computed;
    }
}

/// A chain's config before its bitmaps: size, actions, policy and flags.
pub(super) fn chain_config(
    rules: &Rules,
    action_base: u32,
    policy: Option<Policy>,
    policy_counter: u32,
    track: u32,
) -> ChainConfig {
    let run = match rules.is_empty() && policy != Some(Policy::Drop) {
        true => 0,
        false => chain_flag::RUN,
    };
    ChainConfig {
        nwords: rules.len().div_ceil(64) as u32,
        action_base,
        policy: policy_verdict(policy),
        policy_counter,
        flags: flags(rules, track) | run,
        ..Default::default()
    }
}

/// `chain_flag`s: CACHEABLE when every packet of a flow meets the same outcome in this chain:
/// no rule looks at a field that can differ between the packets of one flow (length, TTL,
/// TCP flags, the MAC address a frame came from) or has an effect per packet (a log line, a
/// token bucket). From the rules alone, so that the full and incremental builds agree.
/// `track`: TRACK and NAT as the whole generation has them (see `tracks`).
pub(super) fn flags(rules: &Rules, track: u32) -> u32 {
    let cacheable = rules
        .summary()
        .map_or_else(|| cacheable(rules), |s| s.cacheable);
    (cacheable as u32 * chain_flag::CACHEABLE) | track
}

fn cacheable(rules: &[Rule]) -> bool {
    let per_packet = |r: &Rule| {
        r.target
            .as_ref()
            .is_some_and(|t| t.goes_on() || matches!(t, Target::Connmark(_)))
            || r.matches.iter().any(fields::per_packet)
    };
    !rules.iter().any(per_packet)
}

/// The generation's flags: TRACK and NAT (connections are tracked when some rule looks at
/// their state, and when the nat table is loaded: its chains see each connection's first
/// packet, its mappings rewrite the others), OWNER, TCPMSS, TCP_OPTION, SCTP_CHUNKS and
/// DCCP_OPTION when some rule has `-m owner`, `-m tcpmss`, `--tcp-option`, `--chunk-types` or
/// `--dccp-option`, MANGLE when the mangle table is loaded.
pub(super) fn tracks(table: &Table) -> u32 {
    // One walk of every rule's matches: a big ruleset is walked once per change as it is. A
    // chain stored unchanged says what its rules need (`model::Summary::flags`).
    let mut flags = 0;
    for (_, c) in tables::chains(table) {
        flags |= match c.rules.summary() {
            Some(s) => s.flags,
            None => rule_flags(&c.rules),
        };
    }
    let nat = tables::nat(table).is_some();
    [
        (nat, chain_flag::TRACK | chain_flag::NAT),
        (
            tables::loaded(table, TableName::Mangle).is_some(),
            chain_flag::MANGLE,
        ),
        (
            tables::loaded(table, TableName::Raw).is_some(),
            chain_flag::RAW,
        ),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .fold(flags, |flags, (_, bit)| flags | bit)
}

/// What `rules` need of the generation's flags (`tracks`, without the tables').
pub fn rule_flags(rules: &[Rule]) -> u32 {
    let mut flags = 0;
    for rule in rules {
        if matches!(rule.target, Some(Target::Connmark(_))) {
            flags |= chain_flag::TRACK;
        }
        for m in &rule.matches {
            flags |= match m {
                Match::Owner(_) => chain_flag::OWNER,
                Match::Tcpmss(_) => chain_flag::TCPMSS,
                Match::Ports {
                    tcp_option: Some(_),
                    ..
                } => chain_flag::TCP_OPTION,
                Match::Dccp {
                    option: Some(_), ..
                } => chain_flag::DCCP_OPTION,
                Match::Sctp {
                    chunks: Some(_), ..
                } => chain_flag::SCTP_CHUNKS,
                _ => 0,
            } | if fields::tracks(m) {
                chain_flag::TRACK
            } else {
                0
            };
        }
    }
    flags
}

/// A rule's `-m recent` `r` in its action: the list's slot, mask and stamps from `lists`.
fn recent_action(
    action: &mut Action,
    r: &Recent,
    lists: &[RecentList],
) -> Result<(), CompileError> {
    let list = lists
        .iter()
        .find(|l| l.name == r.name)
        .ok_or_else(|| CompileError::Unsupported(format!("-m recent list {} unknown", r.name)))?;
    action.recent_op = r.op;
    action.recent_flags = [
        (r.invert, recent::flag::INVERT),
        (r.rttl, recent::flag::TTL),
        (r.reap, recent::flag::REAP),
        (r.dest, recent::flag::DEST),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .fold(0, |f, (_, bit)| f | bit);
    action.recent_list = list.slot;
    action.recent_mask = list.mask.to_be_bytes();
    action.recent_stamp_mask = list.stamp_mask;
    action.recent_hitcount = r.hitcount as u16;
    action.recent_seconds = r.seconds;
    Ok(())
}

/// A rule's `--chunk-types` in its action (its flag checks name their types by libxt_sctp's
/// places in its table of names: see `sctp_chunks::FLAG_TYPES`).
fn sctp_chunks_action(action: &mut Action, c: &Negatable<SctpChunks>) -> Result<(), CompileError> {
    let kind = match c.value.kind {
        SctpChunkMatch::Any => sctp_chunks::flag::ANY,
        SctpChunkMatch::All => sctp_chunks::flag::ALL,
        SctpChunkMatch::Only => sctp_chunks::flag::ONLY,
    };
    let checks: Vec<_> = c
        .value
        .flags
        .iter()
        .map(|f| (f.chunk, f.flag, f.mask))
        .collect();
    sctp_chunks::fill(action, kind, c.negated, c.value.map, &checks)
        .map_err(|t| CompileError::Unsupported(format!("--chunk-types flags of chunk type {t}")))
}

/// Rule `rule`'s action; `named`: the namespace's recent lists and hashlimit tables.
pub(super) fn action(
    rule: &Rule,
    id_of: &dyn Fn(&str) -> Result<u32, CompileError>,
    named: &Tables,
) -> Result<Action, CompileError> {
    let mut action = Action {
        counter: rule.counter,
        ..Default::default()
    };
    (action.verdict, action.chain) = match &rule.target {
        None => (verdict::CONTINUE, 0),
        Some(Target::Accept) => (verdict::ACCEPT, 0),
        Some(Target::Drop) => (verdict::DROP, 0),
        Some(Target::Return) => (verdict::RETURN, 0),
        Some(Target::Jump(c)) => (verdict::JUMP, id_of(c)?),
        Some(Target::Goto(c)) => (verdict::GOTO, id_of(c)?),
        Some(t) => {
            let ext = crate::ext::of_target(t).expect("a target extension");
            (ext.action(t, &mut action), 0)
        }
    };
    if let Some(l) = limit(rule)? {
        // xt_limit's avg counts 1/10000 s; the bucket starts full.
        action.limit_interval_ns = l.avg as u64 * (1_000_000_000 / Limit::SCALE as u64);
        action.limit_burst = l.burst;
    }
    if let Some(t) = pkttype(rule)? {
        action.pkt_check = pkt_check::TYPE | if t.negated { pkt_check::INVERT } else { 0 };
        action.pkt_type = t.value;
    }
    if let Some(m) = fields::mark(rule, Field::Mark)? {
        action.pkt_check |= pkt_check::MARK | if m.negated { pkt_check::MARK_INVERT } else { 0 };
        (action.mark, action.mark_mask) = (m.value.value, m.value.mask);
    }
    if let Some(m) = fields::mark(rule, Field::Connmark)? {
        action.pkt_check |= pkt_check::CONNMARK
            | if m.negated {
                pkt_check::CONNMARK_INVERT
            } else {
                0
            };
        (action.connmark, action.connmark_mask) = (m.value.value, m.value.mask);
    }
    if let Some(o) = fields::owner(rule)? {
        action.pkt_check |= pkt_check::OWNER;
        let parts = [
            (o.uid.map(|r| (r.negated, r.value)), owner::UID),
            (o.gid.map(|r| (r.negated, r.value)), owner::GID),
            (o.socket.map(|s| (s.negated, (0, 0))), owner::SOCKET),
        ];
        for (part, bit) in parts {
            let Some((negated, range)) = part else {
                continue;
            };
            action.owner_match |= bit;
            action.owner_invert |= if negated { bit } else { 0 };
            match bit {
                owner::UID => action.owner_uid = [range.0, range.1],
                owner::GID => action.owner_gid = [range.0, range.1],
                _ => {}
            }
        }
        if o.suppl_groups && action.owner_match & owner::GID != 0 {
            action.owner_match |= owner::SUPPL_GROUPS;
        }
    }
    if let Some(set) = tos(rule) {
        action.pkt_check |= pkt_check::TOS;
        action.tos_set = set;
    }
    if let Some(s) = statistic(rule)? {
        (action.stat_mode, action.stat_value) = if s.value.nth {
            (pcn_iptables_common::statistic::NTH, s.value.every + 1)
        } else {
            (pcn_iptables_common::statistic::RANDOM, s.value.probability)
        };
        action.stat_invert = s.negated as u8;
        action.stat_packet = s.value.packet;
    }
    if let Some(r) = fields::recent(rule)? {
        recent_action(&mut action, &r, &named.recent)?;
    }
    if let Some(t) = fields::time(rule)? {
        action.time_flags = pcn_iptables_common::time::flag::ON | t.flags;
        action.time_weekdays = t.weekdays;
        action.time_monthdays = t.monthdays;
        action.time_date = t.date;
        action.time_daytime = t.daytime;
    }
    action.hotdrop = fields::hotdrops(rule);
    if let Some(t) = fields::tcpmss(rule)? {
        use pcn_iptables_common::tcpmss::flag;
        action.tcpmss_flags = flag::ON | if t.negated { flag::INVERT } else { 0 };
        action.tcpmss_range = [t.value.first, t.value.last];
    }
    if let Some(Want::Ports {
        proto,
        sport,
        dport,
        dccp_types,
        dccp_option,
    }) = fields::proto_ports(rule)?
    {
        let bits = [
            (pkt_check::PORTS_SPORT, pkt_check::PORTS_SPORT_INVERT),
            (pkt_check::PORTS_DPORT, pkt_check::PORTS_DPORT_INVERT),
        ];
        for (i, (p, (on, invert))) in [sport, dport].iter().zip(bits).enumerate() {
            let Some(p) = p else { continue };
            action.ports_flags |= on | if p.negated { invert } else { 0 };
            action.ports_range[i] = [p.value.first, p.value.last];
        }
        if let Some(t) = dccp_types {
            action.ports_flags |= pkt_check::PORTS_TYPES
                | if t.negated {
                    pkt_check::PORTS_TYPES_INVERT
                } else {
                    0
                };
            action.dccp_types = t.value;
        }
        if let Some(o) = dccp_option {
            action.dccp_option = o.value;
            action.dccp_option_flags = dccp_option::flag::ON
                | if o.negated {
                    dccp_option::flag::INVERT
                } else {
                    0
                };
        }
        action.ports_proto = proto;
    }
    let bits = [
        (pkt_check::ADDR_SRC, pkt_check::ADDR_SRC_INVERT),
        (pkt_check::ADDR_DST, pkt_check::ADDR_DST_INVERT),
    ];
    for (i, (n, (on, invert))) in fields::masked(rule).into_iter().zip(bits).enumerate() {
        let Some(n) = n else { continue };
        action.addr_check |= on | if n.negated { invert } else { 0 };
        action.addr_masked[i] = [n.value.addr.octets(), n.value.mask.octets()];
    }
    if let Some(o) = fields::tcp_option(rule)? {
        action.tcp_option = o.value;
        action.tcp_option_flags = tcp_option::flag::ON
            | if o.negated {
                tcp_option::flag::INVERT
            } else {
                0
            };
    }
    if let Some(c) = fields::sctp_chunks(rule)? {
        sctp_chunks_action(&mut action, &c)?;
    }
    if let Some((flags, types)) = fields::addrtype_iface(rule)? {
        (action.addrtype_flags, action.addrtype_types) = (flags, types);
    }
    if let Some(s) = fields::spi(rule)? {
        action.spi_flags = pkt_check::SPI | if s.negated { pkt_check::SPI_INVERT } else { 0 };
        action.spi_range = [s.value.first, s.value.last];
    }
    if let Some(h) = fields::hashlimit(rule)? {
        let table = named
            .hashlimit
            .iter()
            .find(|t| t.config.name == h.name)
            .ok_or_else(|| {
                CompileError::Unsupported(format!("-m hashlimit table {} unknown", h.name))
            })?;
        action.hashlimit_table = table.slot + 1;
        action.hashlimit_mode = h.mode as u8;
    }
    if let Some(c) = fields::connlimit(rule)? {
        use pcn_iptables_common::connlimit::flag;
        action.connlimit_flags = flag::ON
            | if c.invert { flag::INVERT } else { 0 }
            | if c.daddr { flag::DADDR } else { 0 };
        action.connlimit_limit = c.limit;
        let mask = u32::MAX
            .checked_shl(32 - c.prefix.min(32) as u32)
            .unwrap_or(0);
        action.connlimit_mask = mask.to_be_bytes();
    }
    if let Some(Want::CtTuple {
        addrs,
        states,
        other,
    }) = ct_tuple(rule)?
    {
        if let Some(p) = other.proto {
            action.ct_other |= ct_other::PROTO | if p.negated { ct_other::PROTO_INVERT } else { 0 };
            action.ct_proto = p.value;
        }
        if let Some(reply) = other.reply {
            action.ct_other |= ct_other::DIR | if reply { ct_other::REPLY } else { 0 };
        }
        if let Some(st) = other.status {
            action.ct_other |= ct_other::STATUS
                | if st.negated {
                    ct_other::STATUS_INVERT
                } else {
                    0
                };
            action.ct_status_mask = st.value;
        }
        if let Some(e) = other.expire {
            action.ct_other |= ct_other::EXPIRES
                | if e.negated {
                    ct_other::EXPIRES_INVERT
                } else {
                    0
                };
            action.ct_expires = [e.value.0, e.value.1];
        }
        for (i, p) in other.ports.iter().enumerate() {
            let Some(p) = p else { continue };
            action.ct_ports |= (1 | (p.negated as u8) << ct_port::INVERT_SHIFT) << i;
            action.ct_port_range[i] = [p.value.0, p.value.1];
        }
        for (i, a) in addrs.iter().enumerate() {
            let Some(a) = a else { continue };
            action.ct_checks |= 1 << i;
            action.ct_invert |= (a.negated as u8) << i;
            action.ct_addr[i] = a.value.addr.to_be_bytes();
            action.ct_mask[i] = a.value.mask.to_be_bytes();
        }
        if states {
            action.ct_checks |= ct_check::STATE;
        }
    }
    action.restart();
    Ok(action)
}
