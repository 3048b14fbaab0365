//! The reviewer's console (`auditctl serve`) as a browser would use it, over real HTTP against a
//! live gateway: signing in, searching, a record and its place in the chain, verification, the
//! misuse report, downloads, the language switch — and its scope: an auditor of one province
//! sees nothing of another's through any page or parameter, an officer who is not an auditor
//! sees nothing at all, and every page is itself on the trail.
#![allow(clippy::unwrap_used)]

mod common;

use lienthong_devtool::call;
use lienthong_devtool::env::{DevPki, bind_gateway, ensure_gateway_config, spawn_mock};
use lienthong_proto::gateway::v1 as pb;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// A reply: status, headers (lowercased names) and body.
struct Reply {
    status: u16,
    /// Lowercased, for matching.
    headers: String,
    raw_headers: String,
    body: String,
}

impl Reply {
    fn cookie(&self) -> String {
        self.raw_headers
            .lines()
            .find(|l| l.to_lowercase().starts_with("set-cookie: "))
            .map(|l| &l["set-cookie: ".len()..])
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_owned()
    }
}

/// One HTTP/1.1 exchange on its own connection.
fn http(addr: &str, method: &str, path: &str, cookie: &str, form: &[(&str, &str)]) -> Reply {
    let body: String = form
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: {cookie}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head.to_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Reply {
        status,
        headers: head.to_lowercase(),
        raw_headers: head.to_owned(),
        body,
    }
}

