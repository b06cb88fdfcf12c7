//! The SQL runner against a real PostgreSQL server of the test's own:
//! parameters bound by type (an injection attempt stays plain text), rows
//! as JSON for the common types, the row bound, timeouts that cancel the
//! query, and errors.

mod support;

use core::time::Duration;
use std::path::Path;

use mechops_tokio::conn::ConnectionPool;
use mechops_tokio::conn::postgres::{PostgresEndpoint, PostgresManager, PostgresTls};
use mechops_tokio::exec::{ExecError, Outcome, SqlRequest, Stopped, run_sql};
use serde_json::{Value, json};
use support::conn_pool::{config, eventually};
use support::postgres_server::PostgresServer;
use tokio_util::sync::CancellationToken;

fn server() -> Option<PostgresServer> {
    PostgresServer::start(Path::new(env!("CARGO_TARGET_TMPDIR")))
}

fn pool(server: &PostgresServer) -> ConnectionPool<PostgresManager> {
    let endpoint = PostgresEndpoint::parse(&server.url()).unwrap();
    ConnectionPool::new(
        "exec",
        PostgresManager::new(PostgresTls::None),
        vec![endpoint],
        config(1, 4),
    )
    .unwrap()
}

async fn sql(pool: &ConnectionPool<PostgresManager>, query: &str, params: Vec<Value>) -> Outcome {
    run_sql(
        pool,
        &SqlRequest::new(query, params),
        &CancellationToken::new(),
    )
    .await
    .unwrap()
}

