//! The PostgreSQL connection manager in a connection pool, against a real
//! PostgreSQL server of each test's own: queries, the connection count
//! seen by the server, session state reset on return, broken connections
//! replaced, and a server crash and restart.

mod support;

use core::sync::atomic::{AtomicI64, Ordering};
use core::time::Duration;
use std::path::Path;
use std::sync::Arc;

use mechops_core::backoff::{Backoff, Jitter};
use mechops_tokio::conn::postgres::{PostgresEndpoint, PostgresManager, PostgresTls};
use mechops_tokio::conn::{ConnectionPool, ConnectionPoolConfig};
use support::conn_pool::{closed_at_least, config, eventually};
use support::postgres_server::PostgresServer;

/// Marks the pool's connections so the server's count can tell them from
/// the test's own monitoring connection.
const APP: &str = "mechops-pool-test";

fn server() -> Option<PostgresServer> {
    PostgresServer::start(Path::new(env!("CARGO_TARGET_TMPDIR")))
}

fn endpoint(server: &PostgresServer) -> PostgresEndpoint {
    PostgresEndpoint::parse(&format!("{}?application_name={APP}", server.url())).unwrap()
}

fn pool(
    server: &PostgresServer,
    manager: PostgresManager,
    config: ConnectionPoolConfig,
) -> ConnectionPool<PostgresManager> {
    ConnectionPool::new("postgres", manager, vec![endpoint(server)], config).unwrap()
}

