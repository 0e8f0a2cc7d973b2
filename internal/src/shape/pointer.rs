//! JSON pointers (RFC 6901) parsed once at build, and the three things a shape does with one:
//! take a value out, remove it, put a value in (building the path).

use serde_json::{Map, Value};

/// A parsed JSON pointer: its reference tokens, unescaped, with array indices decided once.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pointer {
    tokens: Box<[Token]>,
}

/// One reference token.
#[derive(Debug, Clone, PartialEq)]
struct Token {
    /// The member name (`~0` and `~1` already unescaped).
    key: String,
    /// The array index this token also names: `0` or digits without a leading zero (RFC 6901
    /// §4); `-` and `01` are not indices.
    index: Option<usize>,
}

impl Pointer {
    /// Parses `text`; the error says what is wrong in words a config author reads.
    pub(crate) fn parse(text: &str) -> Result<Pointer, &'static str> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err("a JSON pointer must start with `/`");
        };
        let tokens = rest
            .split('/')
            .map(Token::parse)
            .collect::<Result<_, _>>()?;
        Ok(Pointer { tokens })
    }

    /// Whether `self` is `other` or a place inside it.
    pub(crate) fn starts_with(&self, other: &Pointer) -> bool {
        self.tokens.len() >= other.tokens.len()
            && self
                .tokens
                .iter()
                .zip(other.tokens.iter())
                .all(|(a, b)| a.key == b.key)
    }

    /// Takes the value out of `root` (an array element is removed, the later ones shift down,
    /// as in RFC 6902's `move`), or `None` when there is none.
    pub(crate) fn take(&self, root: &mut Value) -> Option<Value> {
        let (last, parents) = self.tokens.split_last()?;
        match get_mut(root, parents)? {
            Value::Object(map) => map.remove(&last.key),
            Value::Array(items) => {
                let i = last.index.filter(|&i| i < items.len())?;
                Some(items.remove(i))
            }
            _ => None,
        }
    }

    /// Puts `value` at this place in `root`, building the path: a step into an array uses the
    /// element at that index when there is one; any other step that cannot be taken (a missing
    /// member, a scalar or `null`, an array without that index) makes an object there. The
    /// pointer's path wins over what was in its way.
    pub(crate) fn put(&self, root: &mut Value, value: Value) {
        let Some((last, parents)) = self.tokens.split_last() else {
            *root = value;
            return;
        };
        let mut at = root;
        for token in parents {
            at = match step(at, token) {
                Some(next) => next,
                None => return,
            };
        }
        make_room(at, last);
        match at {
            Value::Array(items) => {
                if let Some(slot) = last.index.and_then(|i| items.get_mut(i)) {
                    *slot = value;
                }
            }
            Value::Object(map) => {
                map.insert(last.key.clone(), value);
            }
            _ => {}
        }
    }
}

impl Token {
    fn parse(raw: &str) -> Result<Token, &'static str> {
        let mut key = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c != '~' {
                key.push(c);
                continue;
            }
            match chars.next() {
                Some('0') => key.push('~'),
                Some('1') => key.push('/'),
                _ => return Err("in a JSON pointer `~` must be followed by `0` or `1` (RFC 6901)"),
            }
        }
        let digits = !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit());
        let index = if digits && (key == "0" || !key.starts_with('0')) {
            key.parse().ok()
        } else {
            None
        };
        Ok(Token { key, index })
    }
}

/// The value at `tokens` under `at`, if every step exists.
fn get_mut<'a>(mut at: &'a mut Value, tokens: &[Token]) -> Option<&'a mut Value> {
    for token in tokens {
        at = match at {
            Value::Object(map) => map.get_mut(&token.key)?,
            Value::Array(items) => items.get_mut(token.index?)?,
            _ => return None,
        };
    }
    Some(at)
}

/// Makes `at` a value that `token` can step into: an array keeps when the token indexes an
/// element of it, an object always keeps, anything else becomes an empty object.
fn make_room(at: &mut Value, token: &Token) {
    let fits = match at {
        Value::Object(_) => true,
        Value::Array(items) => token.index.is_some_and(|i| i < items.len()),
        _ => false,
    };
    if !fits {
        *at = Value::Object(Map::new());
    }
}

/// One step of [`Pointer::put`]'s path, made if missing (`None` only if `make_room` failed,
/// which it does not).
fn step<'a>(at: &'a mut Value, token: &Token) -> Option<&'a mut Value> {
    make_room(at, token);
    match at {
        Value::Array(items) => items.get_mut(token.index?),
        Value::Object(map) => Some(map.entry(token.key.clone()).or_insert(Value::Null)),
        _ => None,
    }
}
