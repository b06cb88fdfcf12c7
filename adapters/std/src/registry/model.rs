//! The parsed form of a registry entry, and the parser of one entry.
//!
//! Every rule of `docs/REGISTRY.md` is checked here, once per entry, so a
//! [`Script`] that exists is valid: its placeholders name declared
//! arguments, its defaults have their declared types, its pool exists.

use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use serde::Serialize;
use serde_json::{Map, Value};

use super::error::{Location, RegistryError};
use super::template::{Template, is_name};

/// The longest script id, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// The HTTP methods an `http` script may use.
pub const HTTP_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// The type of an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArgType {
    /// A JSON string.
    String,
    /// A JSON number without fraction that fits an `i64` or `u64`.
    Integer,
    /// Any JSON number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// Any JSON value.
    Json,
}

impl ArgType {
    /// The name used in the registry.
    pub fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Json => "json",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "string" => Self::String,
            "integer" => Self::Integer,
            "number" => Self::Number,
            "boolean" => Self::Boolean,
            "json" => Self::Json,
            _ => return None,
        })
    }

    /// Whether `value` has this type.
    pub fn accepts(self, value: &Value) -> bool {
        match self {
            Self::String => value.is_string(),
            Self::Integer => value.is_i64() || value.is_u64(),
            Self::Number => value.is_number(),
            Self::Boolean => value.is_boolean(),
            Self::Json => true,
        }
    }
}

/// The declaration of one argument.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ArgSpec {
    /// Its type.
    #[serde(rename = "type")]
    pub ty: ArgType,
    /// Whether a call must give it.
    pub required: bool,
    /// The value used when a call does not give it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// What it is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A `command` script: an argv template run without a shell.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommandSpec {
    /// The program (element 0) and its arguments, each a template.
    #[serde(serialize_with = "ser_templates")]
    pub command: Vec<Template>,
    /// Environment variables set for the program, values are templates.
    #[serde(serialize_with = "ser_template_map")]
    pub env: BTreeMap<String, Template>,
    /// The working directory, relative to the registry's folder unless
    /// absolute.
    pub workdir: String,
}

/// The body of an `http` script.
#[derive(Clone, Debug, PartialEq)]
pub enum HttpBody {
    /// A text template.
    Text(Template),
    /// A JSON document whose strings are templates (a lone placeholder
    /// becomes the argument's JSON value); sent as `application/json`.
    Json(Value),
}

/// An `http` script: a request template.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HttpSpec {
    /// The method, upper case, one of [`HTTP_METHODS`].
    pub method: String,
    /// The URL template; placeholders are percent-encoded when rendered.
    #[serde(serialize_with = "ser_template")]
    pub url: Template,
    /// Header templates, in the file's order of names (sorted).
    #[serde(serialize_with = "ser_template_map")]
    pub headers: BTreeMap<String, Template>,
    /// The body, if any.
    #[serde(serialize_with = "ser_body")]
    pub body: Option<HttpBody>,
}

/// A `sql` script: a parameterized query on a named pool.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SqlSpec {
    /// The pool, a key of the registry's `pools`.
    pub pool: String,
    /// The query, sent as it is; arguments reach it only as parameters.
    pub query: String,
    /// The parameters `$1`, `$2`, ...: JSON values whose strings are
    /// templates.
    pub params: Vec<Value>,
}

/// What a script does.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ScriptKind {
    /// Run a program.
    Command(CommandSpec),
    /// Send an HTTP request.
    Http(HttpSpec),
    /// Run a SQL query.
    Sql(SqlSpec),
}

impl ScriptKind {
    /// `command`, `http` or `sql`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Command(_) => "command",
            Self::Http(_) => "http",
            Self::Sql(_) => "sql",
        }
    }
}

