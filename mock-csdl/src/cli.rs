//! Command-line arguments shared by every tool that generates (or regenerates) a population.

use crate::Spec;

/// What population to generate: `--citizens`, `--seed`, `--province`.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct SpecArgs {
    /// How many generated citizens, the personas on top [default: 10000; at most 10,000,000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=MAX_CITIZENS))]
    pub citizens: Option<u64>,
    /// Generator seed: the same seed and size give the same citizens [default: 6].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Centre the population on one province (pre-2025 code: 42 Hà Tĩnh, 38 Thanh Hóa, 1 Hà
    /// Nội): nine households in ten from it, the rest from other provinces.
    #[arg(long)]
    pub province: Option<u16>,
}

/// The most citizens one store is generated with (about a large province; at the 1.4 GiB per
/// million measured in BENCHMARKS.md, some 14 GiB on disk).
pub const MAX_CITIZENS: u64 = 10_000_000;

impl SpecArgs {
    /// The generator spec, with the defaults for what was not given.
    pub fn spec(&self) -> Spec {
        Spec {
            seed: self.seed.unwrap_or(6),
            citizens: self.citizens.unwrap_or(10_000),
            province: self.province,
        }
    }

    /// Why these options cannot apply to a store already generated with `meta`, if they
    /// cannot: an option given that differs from what the store was generated with.
    pub fn conflicts_with(&self, meta: &crate::StoreMeta) -> Option<String> {
        let mut differ = Vec::new();
        if let Some(c) = self.citizens.filter(|c| *c != meta.generated) {
            differ.push(format!("--citizens {c} (it holds {})", meta.generated));
        }
        if let Some(s) = self.seed.filter(|s| *s != meta.seed) {
            differ.push(format!("--seed {s} (it was generated with {})", meta.seed));
        }
        if self.province.is_some() && self.province != meta.province {
            differ.push(format!(
                "--province {} (it holds {})",
                self.province.unwrap_or_default(),
                meta.province
                    .map(|p| format!("province {p:03}"))
                    .unwrap_or_else(|| "the whole country".into())
            ));
        }
        (!differ.is_empty()).then(|| differ.join(", "))
    }
}
