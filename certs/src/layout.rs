//! The certificate directory shared by the CLI and the test fixtures: which files, and
//! keep-what-exists, create-what-is-missing.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use crate::pem::{create_private_dir, read_to_string, write_new_file, write_private_key};
use crate::spiffe::validate_name;
use crate::{Ca, CaOptions, Error, IssueOptions, JwtAlg, JwtKeys, KeyAlg, Kind, Result};

/// The CA certificate.
pub const CA_CERT: &str = "ca.pem";
/// The CA private key.
pub const CA_KEY: &str = "ca-key.pem";
/// The JWT signing key (PKCS#8).
pub const JWT_KEY: &str = "jwt-signing-key.pem";
/// The public JWK Set.
pub const JWKS: &str = "jwks.json";
/// The gateways `init` creates when none are named.
pub const DEFAULT_GATEWAYS: [&str; 2] = ["edge", "internal"];
/// The default trust domain.
pub const DEFAULT_TRUST_DOMAIN: &str = "gatehouse.local";

/// `<name>.pem`: the identity's chain, leaf then CA.
pub fn cert_file(name: &str) -> String {
    format!("{name}.pem")
}

/// `<name>-key.pem`: the identity's private key.
pub fn key_file(name: &str) -> String {
    format!("{name}-key.pem")
}

/// What happened to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// It did not exist and was written.
    Created,
    /// It existed and was left alone.
    Kept,
    /// It existed and was rewritten (only `jwks.json`).
    Updated,
}

/// One line of CLI output: `created PATH`, `kept PATH` or `updated PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// What happened.
    pub action: Action,
    /// The file.
    pub path: PathBuf,
}

impl fmt::Display for FileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.action {
            Action::Created => "created",
            Action::Kept => "kept",
            Action::Updated => "updated",
        };
        write!(f, "{action} {}", self.path.display())
    }
}

/// What `init` creates. `Default`: `gatehouse.local`, gateways `edge` and `internal`, ECDSA.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Trust domain of a new CA (an existing CA must match it).
    pub trust_domain: String,
    /// Gateway identities.
    pub gateways: Vec<String>,
    /// Service identities.
    pub services: Vec<String>,
    /// Extra SANs for every identity (beyond `<name>`, `localhost`, 127.0.0.1, ::1).
    pub extra: IssueOptions,
    /// Algorithm of new keys (CA and leaves).
    pub key_alg: KeyAlg,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            trust_domain: DEFAULT_TRUST_DOMAIN.to_owned(),
            gateways: DEFAULT_GATEWAYS.map(str::to_owned).to_vec(),
            services: Vec::new(),
            extra: IssueOptions::default(),
            key_alg: KeyAlg::default(),
        }
    }
}

/// Creates `dir` (0700) with a CA and every identity in `opts`, keeping files that exist.
pub fn init_dir(dir: &Path, opts: &InitOptions) -> Result<Vec<FileReport>> {
    let mut wanted: Vec<(Kind, &str)> = Vec::new();
    let gateways = opts.gateways.iter().map(|n| (Kind::Gateway, n));
    for (kind, name) in gateways.chain(opts.services.iter().map(|n| (Kind::Service, n))) {
        check_identity_name(name)?;
        match wanted.iter().find(|(_, n)| n == name) {
            Some((k, _)) if *k != kind => {
                return Err(Error::DuplicateIdentity {
                    name: name.clone(),
                    first: *k,
                    second: kind,
                });
            }
            Some(_) => {}
            None => wanted.push((kind, name)),
        }
    }
    create_private_dir(dir)?;
    let ca_opts = CaOptions {
        key_alg: opts.key_alg,
        ..CaOptions::default()
    };
    let (ca, mut reports) = ensure_ca(dir, &opts.trust_domain, &ca_opts)?;
    let extra = opts.extra.clone().key_alg(opts.key_alg);
    for (kind, name) in wanted {
        reports.extend(ensure_identity(dir, &ca, kind, name, &extra)?);
    }
    Ok(reports)
}

/// Adds one identity signed by the CA already in `dir`.
pub fn issue_into_dir(
    dir: &Path,
    kind: Kind,
    name: &str,
    extra: &IssueOptions,
) -> Result<Vec<FileReport>> {
    check_identity_name(name)?;
    let ca = load_ca(dir)?;
    ensure_identity(dir, &ca, kind, name, extra)
}

/// Loads `dir/ca.pem` and `dir/ca-key.pem`.
pub fn load_ca(dir: &Path) -> Result<Ca> {
    let (cert, key) = (dir.join(CA_CERT), dir.join(CA_KEY));
    for path in [&cert, &key] {
        if !path.exists() {
            return Err(Error::NoCa {
                dir: dir.to_owned(),
                missing: path.clone(),
            });
        }
    }
    Ca::from_pem(&read_to_string(&cert)?, &read_to_string(&key)?)
}

