//! `-m hashlimit` as xt_hashlimit (revision 3) keeps it: named tables of token buckets, one
//! per key (the packet's addresses under the table's masks and its ports, as the table's mode
//! picks them), in jiffies and the kernel's credits, so that the arithmetic is the kernel's to
//! the credit. A table belongs to the namespace, not to a rule: the first rule that names it
//! fixes its configuration (`Table`), and it lives while a rule names it.
//!
//! The kernel's constants depend on its HZ; userspace reads it and derives a `Table` with
//! `Table::new`, the data plane only adds, compares and multiplies.

/// Tables a namespace holds at once.
pub const TABLES: u32 = 64;

/// The ports `hashlimit_init_dst` reads of a packet, in network byte order: the four bytes at
/// `proto_ports_offset` of TCP, UDP, SCTP and DCCP (the ports), ESP (the SPI) and AH (the
/// SPI, at 4), which `PacketInfo` holds in `sport`/`dport` or `spi`; zero for any other
/// protocol. (Also zero for UDP-Lite, a later fragment or a header cut short, where the
/// kernel reads bytes `PacketInfo` does not keep, or drops: see the man page.)
#[inline(always)]
pub fn ports(pkt: &crate::PacketInfo) -> [u16; 2] {
    if pkt.has_ports != 0 {
        return [pkt.sport.to_be(), pkt.dport.to_be()];
    }
    if pkt.spi & crate::SPI_NONE != 0 {
        return [0, 0];
    }
    let four = pkt.spi as u32;
    [((four >> 16) as u16).to_be(), (four as u16).to_be()]
}

/// `hashlimit_cfg3::mode` bits (XT_HASHLIMIT_*).
pub mod mode {
    pub const DIP: u32 = 1 << 0;
    pub const DPT: u32 = 1 << 1;
    pub const SIP: u32 = 1 << 2;
    pub const SPT: u32 = 1 << 3;
    pub const INVERT: u32 = 1 << 4;
    pub const BYTES: u32 = 1 << 5;
    pub const RATE_MATCH: u32 = 1 << 6;
    pub const KEYS: u32 = DIP | DPT | SIP | SPT;
}

/// XT_HASHLIMIT_SCALE_v2: a rate's `avg` counts microseconds per packet.
pub const SCALE: u64 = 1_000_000;
/// XT_HASHLIMIT_BYTE_SHIFT: bytes count in chunks of 16.
pub const BYTE_SHIFT: u32 = 4;

/// A bucket's key: the addresses (network order) and ports (network order, as read) the
/// table's mode keeps, the others zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Key {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub sport: u16,
    pub dport: u16,
}

/// A bucket (xt_hashlimit's `dsthash_ent` less its key and lock): times in jiffies.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    pub expires: u64,
    pub prev: u64,
    pub credit: u64,
    pub credit_cap: u64,
    pub cost: u64,
    /// `--hashlimit-rate-match`: what the window counted, the rate and burst it is held to,
    /// the window in seconds, and whether the last window was over.
    pub current_rate: u64,
    pub rate: u64,
    pub burst: u64,
    pub interval: u64,
    pub prev_window: u64,
}

/// A table's configuration as the data plane needs it: what the first rule naming it set,
/// reduced by userspace with the kernel's HZ.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Table {
    pub mode: u32,
    /// Masks of the addresses, network order bytes.
    pub srcmask: [u8; 4],
    pub dstmask: [u8; 4],
    pub _pad: u32,
    pub hz: u64,
    /// CREDITS_PER_JIFFY and CREDITS_PER_JIFFY_BYTES for this HZ.
    pub cpj: u64,
    pub cpj_bytes: u64,
    /// `--hashlimit-htable-expire` and `-gcinterval`, in jiffies.
    pub expire: u64,
    pub gc_interval: u64,
    /// A new bucket as `rateinfo_init` makes it (times zero).
    pub init: Bucket,
    /// The garbage collection's tick at which the data plane last dropped the buckets gone,
    /// to make room (jiffies).
    pub last_gc: u64,
    /// When the garbage collection's ticks start (jiffies; set by the first packet).
    pub epoch: u64,
}

/// `hashlimit_cfg3`: a rule's configuration, as libxt_hashlimit fills it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub mode: u32,
    pub avg: u64,
    pub burst: u64,
    pub size: u32,
    pub max: u32,
    pub gc_interval: u32,
    pub expire: u32,
    pub srcmask: u8,
    pub dstmask: u8,
    pub interval: u32,
}

