//! A self-describing value for non-self-describing formats.
//!
//! postcard writes no type information, so a reader must know the shape of
//! what it reads. [`Value`] gives arbitrary JSON-like data a shape postcard can
//! carry: every node is an enum variant (postcard writes the variant index as a
//! varint), objects keep their key order, and integers keep their sign and
//! full 64-bit range apart from floats. A frame holding a `Value` decodes back
//! to the same `Value`; the CLI packs JSON as postcard this way.

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

/// A JSON-like tree with the number kinds kept apart.
///
/// The variant order is part of the postcard encoding: new variants may only
/// be appended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A negative integer (or any integer read as signed).
    Int(i64),
    /// A non-negative integer.
    UInt(u64),
    /// A floating-point number; JSON cannot hold NaN or infinities.
    Float(f64),
    /// A string.
    String(String),
    /// An ordered list.
    Array(Vec<Self>),
    /// Key-value pairs in their original order; duplicate keys are kept.
    Object(Vec<(String, Self)>),
}

/// The deepest nesting [`Value::check_postcard`] accepts, the same bound
/// serde_json applies to JSON text.
pub const MAX_DEPTH: usize = 128;

/// Why [`Value::check_postcard`] refused a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueError {
    /// Arrays and objects nest deeper than [`MAX_DEPTH`] at this byte offset.
    TooDeep {
        /// Offset of the container that went too deep.
        offset: usize,
    },
    /// The bytes end inside a value.
    Truncated,
    /// An unknown variant index at this offset.
    BadVariant {
        /// Offset of the variant index.
        offset: usize,
    },
    /// A length or integer varint longer than ten bytes at this offset.
    BadVarint {
        /// Offset of the varint.
        offset: usize,
    },
    /// A NaN or infinite float, which JSON cannot represent.
    NonFiniteFloat,
}

impl core::fmt::Display for ValueError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooDeep { offset } => {
                write!(
                    f,
                    "value nests deeper than {MAX_DEPTH} levels at byte {offset}"
                )
            }
            Self::Truncated => f.write_str("value is truncated"),
            Self::BadVariant { offset } => write!(f, "unknown value kind at byte {offset}"),
            Self::BadVarint { offset } => write!(f, "malformed varint at byte {offset}"),
            Self::NonFiniteFloat => {
                f.write_str("value holds a NaN or infinite float, which JSON cannot hold")
            }
        }
    }
}

impl core::error::Error for ValueError {}

impl Value {
    /// Walks a postcard-encoded `Value` without recursion and checks that it
    /// nests at most [`MAX_DEPTH`] deep and is structurally complete.
    ///
    /// postcard's deserializer recurses once per nesting level with no bound
    /// of its own, so untrusted bytes go through this check first: a few
    /// hundred KiB of `[[[[...` would otherwise exhaust the stack. String
    /// contents are checked later by the deserializer itself.
    ///
    /// # Errors
    /// A [`ValueError`] naming the first problem and its offset.
    pub fn check_postcard(bytes: &[u8]) -> Result<(), ValueError> {
        // Each stack entry counts the values still expected at that level;
        // object entries count keys and values separately (two per pair).
        let mut pending: Vec<(u64, bool)> = Vec::new();
        let mut pos = 0usize;
        let mut remaining_top = 1u64;
        loop {
            // Find the next value to read, popping finished containers.
            let expect_key = loop {
                match pending.last_mut() {
                    Some((count, is_object)) if *count > 0 => {
                        *count -= 1;
                        // Pairs are counted twice; an odd count left after taking
                        // one means this one is the key of its pair.
                        break *is_object && *count % 2 == 1;
                    }
                    Some(_) => {
                        pending.pop();
                    }
                    None => {
                        if remaining_top == 0 {
                            return Ok(());
                        }
                        remaining_top -= 1;
                        break false;
                    }
                }
            };
            if expect_key {
                let len = read_varint(bytes, &mut pos)?;
                skip(bytes, &mut pos, len)?;
                continue;
            }
            let at = pos;
            match read_varint(bytes, &mut pos)? {
                0 => {}
                1 => skip(bytes, &mut pos, 1)?,
                2 | 3 => {
                    read_varint(bytes, &mut pos)?;
                }
                4 => skip(bytes, &mut pos, 8)?,
                5 => {
                    let len = read_varint(bytes, &mut pos)?;
                    skip(bytes, &mut pos, len)?;
                }
                kind @ (6 | 7) => {
                    if pending.len() >= MAX_DEPTH {
                        return Err(ValueError::TooDeep { offset: at });
                    }
                    let len = read_varint(bytes, &mut pos)?;
                    // Every element takes at least one byte, so a count beyond
                    // the remaining input is a truncation, not a reason to loop.
                    let left = (bytes.len() - pos) as u64;
                    let count = if kind == 7 {
                        len.checked_mul(2)
                    } else {
                        Some(len)
                    };
                    match count {
                        Some(count) if count <= left => pending.push((count, kind == 7)),
                        _ => return Err(ValueError::Truncated),
                    }
                }
                _ => return Err(ValueError::BadVariant { offset: at }),
            }
        }
    }
}

