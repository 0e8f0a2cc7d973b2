//! The `internal.descriptors` section: `.proto` files and binary descriptor sets compiled into
//! one [`DescriptorPool`] at every load and reload, with errors that name the proto file, line
//! and column.
//!
//! Every path is relative to the config file's directory (not the working directory), so a
//! config and its protos move together. The pool always holds `google/protobuf/*` (protox's
//! built-ins), our own `google/api/{http,annotations,httpbody}.proto` and
//! `google/rpc/{status,error_details}.proto` (from tonic-types: error bodies print
//! `google.rpc.Status` details), whether or not a file imports them. A file already in the pool is skipped when a later source brings the same name (what
//! `DescriptorPool` does): list a file in one place only.
//!
//! Extension options (`google.api.http`) survive only through the pool's own encodings: the
//! pool comes from protox's `descriptor_pool()` and descriptor sets are decoded with
//! `decode_file_descriptor_set`, never through `prost_types`.

use std::path::{Path, PathBuf};

use miette::Diagnostic;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, Value};
use protox::Compiler;
use protox::file::{
    ChainFileResolver, DescriptorSetFileResolver, File, FileResolver, GoogleFileResolver,
    IncludeFileResolver,
};
use serde::{Deserialize, Serialize};

/// `internal.descriptors`: where the gateway's protobuf types come from. Every list is optional
/// and empty by default (the pool then holds only the built-in files).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DescriptorSettings {
    /// `.proto` files compiled at load (protox: pure Rust, no `protoc`).
    pub protos: Vec<PathBuf>,
    /// Where `import` statements are looked up, in order. Default: the directory of each file
    /// in `protos`.
    pub import_paths: Vec<PathBuf>,
    /// Binary `FileDescriptorSet` files (`protoc -o`, `buf build -o`), for services whose
    /// sources are not at hand. Build them with imports (`--include_imports`).
    pub descriptor_sets: Vec<PathBuf>,
}

