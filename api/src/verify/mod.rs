//! Offline verification of a normalised lead: a module per check, each pure and
//! microseconds long. The result fills the lead's `verifications` object (the seven keys
//! of the default body, ARCHITECTURE §9, plus details).

pub mod cnpj;
pub mod email;
pub mod ip;
pub mod phone;

use crate::normalise::{CNPJ, Normalised};
pub use phonenumber::country::Id as Region;
use serde::Serialize;
use std::net::IpAddr;

/// What the checks found. `None` means not checked (the field was not sent, or, for the
/// IP, the source is local) and serialises as null.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verifications {
    pub email_valid: Option<bool>,
    pub phone_valid: Option<bool>,
    pub cnpj_valid: Option<bool>,
    /// Registry status (`Active`, …); needs the registry client, null until then.
    pub cnpj_status: Option<String>,
    pub ip_risk_score: Option<u8>,
    /// Proxy and VPN detection need a provider; null without one.
    pub ip_proxy: Option<bool>,
    pub ip_vpn: Option<bool>,
    pub email_disposable: Option<bool>,
    pub email_role: Option<bool>,
    pub email_reasons: Vec<&'static str>,
    pub phone_type: Option<&'static str>,
    pub ip_bogon: Option<bool>,
}

/// Runs every offline check, reading a phone number without a country code in `region`
/// (the list's). Returns the verifications and, when the phone is valid, its E.164 form
/// to store in place of what the seller sent.
pub fn verify(
    lead: &Normalised,
    source: IpAddr,
    region: Region,
) -> (Verifications, Option<String>) {
    let email = lead.email.as_deref().map(email::check);
    let phone = lead.phone.as_deref().map(|p| phone::check(p, region));
    let ip = ip::check(source);
    let verifications = Verifications {
        email_valid: email.as_ref().map(|e| e.valid),
        phone_valid: phone.as_ref().map(|p| p.valid),
        cnpj_valid: lead.custom_text(CNPJ).map(cnpj::is_valid),
        cnpj_status: None,
        ip_risk_score: ip.risk_score,
        ip_proxy: None,
        ip_vpn: None,
        email_disposable: email.as_ref().map(|e| e.disposable),
        email_role: email.as_ref().map(|e| e.role),
        email_reasons: email.map(|e| e.reasons).unwrap_or_default(),
        phone_type: phone.as_ref().and_then(|p| p.line_type),
        ip_bogon: ip.bogon,
    };
    (verifications, phone.and_then(|p| p.e164))
}

/// Loads the lookup tables now, so the first lead is as fast as the others.
pub fn warm_up() {
    email::warm_up();
    phone::warm_up();
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn an_empty_lead_has_every_key_null() {
        let (v, phone) = verify(
            &Normalised::default(),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            Region::BR,
        );
        assert_eq!(phone, None);
        let value = serde_json::to_value(&v).unwrap_or_default();
        for key in [
            "email_valid",
            "phone_valid",
            "cnpj_valid",
            "cnpj_status",
            "ip_risk_score",
            "ip_proxy",
            "ip_vpn",
        ] {
            assert_eq!(value[key], json!(null), "{key}");
        }
    }

    #[test]
    fn a_full_lead_is_checked_and_its_phone_becomes_e164() {
        let mut lead = Normalised {
            email: Some("info@example.com".into()),
            phone: Some("(11) 98765-4321".into()),
            ..Normalised::default()
        };
        lead.custom_fields
            .insert(CNPJ.into(), json!("12.ABC.345/01DE-35"));
        let (v, phone) = verify(&lead, IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)), Region::BR);
        assert_eq!(phone.as_deref(), Some("+5511987654321"));
        assert_eq!(
            serde_json::to_value(&v).unwrap_or_default(),
            json!({
                "email_valid": true, "phone_valid": true, "cnpj_valid": true,
                "cnpj_status": null, "ip_risk_score": 0, "ip_proxy": null, "ip_vpn": null,
                "email_disposable": false, "email_role": true,
                "email_reasons": ["email_role_account"], "phone_type": "mobile",
                "ip_bogon": false,
            })
        );
    }

    #[test]
    fn the_phone_is_read_in_the_given_region() {
        let lead = Normalised {
            phone: Some("(650) 253-0000".into()),
            ..Normalised::default()
        };
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let (in_us, e164) = verify(&lead, local, Region::US);
        assert_eq!(
            (in_us.phone_valid, e164.as_deref()),
            (Some(true), Some("+16502530000"))
        );
        let (in_br, e164) = verify(&lead, local, Region::BR);
        assert_eq!((in_br.phone_valid, e164), (Some(false), None));
    }

    fn sources() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|ip| IpAddr::V4(Ipv4Addr::from(ip))),
            any::<u128>().prop_map(|ip| IpAddr::V6(Ipv6Addr::from(ip))),
        ]
    }

    proptest! {
        /// Every verifier together, on any fields, source and region: no panic, a valid
        /// phone always has its E.164 form, and a check is done exactly when its field
        /// was sent.
        #[test]
        fn verify_never_panics(
            email in proptest::option::of(".{0,80}"),
            phone in proptest::option::of(prop_oneof![".{0,40}", "\\+?[0-9 ()-]{0,24}"]),
            cnpj in proptest::option::of(prop_oneof![".{0,30}", "[0-9A-Z./-]{0,20}"]),
            source in sources(),
            region in "[A-Z]{2}",
        ) {
            let mut lead = Normalised {
                email: email.clone(),
                phone: phone.clone(),
                ..Normalised::default()
            };
            if let Some(cnpj) = &cnpj {
                lead.custom_fields.insert(CNPJ.into(), json!(cnpj));
            }
            let region = region.parse().unwrap_or(Region::BR);
            let (v, e164) = verify(&lead, source, region);
            prop_assert_eq!(v.email_valid.is_some(), email.is_some());
            prop_assert_eq!(v.phone_valid.is_some(), phone.is_some());
            prop_assert_eq!(v.cnpj_valid.is_some(), cnpj.is_some());
            prop_assert_eq!(v.phone_valid == Some(true), e164.is_some());
            prop_assert!(v.ip_risk_score.is_none_or(|r| r <= 100));
        }
    }
}