impl From<serde_json::Value> for Value {
    fn from(json: serde_json::Value) -> Self {
        match json {
            serde_json::Value::Null => Self::Null,
            serde_json::Value::Bool(b) => Self::Bool(b),
            serde_json::Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    Self::UInt(u)
                } else if let Some(i) = n.as_i64() {
                    Self::Int(i)
                } else {
                    // serde_json numbers are u64, i64 or finite f64.
                    Self::Float(n.as_f64().unwrap_or(0.0))
                }
            }
            serde_json::Value::String(s) => Self::String(s),
            serde_json::Value::Array(items) => {
                Self::Array(items.into_iter().map(Self::from).collect())
            }
            serde_json::Value::Object(map) => {
                Self::Object(map.into_iter().map(|(k, v)| (k, Self::from(v))).collect())
            }
        }
    }
}

impl TryFrom<Value> for serde_json::Value {
    type Error = ValueError;

    /// Converts back to JSON; a later duplicate key wins, as in JSON parsers.
    fn try_from(value: Value) -> Result<Self, ValueError> {
        Ok(match value {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(b),
            Value::Int(i) => Self::from(i),
            Value::UInt(u) => Self::from(u),
            Value::Float(f) => serde_json::Number::from_f64(f)
                .map(Self::Number)
                .ok_or(ValueError::NonFiniteFloat)?,
            Value::String(s) => Self::String(s),
            Value::Array(items) => Self::Array(
                items
                    .into_iter()
                    .map(Self::try_from)
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(pairs) => {
                let mut map = serde_json::Map::new();
                for (key, value) in pairs {
                    map.insert(key, Self::try_from(value)?);
                }
                Self::Object(map)
            }
        })
    }
}

fn read_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, ValueError> {
    let start = *pos;
    let mut value = 0u64;
    for shift in 0..10 {
        let byte = *bytes.get(*pos).ok_or(ValueError::Truncated)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << (7 * shift);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(ValueError::BadVarint { offset: start })
}

fn skip(bytes: &[u8], pos: &mut usize, len: u64) -> Result<(), ValueError> {
    let left = (bytes.len() - *pos) as u64;
    if len > left {
        return Err(ValueError::Truncated);
    }
    // len <= left <= usize::MAX, so the cast is exact.
    *pos += len as usize;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn postcard_round_trip_keeps_number_kinds_and_order() {
        let value = Value::Object(vec![
            (String::from("z"), Value::UInt(u64::MAX)),
            (String::from("a"), Value::Int(i64::MIN)),
            (String::from("f"), Value::Float(0.5)),
            (
                String::from("l"),
                Value::Array(vec![
                    Value::Null,
                    Value::Bool(true),
                    Value::String("s".into()),
                ]),
            ),
        ]);
        let bytes = postcard::to_allocvec(&value).unwrap();
        let back: Value = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn check_accepts_valid_and_refuses_deep_or_truncated() {
        let value = Value::Object(vec![(
            String::from("k"),
            Value::Array(vec![Value::Float(1.0), Value::String("x".into())]),
        )]);
        let bytes = postcard::to_allocvec(&value).unwrap();
        assert_eq!(Value::check_postcard(&bytes), Ok(()));
        for cut in 0..bytes.len() {
            assert_eq!(
                Value::check_postcard(&bytes[..cut]),
                Err(ValueError::Truncated),
                "cut {cut}"
            );
        }
        let mut deep = Vec::new();
        for _ in 0..=MAX_DEPTH {
            deep.extend_from_slice(&[6, 1]);
        }
        deep.push(0);
        assert_eq!(
            Value::check_postcard(&deep),
            Err(ValueError::TooDeep {
                offset: 2 * MAX_DEPTH
            })
        );
        assert_eq!(Value::check_postcard(&deep[2..]), Ok(()));
        assert_eq!(
            Value::check_postcard(&[8]),
            Err(ValueError::BadVariant { offset: 0 })
        );
        assert_eq!(
            Value::check_postcard(&[
                6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0
            ]),
            Err(ValueError::BadVarint { offset: 1 })
        );
    }

    #[test]
    fn json_conversion_round_trips() {
        let json: serde_json::Value = serde_json::from_str(
            r#"{"a":[1,-2,2.5,null,true,"s"],"b":{"c":18446744073709551615,"d":-9223372036854775808}}"#,
        )
        .unwrap();
        let tree = Value::from(json.clone());
        assert_eq!(serde_json::Value::try_from(tree).unwrap(), json);
        assert_eq!(
            serde_json::Value::try_from(Value::Float(f64::NAN)),
            Err(ValueError::NonFiniteFloat)
        );
    }

    #[test]
    fn variant_indices_are_stable() {
        // The first byte is the variant index; appending variants must not move these.
        assert_eq!(postcard::to_allocvec(&Value::Null).unwrap(), [0]);
        assert_eq!(postcard::to_allocvec(&Value::Bool(true)).unwrap(), [1, 1]);
        assert_eq!(
            postcard::to_allocvec(&Value::Array(vec![])).unwrap(),
            [6, 0]
        );
        assert_eq!(
            postcard::to_allocvec(&Value::Object(vec![])).unwrap(),
            [7, 0]
        );
    }
}
