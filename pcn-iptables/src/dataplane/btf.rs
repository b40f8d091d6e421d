//! Member offsets of the running kernel's structures, from its BTF (/sys/kernel/btf/vmlinux),
//! for the few fields the data plane reads with bpf_probe_read_kernel (`--log-uid`). A small
//! reader of the BTF format: types are walked once, in order, as `struct btf_type` records
//! followed by their kind's trailing data.

use std::{collections::HashMap, path::Path};

use anyhow::{Context as _, Result, bail};

const MAGIC: u16 = 0xeb9f;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;

/// One struct or union member: name, type id, offset in bits.
struct Member {
    name: u32,
    kind_flag: bool,
    offset: u32,
    ty: u32,
}

/// The structs and unions of a BTF blob, by type id, and their names.
pub struct Btf {
    strings: Vec<u8>,
    /// Type id → (name offset, members) of each struct and union; type ids of other kinds
    /// resolve through `refs` (typedefs, const, volatile: the type they name).
    composites: HashMap<u32, (u32, Vec<Member>)>,
    refs: HashMap<u32, u32>,
}

impl Btf {
    /// The running kernel's.
    pub fn kernel() -> Result<Btf> {
        let path = Path::new("/sys/kernel/btf/vmlinux");
        let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Btf::parse(&data)
    }

