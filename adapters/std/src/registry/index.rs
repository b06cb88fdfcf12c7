//! The index of a registry's text: where each entry's JSON starts and
//! ends, by id, without parsing the entries themselves.
//!
//! Building it checks the JSON syntax of the whole file, the top-level
//! shape, `version`, `pools`, and that ids are strings and unique; the
//! entries' own rules are checked by parsing them
//! ([`model::parse_script`](super::model::parse_script)), which the cache
//! does for one entry on a miss and for all of them on a (re)load.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::MAX_REGISTRY_BYTES;
use super::error::{Location, RegistryError};
use super::model::{PoolSpec, Script, kind_of, parse_pools, parse_script};

/// The registry format version this crate reads.
pub const FORMAT_VERSION: u64 = 1;

/// Where one entry sits in the text.
#[derive(Clone, Debug)]
pub(crate) struct RawEntry {
    pub(crate) id: String,
    start: usize,
    end: usize,
    line: usize,
}

/// The indexed text of a registry.
#[derive(Debug)]
pub(crate) struct RawIndex {
    text: Arc<str>,
    entries: Vec<RawEntry>,
    by_id: HashMap<String, usize>,
    pools: BTreeMap<String, PoolSpec>,
    pools_text: (usize, usize),
}

#[derive(Deserialize)]
#[serde(expecting = "a registry: an object with \"version\", \"scripts\" and optional \"pools\"")]
struct RawFile<'a> {
    #[serde(borrow)]
    version: Option<&'a RawValue>,
    #[serde(borrow)]
    scripts: Option<Vec<&'a RawValue>>,
    #[serde(borrow)]
    pools: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct IdOnly<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
}

/// Where `inner` (a slice of `outer`) starts in `outer`.
fn offset_in(outer: &str, inner: &str) -> usize {
    (inner.as_ptr() as usize).wrapping_sub(outer.as_ptr() as usize)
}

impl RawIndex {
    /// Indexes `text`.
    pub(crate) fn build(text: Arc<str>) -> Result<Self, RegistryError> {
        if text.len() as u64 > MAX_REGISTRY_BYTES {
            return Err(RegistryError::TooLarge {
                size: text.len() as u64,
                limit: MAX_REGISTRY_BYTES,
            });
        }
        // serde reads a struct from an array too; a registry is an object.
        let lead = text.len() - text.trim_start().len();
        if lead < text.len() && !text[lead..].starts_with('{') {
            let before = &text[..lead];
            let line = 1 + before.matches('\n').count();
            let column = 1 + before.rfind('\n').map_or(lead, |nl| lead - nl - 1);
            return Err(RegistryError::Syntax {
                line,
                column,
                message: "expected a registry: an object with \"version\" and \"scripts\""
                    .to_owned(),
            });
        }
        let file: RawFile<'_> =
            serde_json::from_str(&text).map_err(|e| RegistryError::syntax(&e))?;
        let top = Location::Top;
        match file
            .version
            .map(|v| serde_json::from_str::<serde_json::Value>(v.get()))
        {
            None => {
                return Err(RegistryError::field(
                    &top,
                    "version",
                    format!("missing (this reader takes version {FORMAT_VERSION})"),
                ));
            }
            Some(Ok(v)) if v.as_u64() == Some(FORMAT_VERSION) => {}
            Some(Ok(v)) => {
                return Err(RegistryError::field(
                    &top,
                    "version",
                    format!("unsupported version {v} (this reader takes {FORMAT_VERSION})"),
                ));
            }
            Some(Err(e)) => return Err(RegistryError::field(&top, "version", e.to_string())),
        }
        let Some(scripts) = file.scripts else {
            return Err(RegistryError::field(
                &top,
                "scripts",
                "missing (an array of scripts is required)",
            ));
        };
        let pools_text = file.pools.map_or((0, 0), |p| {
            let start = offset_in(&text, p.get());
            (start, start + p.get().len())
        });
        let pools = parse_pools(file.pools.map(RawValue::get))?;
        let mut entries = Vec::with_capacity(scripts.len());
        let mut by_id = HashMap::with_capacity(scripts.len());
        let (mut line, mut counted) = (1usize, 0usize);
        for (index, raw) in scripts.iter().enumerate() {
            let raw = raw.get();
            let start = offset_in(&text, raw);
            line += text.as_bytes()[counted..start]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            counted = start;
            let mut at = Location::Script {
                index,
                id: None,
                line,
            };
            let fast = scan_id(raw);
            let id = match fast.map_or_else(
                || serde_json::from_str::<IdOnly<'_>>(raw),
                |id| Ok(IdOnly { id: Some(id) }),
            ) {
                Ok(IdOnly { id: Some(id) }) => id.into_owned(),
                Ok(IdOnly { id: None }) => {
                    return Err(RegistryError::field(
                        &at,
                        "id",
                        "missing (a string is required)",
                    ));
                }
                Err(_) => {
                    // Say what is there instead of serde's phrasing.
                    let value: Value = serde_json::from_str(raw)
                        .map_err(|e| RegistryError::field(&at, "", e.to_string()))?;
                    return Err(match value.get("id") {
                        Some(Value::String(_)) => {
                            RegistryError::field(&at, "id", "the entry has more than one \"id\"")
                        }
                        Some(other) if value.is_object() => RegistryError::field(
                            &at,
                            "id",
                            format!("expected a string, got {}", kind_of(other)),
                        ),
                        _ => RegistryError::field(
                            &at,
                            "",
                            format!("an entry must be an object, got {}", kind_of(&value)),
                        ),
                    });
                }
            };
            if let Location::Script { id: slot, .. } = &mut at {
                *slot = Some(id.clone());
            }
            if let Some(&first) = by_id.get(&id) {
                return Err(RegistryError::DuplicateId { at, id, first });
            }
            by_id.insert(id.clone(), index);
            entries.push(RawEntry {
                id,
                start,
                end: start + raw.len(),
                line,
            });
        }
        Ok(Self {
            text,
            entries,
            by_id,
            pools,
            pools_text,
        })
    }

