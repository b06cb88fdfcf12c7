//! The SQL runner: one parameterized query on a pooled PostgreSQL
//! connection, its rows as JSON objects. See the [module docs](super).

use core::fmt::Write as _;
use core::time::Duration;
use std::pin::pin;

use futures_util::StreamExt as _;

use mechops_core::time::{MAX_RFC3339_LEN, Precision, Rfc3339Format, Timestamp};
use serde_json::{Map, Number, Value};
use tokio::time::Instant;
use tokio_postgres::NoTls;
use tokio_postgres::types::{FromSql, ToSql, Type};
use tokio_util::sync::CancellationToken;

use super::command::sleep_until;
use super::outcome::{ExecError, Outcome, Stopped, millis};
use crate::conn::postgres::{PostgresError, PostgresManager};
use crate::conn::{ConnectionPool, Pooled};

/// The default bound on the rows an SQL outcome holds.
pub const DEFAULT_ROW_LIMIT: usize = 10_000;

/// One query to run.
#[derive(Clone, Debug, PartialEq)]
pub struct SqlRequest {
    /// The query, with parameters `$1`, `$2`, ...
    pub query: String,
    /// The parameters, in order, each bound with the type its JSON value
    /// gives (see the [module docs](super)); never written into the query.
    pub params: Vec<Value>,
    /// How long getting a connection and running the query may take;
    /// `None` for no limit.
    pub timeout: Option<Duration>,
    /// The most rows kept.
    pub row_limit: usize,
}

impl SqlRequest {
    /// `query` with `params`, no timeout and [`DEFAULT_ROW_LIMIT`].
    pub fn new(query: impl Into<String>, params: Vec<Value>) -> Self {
        Self {
            query: query.into(),
            params,
            timeout: None,
            row_limit: DEFAULT_ROW_LIMIT,
        }
    }
}

type Param = Box<dyn ToSql + Sync + Send>;

/// Each JSON parameter with the PostgreSQL type it is bound as.
fn bind(params: &[Value]) -> Result<Vec<(Param, Type)>, ExecError> {
    params
        .iter()
        .enumerate()
        .map(|(i, v)| {
            Ok(match v {
                // `unknown` lets the server give a NULL whatever type its
                // place needs.
                Value::Null => (Box::new(None::<String>) as Param, Type::UNKNOWN),
                Value::Bool(b) => (Box::new(*b) as Param, Type::BOOL),
                Value::String(s) => (Box::new(s.clone()) as Param, Type::TEXT),
                Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                    (Some(i), _) => (Box::new(i) as Param, Type::INT8),
                    (None, Some(f)) if !n.is_u64() => (Box::new(f) as Param, Type::FLOAT8),
                    _ => {
                        return Err(ExecError::InvalidRequest(format!(
                            "parameter ${}: {n} does not fit a PostgreSQL bigint",
                            i + 1
                        )));
                    }
                },
                Value::Array(_) | Value::Object(_) => (Box::new(v.clone()) as Param, Type::JSONB),
            })
        })
        .collect()
}

