//! The lead score, 0–100: transparent points per check and for completeness, each with
//! a reason the seller and the buyer can read (`"email valid: +30"`). A check that was
//! not done costs nothing where its absence says nothing about the lead (a local source
//! IP), and earns nothing where the seller left a field out. The lookups' findings (a
//! proxy or VPN source, the company's registry status) only add points or reasons when
//! a lookup was done, so a lead scores as before where none is configured.
//!
//! The points come from [`CHECKS`], one row per check; a list may override any of them
//! (`scoreWeights`), and the checks it leaves out keep their defaults.

use crate::{
    error::{ApiError, ApiResult},
    normalise::Normalised,
    verify::{Verifications, registry::CnpjStatus, registry::reason::NOT_FOUND},
};
use serde_json::{Map, Value};

/// A weighted check: its name in `scoreWeights`, its default points and what earns (or,
/// for a penalty, costs) them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Check {
    pub name: &'static str,
    pub default: i32,
    pub about: &'static str,
}

/// Every weighted check. Adding one is a row here and its use in [`score`]. The
/// defaults add up to 100 for a complete, valid lead with a CNPJ (90 without one).
#[rustfmt::skip] // one row per check reads as the table it is
pub const CHECKS: &[Check] = &[
    Check { name: "email_valid", default: 30, about: "earned by a valid email" },
    Check { name: "email_role", default: 10, about: "taken off a valid email that reaches a team (info@, sales@)" },
    Check { name: "phone_valid", default: 30, about: "earned by a valid phone" },
    Check { name: "cnpj_valid", default: 10, about: "earned by a CNPJ with valid check digits" },
    Check { name: "cnpj_invalid", default: 10, about: "taken off when a CNPJ has wrong check digits" },
    Check { name: "ip_clean", default: 10, about: "earned in full at IP risk 0 (or when not assessed), none at risk 100" },
    Check { name: "completeness", default: 5, about: "earned per standard field present (email, phone, name, company)" },
    Check { name: "cnpj_active", default: 5, about: "earned when the registry says the company is active" },
    Check { name: "cnpj_inactive", default: 20, about: "taken off when the registry says the company is not active, or does not know it" },
    Check { name: "ip_proxy", default: 20, about: "taken off a source that is a proxy or Tor exit" },
    Check { name: "ip_vpn", default: 15, about: "taken off a source that is a VPN" },
];

/// The points a list may give one check.
pub const POINTS: std::ops::RangeInclusive<i32> = 0..=100;

const N: usize = CHECKS.len();

/// Points per check, in the order of [`CHECKS`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights([i32; N]);

impl Weights {
    /// The default weights of [`CHECKS`].
    pub const DEFAULT: Weights = {
        let mut points = [0; N];
        let mut i = 0;
        while i < N {
            points[i] = CHECKS[i].default;
            i += 1;
        }
        Weights(points)
    };

    fn index(check: &str) -> Option<usize> {
        CHECKS.iter().position(|c| c.name == check)
    }

    /// The points of `check` (0 for a name that is not in [`CHECKS`]).
    pub fn get(&self, check: &str) -> i32 {
        let index = Self::index(check);
        debug_assert!(index.is_some(), "unknown score check {check:?}");
        index.map_or(0, |i| self.0[i])
    }

    /// `(check, points)` for every check, in the order of [`CHECKS`].
    pub fn iter(&self) -> impl Iterator<Item = (&'static Check, i32)> + '_ {
        CHECKS.iter().zip(self.0)
    }

    /// The weights stored on a list: its overrides (`{"email_valid": 40}`) over the
    /// defaults. Anything else in the JSON is ignored (it was validated when set).
    pub fn stored(overrides: &Value) -> Self {
        let mut w = Self::DEFAULT;
        for (name, points) in overrides.as_object().into_iter().flatten() {
            let points = points.as_i64().and_then(|p| i32::try_from(p).ok());
            if let (Some(i), Some(points)) = (Self::index(name), points)
                && POINTS.contains(&points)
            {
                w.0[i] = points;
            }
        }
        w
    }

    /// Validates `scoreWeights` and returns the overrides to store: each check at most
    /// once, known, with points in [`POINTS`]. Checks left out keep their defaults.
    pub fn overrides<'a>(given: impl IntoIterator<Item = (&'a str, i32)>) -> ApiResult<Value> {
        let mut out = Map::new();
        for (name, points) in given {
            let name = name.trim();
            if Self::index(name).is_none() {
                let known: Vec<&str> = CHECKS.iter().map(|c| c.name).collect();
                return Err(ApiError::BadInput(format!(
                    "scoreWeights: unknown check {name:?} (expected one of {})",
                    known.join(", ")
                )));
            }
            if !POINTS.contains(&points) {
                return Err(ApiError::BadInput(format!(
                    "scoreWeights: points of {name} must be between {} and {}",
                    POINTS.start(),
                    POINTS.end()
                )));
            }
            if out.insert(name.to_owned(), points.into()).is_some() {
                return Err(ApiError::BadInput(format!(
                    "scoreWeights: {name} is given more than once"
                )));
            }
        }
        Ok(Value::Object(out))
    }
}