/// POW2_BELOW64
const fn pow2_below(x: u64) -> u64 {
    if x == 0 {
        0
    } else {
        1 << (63 - x.leading_zeros())
    }
}

/// CREDITS_PER_JIFFY (revisions 2 and 3).
pub const fn credits_per_jiffy(hz: u64) -> u64 {
    pow2_below(u64::MAX / (hz * 60 * 60 * 24))
}

/// CREDITS_PER_JIFFY_BYTES
pub const fn credits_per_jiffy_bytes(hz: u64) -> u64 {
    pow2_below(0xFFFF_FFFF / hz)
}

/// `user2credits`, revision 3 (wrapping as the kernel's u64 does).
pub fn user2credits(user: u64, hz: u64) -> u64 {
    let per_second = hz * credits_per_jiffy(hz);
    if SCALE >= per_second {
        return user / (SCALE / per_second);
    }
    user.wrapping_mul(per_second / SCALE)
}

/// `user2credits_byte`
pub fn user2credits_byte(user: u32, hz: u64) -> u32 {
    ((user as u64).wrapping_mul(hz * credits_per_jiffy_bytes(hz)) >> 32) as u32
}

/// `msecs_to_jiffies`, rounding up.
pub fn msecs_to_jiffies(ms: u32, hz: u64) -> u64 {
    (ms as u64 * hz).div_ceil(1000)
}

/// `maskl`: the prefix of length `len` (network order bytes).
pub fn prefix_mask(len: u8) -> [u8; 4] {
    match len {
        0 => [0; 4],
        l => (u32::MAX << (32 - l.min(32) as u32)).to_be_bytes(),
    }
}

impl Table {
    /// The table a rule with configuration `cfg` makes, on a kernel of `hz`
    /// (`htable_create`, `rateinfo_init`).
    pub fn new(cfg: &Config, hz: u64) -> Table {
        let mut init = Bucket::default();
        let bytes = cfg.mode & mode::BYTES != 0;
        if cfg.mode & mode::RATE_MATCH != 0 {
            if bytes {
                let r = match cfg.avg as u32 {
                    0 => u32::MAX,
                    avg => u32::MAX / avg,
                } as u64;
                init.rate = (r - 1) << BYTE_SHIFT;
                init.burst = match cfg.burst {
                    0 => init.rate,
                    b => b.wrapping_mul(init.rate),
                };
            } else {
                init.rate = SCALE.checked_div(cfg.avg).unwrap_or(0);
                init.burst = cfg.burst.wrapping_add(init.rate);
            }
            init.interval = cfg.interval as u64;
        } else if bytes {
            init.credit = credits_per_jiffy_bytes(hz) * hz;
            init.cost = user2credits_byte(cfg.avg as u32, hz) as u64;
            init.credit_cap = cfg.burst;
        } else {
            init.credit = user2credits(cfg.avg.wrapping_mul(cfg.burst), hz);
            init.cost = user2credits(cfg.avg, hz);
            init.credit_cap = init.credit;
        }
        Table {
            mode: cfg.mode,
            srcmask: prefix_mask(cfg.srcmask),
            dstmask: prefix_mask(cfg.dstmask),
            _pad: 0,
            hz,
            cpj: credits_per_jiffy(hz),
            cpj_bytes: credits_per_jiffy_bytes(hz),
            expire: msecs_to_jiffies(cfg.expire, hz),
            gc_interval: msecs_to_jiffies(cfg.gc_interval, hz),
            init,
            last_gc: 0,
            epoch: 0,
        }
    }

    /// `hashlimit_init_dst` for an IPv4 packet; `ports`: its first four transport bytes when
    /// its protocol has ports where xt_hashlimit reads them (zero otherwise).
    #[inline(always)]
    pub fn key(&self, src: [u8; 4], dst: [u8; 4], ports: [u16; 2]) -> Key {
        let masked = |a: [u8; 4], m: [u8; 4]| u32::from_ne_bytes(a) & u32::from_ne_bytes(m);
        let on = |bit: u32| self.mode & bit != 0;
        Key {
            src: if on(mode::SIP) {
                masked(src, self.srcmask).to_ne_bytes()
            } else {
                [0; 4]
            },
            dst: if on(mode::DIP) {
                masked(dst, self.dstmask).to_ne_bytes()
            } else {
                [0; 4]
            },
            sport: if on(mode::SPT) { ports[0] } else { 0 },
            dport: if on(mode::DPT) { ports[1] } else { 0 },
        }
    }