    /// The entries in file order.
    pub(crate) fn entries(&self) -> &[RawEntry] {
        &self.entries
    }

    /// The index of the entry with this id.
    pub(crate) fn position(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// The JSON text of entry `i`.
    pub(crate) fn raw(&self, i: usize) -> &str {
        let e = &self.entries[i];
        &self.text[e.start..e.end]
    }

    /// The JSON text of `pools` (empty when absent).
    pub(crate) fn pools_raw(&self) -> &str {
        &self.text[self.pools_text.0..self.pools_text.1]
    }

    /// The parsed pools.
    pub(crate) fn pools(&self) -> &BTreeMap<String, PoolSpec> {
        &self.pools
    }

    /// Where entry `i` is, for errors.
    pub(crate) fn location(&self, i: usize) -> Location {
        let e = &self.entries[i];
        Location::Script {
            index: i,
            id: Some(e.id.clone()),
            line: e.line,
        }
    }

    /// Parses and validates entry `i`.
    pub(crate) fn parse(&self, i: usize) -> Result<Script, RegistryError> {
        let at = self.location(i);
        let script = parse_script(self.raw(i), &at, &self.pools)?;
        if script.id != self.entries[i].id {
            // JSON objects may repeat a key; the index took the first `id`,
            // the parser the last.
            return Err(RegistryError::field(
                &at,
                "id",
                "the entry has more than one \"id\"",
            ));
        }
        Ok(script)
    }
}

/// The entry's `id` when it is a string among its top-level keys, found
/// by a scan that stops there (`id` usually comes first), so that
/// indexing does not read every entry twice. `raw` is one JSON value that
/// serde_json has already checked; `None` for anything this scan does not
/// handle itself, which the caller then reads with serde_json.
fn scan_id(raw: &str) -> Option<Cow<'_, str>> {
    let b = raw.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(b, i);
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(b, i)?;
        let key = &raw[i..key_end];
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        if key == "\"id\"" {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let end = string_end(b, i)?;
            let text = &raw[i + 1..end - 1];
            return if text.contains('\\') {
                serde_json::from_str::<String>(&raw[i..end])
                    .ok()
                    .map(Cow::Owned)
            } else {
                Some(Cow::Borrowed(text))
            };
        }
        if key.contains('\\') {
            // An escaped key might spell `id`.
            return None;
        }
        i = skip_value(b, i)?;
        i = skip_ws(b, i);
        match b.get(i) {
            Some(b',') => i += 1,
            _ => return None,
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The index just past the string starting (with its quote) at `i`.
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// The index just past the value starting at `i`.
fn skip_value(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    loop {
        match b.get(i)? {
            b'"' => i = string_end(b, i)?,
            b'{' | b'[' => {
                depth += 1;
                i += 1;
            }
            b'}' | b']' => {
                if depth == 0 {
                    return Some(i);
                }
                depth -= 1;
                i += 1;
            }
            b',' if depth == 0 => return Some(i),
            _ => i += 1,
        }
        if depth == 0 && matches!(b.get(i), Some(b',' | b'}' | b']') | None) {
            return Some(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_scan_agrees_with_serde() {
        let cases = [
            r#"{"id": "a", "x": 1}"#,
            r#"{"x": {"id": "inner", "y": [1, {"z": "}"}]}, "s": "a\"b", "id": "outer"}"#,
            r#"{"n": -1.5e3, "t": true, "id": "b\u0041"}"#,
            r#" { "id" : "c" } "#,
            r#"{"x": 1}"#,
            r#"{"id": 5}"#,
            r#"{"i\u0064": "escaped-key"}"#,
            r#"[1, 2]"#,
            r#""s""#,
            r#"{"a": [], "b": {}, "id": ""}"#,
        ];
        for raw in cases {
            let serde = serde_json::from_str::<IdOnly<'_>>(raw)
                .ok()
                .and_then(|i| i.id);
            // `None`: serde reads it.
            if let Some(id) = scan_id(raw) {
                assert_eq!(Some(id), serde, "{raw}");
            }
        }
        assert_eq!(scan_id(r#"{"id": "a"}"#).as_deref(), Some("a"));
        assert_eq!(
            scan_id(r#"{"x": {"id": "inner"}, "id": "outer"}"#).as_deref(),
            Some("outer")
        );
        assert_eq!(scan_id(r#"{"id": "b\u0041"}"#).as_deref(), Some("bA"));
        assert_eq!(scan_id(r#"{"i\u0064": "x"}"#), None);
        assert_eq!(scan_id(r#"{"x": 1}"#), None);
    }
}
