//! The one way a change goes from a command to the running data plane: counter slots for new
//! rules, compile, commit. Used by single commands, restore and the benchmarks.

use std::borrow::Cow;
use std::collections::HashMap;

use rustc_hash::FxHashSet;

use pcn_iptables_common::{Counter, MAX_COUNTERS, chain_flag};

use crate::{
    compile::{self, Link, Program},
    dataplane::{self, Dataplane, State},
    error::{Error, OTHER_PROBLEM, RESOURCE_PROBLEM, Result},
    model::{FIRST_RULE_COUNTER, Table, TableName},
    ruleset,
};

/// Hands out counter slots no rule of the running ruleset uses, so that the running
/// generation never counts into a slot the new one starts from.
pub struct Slots {
    /// A bit per slot below MAX_COUNTERS: a set of 10,000 hashed took 0.2 ms to build.
    used: Vec<u64>,
    next: u32,
    /// Slots handed out, with the counts they start from.
    pub fresh: Vec<(u32, Counter)>,
}

impl Slots {
    pub fn new(running: &Table) -> Self {
        let mut used = vec![0u64; MAX_COUNTERS.div_ceil(64) as usize];
        for slot in running.counters() {
            if let Some(w) = used.get_mut(slot as usize / 64) {
                *w |= 1 << (slot % 64);
            }
        }
        Slots {
            used,
            next: FIRST_RULE_COUNTER,
            fresh: Vec::new(),
        }
    }

    pub fn alloc(&mut self, start: Counter) -> u32 {
        let used = |s: u32| {
            self.used
                .get(s as usize / 64)
                .is_some_and(|w| w & (1 << (s % 64)) != 0)
        };
        while used(self.next) {
            self.next += 1;
        }
        self.fresh.push((self.next, start));
        self.next += 1;
        self.next - 1
    }

    /// Gives the nat and mangle tables that `table` carries counter slots of their own where
    /// they have none yet (stored by a version before they counted: see
    /// `Tables::counted_in`).
    pub fn count_tables(&mut self, table: &mut Table) {
        let tables = &mut table.tables;
        for name in TableName::COUNTED {
            if tables.counted(name).is_some() || !tables.others.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let counted = tables.counted_in(name, &mut |start| self.alloc(start));
            tables.set_counted(name, counted);
        }
    }

    /// Sets a base chain's policy counters (slots that never move) when the new ruleset goes
    /// live.
    pub fn set_policy(&mut self, table: &Table, chain: &str, start: Counter) {
        if let Some(c) = table.chain(chain).filter(|c| c.policy.is_some()) {
            self.fresh.push((c.policy_counter, start));
        }
    }

    /// Sets slots to zero when the new ruleset goes live (`-Z` inside a restore). As libiptc
    /// zeroes only the counters it read from the kernel, the slots already set (new rules,
    /// policies the restore set) keep their counts.
    pub fn zero(&mut self, slots: impl IntoIterator<Item = u32>) {
        let set: FxHashSet<u32> = self.fresh.iter().map(|&(slot, _)| slot).collect();
        self.fresh.extend(
            slots
                .into_iter()
                .filter(|slot| !set.contains(slot))
                .map(|slot| (slot, Counter::default())),
        );
    }

    /// A reader of the counts the slots will have when the new ruleset goes live: what they
    /// are set to, else what `running` reads.
    pub fn reader<'a>(
        &self,
        running: &'a dyn Fn(u32) -> (u64, u64),
    ) -> impl Fn(u32) -> (u64, u64) + 'a {
        // The last setting of a slot wins, as when they are written.
        let set: HashMap<u32, Counter> = self.fresh.iter().copied().collect();
        move |slot| match set.get(&slot) {
            Some(c) => (c.packets, c.bytes),
            None => running(slot),
        }
    }
}

/// The namespace's interfaces and address types, which compiling needs besides the rules.
fn inputs() -> Result<(Vec<Link>, compile::AddressTypes)> {
    let links = dataplane::links()?;
    let routes = dataplane::routes::local_routes()?;
    Ok((links, compile::AddressTypes::new(&routes)))
}

