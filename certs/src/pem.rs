//! PEM parsing and file helpers; private keys are created with mode 0600 from the start.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::{Error, Result};

/// Reads a whole text file (PEM, JSON), naming the path on failure.
pub fn read_to_string(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))
}

/// Every `CERTIFICATE` block in `pem`, in order; an error if there is none.
pub fn certs_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Pem {
            expected: "CERTIFICATE",
            source: Some(e),
        })?;
    if certs.is_empty() {
        return Err(Error::Pem {
            expected: "CERTIFICATE",
            source: None,
        });
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in `pem`.
pub fn private_key_from_pem(pem: &str) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| Error::Pem {
        expected: "PRIVATE KEY",
        source: Some(e),
    })
}

/// PEM text (`CERTIFICATE` block, 64-column lines, LF) for a DER certificate.
pub fn pem_of(der: &CertificateDer<'_>) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Creates `path` with mode 0600 (set at creation, never widened) and writes `pem` to it.
///
/// Fails if the file exists: a key is never overwritten. The contents are not logged.
pub fn write_private_key(path: &Path, pem: &str) -> Result<()> {
    create_new(path, pem.as_bytes(), 0o600)
}

/// Creates `path` (mode 0644) and writes `contents`; fails if the file exists.
pub fn write_new_file(path: &Path, contents: &str) -> Result<()> {
    create_new(path, contents.as_bytes(), 0o644)
}

/// Creates `dir` with mode 0700 (its missing parents with the default mode);
/// an existing directory is left as it is.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io("cannot create directory", parent, e))?;
    }
    let mut builder = DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(Error::io("cannot create directory", dir, e))
        }
        _ => Ok(()),
    }
}

fn create_new(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(path)
        .map_err(|e| Error::io("cannot create", path, e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("cannot write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_certificate_is_an_error() {
        assert!(certs_from_pem("").is_err());
        assert!(private_key_from_pem("nothing").is_err());
    }
}
