//! The flags every component takes for mutual TLS with the rest of its region, and what they
//! load: the region CA and the component's own certificate (from `edgeplane pki issue`), both
//! re-read when their files change.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::mtls::{MtlsClient, MtlsServer, PeerPolicy, RegionTrust};
use crate::{ServerCert, TlsError};

/// How often certificate files are checked for a change.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// `--mtls-ca`, `--mtls-cert`, `--mtls-key`: all three or none.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct MtlsArgs {
    /// Mutual TLS with the region's other components: the region CA certificate (PEM,
    /// `edgeplane pki init`'s ca.pem). Peers must present a certificate of this CA.
    #[arg(long = "mtls-ca", env = "EDGEPLANE_MTLS_CA", requires_all = ["mtls_cert", "mtls_key"], value_name = "PEM")]
    pub mtls_ca: Option<PathBuf>,
    /// This component's certificate chain (PEM, from `edgeplane pki issue`).
    #[arg(long = "mtls-cert", env = "EDGEPLANE_MTLS_CERT", requires_all = ["mtls_ca", "mtls_key"], value_name = "PEM")]
    pub mtls_cert: Option<PathBuf>,
    /// This component's private key (PEM).
    #[arg(long = "mtls-key", env = "EDGEPLANE_MTLS_KEY", requires_all = ["mtls_ca", "mtls_cert"], value_name = "PEM")]
    pub mtls_key: Option<PathBuf>,
}

impl MtlsArgs {
    /// The three files of a `pki` directory for one component (`DIR/ca.pem`,
    /// `DIR/<role>-<name>.pem`, `.key`).
    pub fn from_pki_dir(dir: &std::path::Path, role: crate::Role, name: &str) -> MtlsArgs {
        let (cert, key) = crate::pki::leaf_paths(dir, role, name);
        MtlsArgs {
            mtls_ca: Some(dir.join(crate::pki::CA_CERT_FILE)),
            mtls_cert: Some(cert),
            mtls_key: Some(key),
        }
    }

    /// The same as command-line words (for starting a component with them).
    pub fn flags(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (flag, path) in [
            ("--mtls-ca", &self.mtls_ca),
            ("--mtls-cert", &self.mtls_cert),
            ("--mtls-key", &self.mtls_key),
        ] {
            if let Some(p) = path {
                out.push(flag.to_owned());
                out.push(p.display().to_string());
            }
        }
        out
    }

    /// What a component dials its controller with (notify subscribers, the MC): a client of
    /// this region accepting only a `controller` server, its files watched for the life of
    /// the process. `None` when no flag is given. Needs a tokio runtime.
    pub fn controller_client(&self) -> Result<Option<MtlsClient>, TlsError> {
        let Some(mtls) = self.load()? else {
            return Ok(None);
        };
        mtls.watch();
        mtls.client(PeerPolicy::roles(&[crate::Role::Controller]), &[b"h2"])
            .map(Some)
    }

    /// The loaded material, or `None` when no flag is given (plaintext).
    pub fn load(&self) -> Result<Option<Mtls>, TlsError> {
        let (Some(ca), Some(cert), Some(key)) = (&self.mtls_ca, &self.mtls_cert, &self.mtls_key)
        else {
            return Ok(None);
        };
        Ok(Some(Mtls {
            cert: ServerCert::from_files(cert, key)?,
            trust: RegionTrust::from_file(ca)?,
        }))
    }
}

/// A component's region CA and own certificate.
#[derive(Clone, Debug)]
pub struct Mtls {
    pub cert: Arc<ServerCert>,
    pub trust: Arc<RegionTrust>,
}

impl Mtls {
    /// A server admitting clients of these roles, with this ALPN (`[b"h2"]` for gRPC).
    pub fn server(&self, policy: PeerPolicy, alpn: &[&[u8]]) -> Result<MtlsServer, TlsError> {
        MtlsServer::new(self.cert.clone(), self.trust.clone(), policy, alpn)
    }

    /// A client accepting servers of these roles, with this ALPN.
    pub fn client(&self, policy: PeerPolicy, alpn: &[&[u8]]) -> Result<MtlsClient, TlsError> {
        MtlsClient::new(self.cert.clone(), self.trust.clone(), policy, alpn)
    }

    /// The region the CA certifies.
    pub fn region(&self) -> String {
        self.trust.region()
    }

    /// Re-reads the certificate, key and CA files within [`RELOAD_EVERY`] of a change, for
    /// as long as the runtime runs (one cheap polling task each). Needs a tokio runtime.
    pub fn watch(&self) {
        self.cert.watch(RELOAD_EVERY, std::future::pending::<()>());
        self.trust.watch(RELOAD_EVERY, std::future::pending::<()>());
    }
}