/// Runs `request` on a connection of `pool` and returns its [`Outcome`]:
/// `ok` when the query ran to the end, with `rows` holding one JSON object
/// per row (column name to value), at most `row_limit` of them
/// (`rows_truncated` says more were returned). A query the server
/// refuses, a value that cannot be shown, the timeout or `cancel` give an
/// outcome with `ok: false` and the reason in `error`.
///
/// # Errors
///
/// [`ExecError::InvalidRequest`] for a parameter that cannot be bound;
/// [`ExecError::Pool`] when the pool gives no connection.
///
/// # Cancellation
///
/// On timeout or `cancel` the server is asked to cancel the query (over
/// plain TCP: a server that requires TLS refuses that request and the
/// query runs to its end) and the connection is closed rather than
/// reused. Dropping the future drops the guard with the query in flight:
/// the pool finds the connection busy and closes it.
pub async fn run_sql(
    pool: &ConnectionPool<PostgresManager>,
    request: &SqlRequest,
    cancel: &CancellationToken,
) -> Result<Outcome, ExecError> {
    let started = Instant::now();
    let params = bind(&request.params)?;
    let deadline = request.timeout.map(|t| started + t);
    let stop = async {
        tokio::select! {
            () = sleep_until(deadline) => Stopped::TimedOut,
            () = cancel.cancelled() => Stopped::Cancelled,
        }
    };
    let mut stop = pin!(stop);
    let mut conn = tokio::select! {
        c = pool.acquire() => c.map_err(|e| ExecError::Pool(e.to_string()))?,
        s = &mut stop => return Ok(stopped(started, request, s)),
    };
    let result = tokio::select! {
        r = query(&conn, request, params) => r,
        s = &mut stop => {
            abandon(&mut conn);
            return Ok(stopped(started, request, s));
        }
    };
    Ok(match result {
        Ok((rows, truncated)) => Outcome {
            ok: true,
            duration_ms: millis(started),
            rows: Some(rows),
            rows_truncated: Some(truncated),
            ..Outcome::default()
        },
        Err(error) => Outcome {
            duration_ms: millis(started),
            error: Some(error),
            rows: Some(Vec::new()),
            ..Outcome::default()
        },
    })
}

/// Asks the server to cancel what `conn` runs, and has the pool close it.
fn abandon(conn: &mut Pooled<PostgresManager>) {
    let token = conn.cancel_token();
    tokio::spawn(async move {
        if let Err(e) = token.cancel_query(NoTls).await {
            tracing::debug!(error = %e, "cancelling a query failed");
        }
    });
    conn.mark_broken();
}

async fn query(
    conn: &Pooled<PostgresManager>,
    request: &SqlRequest,
    params: Vec<(Param, Type)>,
) -> Result<(Vec<Map<String, Value>>, bool), String> {
    let failed = |e: tokio_postgres::Error| format!("query failed: {}", PostgresError::from(e));
    let stream = conn
        .query_typed_raw(&request.query, params)
        .await
        .map_err(failed)?;
    let mut stream = pin!(stream);
    let mut rows = Vec::new();
    while let Some(row) = stream.next().await {
        let row = row.map_err(failed)?;
        if rows.len() == request.row_limit {
            return Ok((rows, true));
        }
        let mut object = Map::new();
        for (i, column) in row.columns().iter().enumerate() {
            let Cell(value) = row
                .try_get(i)
                .map_err(|e| format!("column {:?}: {}", column.name(), PostgresError::from(e)))?;
            object.insert(column.name().to_owned(), value);
        }
        rows.push(object);
    }
    Ok((rows, false))
}

fn stopped(started: Instant, request: &SqlRequest, why: Stopped) -> Outcome {
    let error = match why {
        Stopped::TimedOut => format!(
            "query timed out after {} ms",
            request.timeout.map_or(0, |t| t.as_millis())
        ),
        Stopped::Cancelled => "query cancelled".to_owned(),
    };
    Outcome {
        duration_ms: millis(started),
        error: Some(error),
        stopped: Some(why),
        rows: Some(Vec::new()),
        ..Outcome::default()
    }
}

type DecodeError = Box<dyn core::error::Error + Sync + Send>;