/// One parsed and validated script.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Script {
    /// Its unique id.
    pub id: String,
    /// A display name (the id when the entry has none).
    pub name: String,
    /// What it does (empty when the entry has none).
    pub description: String,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// What it runs.
    #[serde(flatten)]
    pub kind: ScriptKind,
    /// How long a run may take.
    #[serde(rename = "timeout_ms", serialize_with = "ser_timeout")]
    pub timeout: Option<Duration>,
    /// The declared arguments by name.
    pub arguments: BTreeMap<String, ArgSpec>,
    /// The entry's other fields, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// The script as JSON, made by [`Script::json`] on first use and kept
    /// with the parsed script, so every cache holding the script holds it.
    #[serde(skip)]
    json: JsonText,
}

/// A script's JSON text, made once. It is derived from the other fields,
/// so it takes no part in comparisons.
#[derive(Clone, Default)]
struct JsonText(OnceLock<Arc<str>>);

impl PartialEq for JsonText {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl core::fmt::Debug for JsonText {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "made"
        } else {
            "not made"
        })
    }
}

/// The short form of a script, for listings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScriptSummary {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// `command`, `http` or `sql`.
    pub kind: &'static str,
}

impl Script {
    /// The short form, for listings.
    pub fn summary(&self) -> ScriptSummary {
        ScriptSummary {
            id: self.id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            tags: self.tags.clone(),
            kind: self.kind.name(),
        }
    }

    /// The script as one JSON object (its serialization), made on the
    /// first call and then shared: serving it again costs one `Arc`
    /// clone.
    pub fn json(&self) -> Arc<str> {
        Arc::clone(self.json.0.get_or_init(|| {
            // A script serializes infallibly: its maps have string keys
            // and its values are JSON already.
            serde_json::to_string(self).map_or_else(|_| Arc::from("null"), Arc::from)
        }))
    }

    /// An estimate of the bytes this script holds, heap and inline: the
    /// weight the cache bounds by `CACHE_MEMORY_MB`. Its JSON text counts
    /// once made ([`RegistryCache`](super::RegistryCache) makes it before
    /// it keeps a script, so the weight it records does not change).
    pub fn memory_bytes(&self) -> usize {
        let strings = self.id.capacity()
            + self.name.capacity()
            + self.description.capacity()
            + self.tags.iter().map(|t| t.capacity() + 24).sum::<usize>();
        let kind = match &self.kind {
            ScriptKind::Command(c) => {
                c.command.iter().map(|t| t.heap_bytes() + 48).sum::<usize>()
                    + c.env
                        .iter()
                        .map(|(k, v)| k.capacity() + v.heap_bytes() + 96)
                        .sum::<usize>()
                    + c.workdir.capacity()
            }
            ScriptKind::Http(h) => {
                h.method.capacity()
                    + h.url.heap_bytes()
                    + h.headers
                        .iter()
                        .map(|(k, v)| k.capacity() + v.heap_bytes() + 96)
                        .sum::<usize>()
                    + match &h.body {
                        Some(HttpBody::Text(t)) => t.heap_bytes(),
                        Some(HttpBody::Json(v)) => value_bytes(v),
                        None => 0,
                    }
            }
            ScriptKind::Sql(s) => {
                s.pool.capacity()
                    + s.query.capacity()
                    + s.params.iter().map(value_bytes).sum::<usize>()
            }
        };
        let args = self
            .arguments
            .iter()
            .map(|(k, a)| {
                k.capacity()
                    + core::mem::size_of::<ArgSpec>()
                    + 48
                    + a.default.as_ref().map_or(0, value_bytes)
                    + a.description.as_ref().map_or(0, String::capacity)
            })
            .sum::<usize>();
        let extra = self
            .extra
            .iter()
            .map(|(k, v)| k.capacity() + value_bytes(v) + 48)
            .sum::<usize>();
        let json = self.json.0.get().map_or(0, |j| j.len());
        core::mem::size_of::<Self>() + strings + kind + args + extra + json
    }
}

/// An estimate of a JSON value's bytes.
fn value_bytes(v: &Value) -> usize {
    core::mem::size_of::<Value>()
        + match v {
            Value::String(s) => s.capacity(),
            Value::Array(a) => a.iter().map(value_bytes).sum(),
            Value::Object(o) => o
                .iter()
                .map(|(k, v)| k.capacity() + 48 + value_bytes(v))
                .sum(),
            _ => 0,
        }
}

