//! EC2 instance identity documents: the JSON an instance reads from its
//! metadata service (`/latest/dynamic/instance-identity/document`) and its
//! RSA-SHA256 signature (`…/signature`), checked against the certificates
//! AWS publishes per region ("RSA" certificates in the EC2 documentation),
//! which the operator saves in one PEM file (`fleet.ec2_identity_certificates`).
//!
//! A verified document proves the enrolling host is an EC2 instance of the
//! account it names; it is what binds an enrolment to one instance.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::SignatureScheme;
use serde::Deserialize;

/// The fields of a document honeytrail uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityDocument {
    pub account_id: String,
    pub instance_id: String,
    pub region: String,
    #[serde(default)]
    pub pending_time: Option<String>,
}

/// The public keys of the trusted certificates.
#[derive(Debug, Clone, Default)]
pub struct IdentityKeys {
    keys: Vec<Vec<u8>>,
}

/// One DER element: (tag, content, rest).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The RSA public key (the subjectPublicKey bits) of an X.509 certificate,
/// version 1 or 3 (AWS's region certificates are of both).
fn public_key(cert: &[u8]) -> Option<Vec<u8>> {
    const SEQUENCE: u8 = 0x30;
    let (SEQUENCE, certificate, _) = der(cert)? else { return None };
    let (SEQUENCE, tbs, _) = der(certificate)? else { return None };
    let mut rest = tbs;
    let (tag, _, after) = der(rest)?;
    if tag == 0xa0 {
        rest = after; // [0] version
    }
    // serial, signature algorithm, issuer, validity, subject
    for _ in 0..5 {
        rest = der(rest)?.2;
    }
    let (SEQUENCE, spki, _) = der(rest)? else { return None };
    let (SEQUENCE, _algorithm, after) = der(spki)? else { return None };
    let (0x03, bits, _) = der(after)? else { return None };
    let (&unused, key) = bits.split_first()?;
    (unused == 0).then(|| key.to_vec())
}

impl IdentityKeys {
    /// Every certificate in a PEM file.
    pub fn load(path: &Path) -> Result<IdentityKeys, String> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: not PEM certificates: {e}", path.display()))?;
        let keys: Vec<Vec<u8>> = certs.iter().filter_map(|c| public_key(c)).collect();
        if keys.is_empty() {
            return Err(format!(
                "{}: holds no RSA certificate; save AWS's RSA certificates of your regions there (EC2 documentation, \"instance identity documents\")",
                path.display()
            ));
        }
        Ok(IdentityKeys { keys })
    }

    /// Checks the signature (base64 RSA-SHA256 of the document's bytes)
    /// against every trusted key; the document's fields when one matches.
    pub fn verify(&self, document: &str, signature_base64: &str) -> Result<IdentityDocument, String> {
        use base64::Engine;
        let compact: String = signature_base64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let signature = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|_| "the identity signature is not base64".to_string())?;
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let algorithms = provider
            .signature_verification_algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == SignatureScheme::RSA_PKCS1_SHA256)
            .map(|(_, algs)| *algs)
            .unwrap_or_default();
        let signed = self
            .keys
            .iter()
            .any(|key| algorithms.iter().any(|alg| alg.verify_signature(key, document.as_bytes(), &signature).is_ok()));
        if !signed {
            return Err("the instance identity document is not signed by a trusted AWS certificate".into());
        }
        serde_json::from_str(document).map_err(|e| format!("the instance identity document is not one: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_are_bounded() {
        assert_eq!(der(&[0x30, 0x02, 1, 2, 9]), Some((0x30, &[1u8, 2][..], &[9u8][..])));
        assert_eq!(der(&[0x30, 0x82, 0x01, 0x00, 1]), None, "longer than the input");
        assert_eq!(der(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(der(&[0x30]), None);
        assert_eq!(public_key(b"not a certificate"), None);
    }

    /// A certificate made as AWS's are (self-signed; `x509 -req` without
    /// extensions makes a version 1 one, as several of AWS's region
    /// certificates are), a document signed with its key as EC2 signs one.
    #[test]
    fn documents_verify_only_against_the_certificate_that_signed_them() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let doc = r#"{"accountId":"123456789012","instanceId":"i-0abc1234def567890","region":"eu-west-1","pendingTime":"2026-12-01T09:00:00Z","imageId":"ami-1"}"#;
        std::fs::write(d.join("doc"), doc).unwrap();
        let sh = |script: &str| {
            let out = std::process::Command::new("sh").arg("-c").arg(script).current_dir(d).output().unwrap();
            assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
        };
        for name in ["aws", "other"] {
            sh(&format!(
                "openssl req -newkey rsa:2048 -nodes -keyout {name}.key -out {name}.csr -subj /CN={name} \
                 && openssl x509 -req -in {name}.csr -signkey {name}.key -out {name}.pem -days 2"
            ));
        }
        sh("openssl dgst -sha256 -sign aws.key -out doc.sig doc && base64 doc.sig > doc.sig.b64");
        let signature = std::fs::read_to_string(d.join("doc.sig.b64")).unwrap();
        let aws = IdentityKeys::load(&d.join("aws.pem")).unwrap();
        let verified = aws.verify(doc, &signature).unwrap();
        assert_eq!(
            (verified.account_id.as_str(), verified.instance_id.as_str()),
            ("123456789012", "i-0abc1234def567890")
        );
        assert!(aws.verify(&doc.replace("i-0abc", "i-0fff"), &signature).is_err(), "an altered document");
        assert!(aws.verify(doc, "bm90IGEgc2lnbmF0dXJl").is_err(), "a wrong signature");
        assert!(aws.verify(doc, "***").is_err());
        let other = IdentityKeys::load(&d.join("other.pem")).unwrap();
        assert!(other.verify(doc, &signature).is_err(), "another certificate");
        std::fs::write(d.join("empty.pem"), "").unwrap();
        assert!(IdentityKeys::load(&d.join("empty.pem")).is_err());
    }
}
