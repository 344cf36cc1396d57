//! PEM files: certificate chains and private keys, and the check that they belong together.

use std::path::Path;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsError;

/// What went wrong reading a PEM file, in words (`what`: "certificate", "private key").
fn pem_reason(e: &pem::Error, what: &str) -> String {
    match e {
        pem::Error::Io(io) => format!("cannot read: {io}"),
        pem::Error::NoItemsFound => format!("no PEM {what} in the file"),
        other => format!("not valid PEM: {other}"),
    }
}

/// Every certificate of a PEM file, in file order (a chain: leaf first; or a CA bundle).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::Cert {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(pem_reason(&e, "certificate")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(pem_reason(&e, "certificate")))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Key {
        path: path.to_path_buf(),
        reason: pem_reason(&e, "private key"),
    })
}

/// PEM certificate chain + private key from files, checked to belong together (the key is the
/// leaf certificate's key, of a type the ring provider can sign with).
pub fn load_pair(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let certs = load_certs(cert)?;
    let private = load_key(key)?;
    certified(certs.clone(), private.clone_key(), cert, key)?;
    Ok((certs, private))
}

/// The pair as rustls serves it, with errors naming the files.
pub(crate) fn certified(
    certs: Vec<CertificateDer<'static>>,
    private: PrivateKeyDer<'static>,
    cert: &Path,
    key: &Path,
) -> Result<CertifiedKey, TlsError> {
    use rustls::{Error, InconsistentKeys};
    match CertifiedKey::from_der(certs, private, &crate::provider()) {
        Ok(ck) => Ok(ck),
        Err(Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => Err(TlsError::Mismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        }),
        // The leaf does not parse as a certificate.
        Err(e @ (Error::InvalidCertificate(_) | Error::NoCertificatesPresented)) => {
            Err(TlsError::Cert {
                path: cert.to_path_buf(),
                reason: e.to_string(),
            })
        }
        Err(e) => Err(TlsError::Key {
            path: key.to_path_buf(),
            reason: format!("unusable: {e}"),
        }),
    }
}
