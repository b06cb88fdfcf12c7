//! The Redis connection manager in a connection pool, against a real
//! `redis-server` of each test's own: commands, the connection count seen
//! by the server, session state reset on return, broken connections
//! replaced, and a server kill and restart.

mod support;

use core::time::Duration;
use std::path::Path;

use mechops_tokio::conn::redis::{RedisEndpoint, RedisManager};
use mechops_tokio::conn::{ConnectionPool, ConnectionPoolConfig};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use support::conn_pool::{closed_at_least, config, eventually};
use support::redis_server::{Persistence, RedisServer};

/// The pool's connections use this database, so the server's client list
/// tells them from the test's own connections (on database 0).
const DB: i64 = 3;

fn server() -> Option<RedisServer> {
    RedisServer::start(Path::new(env!("CARGO_TARGET_TMPDIR")), Persistence::None)
}

fn pool(server: &RedisServer, config: ConnectionPoolConfig) -> ConnectionPool<RedisManager> {
    let endpoint = RedisEndpoint::parse(&format!("{}/{DB}", server.url())).unwrap();
    ConnectionPool::new("redis", RedisManager::new(), vec![endpoint], config).unwrap()
}

/// A plain connection outside any pool, on database 0.
async fn monitor(server: &RedisServer) -> MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// `CLIENT LIST` entries as `(id, db, name)`.
async fn clients(monitor: &mut MultiplexedConnection) -> Vec<(i64, i64, String)> {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(monitor)
        .await
        .unwrap();
    list.lines()
        .map(|line| {
            let field = |name: &str| {
                line.split(' ')
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                    .unwrap_or_default()
                    .to_owned()
            };
            (
                field("id").parse().unwrap(),
                field("db").parse().unwrap(),
                field("name"),
            )
        })
        .collect()
}

async fn client_id(conn: &mut impl redis::aio::ConnectionLike) -> i64 {
    redis::cmd("CLIENT")
        .arg("ID")
        .query_async(conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_run_through_the_pool() {
    let Some(server) = server() else { return };
    let pool = pool(&server, config(1, 4));
    let mut tasks = Vec::new();
    for i in 0..32u32 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await.unwrap();
            let key = format!("key{i}");
            let () = conn.set(&key, i * 2).await.unwrap();
            let got: u32 = conn.get(&key).await.unwrap();
            assert!(!conn.session_changed());
            got
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap(), u32::try_from(i).unwrap() * 2);
    }
    // The pool's database holds the keys, database 0 does not.
    let mut monitor = monitor(&server).await;
    let size0: u64 = redis::cmd("DBSIZE")
        .query_async(&mut monitor)
        .await
        .unwrap();
    assert_eq!(size0, 0);
    let mut conn = pool.acquire().await.unwrap();
    let size: u64 = redis::cmd("DBSIZE").query_async(&mut *conn).await.unwrap();
    assert_eq!(size, 32);
    let metrics = pool.metrics();
    assert!(metrics.created >= 1 && metrics.created <= 4, "{metrics:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_never_sees_more_than_max_connections() {
    let Some(server) = server() else { return };
    const MAX: usize = 3;
    let pool = pool(&server, config(0, MAX));
    let mut monitor = monitor(&server).await;
    let mut tasks = Vec::new();
    for t in 0..12 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                let mut conn = pool.acquire().await.unwrap();
                let () = conn.set(format!("k{t}"), i).await.unwrap();
                // Hold it across a yield so tasks overlap.
                tokio::task::yield_now().await;
                let _: i64 = conn.incr(format!("k{t}"), 1).await.unwrap();
            }
        }));
    }
    let mut most = 0;
    loop {
        let done = tasks.iter().all(|t| t.is_finished());
        let seen = clients(&mut monitor)
            .await
            .iter()
            .filter(|(_, db, _)| *db == DB)
            .count();
        most = most.max(seen);
        if done {
            break;
        }
        tokio::task::yield_now().await;
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert!(
        (1..=MAX).contains(&most),
        "the server saw {most} pool connections at once (max {MAX})"
    );
    assert!(pool.metrics().created <= MAX as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_state_is_reset_on_return() {
    let Some(server) = server() else { return };
    let pool = pool(&server, config(0, 1));

    let mut conn = pool.acquire().await.unwrap();
    let id = client_id(&mut *conn).await;
    let () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("dirty")
        .query_async(&mut *conn)
        .await
        .unwrap();
    let () = redis::cmd("SELECT")
        .arg(5)
        .query_async(&mut *conn)
        .await
        .unwrap();
    assert!(conn.session_changed());
    drop(conn);

    let mut conn = pool.acquire().await.unwrap();
    assert!(!conn.session_changed());
    let mut monitor = monitor(&server).await;
    let (_, db, name) = clients(&mut monitor)
        .await
        .into_iter()
        .find(|(i, _, _)| *i == id)
        .expect("the same connection came back");
    assert_eq!((db, name.as_str()), (DB, ""));
    // And it writes to the URL's database again.
    let () = conn.set("after-reset", 1).await.unwrap();
    let () = redis::cmd("SELECT")
        .arg(DB)
        .query_async(&mut monitor)
        .await
        .unwrap();
    let found: Option<i64> = monitor.get("after-reset").await.unwrap();
    assert_eq!(found, Some(1));
    assert_eq!(pool.metrics().created, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_connections_are_replaced() {
    let Some(server) = server() else { return };
    let mut monitor = monitor(&server).await;
    let mut config = config(0, 2);
    config.pool.check_after_idle = Some(Duration::ZERO);
    let pool = pool(&server, config);

    // Killed while checked out: the next command fails, the connection is
    // broken and closed on return.
    let mut conn = pool.acquire().await.unwrap();
    let id = client_id(&mut *conn).await;
    let () = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .exec_async(&mut monitor)
        .await
        .unwrap();
    assert!(conn.get::<_, Option<i64>>("k").await.is_err());
    assert!(conn.is_broken());
    drop(conn);
    closed_at_least(&pool, 1).await;
    assert_eq!(pool.metrics().broken, 1);

    // Killed while idle: the checkout's PING finds it, the caller gets a
    // fresh one.
    let mut conn = pool.acquire().await.unwrap();
    let idle_id = client_id(&mut *conn).await;
    assert_ne!(idle_id, id);
    drop(conn);
    let () = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(idle_id)
        .exec_async(&mut monitor)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let fresh = client_id(&mut *conn).await;
    assert!(fresh != idle_id && fresh != id);
    assert_eq!(pool.metrics().created, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_recovers_after_a_server_restart() {
    let Some(mut server) = server() else { return };
    let mut config = config(2, 4);
    config.pool.acquire_timeout = Duration::from_secs(2);
    config.pool.check_after_idle = Some(Duration::ZERO);
    let pool = pool(&server, config);
    let ping = async |pool: &ConnectionPool<RedisManager>| -> Result<String, String> {
        let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
        redis::cmd("PING")
            .query_async::<String>(&mut *conn)
            .await
            .map_err(|e| e.to_string())
    };
    assert_eq!(ping(&pool).await.unwrap(), "PONG");

    server.kill();
    assert!(
        ping(&pool).await.is_err(),
        "a command succeeded with the server down"
    );

    server.restart();
    let recovered = eventually(async || ping(&pool).await).await;
    assert!(recovered, "the pool did not recover: {:?}", pool.metrics());
    let mut conns = Vec::new();
    for _ in 0..4 {
        conns.push(pool.acquire().await.unwrap());
    }
    for conn in &mut conns {
        let pong: String = redis::cmd("PING").query_async(&mut **conn).await.unwrap();
        assert_eq!(pong, "PONG");
    }
}