fn check_slots(slots: &Slots) -> Result<()> {
    if slots.next > MAX_COUNTERS {
        return Err(Error::plain(
            RESOURCE_PROBLEM,
            format!("too many rules: pcn-iptables has {MAX_COUNTERS} counter slots"),
        ));
    }
    Ok(())
}

/// Compiles `table` (on `base`, the running generation, when given).
fn program(
    table: &Table,
    inputs: &(Vec<Link>, compile::AddressTypes),
    base: Option<&compile::Base>,
) -> Result<Program> {
    let _t = dataplane::Timer("compile", std::time::Instant::now());
    compile::program(table, &inputs.0, &inputs.1, base).map_err(|e| match e {
        // A limit of the data plane's, like the counter slots'.
        compile::CompileError::TooManyGroupRanges => Error::plain(RESOURCE_PROBLEM, e.to_string()),
        _ => Error::versioned(OTHER_PROBLEM, e.to_string()),
    })
}

/// Compiles `table` for the namespace's interfaces: all that iptables-restore's `--test`
/// checks.
pub fn compile(table: &Table, slots: &Slots) -> Result<()> {
    check_slots(slots)?;
    let table = with_lists(table)?;
    program(&table, &inputs()?, None).map(drop)
}

/// `-m owner` needs the data plane to read the socket's owner, which a kernel locked down for
/// confidentiality (or without BTF) does not allow.
/// The compiler flagged the generation (`chain_flag::OWNER`, on every chain) if a rule has it.
fn check_owner(dp: &Dataplane, p: &Program) -> Result<()> {
    let owner = p
        .chains
        .first()
        .is_some_and(|c| c.flags & chain_flag::OWNER != 0);
    if owner && !dataplane::reads_socket_owners(dp.dir()) {
        return Err(Error::versioned(
            OTHER_PROBLEM,
            "-m owner is not supported by pcn-iptables on this kernel: BPF programs may not \
             read the socket's owner here (lockdown, or no BTF)",
        ));
    }
    Ok(())
}

/// Whether mangle's OUTPUT, or a chain it reaches, has a rule that can change the packet's
/// mark (`-j MARK`, `-j CONNMARK --restore-mark`), and one that can change its TOS (`-j TOS`,
/// `-j DSCP`): ipt_mangle_out then routes the packet again by the new ones.
pub fn mangle_output_changes(table: &Table) -> (bool, bool) {
    chain_changes(table, TableName::Mangle, "OUTPUT")
}

/// Whether a PREROUTING chain (raw's, mangle's, nat's), or a chain one reaches, has a rule
/// that can change the packet's mark, and one that can change its TOS: the routing decision
/// of a packet that comes in (ip_route_input, made at XDP) selects by what they leave.
pub fn prerouting_changes(table: &Table) -> (bool, bool) {
    [TableName::Raw, TableName::Mangle, TableName::Nat]
        .into_iter()
        .map(|name| chain_changes(table, name, "PREROUTING"))
        .fold((false, false), |a, b| (a.0 || b.0, a.1 || b.1))
}

/// Whether `start` of table `name`, or a chain it reaches, has a rule that can change the
/// packet's mark (`-j MARK`, `-j CONNMARK --restore-mark`), and one that can change its TOS
/// (`-j TOS`, `-j DSCP`).
fn chain_changes(table: &Table, name: TableName, start: &str) -> (bool, bool) {
    use crate::model::Target;
    use pcn_iptables_common::conntrack::connmark_mode;
    let Some(rules) = table
        .tables
        .others
        .iter()
        .find_map(|(n, t)| (*n == name).then_some(t))
    else {
        return (false, false);
    };
    let (mut mark, mut tos) = (false, false);
    let mut todo = vec![start];
    let mut seen: Vec<&str> = Vec::new();
    while let Some(name) = todo.pop() {
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        let Some(chain) = rules.chain(name) else {
            continue;
        };
        for rule in &chain.rules {
            match &rule.target {
                Some(Target::Mark(_)) => mark = true,
                Some(Target::Connmark(c)) if c.mode == connmark_mode::RESTORE => mark = true,
                Some(Target::Tos(_) | Target::Dscp(_)) => tos = true,
                Some(Target::Jump(to) | Target::Goto(to)) => todo.push(to),
                _ => {}
            }
        }
    }
    (mark, tos)
}

