//! Process lifecycle: SIGTERM/SIGINT drain and exit, SIGHUP and config-file changes reload.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::runtime::Running;

/// How often the config file is checked for changes.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// Handles signals for `running` until it shuts down: SIGTERM and SIGINT start the drain,
/// SIGHUP reloads the config. Errors installing handlers are returned before anything runs.
pub fn handle_signals(running: Running) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => {
                    tracing::info!("SIGTERM: draining");
                    stop(&running, &mut term, &mut int).await;
                    break;
                }
                _ = int.recv() => {
                    tracing::info!("SIGINT: draining");
                    stop(&running, &mut term, &mut int).await;
                    break;
                }
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading config");
                    let _ = running.reload().await;
                }
            }
        }
    });
    Ok(())
}

/// The drain, after `drain_delay` of answering 503 on `/readyz` while still accepting, so that a
/// balancer polling readiness stops sending connections before the listeners close. Another
/// SIGTERM or SIGINT cuts the delay short.
async fn stop(running: &Running, term: &mut Signal, int: &mut Signal) {
    let delay = running.drain_delay();
    if !delay.is_zero() {
        running.set_not_ready();
        tracing::info!(delay = ?delay, "not ready; accepting for drain_delay, then draining");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = term.recv() => tracing::info!("SIGTERM again: draining now"),
            _ = int.recv() => tracing::info!("SIGINT again: draining now"),
        }
    }
    running.shutdown();
}

/// File fingerprint: modification time and length. Editors that replace the file (new inode)
/// change both; a same-size edit within the same mtime tick is the rare miss SIGHUP covers.
fn fingerprint(path: &PathBuf) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Reloads when the config file changes. Changes are debounced: the file must stay the same for
/// one more check, so a save written in several steps is read once, complete.
pub fn watch_config(running: Running, path: PathBuf) {
    tokio::spawn(async move {
        let mut seen = fingerprint(&path);
        let mut pending: Option<(SystemTime, u64)> = None;
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        loop {
            tick.tick().await;
            if running.is_shutting_down() {
                break;
            }
            let now = fingerprint(&path);
            match (now, pending) {
                (Some(n), Some(p)) if n == p => {
                    pending = None;
                    seen = Some(n);
                    tracing::info!(file = %path.display(), "config file changed: reloading");
                    let _ = running.reload().await;
                }
                (Some(n), _) if Some(n) != seen => pending = Some(n),
                _ => pending = None,
            }
        }
    });
}
