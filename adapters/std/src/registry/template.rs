//! Text templates with `{name}` placeholders.
//!
//! A placeholder is `{` + a name (`[A-Za-z_][A-Za-z0-9_-]*`) + `}`. `{{`
//! and `}}` stand for a literal brace; any other brace is literal text, so
//! `{ x }` or `a{}` need no escaping. A template that is exactly one
//! placeholder is *lone*: the callers give it the argument's value whole
//! (one argv element, a typed SQL parameter, a typed JSON value) instead of
//! its text.

use serde_json::Value;

/// One piece of a parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(String),
    Arg(String),
}

/// A parsed template; keeps its source for display and serialization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `source`. Never fails: text that is not a placeholder is
    /// literal.
    pub fn parse(source: &str) -> Self {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let bytes = source.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if (b == b'{' || b == b'}') && bytes.get(i + 1) == Some(&b) {
                text.push(b as char);
                i += 2;
                continue;
            }
            if b == b'{'
                && let Some(len) = placeholder_len(&source[i + 1..])
            {
                if !text.is_empty() {
                    pieces.push(Piece::Text(core::mem::take(&mut text)));
                }
                pieces.push(Piece::Arg(source[i + 1..i + 1 + len].to_owned()));
                i += len + 2;
                continue;
            }
            // Copy the whole UTF-8 character starting here.
            let ch_len = source[i..].chars().next().map_or(1, char::len_utf8);
            text.push_str(&source[i..i + ch_len]);
            i += ch_len;
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Self {
            source: source.to_owned(),
            pieces,
        }
    }

    /// The text the template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The argument named, when the template is one placeholder alone.
    pub fn lone(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [Piece::Arg(name)] => Some(name),
            _ => None,
        }
    }

    /// The names of the placeholders, in order (with repeats).
    pub fn placeholders(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Arg(name) => Some(name.as_str()),
            Piece::Text(_) => None,
        })
    }

    /// The bytes the template holds besides its source, for weighing.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.source.capacity()
            + self.pieces.capacity() * core::mem::size_of::<Piece>()
            + self
                .pieces
                .iter()
                .map(|p| match p {
                    Piece::Text(s) | Piece::Arg(s) => s.capacity(),
                })
                .sum::<usize>()
    }

    /// Substitutes each placeholder with `text(name)` (the value's text,
    /// encoded as the caller needs).
    pub(crate) fn render_with<E>(
        &self,
        mut text: impl FnMut(&str) -> Result<String, E>,
    ) -> Result<String, E> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Arg(name) => out.push_str(&text(name)?),
            }
        }
        Ok(out)
    }
}

/// The length of a placeholder name at the start of `rest` when it is
/// followed by `}`.
fn placeholder_len(rest: &str) -> Option<usize> {
    let len = name_len(rest);
    (len > 0 && rest.as_bytes().get(len) == Some(&b'}')).then_some(len)
}

/// The length of the longest argument-name prefix of `s`.
fn name_len(s: &str) -> usize {
    let b = s.as_bytes();
    if b.is_empty() || !(b[0].is_ascii_alphabetic() || b[0] == b'_') {
        return 0;
    }
    1 + b[1..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_' || **c == b'-')
        .count()
}

/// Whether `s` is a valid argument name.
pub(crate) fn is_name(s: &str) -> bool {
    !s.is_empty() && name_len(s) == s.len()
}

/// The text of an argument value inside a longer template: strings as they
/// are, numbers and booleans in JSON form, other JSON compact; an absent
/// optional argument is empty.
pub(crate) fn value_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_escapes() {
        let t = Template::parse("a{x}b{{c}}{ y }{}{_z-1}é");
        assert_eq!(
            t.pieces,
            vec![
                Piece::Text("a".into()),
                Piece::Arg("x".into()),
                Piece::Text("b{c}{ y }{}".into()),
                Piece::Arg("_z-1".into()),
                Piece::Text("é".into()),
            ]
        );
        assert_eq!(t.lone(), None);
        assert_eq!(Template::parse("{width}").lone(), Some("width"));
        assert_eq!(Template::parse("{width}x").lone(), None);
        assert_eq!(Template::parse("{{width}}").lone(), None);
        let names: Vec<_> = t.placeholders().collect();
        assert_eq!(names, ["x", "_z-1"]);
    }

    #[test]
    fn rendering_substitutes_text() {
        let t = Template::parse("--width={w}px {{literal}}");
        let out: Result<String, ()> = t.render_with(|n| Ok(format!("<{n}>")));
        assert_eq!(out.unwrap(), "--width=<w>px {literal}");
    }

    #[test]
    fn names() {
        assert!(is_name("a"));
        assert!(is_name("a-b_9"));
        assert!(!is_name("9a"));
        assert!(!is_name(""));
        assert!(!is_name("a b"));
    }
}
