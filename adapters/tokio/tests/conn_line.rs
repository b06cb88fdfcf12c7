//! The line manager against the line server over real sockets, with faults:
//! a server killed and restarted, black-holed, refusing; TLS with
//! certificates made here. Real time: each test is bounded by a hang guard,
//! never by a timing assertion.

use core::future::Future;
use core::time::Duration;
use std::path::PathBuf;
use std::sync::Arc;

use mechops_core::backoff::Backoff;
use mechops_tokio::conn::line::{LineEndpoint, LineError, LineManager, LineTls};
use mechops_tokio::conn::line_server::LineServer;
use mechops_tokio::conn::{
    AcquireFailure, BreakerState, ConnectionPool, ConnectionPoolConfig, FailureKind, PoolError,
};

/// Fails the test instead of hanging it.
async fn guard<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(60), f).await {
        Ok(v) => v,
        Err(_) => panic!("{what} hung"),
    }
}

fn config(min: usize, max: usize) -> ConnectionPoolConfig {
    let mut config = ConnectionPoolConfig::sized(min, max);
    config.pool.acquire_timeout = Duration::from_secs(2);
    config.pool.check_after_idle = None;
    config.pool.breaker.backoff =
        Backoff::new(Duration::from_millis(20), Duration::from_millis(200), 16).unwrap();
    config.connect_timeout = Duration::from_secs(2);
    config
}

fn pool(server: &LineServer, config: ConnectionPoolConfig) -> ConnectionPool<LineManager> {
    let endpoint: LineEndpoint = server.url().parse().unwrap();
    let manager = LineManager::new(Duration::from_millis(500), None);
    ConnectionPool::new("line", manager, vec![endpoint], config).unwrap()
}

