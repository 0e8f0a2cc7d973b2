//! Value templates of rewrites, redirects, header transforms and route handlers: literal text
//! with `{name}` placeholders for the route's captures and a few built-in values.

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// Index into the route's captures.
    Capture(usize),
    /// `{request_id}`.
    RequestId,
    /// `{subject}`: the caller's `x-gatehouse-subject` (empty when absent).
    Subject,
    /// `{route}`: the route name.
    Route,
    /// `{host}`: the requested host, without port.
    Host,
    /// `{path}`: the request path as received.
    Path,
}

/// A parsed template; `{{` and `}}` stand for literal braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueTemplate {
    parts: Vec<Part>,
}

/// A piece of template text: literal text (braces unescaped) or the inside of a `{...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Literal(String),
    Placeholder(String),
}

/// Splits template text into literals and placeholders; `{{` and `}}` are literal braces. The
/// one tokenizer of every template syntax (a handler's own templates add placeholder kinds).
pub fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                lit.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => return Err(format!("`{{{name}` is not closed with `}}`")),
                    }
                }
                if !lit.is_empty() {
                    out.push(Token::Literal(std::mem::take(&mut lit)));
                }
                out.push(Token::Placeholder(name));
            }
            '}' => return Err("a lone `}`: write `}}` for a literal brace".into()),
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        out.push(Token::Literal(lit));
    }
    Ok(out)
}

/// The values a template can use for one request.
#[derive(Debug, Clone, Copy)]
pub struct Vars<'a> {
    /// In the route's capture order (see [`crate::routing::PathPattern::capture_names`]).
    pub captures: &'a [Option<String>],
    pub request_id: &'a str,
    pub subject: Option<&'a str>,
    pub route: &'a str,
    pub host: Option<&'a str>,
    pub path: &'a str,
}

impl ValueTemplate {
    /// Parses `text`; `captures` are the names the route's path pattern defines.
    pub fn parse(text: &str, captures: &[String]) -> Result<Self, String> {
        let mut parts = Vec::new();
        for token in tokens(text)? {
            parts.push(match token {
                Token::Literal(l) => Part::Literal(l),
                Token::Placeholder(name) => match name.as_str() {
                    "request_id" => Part::RequestId,
                    "subject" => Part::Subject,
                    "route" => Part::Route,
                    "host" => Part::Host,
                    "path" => Part::Path,
                    _ => match captures.iter().position(|c| *c == name) {
                        Some(i) => Part::Capture(i),
                        None => return Err(unknown(&name, captures)),
                    },
                },
            });
        }
        Ok(ValueTemplate { parts })
    }

    /// The text when the template has no placeholder.
    pub fn literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Literal(l)] => Some(l),
            _ => None,
        }
    }

    /// Whether the template uses `{subject}`.
    pub fn uses_subject(&self) -> bool {
        self.parts.contains(&Part::Subject)
    }

    /// Fills the placeholders; a capture that did not participate is empty.
    pub fn render(&self, vars: &Vars<'_>) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Literal(l) => out.push_str(l),
                Part::Capture(i) => {
                    if let Some(Some(v)) = vars.captures.get(*i) {
                        out.push_str(v);
                    }
                }
                Part::RequestId => out.push_str(vars.request_id),
                Part::Subject => out.push_str(vars.subject.unwrap_or_default()),
                Part::Route => out.push_str(vars.route),
                Part::Host => out.push_str(vars.host.unwrap_or_default()),
                Part::Path => out.push_str(vars.path),
            }
        }
        out
    }
}

fn unknown(name: &str, captures: &[String]) -> String {
    let mut known: Vec<String> = captures.iter().map(|c| format!("`{{{c}}}`")).collect();
    known.extend(
        ["request_id", "subject", "route", "host", "path"]
            .iter()
            .map(|b| format!("`{{{b}}}`")),
    );
    let hint = crate::config::did_you_mean(
        name,
        captures.iter().map(String::as_str).chain([
            "request_id",
            "subject",
            "route",
            "host",
            "path",
        ]),
    );
    match hint {
        Some(h) => format!("unknown value `{{{name}}}` (did you mean `{{{h}}}`?)"),
        None => format!("unknown value `{{{name}}}`; known: {}", known.join(", ")),
    }
}
