//! Templates of a part's path and query values: the route's `{captures}` and built-in values,
//! and `{part:/pointer}`, a value from an earlier part's answer (which makes this part wait
//! for that one).

use gatehouse_common::routing::{ValueTemplate, Vars};
use gatehouse_common::template::{Token, tokens};
use serde_json::Value;

use crate::fetch::encode_segment;

/// A parsed template; `{{` and `}}` stand for literal braces.
#[derive(Debug)]
pub(crate) struct PartTemplate {
    pieces: Vec<Piece>,
}

#[derive(Debug)]
enum Piece {
    Literal(String),
    /// A capture or built-in, as the route's own templates know them.
    Var(ValueTemplate),
    /// A scalar of an earlier part's JSON answer.
    Ref {
        part: usize,
        pointer: String,
    },
}

/// Why a template could not be filled for one request.
#[derive(Debug)]
pub(crate) struct Missing {
    pub part: usize,
    pub pointer: String,
}

impl PartTemplate {
    /// Parses `text`; `captures` are the route's capture names, `earlier` the names of the parts
    /// listed before this one (the only ones it may take values from).
    pub fn parse(text: &str, captures: &[String], earlier: &[&str]) -> Result<Self, String> {
        let mut pieces = Vec::new();
        for token in tokens(text)? {
            pieces.push(match token {
                Token::Literal(l) => Piece::Literal(l),
                Token::Placeholder(inner) => placeholder(&inner, captures, earlier)?,
            });
        }
        Ok(PartTemplate { pieces })
    }

    /// The earlier parts whose answers this template needs.
    pub fn deps(&self) -> impl Iterator<Item = usize> + '_ {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Ref { part, .. } => Some(*part),
            _ => None,
        })
    }

    /// Fills the template. Every value put in is percent-encoded as one path segment or query
    /// value, so a capture of `../admin` or a catalog value of `a&b=c` cannot change which
    /// resource the service is asked for. `answers[i]` is part `i`'s JSON, once it has one.
    pub fn render(&self, vars: &Vars<'_>, answers: &[Option<Value>]) -> Result<String, Missing> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(l) => out.push_str(l),
                Piece::Var(t) => out.push_str(&encode_segment(&t.render(vars))),
                Piece::Ref { part, pointer } => {
                    let missing = || Missing {
                        part: *part,
                        pointer: pointer.clone(),
                    };
                    let value = answers
                        .get(*part)
                        .and_then(Option::as_ref)
                        .and_then(|a| a.pointer(pointer))
                        .ok_or_else(missing)?;
                    match value {
                        Value::String(s) => out.push_str(&encode_segment(s)),
                        Value::Number(n) => out.push_str(&n.to_string()),
                        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                        _ => return Err(missing()),
                    }
                }
            }
        }
        Ok(out)
    }
}

fn placeholder(inner: &str, captures: &[String], earlier: &[&str]) -> Result<Piece, String> {
    let Some((name, pointer)) = inner.split_once(':') else {
        return ValueTemplate::parse(&format!("{{{inner}}}"), captures).map(Piece::Var);
    };
    let Some(part) = earlier.iter().position(|p| *p == name) else {
        let known = match earlier.is_empty() {
            true => "none: it is the first part".to_owned(),
            false => earlier
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        return Err(format!(
            "`{{{inner}}}` names no earlier part (a part can use the answers of the parts \
             listed before it: {known})"
        ));
    };
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(format!(
            "`{{{inner}}}`: `{pointer}` is not a JSON pointer (write `{{{name}:/{pointer}}}`)"
        ));
    }
    Ok(Piece::Ref {
        part,
        pointer: pointer.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars<'a>(captures: &'a [Option<String>]) -> Vars<'a> {
        Vars {
            captures,
            request_id: "req-1",
            subject: None,
            route: "r",
            host: None,
            path: "/p",
        }
    }

    #[test]
    fn fills_captures_and_earlier_answers() {
        let caps = ["id".to_owned()];
        let t = PartTemplate::parse(
            "/products?category={product:/category}&exclude={id}&n={product:/n}",
            &caps,
            &["product"],
        )
        .expect("parse");
        assert_eq!(t.deps().collect::<Vec<_>>(), vec![0, 0]);
        let answers = [Some(json!({"category": "a&b=c d", "n": 3}))];
        let values = [Some("10/01".to_owned())];
        let out = t.render(&vars(&values), &answers).expect("render");
        assert_eq!(out, "/products?category=a%26b%3Dc%20d&exclude=10%2F01&n=3");
    }

    #[test]
    fn a_missing_or_structured_value_is_missing() {
        let t = PartTemplate::parse("/x/{p:/a}", &[], &["p"]).expect("parse");
        for answer in [
            None,
            Some(json!({})),
            Some(json!({"a": null})),
            Some(json!({"a": [1]})),
        ] {
            let err = t
                .render(&vars(&[]), std::slice::from_ref(&answer))
                .expect_err("missing");
            assert_eq!((err.part, err.pointer.as_str()), (0, "/a"), "{answer:?}");
        }
    }

    #[test]
    fn refusals() {
        let cases = [
            ("/x/{later:/a}", "names no earlier part"),
            ("/x/{p:a}", "is not a JSON pointer"),
            ("/x/{nope}", "nope"),
            ("/x/{p:/a", "is not closed"),
            ("/x/}", "lone"),
        ];
        for (text, want) in cases {
            let err = PartTemplate::parse(text, &[], &["p"]).expect_err(text);
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
