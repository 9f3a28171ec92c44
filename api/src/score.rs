//! The lead score, 0–100: transparent points per check and for completeness, each with
//! a reason the seller and the buyer can read (`"email valid: +30"`). A check that was
//! not done costs nothing where its absence says nothing about the lead (a local source
//! IP), and earns nothing where the seller left a field out. The lookups' findings (a
//! proxy or VPN source, the company's registry status) only add points or reasons when
//! a lookup was done, so a lead scores as before where none is configured.

use crate::{
    normalise::Normalised,
    verify::{Verifications, registry::CnpjStatus, registry::reason::NOT_FOUND},
};

/// Points per check. Per-list weights are a later step; [`Weights::DEFAULT`] adds up to
/// 100 for a complete, valid lead with a CNPJ (90 without one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub email_valid: i32,
    /// Taken off a valid email that reaches a team rather than a person.
    pub email_role: i32,
    pub phone_valid: i32,
    pub cnpj_valid: i32,
    /// Taken off when a CNPJ was sent with wrong check digits.
    pub cnpj_invalid: i32,
    /// Earned in full at risk 0 (or when not assessed), none at risk 100.
    pub ip_clean: i32,
    /// Per standard field present: email, phone, name, company.
    pub per_field: i32,
    /// Earned when the registry says the company is active.
    pub cnpj_active: i32,
    /// Taken off when the registry says it is not active, or does not know it.
    pub cnpj_inactive: i32,
    /// Taken off a source that is a proxy or Tor exit.
    pub ip_proxy: i32,
    /// Taken off a source that is a VPN.
    pub ip_vpn: i32,
}

impl Weights {
    /// The default weights.
    pub const DEFAULT: Weights = Weights {
        email_valid: 30,
        email_role: 10,
        phone_valid: 30,
        cnpj_valid: 10,
        cnpj_invalid: 10,
        ip_clean: 10,
        per_field: 5,
        cnpj_active: 5,
        cnpj_inactive: 20,
        ip_proxy: 20,
        ip_vpn: 15,
    };
}

/// The score of a verified lead and the reasons that add up to it.
pub fn score(lead: &Normalised, v: &Verifications, w: &Weights) -> (i32, Vec<String>) {
    let mut points = Vec::new();
    points.push(match v.email_valid {
        Some(true) => ("email valid".to_owned(), w.email_valid),
        Some(false) => (format!("email invalid ({})", v.email_reasons.join(", ")), 0),
        None => ("no email".to_owned(), 0),
    });
    if v.email_valid == Some(true) && v.email_role == Some(true) {
        points.push(("email is a role account".to_owned(), -w.email_role));
    }
    points.push(match v.phone_valid {
        Some(true) => ("phone valid".to_owned(), w.phone_valid),
        Some(false) => ("phone invalid".to_owned(), 0),
        None => ("no phone".to_owned(), 0),
    });
    points.push(match v.cnpj_valid {
        Some(true) => ("cnpj valid".to_owned(), w.cnpj_valid),
        Some(false) => ("cnpj invalid".to_owned(), -w.cnpj_invalid),
        None => ("no cnpj".to_owned(), 0),
    });
    match v.cnpj_status {
        Some(CnpjStatus::Active) => points.push(("cnpj active".to_owned(), w.cnpj_active)),
        Some(status) => points.push((
            format!("cnpj {} in the registry", cnpj_status_word(status)),
            -w.cnpj_inactive,
        )),
        None if v.cnpj_reasons.contains(&NOT_FOUND) => points.push((
            "cnpj not found in the registry".to_owned(),
            -w.cnpj_inactive,
        )),
        None => {}
    }
    points.push(match v.ip_risk_score {
        Some(risk) => (
            format!("ip risk {risk}"),
            w.ip_clean * (100 - i32::from(risk.min(100))) / 100,
        ),
        None => ("ip not assessed".to_owned(), w.ip_clean),
    });
    if v.ip_proxy == Some(true) {
        points.push(("ip is a proxy".to_owned(), -w.ip_proxy));
    }
    if v.ip_vpn == Some(true) {
        points.push(("ip is a vpn".to_owned(), -w.ip_vpn));
    }
    let present = [&lead.email, &lead.phone, &lead.name, &lead.company]
        .iter()
        .filter(|f| f.is_some())
        .count();
    let present = i32::try_from(present).unwrap_or(0);
    points.push((
        format!("{present}/4 standard fields"),
        present * w.per_field,
    ));

    let total = points.iter().map(|(_, p)| p).sum::<i32>().clamp(0, 100);
    let reasons = points
        .into_iter()
        .map(|(what, p)| format!("{what}: {p:+}"))
        .collect();
    (total, reasons)
}