async fn backend_pid(client: &tokio_postgres::Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

/// A plain connection outside any pool.
async fn monitor(server: &PostgresServer) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_run_through_the_pool() {
    let Some(server) = server() else { return };
    let pool = pool(
        &server,
        PostgresManager::new(PostgresTls::None),
        config(1, 4),
    );
    let mut tasks = Vec::new();
    for i in 0..32i32 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let conn = pool.acquire().await.unwrap();
            let row = conn.query_one("SELECT $1::int4 * 2", &[&i]).await.unwrap();
            row.get::<_, i32>(0)
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap(), i32::try_from(i).unwrap() * 2);
    }
    let metrics = pool.metrics();
    assert_eq!(metrics.acquired, 32);
    assert!(metrics.created >= 1 && metrics.created <= 4, "{metrics:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_never_sees_more_than_max_connections() {
    let Some(server) = server() else { return };
    const MAX: usize = 3;
    let pool = pool(
        &server,
        PostgresManager::new(PostgresTls::None),
        config(0, MAX),
    );
    let most = Arc::new(AtomicI64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let pool = pool.clone();
        let most = Arc::clone(&most);
        tasks.push(tokio::spawn(async move {
            for _ in 0..15 {
                let conn = pool.acquire().await.unwrap();
                let seen: i64 = conn
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                        &[&APP],
                    )
                    .await
                    .unwrap()
                    .get(0);
                most.fetch_max(seen, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let most = most.load(Ordering::Relaxed);
    // Twelve tasks contending for three connections fill the pool.
    assert!(
        (2..=MAX as i64).contains(&most),
        "the server saw {most} pool connections at once (max {MAX})"
    );
    let metrics = pool.metrics();
    assert!(metrics.created <= MAX as u64, "{metrics:?}");
}

/// Changes every kind of session state the reset clears, returning the
/// backend's process ID.
async fn dirty_the_session(client: &tokio_postgres::Client) -> i32 {
    client
        .batch_execute(
            "SET statement_timeout = 1234; \
             CREATE TEMP TABLE scratch (x int); \
             LISTEN mechops_channel; \
             SELECT pg_advisory_lock(42); \
             BEGIN; DECLARE c CURSOR WITH HOLD FOR SELECT 1; COMMIT",
        )
        .await
        .unwrap();
    backend_pid(client).await
}

/// Whether any of the state [`dirty_the_session`] set is still there.
async fn session_is_clean(client: &tokio_postgres::Client) -> bool {
    let row = client
        .query_one(
            "SELECT current_setting('statement_timeout') = '0', \
                    to_regclass('pg_temp.scratch') IS NULL, \
                    NOT EXISTS (SELECT FROM pg_listening_channels()), \
                    NOT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' \
                                AND pid = pg_backend_pid()), \
                    NOT EXISTS (SELECT FROM pg_cursors WHERE name = 'c')",
            &[],
        )
        .await
        .unwrap();
    (0..5).all(|i| row.get::<_, bool>(i))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_state_is_reset_on_return() {
    let Some(server) = server() else { return };
    let pool = pool(
        &server,
        PostgresManager::new(PostgresTls::None),
        config(0, 1),
    );

    let conn = pool.acquire().await.unwrap();
    let pid = dirty_the_session(&conn).await;
    assert!(!session_is_clean(&conn).await);
    // The client prepares statements of its own to look up custom types;
    // this makes it prepare them before the reset.
    conn.batch_execute("CREATE TYPE mood AS ENUM ('ok'); CREATE TYPE mood2 AS ENUM ('ok')")
        .await
        .unwrap();
    conn.prepare("SELECT 'ok'::mood").await.unwrap();
    drop(conn);

    let conn = pool.acquire().await.unwrap();
    assert_eq!(
        backend_pid(&conn).await,
        pid,
        "the same connection came back"
    );
    assert!(session_is_clean(&conn).await);
    // Those statements survived the reset: a new custom type is looked up
    // with them.
    let statement = conn.prepare("SELECT 'ok'::mood2").await.unwrap();
    assert_eq!(statement.columns()[0].type_().name(), "mood2");
    drop(conn);
    assert_eq!(pool.metrics().created, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_reset_session_state_is_kept() {
    let Some(server) = server() else { return };
    let manager = PostgresManager::new(PostgresTls::None).with_reset(false);
    let pool = pool(&server, manager, config(0, 1));

    let conn = pool.acquire().await.unwrap();
    let pid = dirty_the_session(&conn).await;
    drop(conn);

    let conn = pool.acquire().await.unwrap();
    assert_eq!(backend_pid(&conn).await, pid);
    assert!(!session_is_clean(&conn).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_left_open_is_not_handed_on() {
    let Some(server) = server() else { return };
    let pool = pool(
        &server,
        PostgresManager::new(PostgresTls::None),
        config(0, 1),
    );
    pool.acquire()
        .await
        .unwrap()
        .batch_execute("CREATE TABLE t (x int)")
        .await
        .unwrap();

    let conn = pool.acquire().await.unwrap();
    let pid = backend_pid(&conn).await;
    conn.batch_execute("BEGIN; INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    drop(conn);

    let conn = pool.acquire().await.unwrap();
    assert_ne!(backend_pid(&conn).await, pid, "the connection was replaced");
    let rows: i64 = conn
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0, "the abandoned insert was never committed");
    assert!(pool.metrics().closed >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_connections_are_replaced() {
    let Some(server) = server() else { return };
    let admin = monitor(&server).await;
    let mut config = config(0, 2);
    // Check every idle connection before handing it out.
    config.pool.check_after_idle = Some(Duration::ZERO);
    let pool = pool(&server, PostgresManager::new(PostgresTls::None), config);

    // A connection whose backend dies while checked out: its query fails,
    // it is closed on return, not handed on.
    let conn = pool.acquire().await.unwrap();
    let pid = backend_pid(&conn).await;
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    assert!(conn.query_one("SELECT 1", &[]).await.is_err());
    for _ in 0..500 {
        if conn.is_closed() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(conn.is_closed());
    drop(conn);
    closed_at_least(&pool, 1).await;
    assert_eq!(pool.metrics().broken, 1);

    // A connection whose backend dies while idle: the checkout check finds
    // it and the caller gets a fresh one.
    let conn = pool.acquire().await.unwrap();
    let idle_pid = backend_pid(&conn).await;
    assert_ne!(idle_pid, pid);
    drop(conn);
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&idle_pid])
        .await
        .unwrap();
    let conn = pool.acquire().await.unwrap();
    let fresh = backend_pid(&conn).await;
    assert_ne!(fresh, idle_pid);
    assert_ne!(fresh, pid);
    assert_eq!(pool.metrics().created, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_recovers_after_a_server_restart() {
    let Some(mut server) = server() else { return };
    let mut config = config(2, 4);
    config.pool.acquire_timeout = Duration::from_secs(2);
    config.pool.check_after_idle = Some(Duration::ZERO);
    let pool = pool(&server, PostgresManager::new(PostgresTls::None), config);
    let before = pool.acquire().await.unwrap();
    assert_eq!(
        before
            .query_one("SELECT 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );
    drop(before);

    server.kill();
    let query = async |pool: &ConnectionPool<PostgresManager>| -> Result<i32, String> {
        let conn = pool.acquire().await.map_err(|e| e.to_string())?;
        let row = conn
            .query_one("SELECT 1", &[])
            .await
            .map_err(|e| e.to_string())?;
        Ok(row.get(0))
    };
    let down = query(&pool).await;
    assert!(down.is_err(), "a query succeeded with the server down");

    server.restart();
    let recovered = eventually(async || query(&pool).await).await;
    assert!(recovered, "the pool did not recover: {:?}", pool.metrics());
    // Every connection it hands out from now on works.
    let mut conns = Vec::new();
    for _ in 0..4 {
        conns.push(pool.acquire().await.unwrap());
    }
    for conn in &conns {
        conn.query_one("SELECT 1", &[]).await.unwrap();
    }
}

/// A CA and a certificate for `localhost` signed by it: the CA's
/// certificate (DER), and the server's chain and key (PEM).
fn certificates() -> (rustls_pki_types::CertificateDer<'static>, String, String) {
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
    (ca.der().clone(), cert.pem(), key.serialize_pem())
}

/// A client configuration trusting only `ca`.
fn trusting(ca: rustls_pki_types::CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

fn tls_endpoint(server: &PostgresServer) -> PostgresEndpoint {
    PostgresEndpoint::parse(&format!(
        "postgres://{}@localhost:{}/{}?sslmode=require",
        support::postgres_server::USER,
        server.port(),
        support::postgres_server::DATABASE
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_connections_are_encrypted() {
    let (ca, cert, key) = certificates();
    let Some(server) =
        PostgresServer::start_with_tls(Path::new(env!("CARGO_TARGET_TMPDIR")), &cert, &key)
    else {
        return;
    };
    let manager = PostgresManager::new(PostgresTls::Rustls(trusting(ca)));
    let pool =
        ConnectionPool::new("tls", manager, vec![tls_endpoint(&server)], config(0, 2)).unwrap();
    let conn = pool.acquire().await.unwrap();
    let row = conn
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "the connection is not encrypted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_refuses_a_server_it_does_not_trust() {
    let (_, cert, key) = certificates();
    let (other_ca, _, _) = certificates();
    let Some(server) =
        PostgresServer::start_with_tls(Path::new(env!("CARGO_TARGET_TMPDIR")), &cert, &key)
    else {
        return;
    };
    let mut config = config(0, 1);
    config.pool.acquire_timeout = Duration::from_secs(3);
    // After the first failed handshake the breaker stays open past the
    // acquire timeout, so the timeout's reason is that failure.
    config.pool.breaker.backoff = Backoff::new(Duration::from_secs(60), Duration::from_secs(60), 1)
        .unwrap()
        .with_jitter(Jitter::None);

    // Another CA: the handshake fails and the error says why.
    let manager = PostgresManager::new(PostgresTls::Rustls(trusting(other_ca)));
    let pool = ConnectionPool::new("tls", manager, vec![tls_endpoint(&server)], config).unwrap();
    let err = pool.acquire().await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let text = err.to_string().to_lowercase();
    assert!(
        text.contains("tls handshake failed") && text.contains("certificate"),
        "{err}"
    );

    // No TLS at all, with `sslmode=require`: no connection either.
    let manager = PostgresManager::new(PostgresTls::None);
    let pool = ConnectionPool::new("plain", manager, vec![tls_endpoint(&server)], config).unwrap();
    assert!(pool.acquire().await.is_err());
}