/// One value of a row as JSON.
struct Cell(Value);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, DecodeError> {
        decode(ty, raw).map(Cell)
    }

    fn from_sql_null(_: &Type) -> Result<Self, DecodeError> {
        Ok(Self(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

fn decode(ty: &Type, raw: &[u8]) -> Result<Value, DecodeError> {
    Ok(match *ty {
        Type::BOOL => Value::Bool(bool::from_sql(ty, raw)?),
        Type::INT2 => i16::from_sql(ty, raw)?.into(),
        Type::INT4 => i32::from_sql(ty, raw)?.into(),
        Type::INT8 => i64::from_sql(ty, raw)?.into(),
        Type::OID => u32::from_sql(ty, raw)?.into(),
        Type::FLOAT4 => float(f64::from(f32::from_sql(ty, raw)?)),
        Type::FLOAT8 => float(f64::from_sql(ty, raw)?),
        Type::NUMERIC => Value::String(numeric(raw)?),
        Type::JSON | Type::JSONB => Value::from_sql(ty, raw)?,
        Type::UUID => Value::String(uuid(raw)?),
        Type::BYTEA => {
            let mut hex = String::with_capacity(2 + 2 * raw.len());
            hex.push_str("\\x");
            for b in raw {
                let _ = write!(hex, "{b:02x}");
            }
            Value::String(hex)
        }
        Type::TIMESTAMP | Type::TIMESTAMPTZ => {
            let micros = i64::from_sql(ty, raw)?;
            Value::String(timestamp(micros, *ty == Type::TIMESTAMPTZ)?)
        }
        Type::DATE => Value::String(date(i32::from_sql(ty, raw)?)?),
        ref other if <String as FromSql>::accepts(other) => {
            Value::String(String::from_sql(ty, raw)?)
        }
        ref other => {
            return Err(format!(
                "type {} cannot be shown as JSON; cast it in the query, e.g. to text",
                other.name()
            )
            .into());
        }
    })
}

/// A float as a JSON number; NaN and the infinities, which JSON lacks, as
/// the strings PostgreSQL writes for them.
fn float(f: f64) -> Value {
    Number::from_f64(f).map_or_else(
        || {
            Value::String(
                if f.is_nan() {
                    "NaN"
                } else if f > 0.0 {
                    "Infinity"
                } else {
                    "-Infinity"
                }
                .to_owned(),
            )
        },
        Value::Number,
    )
}

fn be_u16(raw: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*raw.get(at)?, *raw.get(at + 1)?]))
}

/// The binary `numeric` (base-10000 digits with a weight, a sign and a
/// display scale) as decimal text, every digit kept.
fn numeric(raw: &[u8]) -> Result<String, DecodeError> {
    let bad = || -> DecodeError { "malformed numeric value".into() };
    let ndigits = usize::from(be_u16(raw, 0).ok_or_else(bad)?);
    let weight = i32::from(i16::from_be_bytes(
        raw.get(2..4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?,
    ));
    let sign = be_u16(raw, 4).ok_or_else(bad)?;
    let dscale = usize::from(be_u16(raw, 6).ok_or_else(bad)?);
    if raw.len() != 8 + 2 * ndigits {
        return Err(bad());
    }
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        0x0000 | 0x4000 => {}
        _ => return Err(bad()),
    }
    let digit = |i: i32| -> u16 {
        usize::try_from(i)
            .ok()
            .filter(|&i| i < ndigits)
            .and_then(|i| be_u16(raw, 8 + 2 * i))
            .unwrap_or(0)
    };
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        let _ = write!(text, "{}", digit(0));
        for i in 1..=weight {
            let _ = write!(text, "{:04}", digit(i));
        }
    }
    if dscale > 0 {
        let mut fraction = String::new();
        let groups = dscale.div_ceil(4);
        for j in 1..=groups {
            let j = i32::try_from(j).map_err(|_| bad())?;
            let _ = write!(fraction, "{:04}", digit(weight + j));
        }
        fraction.truncate(dscale);
        text.push('.');
        text.push_str(&fraction);
    }
    Ok(text)
}

fn uuid(raw: &[u8]) -> Result<String, DecodeError> {
    if raw.len() != 16 {
        return Err("malformed uuid value".into());
    }
    let mut text = String::with_capacity(36);
    for (i, b) in raw.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        let _ = write!(text, "{b:02x}");
    }
    Ok(text)
}