/// How a reason names a status that is not active.
fn cnpj_status_word(status: CnpjStatus) -> &'static str {
    match status {
        CnpjStatus::Active => "active",
        CnpjStatus::Suspended => "suspended",
        CnpjStatus::Unfit => "unfit",
        CnpjStatus::Closed => "closed",
        CnpjStatus::Void => "void",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{Region, verify};
    use serde_json::json;
    use std::net::IpAddr;

    fn lead(email: &str, phone: &str, name: &str, company: &str, cnpj: Option<&str>) -> Normalised {
        let text = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
        let mut lead = Normalised {
            email: text(email),
            phone: text(phone),
            name: text(name),
            company: text(company),
            ..Normalised::default()
        };
        if let Some(cnpj) = cnpj {
            lead.custom_fields.insert("cnpj".into(), json!(cnpj));
        }
        lead
    }

    #[test]
    fn scores() {
        let local: IpAddr = [127, 0, 0, 1].into();
        let bogon: IpAddr = [192, 0, 2, 1].into();
        let cases = [
            (
                "complete and valid with cnpj",
                lead(
                    "ana@example.com",
                    "11987654321",
                    "Ana",
                    "ACME",
                    Some("11.222.333/0001-81"),
                ),
                local,
                100,
            ),
            (
                "complete and valid without cnpj",
                lead("ana@example.com", "11987654321", "Ana", "ACME", None),
                local,
                90,
            ),
            (
                "role account",
                lead("info@example.com", "11987654321", "Ana", "ACME", None),
                local,
                80,
            ),
            (
                "invalid cnpj",
                lead(
                    "ana@example.com",
                    "11987654321",
                    "Ana",
                    "ACME",
                    Some("11.222.333/0001-82"),
                ),
                local,
                80,
            ),
            (
                "bogon source",
                lead("ana@example.com", "11987654321", "Ana", "ACME", None),
                bogon,
                80,
            ),
            (
                "invalid email and phone",
                lead("ana@", "123", "Ana", "", None),
                local,
                25,
            ),
            (
                "disposable email only",
                lead("x@mailinator.com", "", "", "", None),
                local,
                15,
            ),
            ("nothing", lead("", "", "", "", None), local, 10),
            (
                "nothing but an invalid cnpj",
                lead("", "", "", "", Some("1")),
                bogon,
                0,
            ),
        ];
        for (case, lead, ip, expected) in cases {
            let (v, _) = verify(&lead, ip, Region::BR);
            let (score, reasons) = score(&lead, &v, &Weights::DEFAULT);
            assert_eq!(score, expected, "{case}: {reasons:?}");
            assert_eq!(
                reasons.len(),
                5 + usize::from(v.email_role == Some(true) && v.email_valid == Some(true)),
                "{case}"
            );
        }
    }

    #[test]
    fn an_invalid_email_says_why() {
        let lead = lead("x@mailinator.com", "", "", "", None);
        let (v, _) = verify(&lead, [8, 8, 8, 8].into(), Region::BR);
        let (_, reasons) = score(&lead, &v, &Weights::DEFAULT);
        assert_eq!(reasons[0], "email invalid (email_disposable): +0");
    }

    #[test]
    fn reasons_read_as_points() {
        let lead = lead("info@example.com", "", "Ana", "", None);
        let (v, _) = verify(&lead, [8, 8, 8, 8].into(), Region::BR);
        let (score, reasons) = score(&lead, &v, &Weights::DEFAULT);
        assert_eq!(score, 40);
        assert_eq!(
            reasons,
            [
                "email valid: +30",
                "email is a role account: -10",
                "no phone: +0",
                "no cnpj: +0",
                "ip risk 0: +10",
                "2/4 standard fields: +10",
            ]
        );
    }

    #[test]
    fn lookup_findings_earn_and_cost_points() {
        let lead = lead(
            "ana@example.com",
            "11987654321",
            "Ana",
            "ACME",
            Some("11.222.333/0001-81"),
        );
        let (offline, _) = verify(&lead, [8, 8, 8, 8].into(), Region::BR);
        let with = |change: &dyn Fn(&mut Verifications)| {
            let mut v = offline.clone();
            change(&mut v);
            score(&lead, &v, &Weights::DEFAULT)
        };
        /// (case, change, score, the reason it adds)
        type Case<'a> = (&'a str, &'a dyn Fn(&mut Verifications), i32, &'a str);
        let cases: [Case; 6] = [
            (
                "active company",
                &|v| v.cnpj_status = Some(CnpjStatus::Active),
                100,
                "cnpj active: +5",
            ),
            (
                "closed company",
                &|v| v.cnpj_status = Some(CnpjStatus::Closed),
                80,
                "cnpj closed in the registry: -20",
            ),
            (
                "unknown to the registry",
                &|v| v.cnpj_reasons.push(NOT_FOUND),
                80,
                "cnpj not found in the registry: -20",
            ),
            (
                "vpn with risk 66",
                &|v| {
                    v.ip_vpn = Some(true);
                    v.ip_proxy = Some(false);
                    v.ip_risk_score = Some(66);
                },
                78,
                "ip is a vpn: -15",
            ),
            (
                "proxy with risk 100",
                &|v| {
                    v.ip_proxy = Some(true);
                    v.ip_risk_score = Some(100);
                },
                70,
                "ip is a proxy: -20",
            ),
            (
                "a registry timeout costs nothing",
                &|v| {
                    v.cnpj_reasons
                        .push(crate::verify::registry::reason::TIMEOUT)
                },
                100,
                "cnpj valid: +10",
            ),
        ];
        for (case, change, expected, reason) in cases {
            let (got, reasons) = with(change);
            assert_eq!(got, expected, "{case}: {reasons:?}");
            assert!(reasons.iter().any(|r| r == reason), "{case}: {reasons:?}");
        }
    }
}