fn rows(out: &Outcome) -> Value {
    assert!(out.ok, "{:?}", out.error);
    serde_json::to_value(out.rows.as_ref().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injection_attempt_is_stored_and_compared_as_plain_text() {
    let Some(server) = server() else { return };
    let pool = pool(&server);
    let out = sql(
        &pool,
        "CREATE TABLE users (id serial PRIMARY KEY, name text, team text)",
        vec![],
    )
    .await;
    assert!(out.ok, "{:?}", out.error);
    let evil = "'; DROP TABLE users; --";
    let out = sql(
        &pool,
        "INSERT INTO users (name, team) VALUES ($1, $2) RETURNING id",
        vec![evil.into(), "red".into()],
    )
    .await;
    assert_eq!(rows(&out), json!([{"id": 1}]));
    let out = sql(
        &pool,
        "SELECT name FROM users WHERE name = $1",
        vec![evil.into()],
    )
    .await;
    assert_eq!(rows(&out), json!([{"name": evil}]));
    // An injection into the comparison finds nothing rather than everything.
    let out = sql(
        &pool,
        "SELECT id FROM users WHERE team = $1",
        vec!["x' OR '1'='1".into()],
    )
    .await;
    assert_eq!(rows(&out), json!([]));
    let out = sql(
        &pool,
        "SELECT count(*) AS n FROM users WHERE team = $1",
        vec!["red".into()],
    )
    .await;
    assert_eq!(rows(&out), json!([{"n": 1}]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_are_bound_with_the_type_of_their_json_value() {
    let Some(server) = server() else { return };
    let pool = pool(&server);
    let out = sql(
        &pool,
        "SELECT pg_typeof($1)::text AS s, pg_typeof($2)::text AS i, pg_typeof($3)::text AS f, \
         pg_typeof($4)::text AS b, pg_typeof($5)::text AS j, $1 AS sv, $2 + 1 AS iv, $3 AS fv, \
         $4 AS bv, $5 -> 'k' AS jv, $6::int4 IS NULL AS null_ok",
        vec![
            "text".into(),
            41.into(),
            0.5.into(),
            true.into(),
            json!({"k": [1, "two"]}),
            Value::Null,
        ],
    )
    .await;
    assert_eq!(
        rows(&out),
        json!([{
            "s": "text", "i": "bigint", "f": "double precision", "b": "boolean", "j": "jsonb",
            "sv": "text", "iv": 42, "fv": 0.5, "bv": true, "jv": [1, "two"], "null_ok": true
        }])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn common_types_become_json() {
    let Some(server) = server() else { return };
    let pool = pool(&server);
    let out = sql(
        &pool,
        "SELECT 1::int2 AS a, 2::int4 AS b, 3::int8 AS c, 1.5::float4 AS d, 2.25::float8 AS e, \
         'NaN'::float8 AS e2, 123.4500::numeric AS f, -0.001::numeric AS f2, \
         12345678901234567890.5::numeric AS f3, 'x'::text AS g, 'y'::varchar AS h, 'z'::char(2) AS h2, \
         true AS i, '{\"a\":1}'::json AS j, '{\"b\":[1]}'::jsonb AS k, \
         '2024-01-02 03:04:05.123456+00'::timestamptz AS l, '2024-01-02 03:04:05'::timestamp AS m, \
         '2024-02-29'::date AS m2, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS n, \
         '\\x0102ff'::bytea AS o, NULL::text AS p",
        vec![],
    )
    .await;
    assert_eq!(
        rows(&out),
        json!([{
            "a": 1, "b": 2, "c": 3, "d": 1.5, "e": 2.25, "e2": "NaN", "f": "123.4500",
            "f2": "-0.001", "f3": "12345678901234567890.5", "g": "x", "h": "y", "h2": "z ",
            "i": true, "j": {"a": 1}, "k": {"b": [1]},
            "l": "2024-01-02T03:04:05.123456Z", "m": "2024-01-02T03:04:05.000000",
            "m2": "2024-02-29", "n": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "o": "\\x0102ff", "p": null
        }])
    );
    let out = sql(&pool, "SELECT '127.0.0.1'::inet AS addr", vec![]).await;
    assert!(!out.ok);
    let error = out.error.unwrap();
    assert!(
        error.contains("addr") && error.contains("inet") && error.contains("cast"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_are_bounded_and_errors_reported() {
    let Some(server) = server() else { return };
    let pool = pool(&server);
    let mut req = SqlRequest::new("SELECT n FROM generate_series(1, 50) AS n", vec![]);
    req.row_limit = 10;
    let out = run_sql(&pool, &req, &CancellationToken::new())
        .await
        .unwrap();
    assert!(out.ok);
    assert_eq!(
        (out.rows_truncated, out.stdout_truncated),
        (Some(true), false)
    );
    assert_eq!(out.rows.as_ref().unwrap().len(), 10);
    assert_eq!(out.rows.unwrap()[9]["n"], 10);
    let mut req = SqlRequest::new("SELECT n FROM generate_series(1, 10) AS n", vec![]);
    req.row_limit = 10;
    let whole = run_sql(&pool, &req, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(whole.rows_truncated, Some(false));
    assert_eq!(whole.rows.map(|r| r.len()), Some(10));

    let out = sql(&pool, "SELEC 1", vec![]).await;
    assert!(!out.ok);
    assert!(out.error.unwrap().contains("syntax error"));

    let err = run_sql(
        &pool,
        &SqlRequest::new("SELECT $1", vec![u64::MAX.into()]),
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ExecError::InvalidRequest(_)), "{err}");
    // The pool still serves.
    assert_eq!(
        rows(&sql(&pool, "SELECT 1 AS one", vec![]).await),
        json!([{"one": 1}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_cancels_the_query_on_the_server() {
    let Some(server) = server() else { return };
    let pool = pool(&server);
    let mut req = SqlRequest::new("SELECT pg_sleep(30)", vec![]);
    req.timeout = Some(Duration::from_millis(300));
    let out = run_sql(&pool, &req, &CancellationToken::new())
        .await
        .unwrap();
    assert!(!out.ok);
    assert_eq!(out.stopped, Some(Stopped::TimedOut));
    assert!(out.error.unwrap().contains("timed out after 300 ms"));
    let gone = eventually(async || {
        let out = sql(
            &pool,
            "SELECT count(*) AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'",
            vec![],
        )
        .await;
        if rows(&out) == json!([{"n": 0}]) { Ok(()) } else { Err(()) }
    })
    .await;
    assert!(gone, "the timed-out query still runs on the server");
}