/// mangle OUTPUT's routing again (see `reroute` in the data plane) asks bpf_fib_lookup, which
/// takes a mark only from Linux 6.10 and answers only where lo forwards. Where the new mark or
/// TOS could change the route (routing rules select by them) and the lookup cannot be made,
/// the rules that change them there are refused. So is a mark set in PREROUTING where routing
/// rules select by the mark and the lookup cannot take it: the routing decision at XDP would
/// not see it, while the stack's own (with the mark on the skb) does. (The TOS reaches
/// bpf_fib_lookup on every kernel.)
fn check_reroute(dp: &Dataplane, table: &Table) -> Result<()> {
    let (mark, tos) = mangle_output_changes(table);
    let (pre_mark, _) = prerouting_changes(table);
    if !mark && !tos && !pre_mark {
        return Ok(());
    }
    // Unknown routing rules count as rules by both.
    let (by_mark, by_tos) = dataplane::rule_selectors().unwrap_or((true, true));
    let (mark, tos, pre_mark) = (mark && by_mark, tos && by_tos, pre_mark && by_mark);
    if (mark || pre_mark) && !dataplane::fib_lookup_takes_mark(dp.dir()) {
        let (chain, what) = match mark {
            true => ("mangle OUTPUT", "routing the packet again by its new mark"),
            false => ("PREROUTING", "the routing decision by its mark"),
        };
        return Err(Error::versioned(
            OTHER_PROBLEM,
            format!(
                "a mark set in {chain} is not supported by pcn-iptables on this kernel while \
                 routing rules select by fwmark: {what} needs Linux 6.10 or newer \
                 (BPF_FIB_LOOKUP_MARK)"
            ),
        ));
    }
    if (mark || tos) && !dataplane::lo_forwards() {
        return Err(Error::versioned(
            OTHER_PROBLEM,
            "a mark or TOS set in mangle OUTPUT is not supported by pcn-iptables while routing \
             rules select by fwmark or tos and lo does not forward: routing the packet again \
             needs net.ipv4.conf.lo.forwarding=1",
        ));
    }
    Ok(())
}

/// `table` with the recent lists and hashlimit tables its rules name, given those it carries
/// from the running ruleset; borrowed when they stay the same.
fn with_lists(table: &Table) -> Result<Cow<'_, Table>> {
    let lists = ruleset::recent::lists(&table.tables.recent, table)?;
    let hashlimit = ruleset::hashlimit::tables(&table.tables.hashlimit, table)?;
    if lists == table.tables.recent && hashlimit == table.tables.hashlimit {
        return Ok(Cow::Borrowed(table));
    }
    let mut owned = table.clone();
    owned.tables.recent = lists;
    owned.tables.hashlimit = hashlimit;
    Ok(Cow::Owned(owned))
}

