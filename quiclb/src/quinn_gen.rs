//! quinn's `ConnectionIdGenerator` issuing CIDs with this server's id (feature `quinn`).

use std::time::Duration;

use rand::RngCore;

use crate::{CidConfig, EncodeError, MAX_CID_LEN, ServerId};

/// Issues `cfg`'s CIDs carrying `server_id`, each with a fresh nonce from the thread's
/// cryptographically secure RNG (RFC 9000 §5.1: CIDs of one connection must not be linkable
/// beyond what the server id reveals).
///
/// Install it on the server's endpoint:
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cfg = quic_lb::CidConfig::new(1, 2, 8)?;
/// let sid: quic_lb::ServerId = "0a01".parse()?;
/// let generator = quic_lb::QuicLbCidGenerator::new(cfg, sid)?;
/// let mut endpoint_config = quinn::EndpointConfig::default();
/// endpoint_config.cid_generator(move || Box::new(generator.clone()));
/// # Ok(())
/// # }
/// ```
///
/// `validate` is left at quinn's default (accept all): quinn does not re-export its
/// `InvalidCid`, and accepting lets a server answer a stray packet of a connection it does not
/// know with a stateless reset, which ends a misrouted connection quickly.
#[derive(Debug, Clone)]
pub struct QuicLbCidGenerator {
    cfg: CidConfig,
    server_id: ServerId,
    lifetime: Option<Duration>,
}

impl QuicLbCidGenerator {
    /// Fails when `server_id` is not `cfg.server_id_len()` bytes long.
    pub fn new(cfg: CidConfig, server_id: ServerId) -> Result<Self, EncodeError> {
        if server_id.len() != cfg.server_id_len() {
            return Err(EncodeError::ServerIdLen {
                got: server_id.len(),
                want: cfg.server_id_len(),
            });
        }
        Ok(Self {
            cfg,
            server_id,
            lifetime: None,
        })
    }

    /// Have quinn retire each CID after `d` (none by default, as quinn's own generators).
    pub fn with_lifetime(mut self, d: Duration) -> Self {
        self.lifetime = Some(d);
        self
    }

    pub fn config(&self) -> &CidConfig {
        &self.cfg
    }

    pub fn server_id(&self) -> &ServerId {
        &self.server_id
    }
}

impl quinn::ConnectionIdGenerator for QuicLbCidGenerator {
    fn generate_cid(&mut self) -> quinn::ConnectionId {
        // The first octet and the server id never change; only the nonce is drawn.
        let (len, at) = (self.cfg.cid_len(), 1 + self.cfg.server_id_len());
        let mut cid = [0u8; MAX_CID_LEN];
        cid[0] = self.cfg.first_octet();
        cid[1..at].copy_from_slice(self.server_id.as_bytes());
        rand::rng().fill_bytes(&mut cid[at..len]);
        quinn::ConnectionId::new(&cid[..len])
    }

    fn cid_len(&self) -> usize {
        self.cfg.cid_len()
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        self.lifetime
    }
}
