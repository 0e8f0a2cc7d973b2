//! Test support for the transcoding modules: the fixture proto
//! (`internal/tests/fixtures/transcode/shop.proto`) compiled once, and protos written on the fly.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};

use crate::transcode::descriptors::{DescriptorError, DescriptorSettings, compile};

/// The fixture's directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/transcode")
}

/// `shop.proto` compiled (package `gatehouse.test.v1`).
pub fn shop_pool() -> DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let settings = DescriptorSettings {
            protos: vec!["shop.proto".into()],
            ..DescriptorSettings::default()
        };
        match compile(&settings, &fixtures()) {
            Ok(pool) => pool,
            Err(e) => panic!("the fixture does not compile: {e}"),
        }
    })
    .clone()
}

/// The fixture's message `gatehouse.test.v1.NAME`.
pub fn message(name: &str) -> MessageDescriptor {
    let full = format!("gatehouse.test.v1.{name}");
    shop_pool()
        .get_message_by_name(&full)
        .unwrap_or_else(|| panic!("no message {full}"))
}

/// An empty `gatehouse.test.v1.NAME`.
pub fn empty(name: &str) -> DynamicMessage {
    DynamicMessage::new(message(name))
}

/// Writes `files` (`(relative path, text)`) into a fresh directory, then compiles `protos` of
/// it (with `import_paths`, if any).
pub fn compile_files(
    files: &[(&str, &str)],
    protos: &[&str],
    import_paths: &[&str],
) -> (tempfile::TempDir, Result<DescriptorPool, DescriptorError>) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    for (name, text) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir: {e}"));
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {name}: {e}"));
    }
    let settings = DescriptorSettings {
        protos: protos.iter().map(PathBuf::from).collect(),
        import_paths: import_paths.iter().map(PathBuf::from).collect(),
        descriptor_sets: Vec::new(),
    };
    let result = compile(&settings, dir.path());
    (dir, result)
}