/// A chunked body's content.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `auditctl serve` on a random port, stopped when dropped.
struct Served {
    child: Child,
    addr: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(endpoint: &str, dev: &str, as_officer: &str) -> Served {
    serve_with(endpoint, dev, as_officer, &[])
}

fn serve_with(endpoint: &str, dev: &str, as_officer: &str, more: &[&str]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_auditctl"))
        .args([
            "serve",
            "--endpoint",
            endpoint,
            "--dev-dir",
            dev,
            "--as-officer",
            as_officer,
            "--listen",
            "127.0.0.1:0",
        ])
        .args(more)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("console: http://")
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    Served { child, addr }
}

fn sign_in(console: &Served, officer: &str) -> String {
    let r = http(
        &console.addr,
        "POST",
        "/login/dev",
        "",
        &[("officer", officer)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    r.cookie()
}

/// The mock database and the gateway, in `d`; the gateway stops when the sender is dropped.
async fn environment(d: &std::path::Path) -> (String, tokio::sync::oneshot::Sender<()>) {
    let (pki, _) = DevPki::ensure(d).unwrap();
    let mock = spawn_mock(d, &pki, 2, 50).await.unwrap();
    let config = ensure_gateway_config(d).unwrap();
    let gateway = bind_gateway(&config, "127.0.0.1:0".parse().unwrap(), mock.addr)
        .await
        .unwrap();
    let endpoint = format!("https://{}", gateway.local_addr());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _mock = mock;
        gateway
            .run_until_stopped(async {
                let _ = rx.await;
            })
            .await
    });
    (endpoint, stop)
}

async fn lookup(caller: &mut call::Caller, personal_id: &str) -> Result<(), tonic::Status> {
    caller
        .client
        .lookup_citizen(caller.request(pb::LookupCitizenRequest {
            context: call::context("1.004222", "D-1"),
            subject: Some(pb::lookup_citizen_request::Subject::PersonalId(
                personal_id.into(),
            )),
            fields: vec![],
        }))
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_uses_the_console_and_sees_only_their_scope() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (endpoint, _stop) = environment(d).await;
    // Thanh Hóa's access first (sequence 0), then Hà Tĩnh's, then a burst of refusals.
    let citizen = "042188999005";
    let mut thanh_hoa = call::connect(d, &endpoint, "CB.H56.0001").await.unwrap();
    lookup(&mut thanh_hoa, citizen).await.unwrap();
    let mut ha_tinh = call::connect(d, &endpoint, "CB.H42.0001").await.unwrap();
    for _ in 0..2 {
        lookup(&mut ha_tinh, citizen).await.unwrap();
    }
    for _ in 0..12 {
        assert!(lookup(&mut ha_tinh, "04218899900X").await.is_err());
    }
    let spouse = "042087999006";
    lookup(&mut ha_tinh, spouse).await.unwrap();
    let dev = d.to_str().unwrap();
    let console = serve(&endpoint, dev, "CB.H42.KT01");
    let c = &console.addr;

    // Nothing without signing in.
    let r = http(c, "GET", "/", "", &[]);
    assert_eq!(
        (r.status, r.headers.contains("location: /login")),
        (303, true)
    );
    let r = http(c, "GET", "/login", "", &[]);
    assert!(
        r.body.contains("CB.H42.KT01"),
        "the sample auditor is offered"
    );
    assert!(r.body.contains("Đăng nhập"), "Vietnamese by default");
    let auditor = sign_in(&console, "CB.H42.KT01");
    assert!(auditor.starts_with("lt_token=ey"));

    // Search by personal ID: the province's accesses, masked, never Thanh Hóa's.
    let r = http(c, "POST", "/search", &auditor, &[("personal_id", citizen)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body.matches("<span class=\"ok\">OK</span>").count(), 2);
    assert!(r.body.contains("042•••••••005") && r.body.contains("000.00.00.H42"));
    assert!(
        !r.body.contains("000.00.00.H56"),
        "another province's access"
    );
    // Pages: 5 refusals a page, the cursor carried in the form (not the URL).
    let (mut seen, mut pages) = (0, 0);
    let mut after = String::new();
    for _ in 0..4 {
        let r = http(
            c,
            "POST",
            "/search",
            &auditor,
            &[
                ("outcome", "refused"),
                ("officer", "CB.H42.0001"),
                ("size", "5"),
                ("after", &after),
            ],
        );
        pages += 1;
        seen += r.body.matches("<span class=\"bad\">").count();
        match r.body.split("name=\"after\" value=\"").nth(1) {
            Some(rest) => after = rest.split('"').next().unwrap().to_owned(),
            None => break,
        }
    }
    assert_eq!((seen, pages), (12, 3), "every refusal once, across pages");

    // A record, its receipt and its place in the chain.
    let r = http(c, "GET", "/record/1", &auditor, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("id=\"standing\"") && r.body.contains("Nguyên vẹn"),
        "{}",
        r.body
    );
    assert!(r.body.contains("LookupCitizen") && r.body.contains("href=\"/record/2\""));
    // Thanh Hóa's record, by its sequence: not shown.
    let r = http(c, "GET", "/record/0", &auditor, &[]);
    assert!(r.body.contains("id=\"missing\"") && !r.body.contains("000.00.00.H56"));
    let r = http(c, "GET", "/record/zero", &auditor, &[]);
    assert_eq!(r.status, 400, "a sequence is a number");

    // Verification in words.
    let r = http(c, "GET", "/verify", &auditor, &[]);
    assert!(
        r.body.contains("id=\"verdict\" class=\"status\""),
        "{}",
        r.body
    );

    // The misuse report: the burst, with its evidence a click away; only the province's units.
    let r = http(
        c,
        "GET",
        "/report?days=1&officer=CB.H42.0001",
        &auditor,
        &[],
    );
    assert!(r.body.contains("data-kind=\"refusal-burst\""), "{}", r.body);
    assert!(r.body.contains("href=\"/record/"));
    assert!(r.body.contains("aria-label=\"000.00.00.H42\""));
    assert!(!r.body.contains("000.00.00.H56"));

    // CSV of a search; another province by name is refused on every page that takes a unit.
    let r = http(
        c,
        "POST",
        "/search.csv",
        &auditor,
        &[("personal_id", citizen)],
    );
    assert!(r.headers.contains("content-type: text/csv"));
    // The two lookups, and the auditor's own search by this ID (it is an access too).
    assert_eq!(r.body.matches("/LookupCitizen\"").count(), 2, "{}", r.body);
    assert!(r.body.contains("/lienthong.audit.v1.AuditService/Query"));
    assert!(!r.body.contains(citizen));
    for path in ["/search", "/search.csv"] {
        let r = http(c, "POST", path, &auditor, &[("unit", "000.00.00.H56")]);
        assert_eq!(r.status, 403, "{path}");
        assert!(r.body.contains("AUDIT_SCOPE"), "{path}: {}", r.body);
    }
    // A signed range carries every unit's records: national auditors only.
    let r = http(c, "POST", "/export", &auditor, &[("from", "0")]);
    assert_eq!(r.status, 403);
    assert!(r.body.contains("AUDIT_SCOPE"));

    // English on request.
    let r = http(c, "GET", "/verify", &format!("{auditor}; lt_lang=en"), &[]);
    assert!(r.body.contains("Audit review console") && r.body.contains("lang=\"en\""));

    // An officer who is not an auditor gets nothing; a forged token nothing either.
    let officer = sign_in(&console, "CB.H42.0001");
    for (method, path) in [("POST", "/search"), ("GET", "/verify"), ("GET", "/report")] {
        let r = http(c, method, path, &officer, &[]);
        assert_eq!(r.status, 403, "{path}");
        assert!(r.body.contains("ROLE_NOT_ALLOWED"), "{path}: {}", r.body);
    }
    let r = http(c, "GET", "/verify", "lt_token=eyJ.forged.token", &[]);
    assert_eq!(r.status, 401, "{}", r.body);
    let r = http(
        c,
        "POST",
        "/login",
        "",
        &[("token", "not a token <script>")],
    );
    assert_eq!(r.status, 400);

    // Every page read the trail through the gateway, and each read is on the trail.
    let r = http(
        c,
        "POST",
        "/search",
        &auditor,
        &[("officer", "CB.H42.KT01")],
    );
    for method in ["Query", "Verify", "ListCheckpoints", "Export"] {
        assert!(r.body.contains(&format!("<td>{method}</td>")), "{method}");
    }

    // A citizen's own page: every unit's accesses to her, no one else's; her token reads no
    // auditor's page, and an auditor's token reads no citizen's history.
    let r = http(c, "GET", "/citizen", "", &[]);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("action=\"/citizen/login/dev\""));
    let r = http(
        c,
        "POST",
        "/citizen/login/dev",
        "",
        &[("personal_id", citizen)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let her = r.cookie();
    assert!(her.starts_with("lt_citizen=ey"));
    let r = http(c, "GET", "/citizen", &her, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let rows = r.body.matches("<td>LookupCitizen</td>").count();
    assert_eq!(rows, 3, "Thanh Hóa's access and Hà Tĩnh's two");
    assert!(
        r.body.contains("<td>Query</td>"),
        "the auditor's search for her is listed too"
    );
    assert!(r.body.contains("000.00.00.H56") && r.body.contains("CB.H56.0001"));
    assert!(
        !r.body.contains("127.0.0.1"),
        "no peer address, no certificate"
    );
    let r = http(
        c,
        "POST",
        "/citizen/login/dev",
        "",
        &[("personal_id", spouse)],
    );
    let his = r.cookie();
    let r = http(c, "GET", "/citizen", &his, &[]);
    assert_eq!(r.body.matches("<td>LookupCitizen</td>").count(), 1);
    assert!(!r.body.contains("000.00.00.H56"));
    let as_auditor = her.replace("lt_citizen=", "lt_token=");
    let r = http(c, "GET", "/verify", &as_auditor, &[]);
    assert_eq!(r.status, 403);
    assert!(r.body.contains("ROLE_NOT_ALLOWED"));
    let as_citizen = auditor.replace("lt_token=", "lt_citizen=");
    let r = http(c, "GET", "/citizen", &as_citizen, &[]);
    assert_eq!(r.status, 403);
    assert!(r.body.contains("ROLE_NOT_ALLOWED"));
    let r = http(
        c,
        "POST",
        "/citizen/login/dev",
        "",
        &[("personal_id", "12345")],
    );
    assert_eq!(r.status, 400, "not a personal ID");

    // The national auditor's console exports a signed range.
    let national = serve(&endpoint, dev, "CB.C06.KT01");
    let cookie = sign_in(&national, "CB.C06.KT01");
    let r = http(&national.addr, "POST", "/export", &cookie, &[("from", "0")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.lines().count() > 15, "{}", r.body);
    // And sees Thanh Hóa's record.
    let r = http(&national.addr, "GET", "/record/0", &cookie, &[]);
    assert!(r.body.contains("000.00.00.H56"));
}

/// The verification page also verifies the fleet's central store (the machine's PostgreSQL, a
/// schema of its own, dropped after), for auditors only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verification_page_verifies_the_central_stores_chains() {
    let Some(store) = common::Store::open("console").await else {
        return;
    };
    let (url, schema) = (&store.url, &store.schema);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (endpoint, _stop) = environment(d).await;
    // A chain of ten records signed at 9, then one record past a gap.
    let (key, public) = common::signing_key(d, 7);
    let records = common::chain("gw-c", 12);
    store.ingest("gw-c", &records[..10]).await;
    store.checkpoint(&key, "gw-c", 9, records[9].hash).await;
    store.ingest("gw-c", &records[11..]).await;

    let console = serve_with(
        &endpoint,
        d.to_str().unwrap(),
        "CB.C06.KT01",
        &[
            "--central",
            url,
            "--schema",
            schema,
            "--public-key",
            public.to_str().unwrap(),
        ],
    );
    let auditor = sign_in(&console, "CB.C06.KT01");
    let r = http(
        &console.addr,
        "GET",
        "/verify",
        &format!("{auditor}; lt_lang=en"),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains("gw-c: complete and intact up to record #9 (10 records), signed up to #9.")
            && r.body
                .contains("Record #10 is missing: 1 later record(s) wait for it."),
        "{}",
        r.body
    );
    // Not for a reader the gateway does not accept as an auditor.
    let r = http(
        &console.addr,
        "GET",
        "/verify",
        "lt_token=eyJ.forged.token",
        &[],
    );
    assert_eq!(r.status, 401);
    assert!(!r.body.contains("gw-c"));
    store.drop_schema().await;
}