/// Waits (bounded by the guard) until `cond` holds.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    guard(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[test]
fn endpoints_parse_and_bad_ones_are_named() {
    let e: LineEndpoint = "tls://db.example:6380".parse().unwrap();
    assert_eq!((e.tls, e.host.as_str(), e.port), (true, "db.example", 6380));
    assert_eq!(e.to_string(), "tls://db.example:6380");
    let v6: LineEndpoint = "tcp://[::1]:7".parse().unwrap();
    assert_eq!(
        (v6.host.as_str(), v6.to_string()),
        ("::1", "tcp://[::1]:7".to_owned())
    );
    for bad in [
        "http://a:1",
        "tcp://a",
        "tcp://:1",
        "tcp://a:99999",
        "tcp://[::1:2",
    ] {
        let err = bad.parse::<LineEndpoint>().unwrap_err();
        assert!(matches!(err, LineError::BadEndpoint(_)), "{bad}: {err}");
        assert!(err.to_string().contains(bad), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_get_set_ping() {
    let server = LineServer::local().await.unwrap();
    let pool = pool(&server, config(1, 2));
    let mut conn = guard("acquire", pool.acquire()).await.unwrap();
    assert_eq!(conn.execute("PING").await.unwrap(), "PONG");
    assert_eq!(
        conn.execute("SET greeting hello there").await.unwrap(),
        "OK"
    );
    assert_eq!(conn.execute("GET greeting").await.unwrap(), "hello there");
    assert_eq!(conn.execute("GET missing").await.unwrap(), "NIL");
    assert!(matches!(
        conn.execute("A\nB").await,
        Err(LineError::NewlineInRequest)
    ));
    assert!(!conn.is_broken());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_open_never_exceeds_max_at_the_server() {
    let server = LineServer::local().await.unwrap();
    let pool = pool(&server, config(0, 4));
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for j in 0..40 {
                    let mut c = pool.acquire().await.unwrap();
                    c.execute("PING").await.unwrap();
                    if (i + j) % 9 == 0 {
                        c.mark_broken();
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        guard("soak", t).await.unwrap();
    }
    assert!(server.max_open() <= 4, "{}", server.max_open());
    assert!(server.accepted() > 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_gives_errors_not_hangs_and_restart_recovers() {
    let mut server = LineServer::local().await.unwrap();
    let pool = pool(&server, config(2, 8));
    let stop = Arc::new(core::sync::atomic::AtomicBool::new(false));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let pool = pool.clone();
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let (mut ok, mut errors) = (0u32, 0u32);
                while !stop.load(core::sync::atomic::Ordering::SeqCst) {
                    match pool.acquire().await {
                        Ok(mut c) => match c.execute("PING").await {
                            Ok(_) => ok += 1,
                            Err(_) => errors += 1,
                        },
                        Err(_) => errors += 1,
                    }
                }
                (ok, errors)
            })
        })
        .collect();
    eventually("first requests", || server.requests() > 200).await;
    server.kill().await;
    // While it is down, acquires and requests fail within their timeouts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = guard("acquire while down", async {
        loop {
            match pool.acquire().await {
                Err(e) => break e,
                Ok(mut c) => {
                    let _ = c.execute("PING").await;
                }
            }
        }
    })
    .await;
    assert!(refused.is_timeout(), "{refused}");
    server.restart().await.unwrap();
    let before = server.requests();
    eventually("recovery", || server.requests() > before + 200).await;
    stop.store(true, core::sync::atomic::Ordering::SeqCst);
    let mut errors = 0;
    for t in tasks {
        let (_, e) = guard("soak task", t).await.unwrap();
        errors += e;
    }
    assert!(errors > 0);
    // The minimum is restored after the failures.
    eventually("min restored", || server.open() >= 2).await;
    assert!(server.max_open() <= 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_holed_server_times_requests_out() {
    let server = LineServer::local().await.unwrap();
    let pool = pool(&server, config(0, 2));
    let mut conn = guard("acquire", pool.acquire()).await.unwrap();
    assert_eq!(conn.execute("PING").await.unwrap(), "PONG");
    server.set_black_hole(true);
    let err = guard("black-holed request", conn.execute("PING"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, LineError::Timeout(d) if d == Duration::from_millis(500)),
        "{err}"
    );
    assert!(conn.is_broken());
    drop(conn);
    server.set_black_hole(false);
    // The broken connection was closed and replaced.
    let mut conn = guard("acquire", pool.acquire()).await.unwrap();
    assert_eq!(conn.execute("PING").await.unwrap(), "PONG");
    assert_eq!(pool.metrics().broken, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_open_the_breaker_then_half_open() {
    let mut server = LineServer::local().await.unwrap();
    let pool = pool(&server, config(0, 2));
    server.kill().await;
    let err = guard("acquire", pool.acquire()).await.unwrap_err();
    assert!(
        matches!(
            err,
            PoolError::Timeout {
                reason: AcquireFailure::Unreachable {
                    last_error: Some(FailureKind::Refused)
                },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(&server.url()), "{err}");
    let state = pool.metrics().endpoints[0].breaker;
    assert_ne!(state, BreakerState::Closed);
    server.restart().await.unwrap();
    // A trial connect after the backoff closes the breaker again.
    let mut conn = guard("acquire after restart", pool.acquire())
        .await
        .unwrap();
    assert_eq!(conn.execute("PING").await.unwrap(), "PONG");
    assert_eq!(pool.metrics().endpoints[0].breaker, BreakerState::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_lifetime_recycles_connections() {
    let server = LineServer::local().await.unwrap();
    let mut config = config(1, 1);
    config.pool.max_lifetime = Some(Duration::from_millis(100));
    config.pool.lifetime_jitter = Duration::ZERO;
    let pool = pool(&server, config);
    eventually("recycled", || server.accepted() >= 3).await;
    assert!(server.max_open() <= 1);
    let mut conn = guard("acquire", pool.acquire()).await.unwrap();
    assert_eq!(conn.execute("PING").await.unwrap(), "PONG");
}

struct Certs {
    dir: PathBuf,
    server: Arc<rustls::ServerConfig>,
    /// The same server certificate, requiring a client certificate signed
    /// by the CA.
    mutual: Arc<rustls::ServerConfig>,
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A CA and a server certificate for `localhost` signed by it, the CA
/// written as PEM to a fresh folder.
fn certs(tag: &str) -> Certs {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let mut client_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client = client_params.signed_by(&client_key, &issuer).unwrap();
    let dir = std::env::temp_dir().join(format!("mechops-conn-tls-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("client.pem"), client.pem()).unwrap();
    std::fs::write(dir.join("client.key"), client_key.serialize_pem()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_key = || rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], server_key())
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::clone(&provider),
    )
    .build()
    .unwrap();
    let mutual = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert.der().clone()], server_key())
        .unwrap();
    Certs {
        dir,
        server: Arc::new(server),
        mutual: Arc::new(mutual),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_ca_file_and_server_name() {
    let certs = certs("ok");
    let server = LineServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        Some(Arc::clone(&certs.server)),
    )
    .await
    .unwrap();
    assert!(server.url().starts_with("tls://"));
    let tls = LineTls::new(
        Some(&certs.dir.join("ca.pem")),
        None,
        Some("localhost".into()),
    )
    .unwrap();
    let manager = LineManager::new(Duration::from_secs(2), Some(tls));
    let endpoint: LineEndpoint = server.url().parse().unwrap();
    let pool = ConnectionPool::new("tls", manager, vec![endpoint], config(0, 2)).unwrap();
    let mut conn = guard("acquire", pool.acquire()).await.unwrap();
    assert_eq!(conn.execute("SET k v").await.unwrap(), "OK");
    assert_eq!(conn.execute("GET k").await.unwrap(), "v");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_refuses_a_server_the_ca_did_not_sign() {
    let served = certs("served");
    let other = certs("other");
    let server = LineServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        Some(Arc::clone(&served.server)),
    )
    .await
    .unwrap();
    let tls = LineTls::new(
        Some(&other.dir.join("ca.pem")),
        None,
        Some("localhost".into()),
    )
    .unwrap();
    let manager = LineManager::new(Duration::from_secs(2), Some(tls));
    let endpoint: LineEndpoint = server.url().parse().unwrap();
    let pool = ConnectionPool::new("tls", manager, vec![endpoint], config(0, 1)).unwrap();
    let err = guard("acquire", pool.acquire()).await.unwrap_err();
    assert!(
        matches!(
            err,
            PoolError::Timeout {
                reason: AcquireFailure::Unreachable {
                    last_error: Some(FailureKind::Tls)
                },
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn tls_settings_name_a_bad_ca_file() {
    let missing = std::env::temp_dir().join("mechops-no-such-ca.pem");
    let err = LineTls::new(Some(&missing), None, None).unwrap_err();
    assert!(err.to_string().contains("mechops-no-such-ca.pem"), "{err}");
    assert!(LineTls::new(None, None, None).is_ok());
}

#[tokio::test]
async fn tls_endpoint_without_tls_settings_fails_clearly() {
    use mechops_tokio::conn::Manager;
    let manager = LineManager::new(Duration::from_secs(1), None);
    let endpoint: LineEndpoint = "tls://127.0.0.1:1".parse().unwrap();
    // Port 1 refuses before TLS matters on most hosts; either error names
    // the problem.
    let err = manager.connect(&endpoint).await.unwrap_err();
    assert!(
        matches!(err, LineError::NoTls(_) | LineError::Io(_)),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_certificate_is_presented_when_given() {
    let certs = certs("mutual");
    let server = LineServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        Some(Arc::clone(&certs.mutual)),
    )
    .await
    .unwrap();
    let endpoint: LineEndpoint = server.url().parse().unwrap();
    let ca = certs.dir.join("ca.pem");
    let (chain, key) = (certs.dir.join("client.pem"), certs.dir.join("client.key"));
    let with = LineTls::new(Some(&ca), Some((&chain, &key)), Some("localhost".into())).unwrap();
    let pool = ConnectionPool::new(
        "mtls",
        LineManager::new(Duration::from_secs(2), Some(with)),
        vec![endpoint.clone()],
        config(0, 1),
    )
    .unwrap();
    let mut conn = guard("acquire", pool.acquire()).await.unwrap();
    assert_eq!(conn.execute("PING").await.unwrap(), "PONG");
    drop(conn);

    // Without a client certificate the server refuses the session: the
    // handshake may look complete to the client under TLS 1.3, so the
    // refusal shows on the first request at the latest.
    let without = LineTls::new(Some(&ca), None, Some("localhost".into())).unwrap();
    let pool = ConnectionPool::new(
        "no-cert",
        LineManager::new(Duration::from_secs(2), Some(without)),
        vec![endpoint],
        config(0, 1),
    )
    .unwrap();
    let refused = match guard("acquire", pool.acquire()).await {
        Err(_) => true,
        Ok(mut conn) => conn.execute("PING").await.is_err(),
    };
    assert!(refused);
}
