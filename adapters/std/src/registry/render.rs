//! Rendering a script with bound arguments into what a runner executes.
//!
//! Values never change the shape of what runs: a command's lone
//! placeholder is exactly one argv element (no splitting, no shell), URL
//! placeholders are percent-encoded, header values may not hold line
//! breaks, and SQL arguments are parameters, never query text.

use core::time::Duration;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::args::BoundArgs;
use super::error::ArgError;
use super::model::{HttpBody, Script, ScriptKind};
use super::template::{Template, value_text};

/// A command ready to spawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedCommand {
    /// The program: a path resolved against the registry's folder when the
    /// entry gave a relative path with a `/`, or a bare name for `PATH`
    /// lookup.
    pub program: PathBuf,
    /// The arguments after the program, one element each.
    pub args: Vec<String>,
    /// Variables to set in the program's environment.
    pub env: BTreeMap<String, String>,
    /// The working directory, resolved against the registry's folder.
    pub workdir: PathBuf,
    /// The script's timeout.
    pub timeout: Option<Duration>,
}

/// An HTTP request ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedHttp {
    /// The method, upper case.
    pub method: String,
    /// The URL, placeholders percent-encoded.
    pub url: String,
    /// Header names and values; a JSON body adds
    /// `content-type: application/json` unless a `content-type` is given.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<String>,
    /// The script's timeout.
    pub timeout: Option<Duration>,
}

/// A query ready to run on a pool.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderedSql {
    /// The pool's name (a key of the registry's `pools`).
    pub pool: String,
    /// The query, as the entry gives it.
    pub query: String,
    /// The parameters `$1`, `$2`, ... as typed JSON values.
    pub params: Vec<Value>,
    /// The script's timeout.
    pub timeout: Option<Duration>,
}

/// What a script renders to.
#[derive(Clone, Debug, PartialEq)]
pub enum Rendered {
    /// Run a program.
    Command(RenderedCommand),
    /// Send a request.
    Http(RenderedHttp),
    /// Run a query.
    Sql(RenderedSql),
}

impl Script {
    /// Substitutes `args` (from [`Script::bind`]) into the script's
    /// templates; `base_dir` is the registry file's folder
    /// ([`Registry::base_dir`](super::Registry::base_dir)).
    pub fn render(&self, args: &BoundArgs, base_dir: &Path) -> Result<Rendered, ArgError> {
        Ok(match &self.kind {
            ScriptKind::Command(c) => {
                let program_text = c.command[0].source();
                let program = if program_text.contains('/') {
                    base_dir.join(program_text)
                } else {
                    PathBuf::from(program_text)
                };
                let mut argv = Vec::with_capacity(c.command.len() - 1);
                // Bytes `execve` copies: each string, its NUL, its pointer.
                let mut total = program_text.len() + 1 + POINTER;
                for (i, t) in c.command[1..].iter().enumerate() {
                    let arg = if let Some(name) = t.lone() {
                        // One value, one element; an absent optional
                        // argument passes nothing.
                        match args.get(name) {
                            Some(v) => no_nul(name, value_text(Some(v)))?,
                            None => continue,
                        }
                    } else {
                        text(t, args, no_nul)?
                    };
                    fits_one(arg.len(), [t], args, || {
                        format!("program argument {}", i + 1)
                    })?;
                    total += arg.len() + 1 + POINTER;
                    argv.push(arg);
                }
                let mut env = BTreeMap::new();
                for (k, t) in &c.env {
                    let value = text(t, args, no_nul)?;
                    let len = k.len() + 1 + value.len();
                    fits_one(len, [t], args, || format!("environment variable {k}"))?;
                    total += len + 1 + POINTER;
                    env.insert(k.clone(), value);
                }
                if total > MAX_EXEC_BYTES {
                    let templates = c.command[1..].iter().chain(c.env.values());
                    return Err(ArgError::Invalid {
                        name: longest(templates, args).unwrap_or_default().to_owned(),
                        reason: format!(
                            "makes the command's arguments and environment {total} bytes \
                             long; at most {MAX_EXEC_BYTES} are allowed"
                        ),
                    });
                }
                Rendered::Command(RenderedCommand {
                    program,
                    args: argv,
                    env,
                    workdir: base_dir.join(&c.workdir),
                    timeout: self.timeout,
                })
            }
            ScriptKind::Http(h) => {
                let url = h.url.render_with(|name| {
                    Ok::<_, ArgError>(percent_encode(&value_text(args.get(name))))
                })?;
                let mut headers: Vec<(String, String)> = h
                    .headers
                    .iter()
                    .map(|(k, t)| Ok((k.clone(), text(t, args, no_line_break)?)))
                    .collect::<Result<_, ArgError>>()?;
                let body = match &h.body {
                    None => None,
                    Some(HttpBody::Text(t)) => Some(text(t, args, ok)?),
                    Some(HttpBody::Json(v)) => {
                        if !headers
                            .iter()
                            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                        {
                            headers
                                .push(("content-type".to_owned(), "application/json".to_owned()));
                        }
                        Some(json_template(v, args).to_string())
                    }
                };
                Rendered::Http(RenderedHttp {
                    method: h.method.clone(),
                    url,
                    headers,
                    body,
                    timeout: self.timeout,
                })
            }
            ScriptKind::Sql(s) => Rendered::Sql(RenderedSql {
                pool: s.pool.clone(),
                query: s.query.clone(),
                params: s.params.iter().map(|p| json_template(p, args)).collect(),
                timeout: self.timeout,
            }),
        })
    }
}

