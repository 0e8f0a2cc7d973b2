//! Path conditions of a route: exact, segment prefix, template with captures, regex.

use regex::Regex;

/// Names a template may not use for a capture: they are the built-in values of
/// [`crate::routing::template`].
pub const RESERVED: [&str; 5] = ["request_id", "subject", "route", "host", "path"];

/// How a route matches the request path (query excluded, case-sensitive, not decoded).
#[derive(Debug, Clone)]
pub enum PathPattern {
    /// The whole path.
    Exact(String),
    /// Leading whole segments: the normalised prefix without a trailing `/` (`""` for `/`).
    Prefix(String),
    Template(Template),
    /// Anchored at both ends; named groups are captures.
    Regex(Regex),
}

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    /// The capture's index in [`PathPattern::capture_names`].
    Capture(usize),
}

/// `/api/users/{id}`: literal segments and whole-segment captures.
#[derive(Debug, Clone)]
pub struct Template {
    pub segments: Vec<Segment>,
    names: Vec<String>,
}

impl PathPattern {
    /// Exact path; must start with `/`.
    pub fn exact(path: &str) -> Result<Self, String> {
        must_start_with_slash(path)?;
        Ok(PathPattern::Exact(path.to_owned()))
    }

    /// Segment prefix; must start with `/`. A trailing `/` is ignored (`/api/` is `/api`).
    pub fn prefix(prefix: &str) -> Result<Self, String> {
        must_start_with_slash(prefix)?;
        Ok(PathPattern::Prefix(prefix.trim_end_matches('/').to_owned()))
    }

    /// Parses a template: `{name}` captures a whole non-empty segment; names are letters,
    /// digits and `_`, unique, and not one of [`RESERVED`].
    pub fn template(t: &str) -> Result<Self, String> {
        must_start_with_slash(t)?;
        let mut segments = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for seg in t[1..].split('/') {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                check_capture_name(name)?;
                if names.iter().any(|n| n == name) {
                    return Err(format!("capture `{{{name}}}` appears twice"));
                }
                segments.push(Segment::Capture(names.len()));
                names.push(name.to_owned());
            } else if seg.contains(['{', '}']) {
                return Err(format!(
                    "segment `{seg}`: a capture must be a whole segment, like `/users/{{id}}`"
                ));
            } else {
                segments.push(Segment::Literal(seg.to_owned()));
            }
        }
        Ok(PathPattern::Template(Template { segments, names }))
    }

    /// Compiles a regex that must match the whole path.
    pub fn regex(re: &str) -> Result<Self, String> {
        let compiled = Regex::new(&format!("^(?:{re})$")).map_err(|e| regex_error(&e))?;
        for name in compiled.capture_names().flatten() {
            check_capture_name(name)?;
        }
        Ok(PathPattern::Regex(compiled))
    }

    /// The names of the values this pattern captures, in index order.
    pub fn capture_names(&self) -> Vec<String> {
        match self {
            PathPattern::Template(t) => t.names.clone(),
            PathPattern::Regex(re) => re.capture_names().flatten().map(str::to_owned).collect(),
            PathPattern::Exact(_) | PathPattern::Prefix(_) => Vec::new(),
        }
    }

    /// Whether `path` matches (used by the regex candidates and by tests; the table finds
    /// the other kinds through its index).
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathPattern::Exact(p) => p == path,
            PathPattern::Prefix(p) => {
                path.starts_with(p.as_str())
                    && matches!(path.as_bytes().get(p.len()), None | Some(b'/'))
            }
            PathPattern::Template(t) => t.captures(path).is_some(),
            PathPattern::Regex(re) => re.is_match(path),
        }
    }

    /// The captured values for a path this pattern matches, in [`Self::capture_names`] order.
    pub fn captures(&self, path: &str) -> Vec<Option<String>> {
        match self {
            PathPattern::Template(t) if !t.names.is_empty() => t
                .captures(path)
                .unwrap_or_else(|| vec![None; t.names.len()]),
            PathPattern::Regex(re) if re.captures_len() > 1 => {
                let names: Vec<&str> = re.capture_names().flatten().collect();
                match re.captures(path) {
                    Some(c) => names
                        .iter()
                        .map(|n| c.name(n).map(|m| m.as_str().to_owned()))
                        .collect(),
                    None => vec![None; names.len()],
                }
            }
            _ => Vec::new(),
        }
    }
}

impl Template {
    /// The captures when `path` matches this template.
    fn captures(&self, path: &str) -> Option<Vec<Option<String>>> {
        let rest = path.strip_prefix('/')?;
        let mut out = vec![None; self.names.len()];
        let mut segs = rest.split('/');
        for want in &self.segments {
            let got = segs.next()?;
            match want {
                Segment::Literal(l) if l == got => {}
                Segment::Literal(_) => return None,
                Segment::Capture(_) if got.is_empty() => return None,
                Segment::Capture(i) => out[*i] = Some(got.to_owned()),
            }
        }
        segs.next().is_none().then_some(out)
    }

    /// Number of literal segments and a mask with a bit per segment, first segment highest,
    /// set for literals: more literals first, then literals further left.
    pub fn weight(&self) -> (u32, u64) {
        let mut mask = 0u64;
        let mut count = 0u32;
        for (i, s) in self.segments.iter().enumerate().take(64) {
            if let Segment::Literal(_) = s {
                count += 1;
                mask |= 1 << (63 - i);
            }
        }
        (count, mask)
    }
}

fn must_start_with_slash(p: &str) -> Result<(), String> {
    if p.starts_with('/') {
        Ok(())
    } else {
        Err("must start with `/`".into())
    }
}

fn check_capture_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "capture name `{name}`: use letters, digits and `_`, not starting with a digit"
        ));
    }
    if RESERVED.contains(&name) {
        return Err(format!(
            "capture name `{name}` is reserved for the built-in value; choose another"
        ));
    }
    Ok(())
}

/// A regex error on one line (the crate's own message spans several).
pub fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    format!(
        "invalid regex: {}",
        last.trim().trim_start_matches("error: ")
    )
}