/// Compiles `table` for the namespace's interfaces, on the running generation `running`
/// where that pays, and makes it the running ruleset. `old`: how to tell the rules the
/// change left alone, when not by the running table (see `compile::Old`).
pub fn install(
    dp: &Dataplane,
    running: &State,
    old: Option<compile::Old>,
    table: &Table,
    slots: &Slots,
) -> Result<()> {
    check_slots(slots)?;
    let lists = (table.tables.recent.clone(), table.tables.hashlimit.clone());
    let table = &*with_lists(table)?;
    let inputs = inputs()?;
    let base = running.base(old);
    let p = program(table, &inputs, base.as_ref())?;
    check_owner(dp, &p)?;
    check_reroute(dp, table)?;
    if dp.commit(table, &p, &inputs.0, &slots.fresh, running, &lists)? {
        return Ok(());
    }
    // The running generation's maps could not take it: all anew.
    let p = program(table, &inputs, None)?;
    dp.commit(table, &p, &inputs.0, &slots.fresh, running, &lists)
        .map_err(Error::from)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_run_out_with_an_error() {
        let mut slots = Slots::new(&Table::default());
        let first = slots.alloc(Counter::default());
        assert_eq!(first, FIRST_RULE_COUNTER);
        assert!(check_slots(&slots).is_ok());
        slots.next = MAX_COUNTERS;
        assert!(check_slots(&slots).is_ok());
        slots.alloc(Counter::default());
        let err = check_slots(&slots).unwrap_err();
        assert_eq!(err.code, RESOURCE_PROBLEM);
        assert!(
            err.message.contains("65536 counter slots"),
            "{}",
            err.message
        );
    }

    /// More distinct `--suppl-groups` ranges than a generation holds: a resource problem,
    /// as the other limits of the data plane.
    #[test]
    fn suppl_groups_ranges_run_out_with_an_error() {
        let inputs = (Vec::new(), compile::AddressTypes::default());
        let mut table = Table::default();
        for i in 0..=pcn_iptables_common::owner::GROUP_RANGES {
            let line = format!("-A OUTPUT -m owner --gid-owner {i} --suppl-groups");
            let (_, rule) = nat_rule(&line, 10 + i as u32);
            table.chain_mut("OUTPUT").unwrap().rules.push(rule);
            let fits = i < pcn_iptables_common::owner::GROUP_RANGES;
            assert_eq!(program(&table, &inputs, None).is_ok(), fits, "{i}");
        }
        let err = program(&table, &inputs, None).err().unwrap();
        assert_eq!(err.code, RESOURCE_PROBLEM);
        assert!(err.message.contains("--suppl-groups"), "{}", err.message);
    }

    fn nat_rule(line: &str, counter: u32) -> (String, crate::model::Rule) {
        let words = crate::syntax::split_words(line).unwrap();
        let (chain, mut rule) = crate::syntax::parse_rule_line(&words).unwrap();
        rule.counter = counter;
        (chain, rule)
    }

    #[test]
    fn nat_counts_in_slots_of_its_own() {
        use crate::model::TableName;
        // A nat table stored before nat counted: its policies had the built-in slots 0..4.
        let mut table = Table::default();
        table
            .tables
            .set(TableName::Nat, Table::builtin(TableName::Nat));
        table.tables.set_counts(
            TableName::Nat,
            vec![(
                "OUTPUT".into(),
                Counter {
                    packets: 7,
                    bytes: 8,
                },
            )],
        );
        assert!(table.tables.nat().is_none());
        let mut slots = Slots::new(&table);
        slots.count_tables(&mut table);
        let nat = table.tables.nat().expect("nat counts now").clone();
        let policies: Vec<u32> = nat.chains.iter().map(|c| c.policy_counter).collect();
        assert_eq!(policies, [3, 4, 5, 6]);
        assert!(table.tables.counts_of(TableName::Nat).is_empty());
        let read = slots.reader(&|_| (0, 0));
        assert_eq!(read(5), (7, 8), "OUTPUT's count carried over");
        // Its slots are taken from now on, filter's rules get others.
        let mut next = Slots::new(&table);
        assert_eq!(next.alloc(Counter::default()), 7);
        // Its rules' slots are taken too.
        let mut nat = nat;
        let (chain, rule) = nat_rule("-A POSTROUTING -p tcp -j SNAT --to-source 1.2.3.4:5-6", 9);
        nat.chain_mut(&chain).unwrap().rules.push(rule);
        table.tables.set_counted(TableName::Nat, nat);
        assert!(table.counters().any(|slot| slot == 9));
        slots.count_tables(&mut table);
        assert_eq!(table.tables.nat().unwrap().chains[3].rules.len(), 1);
    }

    #[test]
    fn mangle_output_changes_through_the_chains_it_reaches() {
        use crate::model::{Chain, TableName};
        let with = |lines: &[&str], user: &[&str]| {
            let mut mangle = Table::builtin(TableName::Mangle);
            for name in user {
                mangle.chains.push(Chain {
                    name: (*name).into(),
                    policy: None,
                    policy_counter: 0,
                    rules: Default::default(),
                });
            }
            for line in lines {
                let (chain, rule) = nat_rule(line, 0);
                mangle.chain_mut(&chain).unwrap().rules.push(rule);
            }
            let mut table = Table::default();
            table.tables.set(TableName::Mangle, mangle);
            mangle_output_changes(&table)
        };
        assert_eq!(with(&[], &[]), (false, false));
        assert_eq!(
            with(&["-A OUTPUT -j MARK --set-mark 1"], &[]),
            (true, false)
        );
        assert_eq!(
            with(&["-A OUTPUT -j DSCP --set-dscp 4"], &[]),
            (false, true)
        );
        assert_eq!(
            with(&["-A OUTPUT -j CONNMARK --restore-mark"], &[]),
            (true, false)
        );
        // Saving the mark to the connection leaves the packet's alone.
        assert_eq!(
            with(&["-A OUTPUT -j CONNMARK --save-mark"], &[]),
            (false, false)
        );
        // Elsewhere than OUTPUT: no routing again.
        assert_eq!(
            with(
                &[
                    "-A PREROUTING -j MARK --set-mark 1",
                    "-A POSTROUTING -j TOS --set-tos 0x10"
                ],
                &[]
            ),
            (false, false)
        );
        // Through jumps and gotos, to chains that loop back.
        assert_eq!(
            with(
                &[
                    "-A OUTPUT -j a",
                    "-A a -g b",
                    "-A b -j a",
                    "-A b -j TOS --set-tos 0x10",
                    "-A c -j MARK --set-mark 1",
                ],
                &["a", "b", "c"],
            ),
            (false, true)
        );
    }

    #[test]
    fn prerouting_changes_in_every_table_before_the_routing_decision() {
        use crate::model::{Chain, TableName};
        let with = |tables: &[(TableName, &[&str])], user: &[&str]| {
            let mut table = Table::default();
            for (name, lines) in tables {
                let mut t = Table::builtin(*name);
                for user in user {
                    t.chains.push(Chain {
                        name: (*user).into(),
                        policy: None,
                        policy_counter: 0,
                        rules: Default::default(),
                    });
                }
                for line in *lines {
                    let (chain, rule) = nat_rule(line, 0);
                    t.chain_mut(&chain).unwrap().rules.push(rule);
                }
                table.tables.set(*name, t);
            }
            prerouting_changes(&table)
        };
        use TableName::{Mangle, Nat, Raw};
        assert_eq!(with(&[], &[]), (false, false));
        for name in [Raw, Mangle, Nat] {
            assert_eq!(
                with(&[(name, &["-A PREROUTING -j MARK --set-mark 1"])], &[]),
                (true, false),
                "{name:?}"
            );
        }
        assert_eq!(
            with(
                &[(Mangle, &["-A PREROUTING -j CONNMARK --restore-mark"])],
                &[]
            ),
            (true, false)
        );
        assert_eq!(
            with(&[(Mangle, &["-A PREROUTING -j CONNMARK --save-mark"])], &[]),
            (false, false)
        );
        assert_eq!(
            with(
                &[(
                    Mangle,
                    &["-A PREROUTING -j a", "-A a -j TOS --set-tos 0x10"]
                )],
                &["a"]
            ),
            (false, true)
        );
        // After the routing decision, or on the way out: not this one's.
        assert_eq!(
            with(
                &[(
                    Mangle,
                    &[
                        "-A FORWARD -j MARK --set-mark 1",
                        "-A OUTPUT -j MARK --set-mark 1",
                        "-A INPUT -j DSCP --set-dscp 1",
                    ]
                )],
                &[]
            ),
            (false, false)
        );
    }
}
