//! The compiled route table: routes ranked by specificity, indexed by host and by literal
//! path segments, so a lookup costs about the number of path segments — not the number of
//! routes — plus a check of the few candidates whose path matched.
//!
//! Index: per host (exact names, `*.suffix` by the suffix, and "any host") a trie over path
//! segments. Its nodes hold the prefix routes ending there (every node on the way down
//! matches) and the template routes ending there (a capture child matches any non-empty
//! segment); exact paths sit in a hash map; regex routes are a list tried last. Every
//! candidate list is sorted by rank, and a lookup keeps the best rank seen, so it stops at
//! the first candidate of each list whose conditions hold or whose rank cannot win.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::matcher::{HostMatch, Lazy, Matcher, RouteRequest};
use super::path::{PathPattern, Segment};

/// FNV-1a for the index's short string keys (std's SipHash costs more than the lookup).
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FnvMap<V> = HashMap<Box<str>, V, BuildHasherDefault<Fnv>>;

/// A rank: a route's position in specificity order (0 is the most specific).
type Rank = u32;

#[derive(Debug, Default)]
struct Node {
    children: FnvMap<Node>,
    capture: Option<Box<Node>>,
    prefix: Vec<Rank>,
    template: Vec<Rank>,
    /// Some template ends at or below this node (prunes the template search).
    templates_below: bool,
}

/// The path index of one host key.
#[derive(Debug, Default)]
struct PathIndex {
    exact: FnvMap<Vec<Rank>>,
    root: Node,
    regex: Vec<Rank>,
}

impl PathIndex {
    fn insert(&mut self, rank: Rank, path: &PathPattern) {
        match path {
            PathPattern::Exact(p) => self.exact.entry(p.as_str().into()).or_default().push(rank),
            PathPattern::Regex(_) => self.regex.push(rank),
            PathPattern::Prefix(p) => {
                let mut node = &mut self.root;
                if !p.is_empty() {
                    for seg in p[1..].split('/') {
                        node = node.children.entry(seg.into()).or_default();
                    }
                }
                node.prefix.push(rank);
            }
            PathPattern::Template(t) => {
                let mut node = &mut self.root;
                node.templates_below = true;
                for seg in &t.segments {
                    node = match seg {
                        Segment::Literal(l) => node.children.entry(l.as_str().into()).or_default(),
                        Segment::Capture(_) => node.capture.get_or_insert_with(Box::default),
                    };
                    node.templates_below = true;
                }
                node.template.push(rank);
            }
        }
    }

    /// Visits every candidate list whose path matches `path`.
    fn candidates<'s>(&'s self, path: &str, visit: &mut impl FnMut(&'s [Rank])) {
        if let Some(list) = self.exact.get(path) {
            visit(list);
        }
        let Some(rest) = path.strip_prefix('/') else {
            // Not origin-form (`*`, authority-form): only catch-all prefixes and regexes.
            visit(&self.root.prefix);
            visit(&self.regex);
            return;
        };
        // Prefixes: every node on the literal walk down.
        let mut node = &self.root;
        visit(&node.prefix);
        let mut rest_opt = Some(rest);
        while let Some(r) = rest_opt {
            let (seg, next) = split(r);
            match node.children.get(seg) {
                Some(n) => {
                    node = n;
                    visit(&node.prefix);
                }
                None => break,
            }
            rest_opt = next;
        }
        if self.root.templates_below {
            templates(&self.root, Some(rest), visit);
        }
        visit(&self.regex);
    }
}

fn split(r: &str) -> (&str, Option<&str>) {
    match r.find('/') {
        Some(i) => (&r[..i], Some(&r[i + 1..])),
        None => (r, None),
    }
}

fn templates<'s>(node: &'s Node, rest: Option<&str>, visit: &mut impl FnMut(&'s [Rank])) {
    let Some(r) = rest else {
        visit(&node.template);
        return;
    };
    let (seg, next) = split(r);
    if let Some(n) = node.children.get(seg)
        && n.templates_below
    {
        templates(n, next, visit);
    }
    if !seg.is_empty()
        && let Some(n) = &node.capture
    {
        templates(n, next, visit);
    }
}

/// The compiled table. Lookups return the route's index in the order given to [`Table::new`].
#[derive(Debug, Default)]
pub struct Table {
    /// Matchers in rank order.
    matchers: Vec<Matcher>,
    /// Rank → index given to `new`.
    index: Vec<usize>,
    /// Index given to `new` → rank.
    rank_of: Vec<Rank>,
    any_host: PathIndex,
    exact_host: FnvMap<PathIndex>,
    /// Keyed by `.suffix`.
    suffix_host: FnvMap<PathIndex>,
}

impl Table {
    /// Ranks `matchers` (most specific first, ties by their order here) and indexes them.
    pub fn new(matchers: Vec<Matcher>) -> Table {
        let mut order: Vec<(usize, Matcher)> = matchers.into_iter().enumerate().collect();
        order.sort_by_cached_key(|(i, m)| m.rank_key(*i));
        let mut table = Table::default();
        for (rank, (i, m)) in order.into_iter().enumerate() {
            let rank = rank as Rank;
            let idx = match &m.host {
                HostMatch::Any => &mut table.any_host,
                HostMatch::Exact(h) => table.exact_host.entry(h.as_str().into()).or_default(),
                HostMatch::Suffix(s) => table.suffix_host.entry(s.as_str().into()).or_default(),
            };
            idx.insert(rank, &m.path);
            table.matchers.push(m);
            table.index.push(i);
        }
        table.rank_of = vec![0; table.index.len()];
        for (rank, &i) in table.index.iter().enumerate() {
            table.rank_of[i] = rank as Rank;
        }
        table
    }

    pub fn len(&self) -> usize {
        self.matchers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.matchers.is_empty()
    }

    /// Indices (as given to [`Table::new`]) in rank order: most specific first.
    pub fn ranked(&self) -> &[usize] {
        &self.index
    }

    /// The index of the most specific route matching `req`.
    pub fn find(&self, req: &RouteRequest<'_>) -> Option<usize> {
        let lazy = Lazy::default();
        let mut best: Option<Rank> = None;
        let mut visit = |list: &[Rank]| {
            for &rank in list {
                if best.is_some_and(|b| rank >= b) {
                    return;
                }
                if self.matchers[rank as usize].conditions(req, &lazy) {
                    best = Some(rank);
                    return;
                }
            }
        };
        if let Some(host) = req.host {
            if !self.exact_host.is_empty()
                && let Some(idx) = self.exact_host.get(host)
            {
                idx.candidates(req.path, &mut visit);
            }
            if !self.suffix_host.is_empty() {
                // `a.b.example.com` looks up `.b.example.com`, `.example.com`, `.com`.
                for (i, _) in host.match_indices('.').filter(|(i, _)| *i > 0) {
                    if let Some(idx) = self.suffix_host.get(&host[i..]) {
                        idx.candidates(req.path, &mut visit);
                    }
                }
            }
        }
        self.any_host.candidates(req.path, &mut visit);
        best.map(|r| self.index[r as usize])
    }

    /// The matcher of the route with index `i` (as given to [`Table::new`]).
    pub fn matcher(&self, i: usize) -> Option<&Matcher> {
        self.matchers.get(*self.rank_of.get(i)? as usize)
    }
}
