//! Finds where a key path such as `routes[2].match.path_prefix` sits in the YAML text.
//!
//! yaml-rust2's event parser gives each scalar and collection a marker; this module
//! builds a small tree of positions from those events and walks it by key path.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, ScanError};

/// 1-based line and column (in characters).
pub(crate) type Pos = (usize, usize);

/// Nesting deeper than this is not indexed (positions then point at the deepest parent).
const MAX_DEPTH: usize = 256;

/// A YAML node and where it starts.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) pos: Pos,
    pub(crate) kind: Kind,
}

#[derive(Debug)]
pub(crate) enum Kind {
    Leaf,
    Seq(Vec<Node>),
    /// Entries in file order: the key (`None` when it is not a scalar), its position, value.
    Map(Vec<(Option<String>, Pos, Node)>),
}

/// Parses `text` into a position tree; `Ok(None)` when it holds no document at all.
pub(crate) fn tree(text: &str) -> Result<Option<Node>, ScanError> {
    let mut parser = Parser::new_from_str(text);
    loop {
        match parser.next_token()? {
            (Event::StreamEnd, _) => return Ok(None),
            (Event::StreamStart | Event::DocumentStart, _) => {}
            (event, mark) => return node(&mut parser, event, mark, 0).map(Some),
        }
    }
}

fn pos(mark: Marker) -> Pos {
    // yaml-rust2 markers: lines are 1-based, columns 0-based.
    (mark.line().max(1), mark.col() + 1)
}

fn node(
    parser: &mut Parser<std::str::Chars<'_>>,
    event: Event,
    mark: Marker,
    depth: usize,
) -> Result<Node, ScanError> {
    let mut node = Node {
        pos: pos(mark),
        kind: Kind::Leaf,
    };
    match event {
        Event::SequenceStart(..) => {
            let mut items = Vec::new();
            loop {
                let (event, mark) = parser.next_token()?;
                if event == Event::SequenceEnd {
                    break;
                }
                items.push(node_or_skip(parser, event, mark, depth + 1)?);
            }
            node.kind = Kind::Seq(items);
        }
        Event::MappingStart(..) => {
            let mut entries = Vec::new();
            loop {
                let (event, key_mark) = parser.next_token()?;
                if event == Event::MappingEnd {
                    break;
                }
                let key = match &event {
                    Event::Scalar(key, ..) => Some(key.clone()),
                    _ => None,
                };
                node_or_skip(parser, event, key_mark, depth + 1)?;
                let (event, mark) = parser.next_token()?;
                let value = node_or_skip(parser, event, mark, depth + 1)?;
                entries.push((key, pos(key_mark), value));
            }
            // A block mapping's own marker points past its first key: use that key.
            if let Some((_, first, _)) = entries.first() {
                node.pos = *first;
            }
            node.kind = Kind::Map(entries);
        }
        _ => {}
    }
    Ok(node)
}

/// Like `node`, but past `MAX_DEPTH` consumes the subtree and keeps only its position.
fn node_or_skip(
    parser: &mut Parser<std::str::Chars<'_>>,
    event: Event,
    mark: Marker,
    depth: usize,
) -> Result<Node, ScanError> {
    if depth < MAX_DEPTH {
        return node(parser, event, mark, depth);
    }
    let mut open = usize::from(matches!(
        event,
        Event::SequenceStart(..) | Event::MappingStart(..)
    ));
    while open > 0 {
        match parser.next_token()?.0 {
            Event::SequenceStart(..) | Event::MappingStart(..) => open += 1,
            Event::SequenceEnd | Event::MappingEnd => open -= 1,
            _ => {}
        }
    }
    Ok(Node {
        pos: pos(mark),
        kind: Kind::Leaf,
    })
}

/// The position of `key_path` below `root`, or of its nearest existing parent.
///
/// Map keys may themselves contain dots (`services.api.v1.endpoints`): the longest key
/// that matches the rest of the path wins.
pub(crate) fn locate(root: &Node, key_path: &str) -> Pos {
    let (mut node, mut at, mut rest) = (root, root.pos, key_path.trim_start_matches('.'));
    while !rest.is_empty() {
        let next = match &node.kind {
            Kind::Seq(items) => rest
                .strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .and_then(|(index, r)| Some((items.get(index.parse::<usize>().ok()?)?, r))),
            Kind::Map(entries) => entries
                .iter()
                .filter_map(|(key, key_pos, value)| {
                    let r = rest.strip_prefix(key.as_deref()?)?;
                    let ends = r.is_empty() || r.starts_with(['.', '[']);
                    ends.then_some((key.as_deref()?.len(), key_pos, value, r))
                })
                .max_by_key(|(len, ..)| *len)
                .map(|(_, key_pos, value, r)| {
                    at = *key_pos;
                    (value, r)
                }),
            Kind::Leaf => None,
        };
        let Some((child, r)) = next else { break };
        if matches!(node.kind, Kind::Seq(_)) {
            at = child.pos;
        }
        (node, rest) = (child, r.strip_prefix('.').unwrap_or(r));
    }
    at
}

/// The first key repeated within one mapping: (key path, position, line of the first one).
pub(crate) fn duplicate(node: &Node, path: &str) -> Option<(String, Pos, usize)> {
    match &node.kind {
        Kind::Leaf => None,
        Kind::Seq(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| duplicate(item, &format!("{path}[{i}]"))),
        Kind::Map(entries) => {
            let mut seen = HashMap::new();
            for (key, key_pos, value) in entries {
                let Some(key) = key.as_deref() else { continue };
                let child = if path.is_empty() {
                    key.to_owned()
                } else {
                    format!("{path}.{key}")
                };
                if let Some(first_line) = seen.insert(key, key_pos.0) {
                    return Some((child, *key_pos, first_line));
                }
                if let Some(found) = duplicate(value, &child) {
                    return Some(found);
                }
            }
            None
        }
    }
}
