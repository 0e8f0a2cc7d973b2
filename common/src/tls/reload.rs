//! Certificate rotation: values loaded from files ([`Watched`]) that one background thread
//! re-reads when the files change (modification time, length or inode, polled).
//!
//! A changed file is loaded beside the current value and swapped in atomically, so new
//! handshakes use it and handshakes in progress keep what they started with. A file that fails
//! to load (missing, half-written, key not matching the certificate) is logged once per change
//! and the previous value keeps serving. Watching stops by itself when the value is dropped
//! (a reload built a new plan): the thread holds only weak references.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;

use super::TlsError;

/// What the files looked like at the last load attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &PathBuf) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode,
    })
}

type Loader<T> = Box<dyn Fn() -> Result<T, TlsError> + Send + Sync>;

/// A value loaded from files and reloaded when they change.
pub struct Watched<T> {
    /// What this is, for logs (e.g. `certificate`, `client CA bundle`).
    what: &'static str,
    paths: Vec<PathBuf>,
    load: Loader<T>,
    current: ArcSwap<T>,
    seen: Mutex<Vec<Option<Stamp>>>,
}

impl<T> fmt::Debug for Watched<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watched")
            .field("what", &self.what)
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> Watched<T> {
    /// Loads the value now (an error is returned: the caller refuses its config) and, with
    /// `every`, checks `paths` for changes at that interval.
    pub fn load(
        what: &'static str,
        paths: Vec<PathBuf>,
        every: Option<Duration>,
        load: impl Fn() -> Result<T, TlsError> + Send + Sync + 'static,
    ) -> Result<Arc<Self>, TlsError> {
        // Stamps first: a change during the load is seen at the next check.
        let seen = paths.iter().map(stamp).collect();
        let value = load()?;
        let watched = Arc::new(Watched {
            what,
            paths,
            load: Box::new(load),
            current: ArcSwap::from_pointee(value),
            seen: Mutex::new(seen),
        });
        if let Some(every) = every {
            let target: Arc<dyn Check> = watched.clone();
            register(Arc::downgrade(&target), every);
        }
        Ok(watched)
    }

    /// A value that never changes (built in memory, e.g. in tests).
    pub fn fixed(what: &'static str, value: T) -> Arc<Self> {
        Arc::new(Watched {
            what,
            paths: Vec::new(),
            load: Box::new(|| Err(TlsError::setting("", "fixed value"))),
            current: ArcSwap::from_pointee(value),
            seen: Mutex::new(Vec::new()),
        })
    }

    /// The current value (cheap: no lock, no allocation).
    pub fn get(&self) -> arc_swap::Guard<Arc<T>> {
        self.current.load()
    }

    /// Re-reads the files if they changed since the last attempt; returns whether a new value
    /// was swapped in. The watcher thread calls this; tests may too.
    pub fn check_now(&self) -> bool {
        if self.paths.is_empty() {
            return false;
        }
        let now: Vec<Option<Stamp>> = self.paths.iter().map(stamp).collect();
        {
            let Ok(mut seen) = self.seen.lock() else {
                return false;
            };
            if *seen == now {
                return false;
            }
            // Remember this state even if loading fails: one log line per change, and a
            // writer that finishes later changes the stamp again.
            *seen = now;
        }
        match (self.load)() {
            Ok(value) => {
                self.current.store(Arc::new(value));
                tracing::info!(what = self.what, files = ?self.paths, "TLS files changed; reloaded for new handshakes");
                true
            }
            Err(e) => {
                tracing::warn!(
                    what = self.what,
                    files = ?self.paths,
                    error = %crate::error::chain(&e),
                    "TLS files changed but cannot be loaded; the previous one keeps serving"
                );
                false
            }
        }
    }
}

/// Something the watcher polls.
trait Check: Send + Sync {
    fn check(&self);
}

impl<T: Send + Sync + 'static> Check for Watched<T> {
    fn check(&self) {
        self.check_now();
    }
}

struct Entry {
    target: Weak<dyn Check>,
    every: Duration,
    due: Instant,
}

#[derive(Default)]
struct Registry {
    entries: Mutex<Vec<Entry>>,
    wake: Condvar,
}

/// Longest sleep of the watcher thread, so a new registration is polled soon enough.
const MAX_SLEEP: Duration = Duration::from_secs(1);

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    static THREAD: OnceLock<()> = OnceLock::new();
    let reg = REGISTRY.get_or_init(Registry::default);
    THREAD.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("gatehouse-tls-watch".into())
            .spawn(|| watch_loop(reg));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the TLS file watcher; certificates will not rotate");
        }
    });
    reg
}

fn register(target: Weak<dyn Check>, every: Duration) {
    let reg = registry();
    let every = every.max(Duration::from_millis(10));
    if let Ok(mut entries) = reg.entries.lock() {
        entries.push(Entry {
            target,
            every,
            due: Instant::now() + every,
        });
    }
    reg.wake.notify_one();
}

/// Polls due entries, dropping those whose value is gone. File reads happen outside the lock.
fn watch_loop(reg: &'static Registry) {
    let Ok(mut entries) = reg.entries.lock() else {
        return;
    };
    loop {
        let now = Instant::now();
        let mut due = Vec::new();
        entries.retain_mut(|e| {
            let Some(target) = e.target.upgrade() else {
                return false;
            };
            if e.due <= now {
                e.due = now + e.every;
                due.push(target);
            }
            true
        });
        let next = entries
            .iter()
            .map(|e| e.due.saturating_duration_since(now))
            .min()
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        drop(entries);
        for target in due {
            target.check();
        }
        entries = match reg.entries.lock() {
            Ok(g) => g,
            Err(_) => return,
        };
        entries = match reg.wake.wait_timeout(entries, next) {
            Ok((g, _)) => g,
            Err(_) => return,
        };
    }
}

#[cfg(test)]
mod tests;