/// Loads `dir/ca.pem` and `dir/ca-key.pem`, or generates and writes them if both are absent.
pub fn ensure_ca(
    dir: &Path,
    trust_domain: &str,
    opts: &CaOptions,
) -> Result<(Ca, Vec<FileReport>)> {
    let (cert, key) = (dir.join(CA_CERT), dir.join(CA_KEY));
    if cert.exists() || key.exists() {
        check_pair(&cert, &key)?;
        let ca = load_ca(dir)?;
        if ca.trust_domain() != trust_domain {
            return Err(Error::TrustDomain {
                reason: format!(
                    "{} is for {:?}, not {trust_domain:?}",
                    cert.display(),
                    ca.trust_domain()
                ),
            });
        }
        return Ok((ca, vec![kept(cert), kept(key)]));
    }
    let ca = Ca::generate(trust_domain, opts)?;
    let reports = write_ca(dir, &ca)?;
    Ok((ca, reports))
}

/// Writes a leaf for `<kind>/<name>` unless both its files exist. The certificate carries
/// the SPIFFE ID, DNS SANs `<name>` and `localhost`, IPs 127.0.0.1 and ::1, and `extra`'s SANs.
pub fn ensure_identity(
    dir: &Path,
    ca: &Ca,
    kind: Kind,
    name: &str,
    extra: &IssueOptions,
) -> Result<Vec<FileReport>> {
    let (cert, key) = (dir.join(cert_file(name)), dir.join(key_file(name)));
    if cert.exists() || key.exists() {
        check_pair(&cert, &key)?;
        return Ok(vec![kept(cert), kept(key)]);
    }
    let mut opts = IssueOptions {
        dns_names: vec![name.to_owned(), "localhost".to_owned()],
        ips: vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()],
        ..extra.clone()
    };
    opts.dns_names.extend(extra.dns_names.iter().cloned());
    opts.ips.extend(extra.ips.iter().copied());
    let issued = ca.issue_workload(kind, name, &opts)?;
    write_private_key(&key, &issued.key_pem)?;
    write_new_file(&cert, &issued.chain_pem)?;
    Ok(vec![created(cert), created(key)])
}

/// Loads `dir/jwt-signing-key.pem` or generates it (`alg`, default ES256), then writes
/// `dir/jwks.json` from it. An existing key of another algorithm than `alg` is an error.
pub fn ensure_jwt_keys(dir: &Path, alg: Option<JwtAlg>) -> Result<(JwtKeys, Vec<FileReport>)> {
    create_private_dir(dir)?;
    let key_path = dir.join(JWT_KEY);
    let mut reports = Vec::new();
    let keys = if key_path.exists() {
        let keys = JwtKeys::load(&key_path)?;
        if let Some(wanted) = alg.filter(|a| *a != keys.alg()) {
            return Err(Error::AlgorithmMismatch {
                path: key_path,
                found: keys.alg().to_string(),
                wanted: wanted.to_string(),
            });
        }
        reports.push(kept(key_path));
        keys
    } else {
        let keys = JwtKeys::generate(alg.unwrap_or_default())?;
        write_private_key(&key_path, keys.private_key_pem())?;
        reports.push(created(key_path));
        keys
    };
    let jwks_path = dir.join(JWKS);
    let jwks = keys.jwks_json();
    let action = match std::fs::read_to_string(&jwks_path) {
        Ok(old) if old == jwks => Action::Kept,
        Ok(_) => Action::Updated,
        Err(_) => Action::Created,
    };
    if action != Action::Kept {
        std::fs::write(&jwks_path, &jwks).map_err(|e| Error::io("cannot write", &jwks_path, e))?;
    }
    reports.push(FileReport {
        action,
        path: jwks_path,
    });
    Ok((keys, reports))
}

/// Loads `dir/jwt-signing-key.pem`.
pub fn load_jwt_keys(dir: &Path) -> Result<JwtKeys> {
    let path = dir.join(JWT_KEY);
    if !path.exists() {
        return Err(Error::NoJwtKey {
            dir: dir.to_owned(),
            path,
        });
    }
    JwtKeys::load(&path)
}

/// Writes `ca-key.pem` (0600) then `ca.pem` into `dir`; both must be absent.
pub fn write_ca(dir: &Path, ca: &Ca) -> Result<Vec<FileReport>> {
    let (cert, key) = (dir.join(CA_CERT), dir.join(CA_KEY));
    write_private_key(&key, &ca.key_pem())?;
    write_new_file(&cert, ca.cert_pem())?;
    Ok(vec![created(cert), created(key)])
}

/// Identity names become file names: refuse those that would clash with the CA or JWT files.
fn check_identity_name(name: &str) -> Result<()> {
    validate_name(name)?;
    if name == "ca" || name == "jwt-signing" || name.ends_with("-key") {
        return Err(Error::InvalidName {
            what: "identity name",
            value: name.to_owned(),
            reason: "clashes with the CA, JWT or key file names",
        });
    }
    Ok(())
}

fn check_pair(a: &Path, b: &Path) -> Result<()> {
    match (a.exists(), b.exists()) {
        (true, false) => Err(Error::Incomplete {
            present: a.to_owned(),
            missing: b.to_owned(),
        }),
        (false, true) => Err(Error::Incomplete {
            present: b.to_owned(),
            missing: a.to_owned(),
        }),
        _ => Ok(()),
    }
}

fn kept(path: PathBuf) -> FileReport {
    FileReport {
        action: Action::Kept,
        path,
    }
}

fn created(path: PathBuf) -> FileReport {
    FileReport {
        action: Action::Created,
        path,
    }
}
