//! The mock population database, end to end: a real server on a random port with mutual TLS
//! and a real tonic client.
#![allow(clippy::unwrap_used)]

use lienthong_devtool::client::mtls_channel;
use lienthong_devtool::pki::{CertFiles, DevCa, Validity};
use lienthong_proto::csdl::v1 as pb;
use pb::population_registry_client::PopulationRegistryClient;
use pb::registry_admin_client::RegistryAdminClient;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_types::StatusExt;

struct TestMock {
    addr: SocketAddr,
    admin_addr: SocketAddr,
    metrics_addr: SocketAddr,
    ca: CertFiles,
    /// The plaintext gRPC health listener.
    health_addr: SocketAddr,
    /// The gateway's certificate (unit 000.00.00.LTG): the one reader of citizen data.
    client: CertFiles,
    /// The admin certificate (unit 000.00.00.DEV).
    admin: CertFiles,
    /// A connected unit's certificate from the same CA (000.00.00.P01).
    unit: CertFiles,
    dir: tempfile::TempDir,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// A mock database with 300 generated citizens plus the personas, serving mutual TLS on a
/// random port, and a client certificate from the same CA.
async fn spawn_mock() -> TestMock {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::create(&dir.path().join("pki"), "Test CA").unwrap();
    let server_cert = ca
        .server("mock-csdl", "mock-csdl", &Default::default())
        .unwrap();
    let client = ca
        .unit_client("gateway", "000.00.00.LTG", "Gateway", Validity::Days(1))
        .unwrap();
    let admin = ca
        .unit_client("admin", "000.00.00.DEV", "Developer", Validity::Days(1))
        .unwrap();
    let unit = ca
        .unit_client(
            "pending",
            "000.00.00.P01",
            "Pending unit",
            Validity::Days(1),
        )
        .unwrap();
    let store = mock_csdl::Store::open(&dir.path().join("csdl.sled")).unwrap();
    store
        .generate(
            mock_csdl::Spec {
                seed: 1,
                citizens: 300,
                province: None,
            },
            false,
            |_| {},
        )
        .unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut settings = mock_csdl::Settings::new(
        any,
        Some(mock_csdl::TlsFiles {
            cert: server_cert.cert,
            key: server_cert.key,
            client_ca: Some(ca.ca_cert.clone()),
        }),
        Some(any),
    );
    settings.metrics_listen = Some(any);
    settings.health_listen = Some(any);
    let server = mock_csdl::MockCsdl::build(store, &settings).await.unwrap();
    let health_addr = server.health_addr().unwrap();
    let addr = server.local_addr();
    let admin_addr = server.admin_addr().unwrap();
    let metrics_addr = server.metrics_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run_until_stopped(async {
        let _ = rx.await;
    }));
    TestMock {
        addr,
        admin_addr,
        metrics_addr,
        health_addr,
        admin,
        unit,
        ca: CertFiles {
            cert: ca.ca_cert.clone(),
            key: dir.path().join("pki/ca.key"),
        },
        client,
        dir,
        _shutdown: tx,
    }
}

async fn connect(
    addr: SocketAddr,
    ca: &CertFiles,
    identity: Option<&CertFiles>,
) -> Result<Channel, lienthong_devtool::client::ConnectError> {
    mtls_channel(&format!("https://{addr}"), &ca.cert, identity).await
}

impl TestMock {
    async fn registry(&self) -> PopulationRegistryClient<Channel> {
        PopulationRegistryClient::new(
            connect(self.addr, &self.ca, Some(&self.client))
                .await
                .unwrap(),
        )
    }
    async fn admin(&self) -> RegistryAdminClient<Channel> {
        RegistryAdminClient::new(
            connect(self.admin_addr, &self.ca, Some(&self.admin))
                .await
                .unwrap(),
        )
    }
}

fn request(key: pb::get_citizen_request::Key) -> pb::GetCitizenRequest {
    pb::GetCitizenRequest {
        key: Some(key),
        request_id: "test".into(),
        household_link_only: false,
    }
}