/// The longest program argument or environment string (`NAME=value`) a
/// command may get, in bytes without its NUL: Linux's per-string limit
/// `MAX_ARG_STRLEN` (32 pages of 4 KiB, NUL included). A longer one makes
/// `execve` fail with `E2BIG`, so rendering refuses it first.
pub const MAX_ARG_BYTES: usize = 32 * 4096 - 1;

/// The most bytes a command's program, arguments and environment
/// variables may take together, each string counted with its NUL and its
/// pointer, as `execve` counts them. Linux allows a quarter of the stack
/// limit (2 MiB under the usual 8 MiB) for these and the environment the
/// program inherits; this bound leaves half of that to the inherited part.
pub const MAX_EXEC_BYTES: usize = 1 << 20;

/// The bytes of one pointer in `argv` or `envp`.
const POINTER: usize = core::mem::size_of::<usize>();

/// Refuses a rendered string of `len` bytes longer than [`MAX_ARG_BYTES`],
/// naming the argument of `templates` with the longest value (`what` when
/// none: the registry's own text).
fn fits_one<'a>(
    len: usize,
    templates: impl IntoIterator<Item = &'a Template>,
    args: &BoundArgs,
    what: impl FnOnce() -> String,
) -> Result<(), ArgError> {
    if len <= MAX_ARG_BYTES {
        return Ok(());
    }
    let what = what();
    Err(ArgError::Invalid {
        name: longest(templates, args).map_or_else(|| what.clone(), str::to_owned),
        reason: format!(
            "makes {what} {len} bytes long; the kernel takes at most {MAX_ARG_BYTES} bytes \
             per program argument or environment variable"
        ),
    })
}

/// The placeholder of `templates` whose value's text is the longest.
fn longest<'a>(
    templates: impl IntoIterator<Item = &'a Template>,
    args: &BoundArgs,
) -> Option<&'a str> {
    templates
        .into_iter()
        .flat_map(Template::placeholders)
        .max_by_key(|name| value_text(args.get(name)).len())
}

/// Renders a text template, each value's text checked by `check`.
fn text(
    t: &Template,
    args: &BoundArgs,
    check: impl Fn(&str, String) -> Result<String, ArgError>,
) -> Result<String, ArgError> {
    t.render_with(|name| check(name, value_text(args.get(name))))
}

fn ok(_: &str, s: String) -> Result<String, ArgError> {
    Ok(s)
}

fn no_nul(name: &str, s: String) -> Result<String, ArgError> {
    if s.contains('\0') {
        return Err(ArgError::Invalid {
            name: name.to_owned(),
            reason: "contains a NUL byte, which no program argument or variable can hold"
                .to_owned(),
        });
    }
    Ok(s)
}

fn no_line_break(name: &str, s: String) -> Result<String, ArgError> {
    if s.contains(['\r', '\n', '\0']) {
        return Err(ArgError::Invalid {
            name: name.to_owned(),
            reason: "contains a line break or NUL, which a header value cannot hold".to_owned(),
        });
    }
    Ok(s)
}

/// A JSON value whose strings are templates: a lone placeholder becomes
/// the argument's value (null when absent), other strings their text.
fn json_template(v: &Value, args: &BoundArgs) -> Value {
    match v {
        Value::String(s) => {
            let t = Template::parse(s);
            match t.lone() {
                Some(name) => args.get(name).cloned().unwrap_or(Value::Null),
                None => Value::String(
                    t.render_with(|name| Ok::<_, ArgError>(value_text(args.get(name))))
                        .unwrap_or_default(),
                ),
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| json_template(v, args)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), json_template(v, args)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so a
/// value is one path segment or query value whatever it holds.
pub fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
    out
}
