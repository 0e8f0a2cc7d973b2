//! `gatehouse-certs`: the development PKI CLI (CA, identities, JWT keys, tokens, inspection).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use gatehouse_certs::layout::{self, FileReport, InitOptions};
use gatehouse_certs::{IssueOptions, JwtAlg, KeyAlg, Kind, TokenRequest};

/// Development PKI for Gatehouse: CA, SPIFFE workload certificates, JWT keys and tokens.
#[derive(Debug, Parser)]
#[command(name = "gatehouse-certs", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a CA and identity certificates in DIR; existing files are kept.
    Init {
        #[command(flatten)]
        dir: Dir,
        /// Trust domain of the CA and SPIFFE IDs.
        #[arg(long, default_value = layout::DEFAULT_TRUST_DOMAIN)]
        trust_domain: String,
        /// Gateway identity (repeatable). Default: edge and internal.
        #[arg(long = "gateway", value_name = "NAME")]
        gateways: Vec<String>,
        /// Service identity (repeatable).
        #[arg(long = "service", value_name = "NAME")]
        services: Vec<String>,
        #[command(flatten)]
        sans: ExtraSans,
        /// Key algorithm: ecdsa-p256, ed25519 or rsa-2048.
        #[arg(long, default_value = "ecdsa-p256")]
        alg: KeyAlg,
    },
    /// Add one identity signed by the CA in DIR.
    Issue {
        #[command(flatten)]
        dir: Dir,
        /// Service identity name.
        #[arg(
            long,
            value_name = "NAME",
            conflicts_with = "gateway",
            required_unless_present = "gateway"
        )]
        service: Option<String>,
        /// Gateway identity name.
        #[arg(long, value_name = "NAME")]
        gateway: Option<String>,
        #[command(flatten)]
        sans: ExtraSans,
        /// Key algorithm: ecdsa-p256, ed25519 or rsa-2048. Default: the CA's.
        #[arg(long)]
        alg: Option<KeyAlg>,
    },
    /// Create DIR/jwt-signing-key.pem (kept if present) and write DIR/jwks.json from it.
    JwtKeys {
        #[command(flatten)]
        dir: Dir,
        /// ES256, RS256 or EdDSA. Default: ES256 (or the existing key's).
        #[arg(long)]
        alg: Option<JwtAlg>,
    },
    /// Print a JWT signed with DIR/jwt-signing-key.pem.
    Token {
        #[command(flatten)]
        dir: Dir,
        /// Subject.
        #[arg(long)]
        sub: String,
        /// Space-separated scopes, e.g. "users:read orders:write".
        #[arg(long, default_value = "")]
        scope: String,
        /// Audience.
        #[arg(long, default_value = "gatehouse")]
        aud: String,
        /// Issuer.
        #[arg(long, default_value = "gatehouse-dev-idp")]
        iss: String,
        /// Lifetime: 30s, 15m, 1h, 1d.
        #[arg(long, default_value = "15m", value_parser = gatehouse_certs::parse_duration)]
        ttl: std::time::Duration,
        /// Extra claim key=value (repeatable); JSON values (3, true, [..]) are kept typed.
        #[arg(long = "claim", value_name = "K=V", value_parser = gatehouse_certs::parse_claim)]
        claims: Vec<(String, serde_json::Value)>,
    },
    /// Print subject, issuer, SANs, SPIFFE ID, validity and serial of a certificate.
    Inspect {
        /// A PEM certificate or chain (the first certificate is shown).
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
struct Dir {
    /// The certificate directory.
    #[arg(long)]
    dir: PathBuf,
}

#[derive(Debug, Args)]
struct ExtraSans {
    /// Extra DNS SAN for the identity certificates (repeatable).
    #[arg(long = "dns", value_name = "NAME")]
    dns: Vec<String>,
    /// Extra IP SAN for the identity certificates (repeatable).
    #[arg(long = "ip", value_name = "ADDR")]
    ips: Vec<IpAddr>,
}

impl ExtraSans {
    fn into_options(self) -> IssueOptions {
        let opts = self
            .dns
            .into_iter()
            .fold(IssueOptions::new(), IssueOptions::dns);
        self.ips.into_iter().fold(opts, IssueOptions::ip)
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse-certs: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init {
            dir,
            trust_domain,
            gateways,
            services,
            sans,
            alg,
        } => {
            let defaults = InitOptions::default();
            let opts = InitOptions {
                trust_domain,
                gateways: if gateways.is_empty() {
                    defaults.gateways
                } else {
                    gateways
                },
                services,
                extra: sans.into_options(),
                key_alg: alg,
            };
            print(layout::init_dir(&dir.dir, &opts).context("init failed")?);
        }
        Command::Issue {
            dir,
            service,
            gateway,
            sans,
            alg,
        } => {
            let (kind, name) = match (service, gateway) {
                (Some(s), _) => (Kind::Service, s),
                (None, Some(g)) => (Kind::Gateway, g),
                (None, None) => anyhow::bail!("one of --service or --gateway is required"),
            };
            let alg = match alg {
                Some(alg) => alg,
                None => layout::load_ca(&dir.dir)?.key_alg().unwrap_or_default(),
            };
            let extra = sans.into_options().key_alg(alg);
            print(layout::issue_into_dir(&dir.dir, kind, &name, &extra).context("issue failed")?);
        }
        Command::JwtKeys { dir, alg } => {
            let (_, reports) = layout::ensure_jwt_keys(&dir.dir, alg).context("jwt-keys failed")?;
            print(reports);
        }
        Command::Token {
            dir,
            sub,
            scope,
            aud,
            iss,
            ttl,
            claims,
        } => {
            let keys = layout::load_jwt_keys(&dir.dir)?;
            let mut req = TokenRequest::new(sub)
                .scope(&scope)
                .aud(aud)
                .iss(iss)
                .ttl(ttl);
            req.extra.extend(claims);
            println!("{}", keys.issue_token(&req)?);
        }
        Command::Inspect { file } => println!("{}", inspect_file(&file)?),
    }
    Ok(())
}

fn inspect_file(file: &Path) -> anyhow::Result<gatehouse_certs::CertInfo> {
    let pem = gatehouse_certs::pem::read_to_string(file)?;
    gatehouse_certs::inspect(&pem).with_context(|| format!("cannot inspect {}", file.display()))
}

fn print(reports: Vec<FileReport>) {
    for report in reports {
        println!("{report}");
    }
}
