//! libipt_ah: `[!] --ahspi spi[:spi]`, the SPI of an AH packet (xt_ah).

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, entry, spi_range};
use crate::error::Result;
use crate::model::{Match, Negatable, SpiRange};

pub struct Ah;

pub const ENTRIES: [Entry; 1] = [entry("ahspi", 0, true, 0)];

impl Extension for Ah {
    fn hotdrops(&self, _: &Match) -> u8 {
        pcn_iptables_common::hotdrop::AH
    }

    fn name(&self) -> &'static str {
        "ah"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Ah(Negatable::plain(SpiRange::ALL)))
    }

    fn parse(&self, v: &mut Value, _: u8, arg: &str, invert: bool, _: &mut Context) -> Result<()> {
        *v.as_match() = Match::Ah(spi_range("ah", "ahspi", arg, invert)?);
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Match::Ah(s) = m else { return };
        s.value.save("ahspi", s.negated, out);
    }

    fn print(&self, m: &Match, _: &Show, out: &mut String) {
        let Match::Ah(s) = m else { return };
        // libipt_ah prints its space before the SPIs, whether there are any or not.
        out.push_str(" ah ");
        if let Some(spis) = s.value.print(s.negated) {
            out.push_str(&spis);
        }
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        match (m, field) {
            (Match::Ah(s), Field::Spi) => Some(Want::Spi(s.clone())),
            _ => None,
        }
    }

    /// The SPI is not in the flow cache's key.
    fn per_packet(&self, _: &Match) -> bool {
        true
    }
}

/// libipt_ah's help text.
pub const HELP: &str = concat!(
    "\n",
    "ah match options:\n",
    "[!] --ahspi spi[:spi]\n",
    "\t\t\t\tmatch spi (range)\n",
);