/// A named connection pool.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PoolSpec {
    /// Where it connects (`postgres://...`).
    pub url: String,
    /// Connections kept open.
    pub min_connections: u32,
    /// The most connections open at once.
    pub max_connections: u32,
    /// The pool's other fields, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Connections kept open when a pool does not say.
pub const DEFAULT_MIN_CONNECTIONS: u32 = 1;
/// The most connections when a pool does not say.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;

fn ser_template<S: serde::Serializer>(t: &Template, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.source())
}

fn ser_templates<S: serde::Serializer>(t: &[Template], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(t.iter().map(Template::source))
}

fn ser_template_map<S: serde::Serializer>(
    t: &BTreeMap<String, Template>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(t.iter().map(|(k, v)| (k, v.source())))
}

fn ser_body<S: serde::Serializer>(b: &Option<HttpBody>, s: S) -> Result<S::Ok, S::Error> {
    match b {
        None => s.serialize_none(),
        Some(HttpBody::Text(t)) => s.serialize_str(t.source()),
        Some(HttpBody::Json(v)) => v.serialize(s),
    }
}

fn ser_timeout<S: serde::Serializer>(t: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        None => s.serialize_none(),
        Some(d) => s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    }
}

/// Reads the fields of one entry, naming the entry in every error.
struct Fields<'a> {
    at: &'a Location,
    map: Map<String, Value>,
}

impl Fields<'_> {
    fn err(&self, field: impl Into<String>, message: impl Into<String>) -> RegistryError {
        RegistryError::field(self.at, field, message)
    }

    fn take(&mut self, field: &str) -> Option<Value> {
        self.map.remove(field)
    }

    fn string(&mut self, field: &str) -> Result<Option<String>, RegistryError> {
        match self.take(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => {
                Err(self.err(field, format!("expected a string, got {}", kind_of(&other))))
            }
        }
    }

    fn required_string(&mut self, field: &str) -> Result<String, RegistryError> {
        self.string(field)?
            .ok_or_else(|| self.err(field, "missing (a string is required)"))
    }

    fn string_map(&mut self, field: &str) -> Result<BTreeMap<String, Template>, RegistryError> {
        match self.take(field) {
            None | Some(Value::Null) => Ok(BTreeMap::new()),
            Some(Value::Object(map)) => map
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k, Template::parse(&s))),
                    other => Err(self.err(
                        format!("{field}.{k}"),
                        format!("expected a string, got {}", kind_of(&other)),
                    )),
                })
                .collect(),
            Some(other) => Err(self.err(
                field,
                format!("expected an object of strings, got {}", kind_of(&other)),
            )),
        }
    }
}

