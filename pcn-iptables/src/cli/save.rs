//! `pcn-iptables-save`, also answering as `iptables-save`.

use crate::error::{Error, Result};

pub fn main(prog: &str, _args: &[String]) -> Result<()> {
    Err(Error::versioned(
        2,
        format!("{prog} is not supported by pcn-iptables yet"),
    ))
}