    /// A bucket made at `now`, alive until `now` + expire.
    #[inline(always)]
    pub fn fresh(&self, now: u64) -> Bucket {
        Bucket {
            expires: now + self.expire,
            prev: now,
            ..self.init
        }
    }

    /// `rateinfo_recalc`: the credit the time since the bucket's last packet earned.
    #[inline(always)]
    pub fn recalc(&self, b: &mut Bucket, now: u64) {
        let delta = now.wrapping_sub(b.prev);
        if delta == 0 {
            return;
        }
        if self.mode & mode::RATE_MATCH != 0 {
            let interval = b.interval.wrapping_mul(self.hz);
            if delta < interval {
                return;
            }
            b.prev = now;
            b.prev_window =
                (b.current_rate.wrapping_mul(interval) > delta.wrapping_mul(b.rate)) as u64;
            b.current_rate = 0;
            return;
        }
        b.prev = now;
        let cap = if self.mode & mode::BYTES != 0 {
            let before = b.credit;
            b.credit = b.credit.wrapping_add(self.cpj_bytes.wrapping_mul(delta));
            let cap = self.cpj_bytes * self.hz;
            if before >= b.credit {
                b.credit = cap;
                return;
            }
            cap
        } else {
            b.credit = b.credit.wrapping_add(delta.wrapping_mul(self.cpj));
            b.credit_cap
        };
        if b.credit > cap {
            b.credit = cap;
        }
    }

    /// `hashlimit_byte_cost`: a packet of `len` bytes, refilling from `credit_cap`.
    #[inline(always)]
    fn byte_cost(&self, b: &mut Bucket, len: u32) -> u64 {
        let full = self.cpj_bytes * self.hz;
        let chunks = ((len >> BYTE_SHIFT) + 1) as u64;
        let cost = chunks.wrapping_mul(b.cost).min(full);
        if b.credit < cost && b.credit_cap != 0 {
            b.credit_cap -= 1;
            b.credit = full;
        }
        cost as u32 as u64
    }

    /// The rest of `hashlimit_mt_common` once the bucket is current: whether a packet of
    /// `len` bytes matches a rule of mode `rule_mode` (its INVERT, BYTES, RATE_MATCH bits).
    #[inline(always)]
    pub fn take(&self, b: &mut Bucket, rule_mode: u32, len: u32) -> bool {
        let under = rule_mode & mode::INVERT == 0;
        let bytes = rule_mode & mode::BYTES != 0;
        if rule_mode & mode::RATE_MATCH != 0 {
            b.current_rate = b
                .current_rate
                .wrapping_add(if bytes { len as u64 } else { 1 });
            return if b.prev_window == 0 && b.current_rate <= b.burst {
                under
            } else {
                !under
            };
        }
        let cost = if bytes {
            self.byte_cost(b, len)
        } else {
            b.cost
        };
        if b.credit >= cost {
            b.credit -= cost;
            return under;
        }
        !under
    }
}

/// The kernel's overflow check of a packet rate and burst (`hashlimit_mt_check_common`):
/// false where it says ERANGE.
pub fn in_range(cfg: &Config, hz: u64) -> bool {
    cfg.burst != 0 && user2credits(cfg.avg.wrapping_mul(cfg.burst), hz) >= user2credits(cfg.avg, hz)
}

/// Whether a bucket expired at `now` (`time_after_eq`).
#[inline(always)]
pub fn expired(b: &Bucket, now: u64) -> bool {
    now.wrapping_sub(b.expires) as i64 >= 0
}

impl Table {
    /// The last tick of xt_hashlimit's garbage collection at or before `now`: it runs every
    /// `gc_interval` from `epoch`, and drops the buckets expired then.
    #[inline(always)]
    pub fn last_tick(&self, now: u64) -> u64 {
        let since = now.wrapping_sub(self.epoch);
        now - since % self.gc_interval.max(1)
    }

    /// Whether the garbage collection dropped bucket `b` by `now` (a bucket expired since its
    /// last tick is still found, and only brought up to date).
    #[inline(always)]
    pub fn gone(&self, b: &Bucket, now: u64) -> bool {
        expired(b, self.last_tick(now))
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: #[repr(C)] plain old data without padding.
    unsafe impl aya::Pod for super::Key {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Bucket {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Table {}
}

#[cfg(test)]
mod tests;