/// A JSON value's kind, for messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Whether `id` is a valid script id: 1 to [`MAX_ID_LEN`] bytes of ASCII
/// letters, digits, `-`, `_` and `.`, so that it fits in a URL path
/// segment and a Redis key as it is.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Parses one entry of `scripts` (its JSON text) into a [`Script`],
/// checking every rule against the registry's `pools`.
pub(crate) fn parse_script(
    raw: &str,
    at: &Location,
    pools: &BTreeMap<String, PoolSpec>,
) -> Result<Script, RegistryError> {
    let map = match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(map)) => map,
        Ok(other) => {
            return Err(RegistryError::field(
                at,
                "",
                format!("an entry must be an object, got {}", kind_of(&other)),
            ));
        }
        Err(e) => return Err(RegistryError::field(at, "", e.to_string())),
    };
    let mut f = Fields { at, map };
    let id = f.required_string("id")?;
    if !is_valid_id(&id) {
        return Err(f.err(
            "id",
            format!(
                "{id:?} is not a valid id (1 to {MAX_ID_LEN} ASCII letters, digits, '-', '_' or '.')"
            ),
        ));
    }
    let name = f.string("name")?.unwrap_or_else(|| id.clone());
    let description = f.string("description")?.unwrap_or_default();
    let tags = match f.take("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s),
                other => Err(f.err(
                    format!("tags[{i}]"),
                    format!("expected a string, got {}", kind_of(&other)),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(f.err(
                "tags",
                format!("expected an array of strings, got {}", kind_of(&other)),
            ));
        }
    };
    let timeout = match f.take("timeout_ms") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|ms| ms > 0) => {
            Some(Duration::from_millis(n.as_u64().unwrap_or_default()))
        }
        Some(other) => {
            return Err(f.err(
                "timeout_ms",
                format!("expected a positive integer of milliseconds, got {other}"),
            ));
        }
    };
    let arguments = parse_arguments(&mut f)?;
    let kind_name = f.required_string("kind")?;
    let kind = match kind_name.as_str() {
        "command" => ScriptKind::Command(parse_command(&mut f, &arguments)?),
        "http" => ScriptKind::Http(parse_http(&mut f, &arguments)?),
        "sql" => ScriptKind::Sql(parse_sql(&mut f, &arguments, pools)?),
        other => {
            return Err(f.err(
                "kind",
                format!("unknown kind {other:?} (expected \"command\", \"http\" or \"sql\")"),
            ));
        }
    };
    // What is left (unknown fields, and those of the other kinds) is kept
    // as it is.
    Ok(Script {
        id,
        name,
        description,
        tags,
        kind,
        timeout,
        arguments,
        extra: f.map,
        json: JsonText::default(),
    })
}

fn parse_arguments(f: &mut Fields<'_>) -> Result<BTreeMap<String, ArgSpec>, RegistryError> {
    let map = match f.take("arguments") {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(f.err(
                "arguments",
                format!("expected an object, got {}", kind_of(&other)),
            ));
        }
    };
    let mut out = BTreeMap::new();
    for (name, spec) in map {
        let at = |field: &str| format!("arguments.{name}{field}");
        if !is_name(&name) {
            return Err(f.err(
                at(""),
                "an argument name is a letter or '_' followed by letters, digits, '_' or '-'",
            ));
        }
        let Value::Object(mut spec) = spec else {
            return Err(f.err(
                at(""),
                format!("expected an object, got {}", kind_of(&spec)),
            ));
        };
        let ty = match spec.remove("type") {
            Some(Value::String(t)) => ArgType::from_name(&t).ok_or_else(|| {
                f.err(
                    at(".type"),
                    format!(
                        "unknown type {t:?} (expected string, integer, number, boolean or json)"
                    ),
                )
            })?,
            None => return Err(f.err(at(".type"), "missing (a type is required)")),
            Some(other) => {
                return Err(f.err(
                    at(".type"),
                    format!("expected a string, got {}", kind_of(&other)),
                ));
            }
        };
        let required = match spec.remove("required") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(other) => {
                return Err(f.err(
                    at(".required"),
                    format!("expected a boolean, got {}", kind_of(&other)),
                ));
            }
        };
        let default = match spec.remove("default") {
            // A JSON argument may default to null; for the others null is
            // "no default".
            Some(Value::Null) if ty != ArgType::Json => None,
            Some(v) if !ty.accepts(&v) => {
                return Err(f.err(
                    at(".default"),
                    format!("expected {}, got {}", ty.name(), kind_of(&v)),
                ));
            }
            other => other,
        };
        let description = match spec.remove("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                return Err(f.err(
                    at(".description"),
                    format!("expected a string, got {}", kind_of(&other)),
                ));
            }
        };
        out.insert(
            name,
            ArgSpec {
                ty,
                required,
                default,
                description,
            },
        );
    }
    Ok(out)
}

/// Refuses a template whose placeholders name undeclared arguments.
fn check_placeholders(
    f: &Fields<'_>,
    field: &str,
    t: &Template,
    args: &BTreeMap<String, ArgSpec>,
) -> Result<(), RegistryError> {
    for name in t.placeholders() {
        if !args.contains_key(name) {
            return Err(f.err(
                field,
                format!(
                    "placeholder {{{name}}} names no declared argument{}",
                    declared(args)
                ),
            ));
        }
    }
    Ok(())
}

