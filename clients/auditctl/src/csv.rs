//! Records as CSV, for `query --format csv` and the console's download: one header line, one
//! line per record, every text quoted, and a cell that a spreadsheet would run as a formula
//! (`=`, `+`, `-`, `@`) kept as text.

use crate::report::local_time;
use lienthong_gateway::audit::record::Record;
use std::io::{self, Write};

pub const HEADER: &str =
    "sequence,time,officer,unit,peer,method,procedure,dossier,citizen,outcome,reason,fields";

/// A quoted cell; text a spreadsheet would evaluate starts with an apostrophe.
fn cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// One record's line, without its end.
pub fn line(r: &Record) -> String {
    let e = &r.entry;
    format!(
        "{},{},{},{},{},{},{},{},{},{},{},{}",
        r.sequence,
        cell(&local_time(e.time_us)),
        cell(&e.officer_code),
        cell(&e.unit_code),
        cell(&e.peer_address),
        cell(&e.method),
        cell(&e.procedure_code),
        cell(&e.dossier_id),
        cell(&e.citizen_masked_id),
        e.outcome_code,
        cell(&e.outcome_reason),
        cell(&e.fields_disclosed.join(";"))
    )
}

pub fn write(out: &mut impl Write, records: &[Record]) -> io::Result<()> {
    writeln!(out, "{HEADER}")?;
    for r in records {
        writeln!(out, "{}", line(r))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_formula_stays_text_and_quotes_are_doubled() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("-1"), "\"'-1\"");
        assert_eq!(cell("CB.H42.0001"), "\"CB.H42.0001\"");
    }
}
