//! Command-line arguments shared by every tool that generates (or regenerates) a population.

use crate::Spec;

/// What population to generate: `--citizens`, `--seed`, `--province`.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct SpecArgs {
    /// How many generated citizens (the personas come on top).
    #[arg(long, default_value_t = 10_000)]
    pub citizens: u64,
    /// Generator seed: the same seed and size give the same citizens.
    #[arg(long, default_value_t = 6)]
    pub seed: u64,
    /// Generate one province's population (pre-2025 code: 42 Hà Tĩnh, 38 Thanh Hóa, 1 Hà Nội).
    #[arg(long)]
    pub province: Option<u16>,
}

impl SpecArgs {
    /// The generator spec.
    pub fn spec(self) -> Spec {
        Spec {
            seed: self.seed,
            citizens: self.citizens,
            province: self.province,
        }
    }
}