fn declared(args: &BTreeMap<String, ArgSpec>) -> String {
    if args.is_empty() {
        " (the script declares none)".to_owned()
    } else {
        let names: Vec<&str> = args.keys().map(String::as_str).collect();
        format!(" (declared: {})", names.join(", "))
    }
}

/// Checks the templates inside a JSON value (strings are templates).
fn check_json_templates(
    f: &Fields<'_>,
    field: &str,
    v: &Value,
    args: &BTreeMap<String, ArgSpec>,
) -> Result<(), RegistryError> {
    match v {
        Value::String(s) => check_placeholders(f, field, &Template::parse(s), args),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_json_templates(f, &format!("{field}[{i}]"), v, args)),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(k, v)| check_json_templates(f, &format!("{field}.{k}"), v, args)),
        _ => Ok(()),
    }
}

fn parse_command(
    f: &mut Fields<'_>,
    args: &BTreeMap<String, ArgSpec>,
) -> Result<CommandSpec, RegistryError> {
    let items = match f.take("command") {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => {
            return Err(f.err("command", "missing (an array of strings is required)"));
        }
        Some(other) => {
            return Err(f.err(
                "command",
                format!("expected an array of strings, got {}", kind_of(&other)),
            ));
        }
    };
    if items.is_empty() {
        return Err(f.err("command", "empty: the first element names the program"));
    }
    let mut command = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let field = format!("command[{i}]");
        let Value::String(s) = item else {
            return Err(f.err(field, format!("expected a string, got {}", kind_of(&item))));
        };
        if s.contains('\0') {
            return Err(f.err(field, "contains a NUL byte"));
        }
        let t = Template::parse(&s);
        check_placeholders(f, &field, &t, args)?;
        command.push(t);
    }
    if command[0].source().is_empty() {
        return Err(f.err("command[0]", "the program is empty"));
    }
    if command[0].placeholders().next().is_some() {
        return Err(f.err(
            "command[0]",
            "the program may not come from an argument (no placeholder here)",
        ));
    }
    let env = f.string_map("env")?;
    for (k, v) in &env {
        if k.is_empty() || k.contains(['=', '\0']) {
            return Err(f.err(format!("env.{k}"), "not a valid variable name"));
        }
        check_placeholders(f, &format!("env.{k}"), v, args)?;
    }
    let workdir = f.string("workdir")?.unwrap_or_else(|| ".".to_owned());
    if workdir.is_empty() || workdir.contains('\0') {
        return Err(f.err("workdir", "must be a non-empty path without NUL bytes"));
    }
    Ok(CommandSpec {
        command,
        env,
        workdir,
    })
}

fn parse_http(
    f: &mut Fields<'_>,
    args: &BTreeMap<String, ArgSpec>,
) -> Result<HttpSpec, RegistryError> {
    let method = f.string("method")?.unwrap_or_else(|| "GET".to_owned());
    if !HTTP_METHODS.contains(&method.as_str()) {
        return Err(f.err(
            "method",
            format!(
                "unknown method {method:?} (expected one of {})",
                HTTP_METHODS.join(", ")
            ),
        ));
    }
    let url_text = f.required_string("url")?;
    if !(url_text.starts_with("http://") || url_text.starts_with("https://")) {
        return Err(f.err("url", "must start with http:// or https://"));
    }
    let url = Template::parse(&url_text);
    if host_has_placeholder(&url_text) {
        return Err(f.err(
            "url",
            "the host may not come from an argument (placeholders belong in the path or query)",
        ));
    }
    check_placeholders(f, "url", &url, args)?;
    let headers = f.string_map("headers")?;
    for (k, v) in &headers {
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
            return Err(f.err(format!("headers.{k}"), "not a valid header name"));
        }
        check_placeholders(f, &format!("headers.{k}"), v, args)?;
    }
    let body = match f.take("body") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let t = Template::parse(&s);
            check_placeholders(f, "body", &t, args)?;
            Some(HttpBody::Text(t))
        }
        Some(v) => {
            check_json_templates(f, "body", &v, args)?;
            Some(HttpBody::Json(v))
        }
    };
    Ok(HttpSpec {
        method,
        url,
        headers,
        body,
    })
}

