//! Test certificates made with rcgen at test time: a CA and leaf
//! certificates it signs (broker and client), all PEM, for the tests that put
//! the mock cluster behind TLS.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A certificate authority.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    /// A CA named `cn` (distinct names: webpki finds issuers by name).
    pub fn new(cn: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf certificate for `name` (a DNS name or an IP address) and its
    /// key, both PEM; valid 2020 to `not_after_year` when given.
    pub fn leaf(&self, name: &str, not_after_year: Option<i32>) -> (String, String) {
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        if let Some(y) = not_after_year {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(y, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}