fn by_id(id: &str) -> pb::GetCitizenRequest {
    request(pb::get_citizen_request::Key::PersonalId(id.into()))
}

fn household_of(id: &str) -> pb::GetHouseholdRequest {
    pb::GetHouseholdRequest {
        key: Some(pb::get_household_request::Key::PersonalId(id.into())),
        request_id: "test".into(),
    }
}

#[tokio::test]
async fn a_persona_is_served_over_mutual_tls() {
    let mock = spawn_mock().await;
    let mut client = mock.registry().await;
    let citizen = client
        .get_citizen(by_id("042188999005"))
        .await
        .unwrap()
        .into_inner()
        .citizen
        .unwrap();
    assert_eq!(citizen.full_name, "Trần Thị Minh Thư");
    assert_eq!(citizen.old_id_number, "189990005");
    assert_eq!(
        citizen.date_of_birth,
        Some(pb::Date {
            year: 1988,
            month: 3,
            day: 14
        })
    );
    let household = citizen.household.unwrap();
    assert_eq!(household.members.len(), 2);
    assert_eq!(household.head_full_name, "Đặng Quốc Việt");
    assert_eq!(
        citizen.current_address.unwrap().formatted,
        "Số 24 phố Hàng Bạc, Phường Hoàn Kiếm, Thành phố Hà Nội"
    );
    assert!(!citizen.provenance.is_empty());

    // The same person by old ID number.
    let by_old = client
        .get_citizen(request(pb::get_citizen_request::Key::OldIdNumber(
            "189990005".into(),
        )))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_old.citizen.unwrap().personal_id, "042188999005");
}

#[tokio::test]
async fn a_record_asked_with_its_household_link_only_carries_no_member() {
    let mock = spawn_mock().await;
    let mut client = mock.registry().await;
    let full = client
        .get_citizen(by_id("042222999003"))
        .await
        .unwrap()
        .into_inner()
        .citizen
        .unwrap();
    let linked = client
        .get_citizen(pb::GetCitizenRequest {
            household_link_only: true,
            ..by_id("042222999003")
        })
        .await
        .unwrap()
        .into_inner()
        .citizen
        .unwrap();
    let (f, l) = (
        full.household.clone().unwrap(),
        linked.household.clone().unwrap(),
    );
    assert_eq!(f.members.len(), 4);
    assert!(l.members.is_empty());
    assert!(l.head_personal_id.is_empty() && l.address.is_none());
    assert_eq!(l.household_id, f.household_id);
    assert_eq!(l.relation_to_head, f.relation_to_head);
    assert_ne!(l.relation_to_head, pb::Relation::Unspecified as i32);
    // Everything else is the same record.
    assert_eq!(
        pb::Citizen {
            household: None,
            ..linked
        },
        pb::Citizen {
            household: None,
            ..full
        }
    );
}

