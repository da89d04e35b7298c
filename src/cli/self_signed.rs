//! A throw-away self-signed TLS certificate for `token user --https` (Hydra regenerates one on
//! every start too): a P-256 key from ring and a minimal X.509 v3 certificate for `127.0.0.1`
//! and `localhost`, DER-encoded by hand (RFC 5280 §4.1) to avoid a certificate-generation
//! dependency for a demo command.
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

/// OID 1.2.840.10045.4.3.2, ecdsa-with-SHA256.
const ECDSA_WITH_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/// OID 1.2.840.10045.2.1, id-ecPublicKey.
const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// OID 1.2.840.10045.3.1.7, prime256v1.
const PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// OID 2.5.4.3, commonName.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// OID 2.5.29.17, subjectAltName.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// One DER element: tag, definite length, contents.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn oid(der: &[u8]) -> Vec<u8> {
    tlv(0x06, der)
}

fn utc_time(t: time::OffsetDateTime) -> Vec<u8> {
    let s = format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}Z",
        t.year() % 100,
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    tlv(0x17, s.as_bytes())
}

/// A certificate (DER) and its PKCS#8 private key (DER), valid for a day.
pub(crate) fn certificate() -> Result<(Vec<u8>, Vec<u8>), String> {
    let rng = SystemRandom::new();
    let fail = |what: &str| format!("cannot create the self-signed certificate: {what}");
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|_| fail("key generation failed"))?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| fail("the generated key was rejected"))?;
    let mut serial = [0u8; 16];
    ring::rand::SecureRandom::fill(&rng, &mut serial).map_err(|_| fail("no randomness"))?;
    serial[0] = (serial[0] & 0x7f) | 0x01; // positive and without a leading zero byte
    let algorithm = seq(&[oid(ECDSA_WITH_SHA256)]);
    let name = seq(&[tlv(
        0x31,
        &seq(&[oid(COMMON_NAME), tlv(0x0c, b"portcullis token user")]),
    )]);
    let now = time::OffsetDateTime::now_utc();
    let validity = seq(&[
        utc_time(now - time::Duration::hours(1)),
        utc_time(now + time::Duration::days(1)),
    ]);
    let mut point = vec![0u8]; // BIT STRING: no unused bits
    point.extend_from_slice(key.public_key().as_ref());
    let spki = seq(&[
        seq(&[oid(EC_PUBLIC_KEY), oid(PRIME256V1)]),
        tlv(0x03, &point),
    ]);
    // iPAddress [7] 127.0.0.1 and dNSName [2] localhost.
    let alt_names = seq(&[tlv(0x87, &[127, 0, 0, 1]), tlv(0x82, b"localhost")]);
    let extensions = tlv(
        0xa3,
        &seq(&[seq(&[oid(SUBJECT_ALT_NAME), tlv(0x04, &alt_names)])]),
    );
    let tbs = seq(&[
        tlv(0xa0, &tlv(0x02, &[2])), // version v3
        tlv(0x02, &serial),
        algorithm.clone(),
        name.clone(),
        validity,
        name,
        spki,
        extensions,
    ]);
    let signature = key.sign(&rng, &tbs).map_err(|_| fail("signing failed"))?;
    let mut sig_bits = vec![0u8];
    sig_bits.extend_from_slice(signature.as_ref());
    let cert = seq(&[tbs, algorithm, tlv(0x03, &sig_bits)]);
    Ok((cert, pkcs8.as_ref().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::tlv;

    #[test]
    fn der_lengths() {
        assert_eq!(tlv(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = tlv(0x04, &[0; 200]);
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        let longer = tlv(0x04, &[0; 300]);
        assert_eq!(&longer[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn rustls_accepts_the_certificate() {
        let built = super::certificate().and_then(|(cert, key)| {
            let key = rustls::pki_types::PrivateKeyDer::try_from(key).map_err(str::to_string)?;
            let provider = rustls::crypto::ring::default_provider();
            rustls::ServerConfig::builder_with_provider(provider.into())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_no_client_auth()
                .with_single_cert(vec![cert.into()], key)
                .map_err(|e| e.to_string())
        });
        assert!(built.is_ok(), "{:?}", built.err());
    }
}
