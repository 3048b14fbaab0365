//! Token issuers given as a JWK Set, the way identity providers publish their keys: from a
//! file and from a URL, keys chosen by `kid`, a rotated set picked up without a restart, an
//! unknown key id refused with the ids in force, and sets that cannot be used refused at start.

use crate::helpers::*;
use lienthong_devtool::tokens::{TokenSpec, ed25519_jwk, mint_with};
use std::path::Path;
use std::time::Duration;
use tonic::Code;

/// The development configuration with the issuer's keys taken from `jwks`.
fn use_jwks(dir: &Path, jwks: &str) {
    let path = dir.join("gateway.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let changed = text.replacen(
        "public_key = \"pki/issuer.pub.pem\"",
        &format!("jwks = \"{jwks}\"\njwks_refresh_seconds = 1"),
        1,
    );
    assert_ne!(changed, text);
    std::fs::write(&path, changed).unwrap();
}

/// A second Ed25519 issuer key: its signing key and its JWK.
fn second_key() -> (jsonwebtoken::EncodingKey, String, serde_json::Value) {
    let k = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let (kid, jwk) = ed25519_jwk(k.public_key_raw());
    (
        jsonwebtoken::EncodingKey::from_ed_pem(k.serialize_pem().as_bytes()).unwrap(),
        kid,
        jwk,
    )
}

/// Serves `body()` over plain HTTP to every request, until dropped.
async fn serve_http(
    body: impl Fn() -> String + Send + 'static,
) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let body = body();
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(reply.as_bytes()).await;
        }
    });
    (url, task)
}

#[tokio::test]
async fn a_jwks_file_verifies_tokens_by_key_id_and_a_rotated_set_is_picked_up() {
    let env = spawn_env_prepared(&[], |dir| use_jwks(dir, "pki/issuer.jwks.json")).await;
    // The development issuer's tokens carry its kid.
    let mut s = env.officer("CB.H42.0001").await;
    s.lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap();
    // A token signed by a key the set does not (yet) hold.
    let (key, kid, jwk) = second_key();
    let spec = |kid: &str| TokenSpec {
        kid: Some(kid.to_owned()),
        ..TokenSpec::new("CB.H42.0001", "000.00.00.H42", &["receiver"])
            .bound_to_file(&env.unit_cert("ha-tinh").cert)
            .unwrap()
    };
    s.token = mint_with(&key, jsonwebtoken::Algorithm::EdDSA, &spec(&kid)).unwrap();
    let refused = s
        .lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap_err();
    assert_refused(&refused, Code::Unauthenticated, "BAD_TOKEN");
    assert!(refused.message().contains(&kid), "{}", refused.message());
    // The issuer rotates: its set now holds both keys; within a refresh the new one verifies.
    let path = env.dir.path().join("pki/issuer.jwks.json");
    let mut set: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    set["keys"].as_array_mut().unwrap().push(jwk);
    std::fs::write(&path, set.to_string()).unwrap();
    let mut served = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if s.lookup("1.004222", persona("complete-adult"))
            .await
            .is_ok()
        {
            served = true;
            break;
        }
    }
    assert!(served, "the rotated key was not picked up");
}

#[tokio::test]
async fn a_jwks_url_is_fetched_at_start_and_kept_when_its_server_goes_away() {
    let jwks_text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let served = jwks_text.clone();
    let (url, server) = serve_http(move || served.lock().unwrap().clone()).await;
    let env = spawn_env_prepared(&[], |dir| {
        *jwks_text.lock().unwrap() =
            std::fs::read_to_string(dir.join("pki/issuer.jwks.json")).unwrap();
        use_jwks(dir, &url);
    })
    .await;
    let mut s = env.officer("CB.H42.0001").await;
    s.lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap();
    // The identity provider is unreachable: the keys in force stay in force.
    server.abort();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.lookup("1.004222", persona("complete-adult"))
        .await
        .unwrap();
}

#[tokio::test]
async fn issuer_key_settings_that_cannot_work_are_refused_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    lienthong_devtool::env::DevPki::ensure(dir.path()).unwrap();
    let config = lienthong_devtool::env::ensure_gateway_config(dir.path()).unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    let problems = |replacement: &str| {
        std::fs::write(
            &config,
            text.replacen("public_key = \"pki/issuer.pub.pem\"", replacement, 1),
        )
        .unwrap();
        match lienthong_gateway::Config::load(&config, Vec::<(String, String)>::new()) {
            Ok(_) => String::new(),
            Err(e) => e.problems.join("\n"),
        }
    };
    std::fs::write(
        dir.path().join("pki/rsa.jwks.json"),
        r#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"r"}]}"#,
    )
    .unwrap();
    for (setting, expected) in [
        (
            "jwks = \"pki/rsa.jwks.json\"",
            "holds no key usable with EdDSA",
        ),
        (
            "jwks = \"pki/none.json\"",
            "auth.issuers[0].jwks: cannot read",
        ),
        (
            "jwks = \"https://idp.example/jwks\"",
            "auth.issuers[0].jwks_ca",
        ),
        (
            "public_key = \"pki/issuer.pub.pem\"\njwks = \"pki/issuer.jwks.json\"",
            "exactly one of public_key",
        ),
        (
            "jwks = \"pki/issuer.jwks.json\"\njwks_refresh_seconds = 0",
            "jwks_refresh_seconds",
        ),
    ] {
        let said = problems(setting);
        assert!(said.contains(expected), "{setting}: {said}");
    }
    assert_eq!(problems("jwks = \"pki/issuer.jwks.json\""), "");
}
