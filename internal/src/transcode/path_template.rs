//! `google.api.http` path templates (`/v1/{name=shelves/*}/books/{id}:publish`): parsed once
//! at load, matched against request paths, and expanded from a message for the reverse
//! direction.
//!
//! Grammar (google/api/http.proto):
//!
//! ```text
//! Template = "/" Segments [ ":" Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! FieldPath = IDENT { "." IDENT } ;
//! ```
//!
//! `{name}` is `{name=*}`; `*` is one non-empty segment, `**` zero or more and only last. The
//! template `/` alone has no segments and matches only `/`. A `:` is the verb separator and
//! may appear only in the last segment; a request's verb is what follows the *last* `:` of its
//! last segment, and only when the template has a verb (otherwise `:` is part of the
//! segment, so `/v1/{name}` binds `name` to `a:b` for `/v1/a:b`).
//!
//! Decoding follows the spec: a single-segment variable is fully percent-decoded; a
//! multi-segment one (`{name=shelves/*}`, `{name=**}`) keeps RFC 6570 reserved characters
//! escaped, so an escaped `%2F` stays distinct from the `/` between segments. Literals are
//! compared with the raw path. A path that is not valid percent-encoded UTF-8 matches nothing.

use std::fmt;

use crate::transcode::percent::{self, Mode};

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    /// As written, for messages and `Display`.
    text: String,
    segments: Vec<Segment>,
    verb: Option<String>,
    variables: Vec<Variable>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `*`: exactly one non-empty segment.
    Star,
    /// `**`: zero or more segments; always the last.
    DoubleStar,
}

/// A `{field.path=...}`: the segments `start..end` of the template.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Variable {
    field_path: String,
    start: usize,
    end: usize,
}

impl Variable {
    /// Whether the variable spans (or may span) several segments: its value keeps `/`.
    fn multi(&self, segments: &[Segment]) -> bool {
        self.end - self.start > 1 || segments[self.start..self.end].contains(&Segment::DoubleStar)
    }
}

/// How specific a template is, to choose between two that match the same path: compared
/// segment by segment, a literal beats `*`, which beats the end of the template, which beats
/// `**`; then a template with a verb beats one without.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Specificity(Vec<u8>, bool);

impl PathTemplate {
    /// Parses `text`; the error says what is wrong in words fit for a config error.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (path, verb) = split_verb(text)?;
        let Some(path) = path.strip_prefix('/') else {
            return Err("a path template must start with `/`".to_owned());
        };
        let mut segments = Vec::new();
        let mut variables: Vec<Variable> = Vec::new();
        if !path.is_empty() || verb.is_some() {
            for part in split_top(path) {
                if let Some(inner) = part.strip_prefix('{') {
                    let Some(inner) = inner.strip_suffix('}') else {
                        return Err(format!("`{part}`: a variable must be a whole segment"));
                    };
                    let (field_path, pattern) = inner.split_once('=').unwrap_or((inner, "*"));
                    check_field_path(field_path)?;
                    if variables.iter().any(|v| v.field_path == field_path) {
                        return Err(format!("variable `{field_path}` appears twice"));
                    }
                    let start = segments.len();
                    for sub in pattern.split('/') {
                        segments.push(segment(sub, part)?);
                    }
                    variables.push(Variable {
                        field_path: field_path.to_owned(),
                        start,
                        end: segments.len(),
                    });
                } else if part.contains(['{', '}']) {
                    return Err(format!("`{part}`: a variable must be a whole segment"));
                } else {
                    segments.push(segment(part, part)?);
                }
            }
        }
        if let Some(i) = segments.iter().position(|s| *s == Segment::DoubleStar)
            && i + 1 != segments.len()
        {
            return Err("`**` may only be the last segment".to_owned());
        }
        Ok(PathTemplate {
            text: text.to_owned(),
            segments,
            verb: verb.map(str::to_owned),
            variables,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The verb after `:`, if the template has one.
    pub fn verb(&self) -> Option<&str> {
        self.verb.as_deref()
    }

    /// The field paths of the variables, in template order: what the path binds.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.variables.iter().map(|v| v.field_path.as_str())
    }

    /// Matches `path` (no query), returning each variable's field path and decoded value in
    /// template order; `None` if it does not match.
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let mut rest = path.strip_prefix('/')?;
        if let Some(verb) = &self.verb {
            let last = rest.rfind('/').map_or(0, |i| i + 1);
            let colon = last + rest[last..].rfind(':')?;
            if rest[colon + 1..] != **verb {
                return None;
            }
            rest = &rest[..colon];
        }
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        let ends_open = self.segments.last() == Some(&Segment::DoubleStar);
        if !matches_parts(&self.segments, &parts) {
            return None;
        }
        let mut vars = Vec::with_capacity(self.variables.len());
        for var in &self.variables {
            let end = if ends_open && var.end == self.segments.len() {
                parts.len()
            } else {
                var.end
            };
            let raw = parts[var.start..end].join("/");
            let mode = if var.multi(&self.segments) {
                Mode::KeepReserved
            } else {
                Mode::Full
            };
            vars.push((var.field_path.clone(), percent::decode(&raw, mode).ok()?));
        }
        Some(vars)
    }