/// The score of a verified lead and the reasons that add up to it.
pub fn score(lead: &Normalised, v: &Verifications, w: &Weights) -> (i32, Vec<String>) {
    let mut points = Vec::new();
    points.push(match v.email_valid {
        Some(true) => ("email valid".to_owned(), w.get("email_valid")),
        Some(false) => (format!("email invalid ({})", v.email_reasons.join(", ")), 0),
        None => ("no email".to_owned(), 0),
    });
    if v.email_valid == Some(true) && v.email_role == Some(true) {
        points.push(("email is a role account".to_owned(), -w.get("email_role")));
    }
    points.push(match v.phone_valid {
        Some(true) => ("phone valid".to_owned(), w.get("phone_valid")),
        Some(false) => ("phone invalid".to_owned(), 0),
        None => ("no phone".to_owned(), 0),
    });
    points.push(match v.cnpj_valid {
        Some(true) => ("cnpj valid".to_owned(), w.get("cnpj_valid")),
        Some(false) => ("cnpj invalid".to_owned(), -w.get("cnpj_invalid")),
        None => ("no cnpj".to_owned(), 0),
    });
    match v.cnpj_status {
        Some(CnpjStatus::Active) => points.push(("cnpj active".to_owned(), w.get("cnpj_active"))),
        Some(status) => points.push((
            format!("cnpj {} in the registry", cnpj_status_word(status)),
            -w.get("cnpj_inactive"),
        )),
        None if v.cnpj_reasons.contains(&NOT_FOUND) => points.push((
            "cnpj not found in the registry".to_owned(),
            -w.get("cnpj_inactive"),
        )),
        None => {}
    }
    let ip_clean = w.get("ip_clean");
    points.push(match v.ip_risk_score {
        Some(risk) => (
            format!("ip risk {risk}"),
            ip_clean * (100 - i32::from(risk.min(100))) / 100,
        ),
        None => ("ip not assessed".to_owned(), ip_clean),
    });
    if v.ip_proxy == Some(true) {
        points.push(("ip is a proxy".to_owned(), -w.get("ip_proxy")));
    }
    if v.ip_vpn == Some(true) {
        points.push(("ip is a vpn".to_owned(), -w.get("ip_vpn")));
    }
    let present = [&lead.email, &lead.phone, &lead.name, &lead.company]
        .iter()
        .filter(|f| f.is_some())
        .count();
    let present = i32::try_from(present).unwrap_or(0);
    points.push((
        format!("{present}/4 standard fields"),
        present * w.get("completeness"),
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
    use proptest::prelude::*;
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

    /// `scoreWeights` as `(check, points)` pairs.
    type Pairs = &'static [(&'static str, i32)];

    /// Weights from `scoreWeights` pairs, as a list stores and intake reads them.
    fn weights(pairs: &[(&str, i32)]) -> Weights {
        let stored = Weights::overrides(pairs.iter().copied()).expect("valid weights");
        Weights::stored(&stored)
    }

    #[test]
    fn weighted_scores() {
        let full = lead("ana@example.com", "11987654321", "Ana", "ACME", None);
        let role = lead("info@example.com", "11987654321", "Ana", "ACME", None);
        let bad_cnpj = lead("", "", "", "", Some("11.222.333/0001-82"));
        let cases: [(&str, Pairs, &Normalised, i32, &[&str]); 7] = [
            (
                "defaults",
                &[],
                &full,
                90,
                &[
                    "email valid: +30",
                    "phone valid: +30",
                    "4/4 standard fields: +20",
                ],
            ),
            (
                "email weighs more",
                &[("email_valid", 60)],
                &full,
                100,
                &["email valid: +60", "phone valid: +30"],
            ),
            (
                "phone worth nothing",
                &[("phone_valid", 0), ("completeness", 0)],
                &full,
                40,
                &[
                    "phone valid: +0",
                    "4/4 standard fields: +0",
                    "ip risk 0: +10",
                ],
            ),
            (
                "clamped at 100",
                &[("email_valid", 100), ("phone_valid", 100)],
                &full,
                100,
                &["email valid: +100", "phone valid: +100"],
            ),
            (
                "heavier role penalty",
                &[("email_role", 50)],
                &role,
                40,
                &["email is a role account: -50"],
            ),
            (
                "clamped at 0",
                &[("cnpj_invalid", 100), ("ip_clean", 0)],
                &bad_cnpj,
                0,
                &[
                    "cnpj invalid: -100",
                    "ip risk 0: +0",
                    "0/4 standard fields: +0",
                ],
            ),
            (
                "ip weight, clamped",
                &[("ip_clean", 40)],
                &full,
                100,
                &["ip risk 0: +40"],
            ),
        ];
        for (case, pairs, lead, expected, reasons_include) in cases {
            let (v, _) = verify(lead, [8, 8, 8, 8].into(), Region::BR);
            let (score, reasons) = score(lead, &v, &weights(pairs));
            assert_eq!(score, expected, "{case}: {reasons:?}");
            for reason in reasons_include {
                assert!(
                    reasons.iter().any(|r| r == reason),
                    "{case}: {reason} not in {reasons:?}"
                );
            }
        }
    }

    #[test]
    fn weights_are_validated_naming_the_field() {
        let cases: [(&str, Pairs, &str); 5] = [
            (
                "unknown check",
                &[("vibes", 10)],
                "scoreWeights: unknown check \"vibes\"",
            ),
            (
                "negative points",
                &[("email_valid", -1)],
                "scoreWeights: points of email_valid must be between 0 and 100",
            ),
            (
                "too many points",
                &[("phone_valid", 101)],
                "scoreWeights: points of phone_valid",
            ),
            (
                "a check twice",
                &[("email_valid", 10), ("email_valid", 20)],
                "scoreWeights: email_valid is given more than once",
            ),
            (
                "a penalty out of range",
                &[("email_role", 1000)],
                "scoreWeights: points of email_role",
            ),
        ];
        for (case, pairs, prefix) in cases {
            let err = Weights::overrides(pairs.iter().copied())
                .expect_err(case)
                .to_string();
            assert!(err.starts_with(prefix), "{case}: {err}");
        }
        assert_eq!(
            Weights::overrides([(" email_valid ", 0), ("completeness", 100)]).ok(),
            Some(json!({"email_valid": 0, "completeness": 100}))
        );
        assert_eq!(Weights::overrides([]).ok(), Some(json!({})));
    }

    #[test]
    fn stored_weights_fall_back_to_the_defaults() {
        let cases = [
            ("nothing stored", json!({}), Weights::DEFAULT),
            ("not an object", json!([1, 2]), Weights::DEFAULT),
            (
                "junk ignored",
                json!({"vibes": 5, "email_valid": "x", "phone_valid": 500}),
                Weights::DEFAULT,
            ),
            ("one override", json!({"phone_valid": 45}), {
                let mut w = Weights::DEFAULT;
                w.0[Weights::index("phone_valid").expect("a check")] = 45;
                w
            }),
        ];
        for (case, stored, expected) in cases {
            assert_eq!(Weights::stored(&stored), expected, "{case}");
        }
        assert_eq!(Weights::DEFAULT.get("email_valid"), 30);
        let names: Vec<&str> = Weights::DEFAULT.iter().map(|(c, _)| c.name).collect();
        assert_eq!(names.len(), CHECKS.len());
        assert!(
            Weights::DEFAULT
                .iter()
                .all(|(c, p)| c.default == p && POINTS.contains(&p)),
            "defaults are in range"
        );
    }

    #[test]
    fn check_names_are_unique() {
        for (i, check) in CHECKS.iter().enumerate() {
            assert_eq!(
                Weights::index(check.name),
                Some(i),
                "{} is listed twice",
                check.name
            );
        }
    }

    proptest! {
        /// Any lead, any source, any region and any valid weights: the score stays in
        /// 0–100 and every reason reads as points.
        #[test]
        fn the_score_stays_in_range(
            fields in proptest::collection::vec(proptest::option::of(".{0,40}"), 4),
            cnpj in proptest::option::of("[0-9./-]{0,20}"),
            ip in any::<u32>(),
            points in proptest::collection::vec(POINTS, CHECKS.len()),
        ) {
            let field = |i: usize| fields[i].clone();
            let mut lead = Normalised {
                email: field(0),
                phone: field(1),
                name: field(2),
                company: field(3),
                ..Normalised::default()
            };
            if let Some(cnpj) = cnpj {
                lead.custom_fields.insert("cnpj".into(), json!(cnpj));
            }
            let pairs = CHECKS.iter().map(|c| c.name).zip(points.iter().copied());
            let w = Weights::stored(&Weights::overrides(pairs).map_err(|e| TestCaseError::fail(e.to_string()))?);
            let (v, _) = verify(&lead, IpAddr::from(ip.to_be_bytes()), Region::BR);
            let (score, reasons) = score(&lead, &v, &w);
            prop_assert!((0..=100).contains(&score), "{score}");
            prop_assert!(reasons.iter().all(|r| r.contains(": +") || r.contains(": -")), "{reasons:?}");
        }
    }
}
