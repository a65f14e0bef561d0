//! The TLS configurations QUIC needs, and why they authenticate nobody.
//!
//! QUIC cannot run without TLS 1.3: its packet protection keys come from the TLS handshake.
//! ferry already authenticates peers with Noise inside the stream, by the same static keys
//! and rules on every transport (PROTOCOL.md 6.11), so TLS here only encrypts packets: each
//! endpoint presents a throwaway self-signed certificate made at start, and the dialer
//! accepts any certificate while still checking that the handshake is signed by the key the
//! certificate names, as TLS requires.

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};

use crate::QuicError;

/// The ALPN protocol name of ferry over QUIC (PROTOCOL.md 6.11).
pub const ALPN: &[u8] = b"ferry/1";

/// The server name a dialer puts in its TLS ClientHello; the certificate carries it too, and
/// neither side checks it.
pub const SERVER_NAME: &str = "ferry";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The provider of an endpoint that draws from the operating system: ring's.
pub(crate) fn os_provider() -> Arc<CryptoProvider> {
    provider()
}

/// The dialing side's TLS: TLS 1.3, ALPN `ferry/1`, any certificate, no resumption.
pub(crate) fn client_config(provider: Arc<CryptoProvider>) -> Result<rustls::ClientConfig, QuicError> {
    let verifier = AnyCertificate { algorithms: provider.signature_verification_algorithms };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|error| QuicError::Tls(error.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// A fresh self-signed certificate (ECDSA P-256) and its key, from the operating system's
/// randomness.
pub(crate) fn os_certificate() -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), QuicError> {
    let certified = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_owned()])
        .map_err(|error| QuicError::Tls(error.to_string()))?;
    let certificate = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    Ok((certificate, key))
}

/// The accepting side's TLS: TLS 1.3, ALPN `ferry/1`, the certificate given, no tickets.
pub(crate) fn server_config(
    provider: Arc<CryptoProvider>,
    certificate: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Result<rustls::ServerConfig, QuicError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|error| QuicError::Tls(error.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![certificate], key)
        .map_err(|error| QuicError::Tls(error.to_string()))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// Accepts every server certificate: Noise, not TLS, says who the peer is.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, certificate, signature, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, certificate, signature, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