    /// Builds a path from the variables' values (`values(field_path)`), the reverse of
    /// [`PathTemplate::matches`]: single-segment values are fully percent-encoded, multi-segment
    /// ones keep their `/`. A missing value, or one that does not fit the variable's pattern
    /// (so the path would not route back to this template), is an error.
    pub fn expand(&self, values: impl Fn(&str) -> Option<String>) -> Result<String, String> {
        let mut out = String::new();
        let mut i = 0;
        while i < self.segments.len() {
            if let Some(var) = self.variables.iter().find(|v| v.start == i) {
                let Some(value) = values(&var.field_path) else {
                    return Err(format!("no value for `{}`", var.field_path));
                };
                let pattern = &self.segments[var.start..var.end];
                let fits = if var.multi(&self.segments) {
                    matches_parts(pattern, &value.split('/').collect::<Vec<_>>())
                } else {
                    matches_parts(pattern, &[value.as_str()])
                };
                if !fits {
                    return Err(format!(
                        "value `{value}` of `{}` does not match the template `{}`",
                        var.field_path, self.text
                    ));
                }
                out.push('/');
                out.push_str(&percent::encode(&value, var.multi(&self.segments)));
                i = var.end;
                continue;
            }
            match &self.segments[i] {
                Segment::Literal(literal) => {
                    out.push('/');
                    out.push_str(literal);
                }
                Segment::Star | Segment::DoubleStar => {
                    return Err(format!(
                        "the template `{}` has a wildcard outside a variable: no path can be \
                         built from it",
                        self.text
                    ));
                }
            }
            i += 1;
        }
        if out.is_empty() {
            out.push('/');
        }
        if let Some(verb) = &self.verb {
            out.push(':');
            out.push_str(verb);
        }
        Ok(out)
    }

    /// The key to order templates that match the same path: greater is more specific.
    pub fn specificity(&self) -> Specificity {
        let mut ranks: Vec<u8> = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(_) => 3,
                Segment::Star => 2,
                Segment::DoubleStar => 0,
            })
            .collect();
        ranks.push(1);
        Specificity(ranks, self.verb.is_some())
    }

    /// Whether `self` and `other` match exactly the same paths (variable names aside): two
    /// bindings with the same HTTP method and shape could never both be reached.
    pub fn same_shape(&self, other: &PathTemplate) -> bool {
        self.segments == other.segments && self.verb == other.verb
    }
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Whether raw path `parts` match `pattern` (which may end with `**`).
fn matches_parts(pattern: &[Segment], parts: &[&str]) -> bool {
    let open = pattern.last() == Some(&Segment::DoubleStar);
    let fixed = if open {
        pattern.len() - 1
    } else {
        pattern.len()
    };
    if parts.len() < fixed || (!open && parts.len() != fixed) {
        return false;
    }
    pattern[..fixed]
        .iter()
        .zip(parts)
        .all(|(segment, part)| match segment {
            Segment::Literal(literal) => literal == part,
            Segment::Star => !part.is_empty(),
            Segment::DoubleStar => true,
        })
}

/// Splits off the verb: the text after a `:` outside braces in the last segment. Also checks
/// that braces balance and do not nest.
fn split_verb(text: &str) -> Result<(&str, Option<&str>), String> {
    let mut depth = 0;
    let mut colon = None;
    for (i, c) in text.char_indices() {
        match c {
            '{' if depth > 0 => return Err("variables cannot be nested".to_owned()),
            '{' => depth += 1,
            '}' if depth == 0 => return Err("`}` without a matching `{`".to_owned()),
            '}' => depth -= 1,
            '/' if depth == 0 && colon.is_some() => {
                return Err("`:` may only start the verb, at the end".to_owned());
            }
            ':' if depth == 0 && colon.is_none() => colon = Some(i),
            _ => {}
        }
    }
    if depth > 0 {
        return Err("`{` without a matching `}`".to_owned());
    }
    match colon {
        None => Ok((text, None)),
        Some(i) => {
            let verb = &text[i + 1..];
            if verb.is_empty() || verb.contains([':', '*', '{', '}', '=']) {
                return Err(format!("invalid verb `{verb}`"));
            }
            Ok((&text[..i], Some(verb)))
        }
    }
}

/// `path` split on the `/`s outside braces.
fn split_top(path: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in path.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            '/' if depth == 0 => {
                parts.push(&path[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&path[start..]);
    parts
}

/// One segment of the pattern; `context` is the template segment it came from, for messages.
fn segment(text: &str, context: &str) -> Result<Segment, String> {
    match text {
        "" => Err(format!("empty segment in `{context}`")),
        "*" => Ok(Segment::Star),
        "**" => Ok(Segment::DoubleStar),
        _ if text.contains(['*', '=', ':']) => Err(format!(
            "`{text}`: a literal segment cannot contain `*`, `=` or `:`"
        )),
        _ => Ok(Segment::Literal(text.to_owned())),
    }
}

/// `a.b_c`: identifiers separated by dots.
fn check_field_path(path: &str) -> Result<(), String> {
    let ident = |s: &str| {
        let mut chars = s.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if path.split('.').all(ident) {
        Ok(())
    } else {
        Err(format!("`{path}` is not a field path (`name` or `a.b.c`)"))
    }
}

#[cfg(test)]
mod tests;
