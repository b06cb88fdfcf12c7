//! Binding a call's arguments to a script's declarations.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::error::ArgError;
use super::model::{ArgSpec, ArgType, Script, kind_of};

/// A call's arguments after [`Script::bind`]: every declared argument
/// that was given or has a default, each of its declared type. Absent
/// optional arguments without a default are not in it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BoundArgs {
    values: BTreeMap<String, Value>,
}

impl BoundArgs {
    /// The value of `name`, if bound.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    /// The bound values by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many arguments are bound.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The bound values as a JSON object.
    pub fn to_json(&self) -> Map<String, Value> {
        self.values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

impl Script {
    /// Checks a call's `arguments` against the declarations: unknown names
    /// are refused, required ones must be there, types must match, and
    /// defaults fill the rest. Every error names the argument.
    pub fn bind(&self, arguments: &Map<String, Value>) -> Result<BoundArgs, ArgError> {
        for name in arguments.keys() {
            if !self.arguments.contains_key(name) {
                return Err(unknown(self, name));
            }
        }
        let mut values = BTreeMap::new();
        for (name, spec) in &self.arguments {
            match arguments.get(name) {
                Some(v) => {
                    if !spec.ty.accepts(v) {
                        return Err(ArgError::Type {
                            name: name.clone(),
                            expected: spec.ty.name(),
                            got: describe(v),
                        });
                    }
                    values.insert(name.clone(), v.clone());
                }
                None if spec.required => {
                    return Err(ArgError::Missing { name: name.clone() });
                }
                None => {
                    if let Some(d) = &spec.default {
                        values.insert(name.clone(), d.clone());
                    }
                }
            }
        }
        Ok(BoundArgs { values })
    }
}

/// The error for an argument `script` does not declare.
fn unknown(script: &Script, name: &str) -> ArgError {
    let declared: Vec<&str> = script.arguments.keys().map(String::as_str).collect();
    ArgError::Unknown {
        name: name.to_owned(),
        declared: if declared.is_empty() {
            "none".to_owned()
        } else {
            declared.join(", ")
        },
    }
}

/// A value's kind and, when short, the value itself, for messages.
fn describe(v: &Value) -> String {
    let text = v.to_string();
    if text.len() <= 40 {
        format!("{} {text}", kind_of(v))
    } else {
        kind_of(v).to_owned()
    }
}

impl ArgSpec {
    /// Reads a command-line value (`--arg NAME=VALUE`) as this argument's
    /// type: `string` takes the text as it is, `integer` and `number`
    /// parse it, `boolean` takes `true` or `false`, `json` parses JSON.
    /// The error's `name` is empty; [`parse_cli_arg`] fills it in.
    pub fn parse_cli(&self, text: &str) -> Result<Value, ArgError> {
        let bad = |reason: String| ArgError::Invalid {
            name: String::new(),
            reason,
        };
        match self.ty {
            ArgType::String => Ok(Value::String(text.to_owned())),
            ArgType::Integer => {
                if let Ok(i) = text.parse::<i64>() {
                    Ok(Value::from(i))
                } else if let Ok(u) = text.parse::<u64>() {
                    Ok(Value::from(u))
                } else {
                    Err(bad(format!("{text:?} is not an integer")))
                }
            }
            ArgType::Number => match text.parse::<f64>() {
                Ok(x) if x.is_finite() => {
                    // Keep integers exact.
                    if let Ok(i) = text.parse::<i64>() {
                        Ok(Value::from(i))
                    } else {
                        serde_json::Number::from_f64(x)
                            .map(Value::Number)
                            .ok_or_else(|| bad(format!("{text:?} is not a finite number")))
                    }
                }
                _ => Err(bad(format!("{text:?} is not a finite number"))),
            },
            ArgType::Boolean => match text {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(bad(format!("{text:?} is not true or false"))),
            },
            ArgType::Json => {
                serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))
            }
        }
    }
}

/// Parses one `NAME=VALUE` command-line argument for `script`: the name
/// must be declared, the value is read by [`ArgSpec::parse_cli`].
pub fn parse_cli_arg(script: &Script, pair: &str) -> Result<(String, Value), ArgError> {
    let Some((name, text)) = pair.split_once('=') else {
        return Err(ArgError::Invalid {
            name: pair.to_owned(),
            reason: "expected NAME=VALUE".to_owned(),
        });
    };
    let Some(spec) = script.arguments.get(name) else {
        return Err(unknown(script, name));
    };
    spec.parse_cli(text)
        .map(|v| (name.to_owned(), v))
        .map_err(|e| match e {
            ArgError::Invalid { reason, .. } => ArgError::Invalid {
                name: name.to_owned(),
                reason,
            },
            other => other,
        })
}