/// Whether a placeholder sits in the URL's authority (between `://` and
/// the first `/`, `?` or `#`).
fn host_has_placeholder(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    Template::parse(authority).placeholders().next().is_some()
}

fn parse_sql(
    f: &mut Fields<'_>,
    args: &BTreeMap<String, ArgSpec>,
    pools: &BTreeMap<String, PoolSpec>,
) -> Result<SqlSpec, RegistryError> {
    let pool = f.required_string("pool")?;
    if !pools.contains_key(&pool) {
        let known: BTreeSet<&str> = pools.keys().map(String::as_str).collect();
        let known = if known.is_empty() {
            "the registry has no pools".to_owned()
        } else {
            format!(
                "pools: {}",
                known.into_iter().collect::<Vec<_>>().join(", ")
            )
        };
        return Err(f.err("pool", format!("no pool named {pool:?} ({known})")));
    }
    let query = f.required_string("query")?;
    if query.trim().is_empty() {
        return Err(f.err("query", "empty"));
    }
    let params = match f.take("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(f.err(
                "params",
                format!("expected an array, got {}", kind_of(&other)),
            ));
        }
    };
    for (i, p) in params.iter().enumerate() {
        check_json_templates(f, &format!("params[{i}]"), p, args)?;
    }
    Ok(SqlSpec {
        pool,
        query,
        params,
    })
}

/// Parses the registry's `pools` object.
pub(crate) fn parse_pools(raw: Option<&str>) -> Result<BTreeMap<String, PoolSpec>, RegistryError> {
    let Some(raw) = raw else {
        return Ok(BTreeMap::new());
    };
    let top = Location::Top;
    let map = match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(map)) => map,
        Ok(Value::Null) => return Ok(BTreeMap::new()),
        Ok(other) => {
            return Err(RegistryError::field(
                &top,
                "pools",
                format!("expected an object, got {}", kind_of(&other)),
            ));
        }
        Err(e) => return Err(RegistryError::field(&top, "pools", e.to_string())),
    };
    let mut pools = BTreeMap::new();
    for (name, spec) in map {
        let at = Location::Pool { name: name.clone() };
        let Value::Object(mut spec) = spec else {
            return Err(RegistryError::field(
                &at,
                "",
                format!("expected an object, got {}", kind_of(&spec)),
            ));
        };
        let url = match spec.remove("url") {
            Some(Value::String(s)) if !s.is_empty() => s,
            _ => {
                return Err(RegistryError::field(
                    &at,
                    "url",
                    "a non-empty string is required",
                ));
            }
        };
        let mut count = |field: &str, default: u32| -> Result<u32, RegistryError> {
            match spec.remove(field) {
                None | Some(Value::Null) => Ok(default),
                Some(Value::Number(n)) if n.as_u64().is_some_and(|v| v <= u64::from(u32::MAX)) => {
                    Ok(u32::try_from(n.as_u64().unwrap_or_default()).unwrap_or(u32::MAX))
                }
                Some(other) => Err(RegistryError::field(
                    &at,
                    field,
                    format!("expected a non-negative integer, got {other}"),
                )),
            }
        };
        let min_connections = count("min_connections", DEFAULT_MIN_CONNECTIONS)?;
        let max_connections = count("max_connections", DEFAULT_MAX_CONNECTIONS)?;
        if max_connections == 0 {
            return Err(RegistryError::field(
                &at,
                "max_connections",
                "must be at least 1",
            ));
        }
        if min_connections > max_connections {
            return Err(RegistryError::field(
                &at,
                "min_connections",
                format!("{min_connections} is more than max_connections ({max_connections})"),
            ));
        }
        pools.insert(
            name,
            PoolSpec {
                url,
                min_connections,
                max_connections,
                extra: spec,
            },
        );
    }
    Ok(pools)
}