/// RFC 3339 with microseconds: with `Z` for `timestamptz` (always UTC on
/// the wire), without an offset for `timestamp`, which has none.
fn timestamp(micros: i64, utc: bool) -> Result<String, DecodeError> {
    match micros {
        i64::MAX => return Ok("infinity".into()),
        i64::MIN => return Ok("-infinity".into()),
        _ => {}
    }
    let out_of_range = || -> DecodeError { "timestamp outside the years 0 to 9999".into() };
    let at = micros
        .checked_add(PG_EPOCH_MICROS)
        .ok_or_else(out_of_range)?;
    let at = Timestamp::from_unix_micros(at).map_err(|_| out_of_range())?;
    let mut buf = [0u8; MAX_RFC3339_LEN];
    let n = Rfc3339Format::new(Precision::Micros)
        .format(at, &mut buf)
        .map_err(|_| out_of_range())?;
    let text = core::str::from_utf8(&buf[..n]).map_err(|_| out_of_range())?;
    Ok(if utc {
        text.to_owned()
    } else {
        text.trim_end_matches('Z').to_owned()
    })
}

/// `YYYY-MM-DD`.
fn date(days: i32) -> Result<String, DecodeError> {
    match days {
        i32::MAX => return Ok("infinity".into()),
        i32::MIN => return Ok("-infinity".into()),
        _ => {}
    }
    let micros = i64::from(days) * 86_400_000_000;
    let mut text = timestamp(micros, true)?;
    text.truncate(10);
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut raw = Vec::new();
        raw.extend_from_slice(&u16::try_from(digits.len()).unwrap().to_be_bytes());
        raw.extend_from_slice(&weight.to_be_bytes());
        raw.extend_from_slice(&sign.to_be_bytes());
        raw.extend_from_slice(&dscale.to_be_bytes());
        for d in digits {
            raw.extend_from_slice(&d.to_be_bytes());
        }
        raw
    }

    #[test]
    fn numerics_decode_to_their_decimal_text() {
        let cases: [(i16, u16, u16, &[u16], &str); 7] = [
            (0, 0, 2, &[123, 4500], "123.45"),
            (-1, 0, 3, &[10], "0.001"),
            (1, 0, 0, &[1], "10000"),
            (0, 0x4000, 1, &[7, 5000], "-7.5"),
            (0, 0, 0, &[], "0"),
            (-2, 0, 6, &[1200], "0.000012"),
            (0, 0xC000, 0, &[], "NaN"),
        ];
        for (weight, sign, dscale, digits, want) in cases {
            let raw = numeric_bytes(weight, sign, dscale, digits);
            assert_eq!(numeric(&raw).unwrap(), want);
        }
        assert!(numeric(&[0, 1, 0]).is_err());
        assert!(numeric(&numeric_bytes(0, 0x1234, 0, &[])).is_err());
    }

    #[test]
    fn times_and_uuids_format() {
        assert_eq!(timestamp(0, true).unwrap(), "2000-01-01T00:00:00.000000Z");
        assert_eq!(timestamp(1, false).unwrap(), "2000-01-01T00:00:00.000001");
        assert_eq!(timestamp(i64::MAX, true).unwrap(), "infinity");
        assert_eq!(date(-1).unwrap(), "1999-12-31");
        assert!(timestamp(i64::MAX - 1, true).is_err());
        assert_eq!(
            uuid(&[
                0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
                0x0a, 0x11
            ])
            .unwrap(),
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        );
        assert_eq!(float(f64::NAN), Value::String("NaN".into()));
    }

    #[test]
    fn parameters_bind_by_their_json_type() {
        let params = [
            Value::Null,
            true.into(),
            "x".into(),
            7.into(),
            1.5.into(),
            serde_json::json!([1]),
            serde_json::json!({"a": 1}),
        ];
        let types: Vec<Type> = bind(&params).unwrap().into_iter().map(|(_, t)| t).collect();
        assert_eq!(
            types,
            [
                Type::UNKNOWN,
                Type::BOOL,
                Type::TEXT,
                Type::INT8,
                Type::FLOAT8,
                Type::JSONB,
                Type::JSONB
            ]
        );
        let err = bind(&[u64::MAX.into()]).err().unwrap();
        assert!(err.to_string().contains("$1"), "{err}");
    }
}