/// A source of descriptors that did not load. Its `Display` is one line that starts with the
/// file (and, for a `.proto`, `:LINE:COL`), as compilers print errors.
#[derive(Debug, thiserror::Error)]
pub enum DescriptorError {
    /// A `.proto` file, or one it imports, does not compile.
    #[error("{}: {message}", at(file, *position))]
    Proto {
        /// Index in `protos` of the file being compiled.
        index: usize,
        /// The file the error is in: the listed one or one of its imports.
        file: PathBuf,
        /// 1-based line and column, when the compiler points at one.
        position: Option<(usize, usize)>,
        /// What is wrong, as protox says it.
        message: String,
        #[source]
        source: protox::Error,
    },
    /// A listed `.proto` file could not be read (protox would call it "not in any include
    /// path", which misleads when the file is simply missing).
    #[error("{}: {source}", file.display())]
    ReadProto {
        index: usize,
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A descriptor set could not be read.
    #[error("{}: {source}", file.display())]
    ReadSet {
        index: usize,
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A descriptor set is not a valid `FileDescriptorSet`, or refers to types it lacks.
    #[error("{}: invalid descriptor set: {source}", file.display())]
    DecodeSet {
        index: usize,
        file: PathBuf,
        #[source]
        source: prost_reflect::DescriptorError,
    },
    /// A file built into the binary did not load: a bug, or an import path with a broken
    /// `google/api/*.proto` of its own that none of the listed files imports.
    #[error("built-in descriptors ({what}) do not load: {source}")]
    Builtin {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl DescriptorError {
    /// The config key to point at: `internal.descriptors.protos[i]` or `...descriptor_sets[i]`.
    pub fn key(&self) -> String {
        match self {
            DescriptorError::Proto { index, .. } | DescriptorError::ReadProto { index, .. } => {
                format!("internal.descriptors.protos[{index}]")
            }
            DescriptorError::ReadSet { index, .. } | DescriptorError::DecodeSet { index, .. } => {
                format!("internal.descriptors.descriptor_sets[{index}]")
            }
            DescriptorError::Builtin { .. } => "internal.descriptors".to_owned(),
        }
    }
}

fn builtin(
    what: &'static str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> DescriptorError {
    DescriptorError::Builtin {
        what,
        source: Box::new(source),
    }
}

fn at(file: &Path, position: Option<(usize, usize)>) -> String {
    match position {
        Some((line, column)) => format!("{}:{line}:{column}", file.display()),
        None => file.display().to_string(),
    }
}

/// Our `google/api` declarations, served to `import "google/api/annotations.proto"` when no
/// import path has its own copy.
const GOOGLE_API: [(&str, &str); 3] = [
    (
        "google/api/http.proto",
        include_str!("../../proto/google/api/http.proto"),
    ),
    (
        "google/api/annotations.proto",
        include_str!("../../proto/google/api/annotations.proto"),
    ),
    (
        "google/api/httpbody.proto",
        include_str!("../../proto/google/api/httpbody.proto"),
    ),
];

/// Compiles `settings` (paths relative to `base_dir`, the config file's directory) into one
/// pool. Runs at every load and reload: the cost is a parse of every listed file and import,
/// milliseconds for a service's protos.
pub fn compile(
    settings: &DescriptorSettings,
    base_dir: &Path,
) -> Result<DescriptorPool, DescriptorError> {
    let rpc = google_rpc()?;
    let mut pool = compile_protos(settings, base_dir, &rpc)?;
    pool.decode_file_descriptor_set(rpc.as_slice())
        .map_err(|e| builtin("google/rpc", e))?;
    for (index, set) in settings.descriptor_sets.iter().enumerate() {
        let file = base_dir.join(set);
        let bytes = std::fs::read(&file).map_err(|source| DescriptorError::ReadSet {
            index,
            file: file.clone(),
            source,
        })?;
        pool.decode_file_descriptor_set(bytes.as_slice())
            .map_err(|source| DescriptorError::DecodeSet {
                index,
                file,
                source,
            })?;
    }
    Ok(pool)
}

/// The listed `.proto` files and their imports, compiled by protox, plus `google/api`.
fn compile_protos(
    settings: &DescriptorSettings,
    base_dir: &Path,
    rpc: &[u8],
) -> Result<DescriptorPool, DescriptorError> {
    let includes = include_dirs(settings, base_dir);
    let mut resolver = ChainFileResolver::new();
    for dir in &includes {
        resolver.add(IncludeFileResolver::new(dir.clone()));
    }
    resolver.add(GoogleApiResolver);
    let rpc = DescriptorSetFileResolver::decode(rpc).map_err(|e| builtin("google/rpc", e))?;
    resolver.add(rpc);
    resolver.add(GoogleFileResolver::new());

    // The pool keeps each file's source info: its comments can describe a generated OpenAPI
    // document.
    let mut compiler = Compiler::with_file_resolver(resolver);
    for (index, proto) in settings.protos.iter().enumerate() {
        let path = base_dir.join(proto);
        if let Err(source) = std::fs::metadata(&path) {
            return Err(DescriptorError::ReadProto {
                index,
                file: path,
                source,
            });
        }
        if let Err(source) = compiler.open_file(&path) {
            return Err(proto_error(index, &path, &includes, source));
        }
    }
    // After the listed files, so that their errors come first; a no-op when they import them.
    for (name, _) in GOOGLE_API {
        compiler
            .open_file(name)
            .map_err(|e| builtin("google/api", e))?;
    }
    Ok(compiler.descriptor_pool())
}

/// tonic-types' descriptor set with its files renamed to their googleapis names: it calls them
/// `status.proto` and `error_details.proto`, so `import "google/rpc/status.proto"` would not
/// resolve, and a user's own `status.proto` would shadow google.rpc's (a pool skips a file
/// name it already has).
fn google_rpc() -> Result<Vec<u8>, DescriptorError> {
    const RENAMED: [(&str, &str); 2] = [
        ("status.proto", "google/rpc/status.proto"),
        ("error_details.proto", "google/rpc/error_details.proto"),
    ];
    let rename = |value: &mut Value| {
        if let Value::String(name) = value
            && let Some((_, to)) = RENAMED.iter().find(|(from, _)| from == name)
        {
            *name = (*to).to_owned();
        }
    };
    let Some(set_type) =
        DescriptorPool::global().get_message_by_name("google.protobuf.FileDescriptorSet")
    else {
        return Err(builtin(
            "google/rpc",
            std::io::Error::other("no FileDescriptorSet type"),
        ));
    };
    let mut set = DynamicMessage::decode(set_type, tonic_types::pb::FILE_DESCRIPTOR_SET)
        .map_err(|e| builtin("google/rpc", e))?;
    if let Some(Value::List(files)) = set.get_field_by_name_mut("file") {
        for file in files.iter_mut().filter_map(Value::as_message_mut) {
            if let Some(name) = file.get_field_by_name_mut("name") {
                rename(name);
            }
            if let Some(Value::List(imports)) = file.get_field_by_name_mut("dependency") {
                imports.iter_mut().for_each(rename);
            }
        }
    }
    Ok(set.encode_to_vec())
}

/// `import_paths` under `base_dir`, or else each listed file's own directory.
fn include_dirs(settings: &DescriptorSettings, base_dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if settings.import_paths.is_empty() {
        for proto in &settings.protos {
            let dir = base_dir.join(proto.parent().unwrap_or(Path::new("")));
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    } else {
        dirs.extend(settings.import_paths.iter().map(|p| base_dir.join(p)));
    }
    dirs
}

/// Serves [`GOOGLE_API`] by name.
struct GoogleApiResolver;

impl FileResolver for GoogleApiResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match GOOGLE_API.iter().find(|(n, _)| *n == name) {
            Some((name, source)) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// Where a protox error is: the file on disk (protox knows only the import name) and the
/// 1-based line and column of its span.
fn proto_error(
    index: usize,
    listed: &Path,
    includes: &[PathBuf],
    source: protox::Error,
) -> DescriptorError {
    let mut file = listed.to_owned();
    let mut position = None;
    if let Some(name) = source.file() {
        file = on_disk(name, includes);
    }
    // The last label is the one that points at the mistake: prost-reflect labels a duplicate
    // name with its first definition, then the second one.
    let span = source.labels().and_then(|labels| labels.last());
    if let (Some(code), Some(span)) = (source.source_code(), span)
        && let Ok(contents) = code.read_span(span.inner(), 0, 0)
    {
        position = Some((contents.line() + 1, contents.column() + 1));
    }
    DescriptorError::Proto {
        index,
        file,
        position,
        message: source.to_string(),
        source,
    }
}

/// The path the resolver opened for import name `name`: the first include that has it.
fn on_disk(name: &str, includes: &[PathBuf]) -> PathBuf {
    includes
        .iter()
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

#[cfg(test)]
mod tests;
