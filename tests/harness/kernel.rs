//! What the running kernel can do, from its BTF (/sys/kernel/btf/vmlinux), as pcn-iptables
//! asks it: scenarios whose outcome depends on it expect what pcn-iptables does there.

use std::collections::HashMap;

/// Whether bpf_fib_lookup routes by a mark (BPF_FIB_LOOKUP_MARK, Linux 6.10): its
/// `struct bpf_fib_lookup` has a member `mark`. Without it pcn-iptables refuses to set marks
/// in mangle OUTPUT where routing rules select by the mark.
pub fn fib_lookup_takes_mark() -> bool {
    std::fs::read("/sys/kernel/btf/vmlinux")
        .is_ok_and(|d| has_member(&d, b"bpf_fib_lookup", b"mark"))
}

/// Whether `struct name` in BTF blob `data` has `member`, also in its anonymous structs and
/// unions. A small reader of the format: `struct btf_type` records and their trailing data.
fn has_member(data: &[u8], name: &[u8], member: &[u8]) -> bool {
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(data.get(at..at + 4)?.try_into().ok()?))
    };
    let parse = || -> Option<bool> {
        let hdr = u32_at(4)? as usize;
        let (toff, tlen) = (u32_at(8)? as usize, u32_at(12)? as usize);
        let (soff, slen) = (u32_at(16)? as usize, u32_at(20)? as usize);
        let strings = data.get(hdr + soff..hdr + soff + slen)?;
        let str_at = |o: u32| -> &[u8] {
            let s = strings.get(o as usize..).unwrap_or(&[]);
            &s[..s.iter().position(|b| *b == 0).unwrap_or(s.len())]
        };
        // Type id → (name, members as (name, type)); and id → the type it names.
        let mut composites: HashMap<u32, (u32, Vec<(u32, u32)>)> = HashMap::new();
        let mut refs: HashMap<u32, u32> = HashMap::new();
        let (mut at, end, mut id) = (hdr + toff, hdr + toff + tlen, 1);
        while at < end {
            let (n, info, next) = (u32_at(at)?, u32_at(at + 4)?, u32_at(at + 8)?);
            let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
            at += 12;
            match kind {
                4 | 5 => {
                    let m =
                        (0..vlen).map(|i| Some((u32_at(at + i * 12)?, u32_at(at + i * 12 + 4)?)));
                    composites.insert(id, (n, m.collect::<Option<_>>()?));
                    at += vlen * 12;
                }
                8..=11 | 18 => {
                    refs.insert(id, next);
                }
                1 | 14 | 17 => at += 4,
                3 => at += 12,
                6 | 13 => at += vlen * 8,
                15 | 19 => at += vlen * 12,
                2 | 7 | 12 | 16 => {}
                _ => return None,
            }
            id += 1;
        }
        let composite = |mut id: u32| {
            for _ in 0..16 {
                if let Some(c) = composites.get(&id) {
                    return Some(c);
                }
                id = *refs.get(&id)?;
            }
            None
        };
        let (_, members) = composites
            .values()
            .find(|(n, m)| str_at(*n) == name && !m.is_empty())?;
        let mut todo: Vec<&Vec<(u32, u32)>> = vec![members];
        while let Some(ms) = todo.pop() {
            for (n, ty) in ms {
                let found = str_at(*n);
                if found == member {
                    return Some(true);
                }
                if found.is_empty()
                    && let Some((_, inner)) = composite(*ty)
                {
                    todo.push(inner);
                }
            }
        }
        Some(false)
    };
    parse().unwrap_or(false)
}