#[tokio::test]
async fn households_list_their_members() {
    let mock = spawn_mock().await;
    let mut client = mock.registry().await;
    let h = client
        .get_household(household_of("042222999003"))
        .await
        .unwrap()
        .into_inner()
        .household
        .unwrap();
    assert_eq!(h.head_personal_id, "042085999001");
    let names: Vec<_> = h.members.iter().map(|m| m.full_name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Lê Văn Hùng",
            "Phạm Thị Lan",
            "Lê Minh Khôi",
            "Lê Ngọc Bảo Anh"
        ]
    );
    // The deceased belong to no household.
    let err = client
        .get_household(household_of("042038999007"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn clients_without_a_good_certificate_are_refused() {
    let mock = spawn_mock().await;
    // No client certificate at all: the handshake (or the first call) fails.
    let no_cert = match connect(mock.addr, &mock.ca, None).await {
        Ok(channel) => PopulationRegistryClient::new(channel)
            .get_citizen(by_id("042188999005"))
            .await
            .map(|_| ()),
        Err(e) => Err(tonic::Status::unavailable(e.to_string())),
    };
    assert!(
        no_cert.is_err(),
        "a client without a certificate was served"
    );

    // A certificate from another CA.
    let other = DevCa::create(&mock.dir.path().join("other"), "Other CA").unwrap();
    let foreign = other
        .unit_client("intruder", "000.00.00.X99", "Intruder", Validity::Days(1))
        .unwrap();
    let foreign_call = match connect(mock.addr, &mock.ca, Some(&foreign)).await {
        Ok(channel) => PopulationRegistryClient::new(channel)
            .get_citizen(by_id("042188999005"))
            .await
            .map(|_| ()),
        Err(e) => Err(tonic::Status::unavailable(e.to_string())),
    };
    assert!(
        foreign_call.is_err(),
        "a certificate from another CA was accepted"
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_error() {
    let mock = spawn_mock().await;
    let mut client = mock.registry().await;
    let check = |input: &'static str, expected: &'static str| (input, expected);
    for (input, expected) in [
        check("04218899900", "has 12 digits; this one has 11"),
        check("04218899900x", "only digits"),
        check("003188999005", "not the code of a province"),
    ] {
        let err = client.get_citizen(by_id(input)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{input}");
        assert!(
            err.message().contains(expected),
            "{input}: {}",
            err.message()
        );
        let details = err.get_details_bad_request().expect("BadRequest details");
        assert_eq!(details.field_violations[0].field, "personal_id");
    }
    let err = client
        .get_citizen(pb::GetCitizenRequest {
            key: None,
            request_id: String::new(),
            household_link_only: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = client.get_citizen(by_id("001099000000")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // The full number never comes back in an error message.
    assert!(!err.message().contains("001099000000"), "{}", err.message());
    assert!(err.message().contains("001•••••••000"));
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    let mock = spawn_mock().await;
    let channel = connect(mock.addr, &mock.ca, Some(&mock.client))
        .await
        .unwrap();
    use tonic_health::pb::health_check_response::ServingStatus;
    let serving = |channel: tonic::transport::Channel, service: &'static str| async move {
        tonic_health::pb::health_client::HealthClient::new(channel)
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status
    };
    assert_eq!(
        serving(channel, "lienthong.csdl.v1.PopulationRegistry").await,
        ServingStatus::Serving as i32
    );
    // The same states in plaintext, for probes that cannot speak TLS (and nothing else there).
    let plain = tonic::transport::Channel::from_shared(format!("http://{}", mock.health_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert_eq!(
        serving(plain.clone(), "").await,
        ServingStatus::Serving as i32
    );
    let data = pb::population_registry_client::PopulationRegistryClient::new(plain)
        .get_citizen(pb::GetCitizenRequest::default())
        .await
        .unwrap_err();
    assert_eq!(data.code(), tonic::Code::Unimplemented, "{data:?}");

    // Reflection v1 and v1alpha on each port: exactly what that port serves.
    let names = |v1alpha: bool, addr, admin: bool| {
        let ca = mock.ca.clone();
        let identity = if admin {
            mock.admin.clone()
        } else {
            mock.client.clone()
        };
        async move {
            let channel = connect(addr, &ca, Some(&identity)).await.unwrap();
            lienthong_e2e::reflected_services(channel, v1alpha).await
        }
    };
    let main = [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "lienthong.csdl.v1.PopulationRegistry",
    ];
    assert_eq!(names(false, mock.addr, false).await, main);
    assert_eq!(names(true, mock.addr, false).await, main);
    let admin = [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "lienthong.csdl.v1.RegistryAdmin",
    ];
    assert_eq!(names(false, mock.admin_addr, true).await, admin);
    assert_eq!(names(true, mock.admin_addr, true).await, admin);
}

fn fault(scope_id: &str, effect: pb::fault::Effect) -> pb::SetFaultRequest {
    pb::SetFaultRequest {
        fault: Some(pb::Fault {
            scope: Some(pb::FaultScope {
                method: "GetCitizen".into(),
                personal_id: scope_id.into(),
            }),
            effect: Some(effect),
            seed: 3,
            ..Default::default()
        }),
    }
}

#[tokio::test]
async fn faults_set_at_run_time_take_effect_and_clear() {
    let mock = spawn_mock().await;
    let mut client = mock.registry().await;
    let mut admin = mock.admin().await;
    let target = "042158999011";

    // Latency: the call takes at least the injected delay.
    let set = admin
        .set_fault(fault(
            target,
            pb::fault::Effect::Latency(pb::LatencyFault {
                fixed_ms: 300,
                jitter_ms: 0,
            }),
        ))
        .await
        .unwrap()
        .into_inner()
        .fault
        .unwrap();
    let started = Instant::now();
    client.get_citizen(by_id(target)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    admin
        .clear_faults(pb::ClearFaultsRequest {
            id: set.id.clone(),
            include_builtin: false,
        })
        .await
        .unwrap();

    // Error rate 1.0 with a chosen code, only for that citizen.
    admin
        .set_fault(fault(
            target,
            pb::fault::Effect::Error(pb::ErrorFault {
                rate: 1.0,
                code: Code::ResourceExhausted as i32,
                message: String::new(),
            }),
        ))
        .await
        .unwrap();
    let err = client.get_citizen(by_id(target)).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    client.get_citizen(by_id("042188999005")).await.unwrap();
    admin
        .clear_faults(pb::ClearFaultsRequest::default())
        .await
        .unwrap();
    client.get_citizen(by_id(target)).await.unwrap();

    // Every third call.
    admin
        .set_fault(fault(
            target,
            pb::fault::Effect::EveryNth(pb::EveryNthFault {
                n: 3,
                code: Code::Internal as i32,
            }),
        ))
        .await
        .unwrap();
    let mut pattern = Vec::new();
    for _ in 0..6 {
        pattern.push(client.get_citizen(by_id(target)).await.is_ok());
    }
    assert_eq!(pattern, [true, true, false, true, true, false]);
    admin
        .clear_faults(pb::ClearFaultsRequest::default())
        .await
        .unwrap();

    // An outage window that starts now.
    admin
        .set_fault(fault(
            "",
            pb::fault::Effect::Outage(pb::OutageFault {
                start_after_ms: 0,
                duration_ms: 60_000,
            }),
        ))
        .await
        .unwrap();
    let err = client.get_citizen(by_id(target)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    let faults = admin
        .list_faults(pb::ListFaultsRequest {})
        .await
        .unwrap()
        .into_inner()
        .faults;
    assert_eq!(
        faults.len(),
        5,
        "four built-in persona faults and the outage"
    );
    admin
        .clear_faults(pb::ClearFaultsRequest::default())
        .await
        .unwrap();
    client.get_citizen(by_id(target)).await.unwrap();

    // A bad rule is refused with the key named.
    let err = admin
        .set_fault(fault(
            target,
            pb::fault::Effect::Error(pb::ErrorFault {
                rate: 2.0,
                code: 14,
                message: String::new(),
            }),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("fault.error.rate"),
        "{}",
        err.message()
    );

    let stats = admin
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        stats.citizens,
        300 + mock_csdl::personas::PERSONAS.len() as u64
    );
    assert!(stats.calls["GetCitizen"] >= 12);
    assert!(stats.faults_triggered >= 4);
}

#[tokio::test]
async fn chaos_personas_misbehave_as_documented() {
    let mock = spawn_mock().await;
    let mut client = mock.registry().await;
    assert_eq!(
        client
            .get_citizen(by_id("042081999018"))
            .await
            .unwrap_err()
            .code(),
        Code::Unavailable
    );
    let flaky: Vec<bool> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(client.get_citizen(by_id("042183999020")).await.is_ok());
        }
        v
    };
    assert_eq!(flaky, [true, false, true, false]);
    // The timeout persona hangs: no answer within half a second (the server honours the
    // caller's grpc-timeout and gives up with CANCELLED or DEADLINE_EXCEEDED).
    let mut request = Request::new(by_id("042082999019"));
    request.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let err = client.get_citizen(request).await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(
        matches!(err.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{err:?}"
    );
}

#[tokio::test]
async fn only_the_gateway_reads_citizens_and_only_the_admin_certificate_sets_faults() {
    let mock = spawn_mock().await;
    // A connected unit's certificate, from the same CA: no citizen, no fault.
    let mut direct = PopulationRegistryClient::new(
        connect(mock.addr, &mock.ca, Some(&mock.unit))
            .await
            .unwrap(),
    );
    let e = direct.get_citizen(by_id("042188999005")).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("000.00.00.P01"), "{}", e.message());
    let e = direct
        .get_household(household_of("042188999005"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    // Nor does the admin certificate read citizens on the data service (not in its list here).
    let mut admin_as_reader = PopulationRegistryClient::new(
        connect(mock.addr, &mock.ca, Some(&mock.admin))
            .await
            .unwrap(),
    );
    assert!(
        admin_as_reader
            .get_citizen(by_id("042188999005"))
            .await
            .is_err()
    );
    // The admin service is on its own address, for the admin certificate only.
    for identity in [&mock.unit, &mock.client] {
        let mut admin = RegistryAdminClient::new(
            connect(mock.admin_addr, &mock.ca, Some(identity))
                .await
                .unwrap(),
        );
        let e = admin
            .list_faults(pb::ListFaultsRequest {})
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    }
    // And the data address does not serve it at all.
    let mut wrong_port = RegistryAdminClient::new(
        connect(mock.addr, &mock.ca, Some(&mock.admin))
            .await
            .unwrap(),
    );
    let e = wrong_port
        .list_faults(pb::ListFaultsRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unimplemented, "{e:?}");
    // The gateway's certificate reads; the admin certificate administers.
    mock.registry()
        .await
        .get_citizen(by_id("042188999005"))
        .await
        .unwrap();
    mock.admin()
        .await
        .list_faults(pb::ListFaultsRequest {})
        .await
        .unwrap();
}

/// `GET /metrics` over plain HTTP/1.1: the body.
async fn scrape(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: mock\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

#[tokio::test]
async fn metrics_count_calls_by_method_and_status_and_faults_by_rule() {
    let mock = spawn_mock().await;
    let mut client = mock.registry().await;
    let mut admin = mock.admin().await;
    let target = "042158999011";
    client.get_citizen(by_id(target)).await.unwrap();
    client.get_citizen(by_id(target)).await.unwrap();
    let missing = client.get_citizen(by_id("042099000123")).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let rule = admin
        .set_fault(fault(
            target,
            pb::fault::Effect::Error(pb::ErrorFault {
                rate: 1.0,
                code: Code::ResourceExhausted as i32,
                message: String::new(),
            }),
        ))
        .await
        .unwrap()
        .into_inner()
        .fault
        .unwrap()
        .id;
    for _ in 0..3 {
        client.get_citizen(by_id(target)).await.unwrap_err();
    }
    let body = scrape(mock.metrics_addr).await;
    let value = |series: &str| -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in\n{body}"))
            .parse()
            .unwrap()
    };
    let calls = |code: &str| {
        value(&format!(
            r#"mock_csdl_requests_total{{method="GetCitizen",code="{code}"}}"#
        ))
    };
    assert_eq!(calls("Ok"), 2.0);
    assert_eq!(calls("NotFound"), 1.0);
    assert_eq!(calls("ResourceExhausted"), 3.0);
    assert_eq!(
        value(r#"mock_csdl_requests_total{method="SetFault",code="Ok"}"#),
        1.0
    );
    assert_eq!(
        value(&format!(
            r#"mock_csdl_fault_activations_total{{rule="{rule}"}}"#
        )),
        3.0
    );
    assert_eq!(
        value(r#"mock_csdl_request_duration_seconds_count{method="GetCitizen"}"#),
        6.0
    );
}