    /// The running kernel's, parsed once per process (~7 ms); `None` without BTF.
    pub fn kernel_once() -> Option<&'static Btf> {
        static BTF: std::sync::OnceLock<Option<Btf>> = std::sync::OnceLock::new();
        BTF.get_or_init(|| Btf::kernel().ok()).as_ref()
    }

    pub fn parse(data: &[u8]) -> Result<Btf> {
        let u16_at = |at: usize| -> Result<u16> {
            Ok(u16::from_ne_bytes(
                data.get(at..at + 2).context("short BTF")?.try_into()?,
            ))
        };
        let u32_at = |at: usize| -> Result<u32> {
            Ok(u32::from_ne_bytes(
                data.get(at..at + 4).context("short BTF")?.try_into()?,
            ))
        };
        if u16_at(0)? != MAGIC {
            bail!("not BTF (or not in this machine's byte order)");
        }
        let hdr_len = u32_at(4)? as usize;
        let (type_off, type_len) = (u32_at(8)? as usize, u32_at(12)? as usize);
        let (str_off, str_len) = (u32_at(16)? as usize, u32_at(20)? as usize);
        let strings = data
            .get(hdr_len + str_off..hdr_len + str_off + str_len)
            .context("BTF strings out of bounds")?
            .to_vec();
        let (mut at, end) = (hdr_len + type_off, hdr_len + type_off + type_len);
        let mut btf = Btf {
            strings,
            composites: HashMap::new(),
            refs: HashMap::new(),
        };
        let mut id = 1;
        while at < end {
            let name = u32_at(at)?;
            let info = u32_at(at + 4)?;
            let size_or_type = u32_at(at + 8)?;
            let (kind, vlen, kind_flag) = ((info >> 24) & 0x1f, info & 0xffff, info >> 31 != 0);
            at += 12;
            let vlen = vlen as usize;
            match kind {
                KIND_STRUCT | KIND_UNION => {
                    let mut members = Vec::with_capacity(vlen);
                    for i in 0..vlen {
                        let m = at + i * 12;
                        members.push(Member {
                            name: u32_at(m)?,
                            ty: u32_at(m + 4)?,
                            offset: u32_at(m + 8)?,
                            kind_flag,
                        });
                    }
                    btf.composites.insert(id, (name, members));
                    at += vlen * 12;
                }
                // typedef, volatile, const, restrict, type tag: another name for a type.
                8..=11 | 18 => {
                    btf.refs.insert(id, size_or_type);
                }
                // int, var, decl tag: 4 bytes more.
                1 | 14 | 17 => at += 4,
                // array
                3 => at += 12,
                // enum, func proto: 8 bytes a value/parameter.
                6 | 13 => at += vlen * 8,
                // datasec, enum64: 12.
                15 | 19 => at += vlen * 12,
                // ptr, fwd, func, float: nothing more.
                2 | 7 | 12 | 16 => {}
                k => bail!("unknown BTF kind {k}"),
            }
            id += 1;
        }
        Ok(btf)
    }

    fn name(&self, offset: u32) -> &[u8] {
        let s = self.strings.get(offset as usize..).unwrap_or(&[]);
        &s[..s.iter().position(|b| *b == 0).unwrap_or(s.len())]
    }

    /// The struct or union a type id stands for, through typedefs and qualifiers.
    fn composite(&self, mut id: u32) -> Option<&(u32, Vec<Member>)> {
        for _ in 0..16 {
            if let Some(c) = self.composites.get(&id) {
                return Some(c);
            }
            id = *self.refs.get(&id)?;
        }
        None
    }

    /// The byte offset of `member` in `struct name`, looking into anonymous structs and unions.
    pub fn offset(&self, name: &str, member: &str) -> Result<u32> {
        let (_, members) = self
            .composites
            .values()
            .find(|(n, m)| self.name(*n) == name.as_bytes() && !m.is_empty())
            .with_context(|| format!("no struct {name} in the kernel's BTF"))?;
        self.find(members, member.as_bytes(), 0)
            .map(|bits| bits / 8)
            .with_context(|| format!("no member {member} in struct {name}"))
    }

    fn find(&self, members: &[Member], member: &[u8], base: u32) -> Option<u32> {
        for m in members {
            // With kind_flag, the offset's top 8 bits are a bitfield's size.
            let offset = base
                + if m.kind_flag {
                    m.offset & 0xff_ffff
                } else {
                    m.offset
                };
            let name = self.name(m.name);
            if name == member {
                return Some(offset);
            }
            if name.is_empty()
                && let Some((_, inner)) = self.composite(m.ty)
                && let Some(found) = self.find(inner, member, offset)
            {
                return Some(found);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blob with `struct cred { int a; union { int x; int fsgid; }; }` (and a typedef).
    fn blob() -> Vec<u8> {
        let strings = b"\0int\0cred\0a\0fsgid\0x\0".to_vec();
        let (int, cred, a, fsgid, x) = (1u32, 5u32, 10u32, 12u32, 18u32);
        let mut types = Vec::new();
        let mut put = |words: &[u32]| {
            for w in words {
                types.extend_from_slice(&w.to_ne_bytes());
            }
        };
        // 1: int
        put(&[int, 1 << 24, 4, 32]);
        // 2: union { x; fsgid }
        put(&[0, 5 << 24 | 2, 4, x, 1, 0, fsgid, 1, 0]);
        // 3: typedef of 2
        put(&[0, 8 << 24, 2]);
        // 4: struct cred { a; <anonymous typedef'd union> at 32 bits }
        put(&[cred, 4 << 24 | 2, 8, a, 1, 0, 0, 3, 32]);
        let mut data = Vec::new();
        for v in [MAGIC as u32 | 1 << 16, 24, 0, types.len() as u32] {
            data.extend_from_slice(&v.to_ne_bytes());
        }
        data.extend_from_slice(&(types.len() as u32).to_ne_bytes());
        data.extend_from_slice(&(strings.len() as u32).to_ne_bytes());
        data.extend_from_slice(&types);
        data.extend_from_slice(&strings);
        data
    }

    #[test]
    fn offsets_through_anonymous_members() {
        let btf = Btf::parse(&blob()).unwrap();
        assert_eq!(btf.offset("cred", "a").unwrap(), 0);
        assert_eq!(btf.offset("cred", "fsgid").unwrap(), 4);
        assert!(btf.offset("cred", "fsuid").is_err());
        assert!(btf.offset("sock", "sk_socket").is_err());
    }

    #[test]
    fn the_running_kernel_has_the_fields_log_uid_reads() {
        let Ok(btf) = Btf::kernel() else {
            return;
        };
        for (s, m) in [
            ("sock", "sk_socket"),
            ("socket", "file"),
            ("file", "f_cred"),
            ("cred", "fsuid"),
            ("cred", "fsgid"),
        ] {
            btf.offset(s, m).unwrap();
        }
    }
}
