//! Certificates generated on the spot (rcgen, ECDSA P-256): a self-signed one for a developer's
//! machine (`--dev-tls`), and a small CA issuing leaf certificates, for tests (and as the shape
//! a region PKI will take). Keys live in memory only: nothing here reads or writes files.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsError;

/// A generated certificate and its key, in PEM, with the certificate's SHA-256 fingerprint
/// (see [`crate::fingerprint`]).
#[derive(Clone)]
pub struct DevCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub fingerprint: String,
}

impl std::fmt::Debug for DevCert {
    // The key is left out: debug output ends up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCert")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

fn generate_err(e: &rcgen::Error) -> TlsError {
    TlsError::Generate(e.to_string())
}

/// Subject alternative names: each entry is an IP address when it parses as one, else a DNS
/// name; the first is also the common name.
fn params(names: &[&str]) -> Result<CertificateParams, TlsError> {
    if names.is_empty() {
        return Err(TlsError::Generate("no DNS name or IP address given".into()));
    }
    let sans: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(sans).map_err(|e| generate_err(&e))?;
    params
        .distinguished_name
        .push(DnType::CommonName, names[0].to_owned());
    Ok(params)
}

impl DevCert {
    /// A self-signed certificate for these DNS names / IP addresses (e.g. `["localhost",
    /// "127.0.0.1"]`). A client trusts it by trusting the certificate itself.
    pub fn self_signed(names: &[&str]) -> Result<DevCert, TlsError> {
        let key = KeyPair::generate().map_err(|e| generate_err(&e))?;
        let cert = params(names)?
            .self_signed(&key)
            .map_err(|e| generate_err(&e))?;
        Ok(DevCert {
            fingerprint: crate::fingerprint(cert.der()),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The certificate chain and key in DER, as rustls takes them.
    pub fn pair(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
        let bad = |e: rustls_pki_types::pem::Error| TlsError::Generate(e.to_string());
        let certs = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(bad)?;
        Ok((certs, key))
    }
}

/// A certificate authority made on the spot, issuing leaf certificates for servers and clients.
pub struct DevCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCa")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl DevCa {
    /// A new CA whose certificate has this common name.
    pub fn new(common_name: &str) -> Result<DevCa, TlsError> {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name.to_owned());
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().map_err(|e| generate_err(&e))?;
        let issuer = CertifiedIssuer::self_signed(params, key).map_err(|e| generate_err(&e))?;
        Ok(DevCa { issuer })
    }

    /// The CA certificate in PEM: what a client trusts.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA certificate in DER.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// SHA-256 fingerprint of the CA certificate.
    pub fn fingerprint(&self) -> String {
        crate::fingerprint(self.issuer.der())
    }

    /// A leaf certificate for these DNS names / IP addresses, signed by this CA, usable by a
    /// server and by a client (mutual TLS). `cert_pem` holds the leaf then the CA certificate.
    pub fn issue(&self, names: &[&str]) -> Result<DevCert, TlsError> {
        let mut params = params(names)?;
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().map_err(|e| generate_err(&e))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| generate_err(&e))?;
        Ok(DevCert {
            fingerprint: crate::fingerprint(cert.der()),
            cert_pem: format!("{}{}", cert.pem(), self.issuer.pem()),
            key_pem: key.serialize_pem(),
        })
    }
}
