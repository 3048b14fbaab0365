//! The console's pages as HTML (maud escapes every value). Forms that carry a personal ID are
//! sent with POST, so the number never reaches a URL, a browser's history or an access log.

use super::chart;
use super::text::Lang;
use super::{ReportView, SearchForm, Standing};
use crate::report::local_time;
use lienthong_devtool::sample::SampleOfficer;
use lienthong_gateway::audit::record::{Checkpoint, Record, hex};
use lienthong_proto::audit::v1 as pb;
use maud::{DOCTYPE, Markup, html};

const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:0;color:#1d2733;background:#f6f7f9}
header{background:#7a1f1f;color:#fff;padding:.6em 1.2em;display:flex;gap:1.2em;align-items:center;flex-wrap:wrap}
header a,header button{color:#fff;background:none;border:0;font:inherit;cursor:pointer;text-decoration:underline}
header .who{margin-left:auto}
main{padding:1em 1.2em;max-width:84em}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.9em}
th,td{border:1px solid #d5d9e0;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#eef1f5}
form.search{display:grid;grid-template-columns:repeat(auto-fill,minmax(14em,1fr));gap:.6em;margin-bottom:1em}
label{display:flex;flex-direction:column;font-size:.85em;gap:.2em}
input,select,textarea{font:inherit;padding:.3em}
.ok{color:#1d6b2f;font-weight:600}.bad{color:#a11a1a;font-weight:600}.note{color:#5b6470;font-size:.85em}
.status{background:#fff;border-left:.4em solid #1d6b2f;padding:.6em 1em;margin:1em 0}
.status.broken{border-color:#a11a1a}.status.pending{border-color:#b9770e}
dl.record{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;background:#fff;padding:1em}
dl.record dt{font-weight:600}dl.record dd{margin:0;word-break:break-all}
figure.chart{background:#fff;padding:.6em;margin:1em 0}.hours{display:flex;gap:1em;align-items:center}
.series{min-width:12em;font-family:monospace}
.signal{background:#fff;padding:.6em 1em;margin:.6em 0;border-left:.4em solid #b9770e}
@media print{header,form,.noprint{display:none}body{background:#fff}main{padding:0}}
";

/// What the page header shows.
pub struct Header<'a> {
    pub lang: Lang,
    pub unit: &'a str,
    pub officer: String,
    /// A citizen's page: none of the reviewers' links.
    pub citizen: bool,
}

pub fn layout(h: &Header, title: &str, body: Markup) -> Markup {
    let t = |k| h.lang.t(k);
    html! {
        (DOCTYPE)
        html lang=(h.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — Liên Thông" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header {
                    @if h.citizen {
                        strong { "Liên Thông · " (t("citizen.title")) }
                        span.who {}
                    } @else {
                        strong { "Liên Thông · " (t("title")) }
                        a href="/" { (t("nav.search")) }
                        a href="/report" { (t("nav.report")) }
                        a href="/verify" { (t("nav.verify")) }
                        a href="/export" { (t("export.title")) }
                        span.who {
                            (t("unit")) " " code { (h.unit) }
                            @if !h.officer.is_empty() {
                                " · " (t("signed_in")) " " code #officer { (h.officer) }
                            }
                        }
                    }
                    a href="/lang/vi" lang="vi" { "Tiếng Việt" }
                    a href="/lang/en" lang="en" { "English" }
                    @if !h.officer.is_empty() {
                        form method="post" action="/logout" style="display:inline" {
                            button type="submit" { (t("nav.logout")) }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

pub fn login(lang: Lang, dev_officers: &[&SampleOfficer]) -> Markup {
    let t = |k| lang.t(k);
    html! {
        p { (t("login.intro")) }
        form method="post" action="/login" {
            label { (t("login.token")) textarea name="token" rows="4" cols="80" required {} }
            p { button type="submit" { (t("login.submit")) } }
        }
        p { a href="/citizen" { (t("citizen.title")) } }
        @if !dev_officers.is_empty() {
            h2 { (t("login.dev")) }
            @for o in dev_officers {
                form method="post" action="/login/dev" {
                    input type="hidden" name="officer" value=(o.code);
                    button type="submit" { (o.code) } " "
                    span.note { (o.roles.join(", ")) " — " (o.role) }
                }
            }
        }
    }
}

/// One page of search results and the cursor of the next, if there may be one.
pub struct Results<'a> {
    pub records: &'a [Record],
    pub next: Option<String>,
}

fn hidden_filters(f: &SearchForm) -> Markup {
    html! {
        input type="hidden" name="personal_id" value=(f.personal_id);
        input type="hidden" name="officer" value=(f.officer);
        input type="hidden" name="unit" value=(f.unit);
        input type="hidden" name="procedure" value=(f.procedure);
        input type="hidden" name="outcome" value=(f.outcome);
        input type="hidden" name="reason" value=(f.reason);
        input type="hidden" name="from" value=(f.from);
        input type="hidden" name="to" value=(f.to);
        input type="hidden" name="size" value=(f.page_size());
    }
}

pub fn search(lang: Lang, f: &SearchForm, results: Option<Results>) -> Markup {
    let t = |k| lang.t(k);
    let field = |name: &str, key: &str, value: &str, kind: &str| {
        html! {
            label { (lang.t(key)) input type=(kind) name=(name) value=(value) autocomplete="off"; }
        }
    };
    html! {
        form.search method="post" action="/search" {
            label {
                (t("search.personal_id"))
                input type="text" name="personal_id" value=(f.personal_id) autocomplete="off"
                    inputmode="numeric" maxlength="12";
                span.note { (t("search.personal_id.hint")) }
            }
            (field("officer", "search.officer", &f.officer, "text"))
            (field("unit", "search.unit", &f.unit, "text"))
            (field("procedure", "search.procedure", &f.procedure, "text"))
            label {
                (t("search.outcome"))
                select name="outcome" {
                    @for (value, key) in [("any", "outcome.any"), ("served", "outcome.served"), ("refused", "outcome.refused")] {
                        option value=(value) selected[f.outcome == value] { (t(key)) }
                    }
                }
            }
            (field("reason", "search.reason", &f.reason, "text"))
            (field("from", "search.from", &f.from, "datetime-local"))
            (field("to", "search.to", &f.to, "datetime-local"))
            label {
                (t("search.size"))
                select name="size" {
                    @for n in [25, 50, 100, 200, 500] {
                        option value=(n) selected[f.page_size() == n] { (n) }
                    }
                }
            }
            div { button type="submit" { (t("search.submit")) } }
        }
        @if let Some(results) = results {
            @if results.records.is_empty() {
                p #results { (t("search.none")) }
            } @else {
                p #results { (t("search.page")) ": " (results.records.len()) }
                (table(lang, results.records))
                @match &results.next {
                    Some(cursor) => {
                        form.noprint method="post" action="/search" {
                            (hidden_filters(f))
                            input type="hidden" name="after" value=(cursor);
                            button type="submit" #next { (t("search.next")) " →" }
                        }
                    }
                    None => { p.note { (t("search.last_page")) } }
                }
            }
            form.noprint method="post" action="/search.csv" {
                (hidden_filters(f))
                button type="submit" { (t("search.csv")) }
            }
        }
    }
}

fn outcome(r: &Record) -> Markup {
    let e = &r.entry;
    html! {
        @if e.outcome_code == 0 {
            span.ok { "OK" }
        } @else {
            span.bad { (e.outcome_code) " " (e.outcome_reason) }
        }
    }
}

fn table(lang: Lang, records: &[Record]) -> Markup {
    let t = |k| lang.t(k);
    html! {
        table {
            thead { tr {
                th { (t("col.seq")) } th { (t("col.time")) } th { (t("col.officer")) }
                th { (t("col.unit")) } th { (t("col.method")) } th { (t("col.procedure")) }
                th { (t("col.citizen")) } th { (t("col.outcome")) } th { (t("col.fields")) }
            } }
            tbody {
                @for r in records {
                    @let e = &r.entry;
                    tr {
                        td { a href=(format!("/record/{}", r.sequence)) { (r.sequence) } }
                        td { (local_time(e.time_us)) }
                        td { (e.officer_code) }
                        td { (e.unit_code) }
                        td { (e.method.rsplit('/').next().unwrap_or_default()) }
                        td { (e.procedure_code) }
                        td { (e.citizen_masked_id) }
                        td { (outcome(r)) }
                        td { (e.fields_disclosed.join(", ")) }
                    }
                }
            }
        }
    }
}

pub fn missing(lang: Lang, seq: u64) -> Markup {
    html! {
        p #missing { (lang.t("record.missing")) }
        p { a href=(format!("/record/{}", seq.saturating_sub(1))) { "← " (lang.t("record.prev")) } }
    }
}

/// The chain's standing at a record, in words.
fn standing_words(lang: Lang, seq: u64, s: &Standing) -> Markup {
    let v = &s.verified;
    let vi = lang == Lang::Vi;
    let (class, words) = if !v.ok && v.first_bad_sequence <= seq {
        (
            "status broken",
            if vi {
                format!(
                    "Chuỗi bị hỏng tại bản ghi #{} ({}), trước hoặc tại bản ghi này: không thể dựa vào chuỗi để tin bản ghi này. Báo cho người quản trị cổng và giữ nguyên tệp nhật ký.",
                    v.first_bad_sequence, v.problem
                )
            } else {
                format!(
                    "The chain is broken at record #{} ({}), at or before this one: the chain cannot vouch for this record. Tell the gateway's operator and keep the trail file as it is.",
                    v.first_bad_sequence, v.problem
                )
            },
        )
    } else if !v.ok {
        (
            "status broken",
            if vi {
                format!(
                    "Bản ghi này và mọi bản ghi trước nó nguyên vẹn, nhưng chuỗi bị hỏng sau đó, tại #{} ({}).",
                    v.first_bad_sequence, v.problem
                )
            } else {
                format!(
                    "This record and every one before it are intact, but the chain is broken after it, at #{} ({}).",
                    v.first_bad_sequence, v.problem
                )
            },
        )
    } else if let Some(c) = &s.cover {
        (
            "status",
            if vi {
                format!(
                    "Nguyên vẹn và đã ký: {} bản ghi từ bản ghi đầu tiên đến #{} khớp nhau, và điểm kiểm tra #{} (ký lúc {}, khoá {}) bao gồm bản ghi này.",
                    v.records_checked,
                    c.sequence,
                    c.sequence,
                    local_time(c.time_us),
                    c.key_id
                )
            } else {
                format!(
                    "Intact and signed: {} records from the first to #{} link up, and the checkpoint at #{} (signed {}, key {}) covers this record.",
                    v.records_checked,
                    c.sequence,
                    c.sequence,
                    local_time(c.time_us),
                    c.key_id
                )
            },
        )
    } else {
        (
            "status pending",
            if vi {
                format!(
                    "Nguyên vẹn ({} bản ghi khớp nhau đến cuối chuỗi) nhưng chưa có điểm kiểm tra nào ký bao gồm bản ghi này; điểm kiểm tra tiếp theo sẽ bao gồm nó.",
                    v.records_checked
                )
            } else {
                format!(
                    "Intact ({} records link up to the end of the chain), but no checkpoint covers this record yet; the next one will.",
                    v.records_checked
                )
            },
        )
    };
    html! { p class=(class) #standing { (words) } }
}

pub fn record(lang: Lang, r: &Record, s: &Standing) -> Markup {
    let t = |k| lang.t(k);
    let e = &r.entry;
    let row = |k: &str, v: String| html! { dt { (k) } dd { (v) } };
    html! {
        p.noprint {
            @if r.sequence > 0 {
                a href=(format!("/record/{}", r.sequence - 1)) { "← " (t("record.prev")) }
                " · "
            }
            a href=(format!("/record/{}", r.sequence + 1)) { (t("record.next")) " →" }
            " · "
            a href="javascript:window.print()" { (t("record.print")) }
        }
        p.note { (t("record.finding")) " — " (local_time(lienthong_gateway::audit::log::timestamp_us())) }
        h2 { (t("record.chain")) }
        (standing_words(lang, r.sequence, s))
        h2 { (t("record.receipt")) }
        dl.record {
            (row("chain_id", r.chain_id.clone()))
            (row("sequence", r.sequence.to_string()))
            (row("prev_hash", hex(&r.prev_hash)))
            (row("hash", hex(&r.hash)))
        }
        h2 { (t("record.title")) }
        dl.record {
            (row("time", local_time(e.time_us)))
            (row("request_id", e.request_id.clone()))
            (row("unit_code", e.unit_code.clone()))
            (row("cert_fingerprint", e.cert_fingerprint.clone()))
            (row("peer_address", e.peer_address.clone()))
            (row("officer_code", e.officer_code.clone()))
            (row("roles", e.roles.join(", ")))
            (row("method", e.method.clone()))
            (row("procedure_code", e.procedure_code.clone()))
            (row("dossier_id", e.dossier_id.clone()))
            (row("purpose", e.purpose.clone()))
            (row("citizen_masked_id", e.citizen_masked_id.clone()))
            (row("citizen_pseudonym", e.citizen_pseudonym.clone()))
            (row("fields_disclosed", e.fields_disclosed.join(", ")))
            dt { "outcome" } dd { (outcome(r)) " " (e.outcome_message) }
            (row("latency_us", e.latency_us.to_string()))
        }
    }
}

pub fn verification(
    lang: Lang,
    v: &pb::VerifyResponse,
    checkpoints: &[Checkpoint],
    central: Option<&Result<Vec<crate::chains::Chain>, String>>,
) -> Markup {
    let t = |k| lang.t(k);
    let vi = lang == Lang::Vi;
    let last = checkpoints.last();
    let signed_to = checkpoints
        .iter()
        .rev()
        .find(|c| v.ok || c.sequence < v.first_bad_sequence);
    let head = if v.ok {
        match last {
            Some(c) if vi => format!(
                "Chuỗi {} nguyên vẹn: cả {} bản ghi khớp nhau từ bản ghi đầu tiên, và đã được ký đến bản ghi #{} (điểm kiểm tra lúc {}, khoá {}). Các bản ghi sau #{} sẽ được điểm kiểm tra tiếp theo ký.",
                c.chain_id,
                v.records_checked,
                c.sequence,
                local_time(c.time_us),
                c.key_id,
                c.sequence
            ),
            Some(c) => format!(
                "Chain {} is intact: all {} records link up from the first, and it is signed up to record #{} (checkpoint at {}, key {}). Records after #{} will be signed by the next checkpoint.",
                c.chain_id,
                v.records_checked,
                c.sequence,
                local_time(c.time_us),
                c.key_id,
                c.sequence
            ),
            None if vi => format!(
                "Cả {} bản ghi khớp nhau, nhưng chưa có điểm kiểm tra có chữ ký nào.",
                v.records_checked
            ),
            None => format!(
                "All {} records link up, but there is no signed checkpoint yet.",
                v.records_checked
            ),
        }
    } else if vi {
        format!(
            "Chuỗi bị hỏng: bản ghi #{} không khớp ({}). Một bản ghi đã bị sửa, xoá, chèn thêm hoặc đổi chỗ tại đó. Các bản ghi trước #{} vẫn nguyên vẹn{}.",
            v.first_bad_sequence,
            v.problem,
            v.first_bad_sequence,
            signed_to.map_or(String::new(), |c| format!(" và đã ký đến #{}", c.sequence))
        )
    } else {
        format!(
            "The chain is broken: record #{} does not check out ({}). A record was edited, removed, inserted or moved there. Records before #{} are intact{}.",
            v.first_bad_sequence,
            v.problem,
            v.first_bad_sequence,
            signed_to.map_or(String::new(), |c| format!(
                " and signed up to #{}",
                c.sequence
            ))
        )
    };
    html! {
        p class=(if v.ok { "status" } else { "status broken" }) #verdict { (head) }
        table {
            tr { th { (t("verify.checked")) } td { (v.records_checked) } }
            tr { th { (t("verify.signatures")) } td { (v.checkpoints_checked) } }
            @if !v.ok {
                tr { th { "first_bad_sequence" } td {
                    a href=(format!("/record/{}", v.first_bad_sequence)) { (v.first_bad_sequence) }
                } }
            }
        }
        @match central {
            Some(Ok(chains)) => {
                h2 { (t("verify.central")) }
                @if chains.is_empty() { p { (t("verify.central.none")) } }
                ul #central {
                    @for c in chains { li { (chain_words(lang, c)) } }
                }
            }
            Some(Err(e)) => {
                h2 { (t("verify.central")) }
                p.status.broken #central { (e) }
            }
            None => {}
        }
    }
}

/// One chain of the central store, in words.
fn chain_words(lang: Lang, c: &crate::chains::Chain) -> Markup {
    use crate::chains::State;
    let vi = lang == Lang::Vi;
    let id = &c.chain_id;
    let (class, mut words) = match &c.state {
        State::Bad { sequence, problem } if vi => (
            "bad",
            format!(
                "{id}: hỏng tại bản ghi #{sequence} ({problem}); các bản ghi trước đó nguyên vẹn."
            ),
        ),
        State::Bad { sequence, problem } => (
            "bad",
            format!(
                "{id}: broken at record #{sequence} ({problem}); the records before it are intact."
            ),
        ),
        State::Verified {
            head,
            records,
            signed_to,
            ..
        } => {
            let signed = match (signed_to, vi) {
                (Some(s), true) => format!("đã ký đến #{s}"),
                (Some(s), false) => format!("signed up to #{s}"),
                (None, true) => "chưa có điểm kiểm tra có chữ ký".to_owned(),
                (None, false) => "no signed checkpoint yet".to_owned(),
            };
            if vi {
                (
                    "ok",
                    format!(
                        "{id}: đầy đủ và nguyên vẹn đến bản ghi #{head} ({records} bản ghi), {signed}."
                    ),
                )
            } else {
                (
                    "ok",
                    format!(
                        "{id}: complete and intact up to record #{head} ({records} records), {signed}."
                    ),
                )
            }
        }
        State::Empty if vi => ("", format!("{id}: chưa có bản ghi.")),
        State::Empty => ("", format!("{id}: no records yet.")),
    };
    if let Some((next, waiting)) = c.gap {
        words.push_str(&if vi {
            format!(" Thiếu bản ghi #{next}: {waiting} bản ghi sau đang chờ nó.")
        } else {
            format!(" Record #{next} is missing: {waiting} later record(s) wait for it.")
        });
    }
    if c.quarantined > 0 {
        words.push_str(&if vi {
            format!(
                " {} mục bị kho từ chối khi nhận và được để riêng.",
                c.quarantined
            )
        } else {
            format!(
                " {} item(s) refused by the store on arrival and kept aside.",
                c.quarantined
            )
        });
    }
    html! { span class=(class) data-chain=(id) { (words) } }
}

pub fn report(lang: Lang, v: &ReportView) -> Markup {
    let t = |k| lang.t(k);
    html! {
        p { (t("report.intro")) }
        form.search.noprint method="get" action="/report" {
            label { (t("report.days")) input type="number" name="days" min="1" max="366" value=(v.days); }
            label { (t("report.officer")) input type="text" name="officer" value=(v.officer.as_ref().map(|o| o.0.as_str()).unwrap_or_default()); }
            div { button type="submit" { (t("search.submit")) } }
        }
        p.note { (v.examined) " " (t("report.records")) }
        @if v.truncated { p.bad { (t("report.truncated")) } }
        @if v.signals.is_empty() {
            p #signals { (t("report.none")) }
        } @else {
            div #signals {
                @for s in &v.signals {
                    div.signal data-kind=(s.kind) {
                        strong { (lang.t(&format!("kind.{}", s.kind))) } " — " code { (s.subject) }
                        p { (s.detail) }
                        p { (t("report.evidence")) ": "
                            @for seq in &s.sequences {
                                a href=(format!("/record/{seq}")) { "#" (seq) } " "
                            }
                        }
                    }
                }
            }
        }
        (chart::hours(t("report.per_hour"), &v.per_hour))
        @if !v.by_reason.is_empty() {
            (chart::bars(t("report.by_reason"), &v.by_reason))
        }
        @if let Some((officer, own, unit)) = &v.officer {
            (chart::hours(t("report.officer_vs_unit"), &[(officer.clone(), *own), (t("report.unit_mean").to_owned(), *unit)]))
        }
    }
}

pub fn export_form(lang: Lang) -> Markup {
    let t = |k| lang.t(k);
    html! {
        p { (t("export.intro")) }
        form method="post" action="/export" {
            label { (t("export.from")) input type="number" name="from" min="0" value="0"; }
            label { (t("export.to")) input type="number" name="to" min="0" value="0"; }
            p { button type="submit" { (t("export.submit")) } }
        }
    }
}

pub fn refused(lang: Lang, s: &tonic::Status) -> Markup {
    html! {
        div.status.broken #refused {
            p { strong { (lang.t("refused.title")) } }
            @for line in lienthong_devtool::call::describe(s).lines() {
                p { (line.trim()) }
            }
        }
    }
}

pub fn mistake(message: &str) -> Markup {
    html! { p.status.broken #mistake { (message) } }
}

pub fn citizen_login(lang: Lang, dev: bool) -> Markup {
    let t = |k| lang.t(k);
    html! {
        p { (t("citizen.login")) }
        form method="post" action="/citizen/login" {
            label { (t("login.token")) textarea name="token" rows="4" cols="80" required {} }
            p { button type="submit" { (t("login.submit")) } }
        }
        @if dev {
            h2 { (t("citizen.dev")) }
            form method="post" action="/citizen/login/dev" {
                label {
                    (t("search.personal_id"))
                    input type="text" name="personal_id" inputmode="numeric" maxlength="12"
                        autocomplete="off" required;
                }
                p { button type="submit" { (t("login.submit")) } }
            }
        }
    }
}

pub fn citizen_history(lang: Lang, accesses: &[pb::CitizenAccess], next: Option<String>) -> Markup {
    let t = |k| lang.t(k);
    let when = |a: &pb::CitizenAccess| {
        a.time
            .as_ref()
            .map(|t| local_time(t.seconds * 1_000_000 + i64::from(t.nanos) / 1000))
            .unwrap_or_default()
    };
    html! {
        p { (t("citizen.intro")) }
        form.noprint method="post" action="/citizen/logout" {
            button type="submit" { (t("citizen.logout")) }
        }
        @if accesses.is_empty() {
            p #accesses { (t("citizen.none")) }
        } @else {
            table #accesses {
                thead { tr {
                    th { (t("col.time")) } th { (t("citizen.agency")) } th { (t("col.officer")) }
                    th { (t("col.method")) } th { (t("col.procedure")) } th { (t("col.fields")) }
                    th { (t("col.outcome")) } th { (t("citizen.receipt")) }
                } }
                tbody {
                    @for a in accesses {
                        tr {
                            td { (when(a)) }
                            td { (a.unit_code) }
                            td { (a.officer_code) }
                            td { (a.operation) }
                            td { (a.procedure_code) @if !a.procedure_name.is_empty() { br; span.note { (a.procedure_name) } } }
                            td { (a.fields_disclosed.join(", ")) }
                            td {
                                @if a.served {
                                    span.ok { (t("citizen.served")) }
                                } @else {
                                    span.bad { (t("citizen.refused")) " " (a.refusal_reason) }
                                }
                            }
                            td { code { (a.chain_id) "#" (a.sequence) } }
                        }
                    }
                }
            }
            @if let Some(cursor) = next {
                p { a #next href=(format!("/citizen?after={cursor}")) { (t("search.next")) " →" } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(ok: bool, first_bad: u64, cover: Option<u64>) -> Standing {
        Standing {
            cover: cover.map(|sequence| Checkpoint {
                chain_id: "gw-1".into(),
                sequence,
                record_hash: [0; 32],
                time_us: 0,
                key_id: "k1".into(),
                signature: [0; 64],
            }),
            verified: pb::VerifyResponse {
                ok,
                records_checked: 10,
                checkpoints_checked: 1,
                first_bad_sequence: first_bad,
                problem: "hash mismatch: record edited".into(),
            },
        }
    }

    fn words(seq: u64, s: &Standing) -> String {
        standing_words(Lang::En, seq, s).into_string()
    }

    #[test]
    fn a_records_standing_is_said_in_words() {
        let covered = words(4, &standing(true, 0, Some(9)));
        assert!(covered.contains("Intact and signed") && covered.contains("checkpoint at #9"));
        let pending = words(4, &standing(true, 0, None));
        assert!(
            pending.contains("no checkpoint covers this record yet"),
            "{pending}"
        );
        let broken_before = words(4, &standing(false, 3, Some(9)));
        assert!(broken_before.contains("cannot vouch") && broken_before.contains("#3"));
        let broken_after = words(4, &standing(false, 7, Some(9)));
        assert!(
            broken_after.contains("broken after it, at #7"),
            "{broken_after}"
        );
    }
}
