//! libxt_esp: `[!] --espspi spi[:spi]`, the SPI of an ESP packet (xt_esp).

use std::fmt::Write as _;

use super::api::{Context, Entry, Extension, Field, Show, Value, Want, entry, spi_range};
use crate::error::Result;
use crate::model::{Match, Negatable, SpiRange};

pub struct Esp;

pub const ENTRIES: [Entry; 1] = [entry("espspi", 0, true, 0)];

impl Extension for Esp {
    fn hotdrops(&self, _: &Match) -> u8 {
        pcn_iptables_common::hotdrop::ESP
    }

    fn name(&self) -> &'static str {
        "esp"
    }

    fn help(&self) -> &'static str {
        HELP
    }

    fn entries(&self) -> &'static [Entry] {
        &ENTRIES
    }

    fn init(&self) -> Value {
        Value::Match(Match::Esp(Negatable::plain(SpiRange::ALL)))
    }

    fn parse(&self, v: &mut Value, _: u8, arg: &str, invert: bool, _: &mut Context) -> Result<()> {
        *v.as_match() = Match::Esp(spi_range("esp", "espspi", arg, invert)?);
        Ok(())
    }

    fn save(&self, m: &Match, out: &mut String) {
        let Match::Esp(s) = m else { return };
        s.value.save("espspi", s.negated, out);
    }

    fn print(&self, m: &Match, _: &Show, out: &mut String) {
        let Match::Esp(s) = m else { return };
        out.push_str(" esp");
        if let Some(spis) = s.value.print(s.negated) {
            let _ = write!(out, " {spis}");
        }
    }

    fn want(&self, m: &Match, field: Field) -> Option<Want> {
        match (m, field) {
            (Match::Esp(s), Field::Spi) => Some(Want::Spi(s.clone())),
            _ => None,
        }
    }

    /// The SPI is not in the flow cache's key.
    fn per_packet(&self, _: &Match) -> bool {
        true
    }
}

/// libxt's help text.
pub const HELP: &str = concat!(
    "\n",
    "esp match options:\n",
    "[!] --espspi spi[:spi]\n",
    "\t\t\t\tmatch spi (range)\n",
);
