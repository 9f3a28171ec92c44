//! Verification of a normalised lead. The offline checks (a module per check) are pure
//! and microseconds long; the network-backed ones (MX, CNPJ registry, IP provider) and
//! the IP database are each off unless configured, run concurrently, bounded by the
//! lookup timeout and cached ([`Lookups`]). The result fills the lead's `verifications`
//! object (the seven keys of the default body, ARCHITECTURE §9, plus details and the
//! reasons of lookups that gave no answer).

pub mod cnpj;
pub mod email;
pub mod ip;
pub mod ip_provider;
pub mod lookup;
pub mod maxmind;
pub mod mx;
pub mod phone;
pub mod registry;
#[cfg(test)]
mod test_server;

use crate::{
    config::LookupSettings,
    normalise::{CNPJ, Normalised},
};
use ip::Reputation;
use ip_provider::IpProvider;
use lookup::Failure;
use maxmind::ReputationDb;
use mx::{MailDomain, MxLookup};
pub use phonenumber::country::Id as Region;
use registry::{CnpjRegistry, CnpjStatus, RegistryAnswer};
use serde::Serialize;
use std::net::IpAddr;

/// What the checks found. `None` means not checked (the field was not sent, the lookup
/// is not configured or gave no answer, or, for the IP, the source is local) and
/// serialises as null.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verifications {
    pub email_valid: Option<bool>,
    pub phone_valid: Option<bool>,
    pub cnpj_valid: Option<bool>,
    /// Registry status; needs the registry client (`LEADRELAY_CNPJ_REGISTRY_URL`).
    pub cnpj_status: Option<CnpjStatus>,
    pub ip_risk_score: Option<u8>,
    /// Proxy and VPN detection need a provider or a database; null without one.
    pub ip_proxy: Option<bool>,
    pub ip_vpn: Option<bool>,
    pub email_disposable: Option<bool>,
    pub email_role: Option<bool>,
    pub email_reasons: Vec<&'static str>,
    pub phone_type: Option<&'static str>,
    pub ip_bogon: Option<bool>,
    /// Why a valid CNPJ has no status ([`registry::reason`]).
    pub cnpj_reasons: Vec<&'static str>,
    /// Findings without a field of their own and lookups that gave no answer
    /// ([`ip::reason`]).
    pub ip_reasons: Vec<&'static str>,
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
        cnpj_reasons: Vec::new(),
        ip_reasons: Vec::new(),
    };
    (verifications, phone.and_then(|p| p.e164))
}

/// The configured network lookups and IP database, shared by every request. With none
/// configured, [`Lookups::verify`] is the offline [`verify`] and touches no network.
#[derive(Default)]
pub struct Lookups {
    mx: Option<MxLookup>,
    registry: Option<CnpjRegistry>,
    provider: Option<IpProvider>,
    reputation_db: Option<ReputationDb>,
}

impl Lookups {
    /// The lookups `settings` turn on; an error names the setting that cannot work.
    pub fn from_settings(settings: &LookupSettings) -> anyhow::Result<Self> {
        let timeout = settings.lookup_timeout();
        let http = if settings.cnpj_registry_url.is_some() || settings.ip_provider_url.is_some() {
            Some(lookup::http_client(timeout)?)
        } else {
            None
        };
        Ok(Self {
            mx: settings
                .mx_lookup
                .then(|| MxLookup::new(settings.dns_server, timeout))
                .transpose()?,
            registry: settings
                .cnpj_registry_url
                .as_deref()
                .zip(http.clone())
                .map(|(url, http)| CnpjRegistry::new(url, http, timeout)),
            provider: settings
                .ip_provider_url
                .as_deref()
                .zip(http)
                .map(|(url, http)| {
                    IpProvider::new(url, settings.ip_provider_key.clone(), http, timeout)
                }),
            reputation_db: settings
                .maxmind_db
                .as_deref()
                .map(ReputationDb::open)
                .transpose()?,
        })
    }

    /// The offline checks, then the configured lookups of this lead at the same time,
    /// each within the lookup timeout. Only what can be judged is looked up: a valid
    /// email's domain, a CNPJ with valid check digits, a public source address.
    pub async fn verify(
        &self,
        lead: &Normalised,
        source: IpAddr,
        region: Region,
    ) -> (Verifications, Option<String>) {
        let (mut v, e164) = verify(lead, source, region);
        let source = source.to_canonical();
        let domain = self
            .mx
            .as_ref()
            .filter(|_| v.email_valid == Some(true))
            .zip(lead.email.as_deref().and_then(email::ascii_domain));
        let company = self
            .registry
            .as_ref()
            .filter(|_| v.cnpj_valid == Some(true))
            .zip(lead.custom_text(CNPJ));
        let public = v.ip_bogon == Some(false);
        let provider = self.provider.as_ref().filter(|_| public);
        let (mail, company, reputation) = tokio::join!(
            async {
                match domain {
                    Some((mx, domain)) => Some(mx.check(&domain).await),
                    None => None,
                }
            },
            async {
                match company {
                    Some((registry, cnpj)) => Some(registry.status(cnpj).await),
                    None => None,
                }
            },
            async {
                match provider {
                    Some(provider) => Some(provider.reputation(source).await),
                    None => None,
                }
            },
        );
        if let Some(answer) = mail {
            apply_mx(&mut v, answer);
        }
        if let Some(answer) = company {
            apply_registry(&mut v, answer);
        }
        let from_db = self
            .reputation_db
            .as_ref()
            .filter(|_| public)
            .and_then(|db| db.reputation(source));
        apply_reputation(&mut v, from_db, reputation);
        (v, e164)
    }
}

fn apply_mx(v: &mut Verifications, answer: Result<MailDomain, Failure>) {
    match answer {
        Ok(MailDomain::Accepts) => {}
        Ok(MailDomain::NoMail) => {
            v.email_valid = Some(false);
            v.email_reasons.push(email::reason::NO_MX);
        }
        Err(_) => v.email_reasons.push(email::reason::MX_UNCHECKED),
    }
}

fn apply_registry(v: &mut Verifications, answer: Result<RegistryAnswer, Failure>) {
    use registry::reason;
    match answer {
        Ok(RegistryAnswer::Found(status)) => v.cnpj_status = Some(status),
        Ok(RegistryAnswer::NotFound) => v.cnpj_reasons.push(reason::NOT_FOUND),
        Ok(RegistryAnswer::UnknownStatus) => v.cnpj_reasons.push(reason::UNKNOWN_STATUS),
        Err(Failure::Timeout) => v.cnpj_reasons.push(reason::TIMEOUT),
        Err(Failure::Failed) => v.cnpj_reasons.push(reason::FAILED),
    }
}

/// Merges what the database and the provider know: a finding of either counts, and the
/// risk is the highest of theirs and the offline check's.
fn apply_reputation(
    v: &mut Verifications,
    from_db: Option<Reputation>,
    from_provider: Option<Result<Reputation, Failure>>,
) {
    let mut known: Vec<Reputation> = from_db.into_iter().collect();
    match from_provider {
        Some(Ok(reputation)) => known.push(reputation),
        Some(Err(Failure::Timeout)) => v.ip_reasons.push(ip::reason::PROVIDER_TIMEOUT),
        Some(Err(Failure::Failed)) => v.ip_reasons.push(ip::reason::PROVIDER_FAILED),
        None => {}
    }
    if known.is_empty() {
        return;
    }
    let any = |finding: fn(&Reputation) -> bool| known.iter().any(finding);
    v.ip_proxy = Some(any(|r| r.proxy));
    v.ip_vpn = Some(any(|r| r.vpn));
    if any(|r| r.tor) {
        v.ip_reasons.push(ip::reason::TOR);
    }
    if any(|r| r.hosting) {
        v.ip_reasons.push(ip::reason::HOSTING);
    }
    v.ip_risk_score = v.ip_risk_score.max(known.iter().map(|r| r.risk).max());
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
    use std::{
        net::{Ipv4Addr, Ipv6Addr},
        time::Duration,
    };

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
                "ip_bogon": false, "cnpj_reasons": [], "ip_reasons": [],
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

    /// Settings as the command line gives them.
    fn settings(args: &[&str]) -> LookupSettings {
        use clap::Parser;
        let mut all = vec!["leadrelay-api"];
        all.extend_from_slice(args);
        crate::Config::try_parse_from(all).expect("config").lookups
    }

    fn lead(email: &str, cnpj: &str) -> Normalised {
        let mut lead = Normalised {
            email: Some(email.into()),
            ..Normalised::default()
        };
        lead.custom_fields.insert(CNPJ.into(), json!(cnpj));
        lead
    }

    #[tokio::test]
    async fn with_nothing_configured_lookups_are_the_offline_checks() {
        let lookups = Lookups::from_settings(&settings(&[])).expect("lookups");
        let lead = lead("ana@example.com", "11.222.333/0001-81");
        let public = IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8));
        assert_eq!(
            lookups.verify(&lead, public, Region::BR).await,
            verify(&lead, public, Region::BR)
        );
    }

    #[tokio::test]
    async fn every_lookup_fills_its_fields() {
        use test_server::TestServer;
        let dns = mx::tests::TestDns::start().await;
        let registry = TestServer::start(|target| {
            let body = if target.ends_with("/11222333000181") {
                json!({"descricao_situacao_cadastral": "ATIVA"})
            } else {
                json!({"descricao_situacao_cadastral": "BAIXADA"})
            };
            (200, body.to_string(), Duration::ZERO)
        })
        .await;
        let provider = TestServer::start(|target| {
            let ip = target
                .trim_start_matches("/v2/")
                .split('?')
                .next()
                .unwrap_or("");
            let result = json!({"proxy": "yes", "type": "VPN", "risk": 66});
            (
                200,
                json!({"status": "ok", ip: result}).to_string(),
                Duration::ZERO,
            )
        })
        .await;
        let temp = tempfile::tempdir().expect("temp dir");
        let db = maxmind::tests::anonymous_ip_db(temp.path(), "GeoIP2-Anonymous-IP");
        let dns_server = dns.addr.to_string();
        let db = db.display().to_string();
        let lookups = Lookups::from_settings(&settings(&[
            "--mx-lookup",
            "true",
            "--dns-server",
            &dns_server,
            "--cnpj-registry-url",
            &registry.base,
            "--ip-provider-url",
            &provider.base,
            "--maxmind-db",
            &db,
        ]))
        .expect("lookups");

        // Tor exit by the database, VPN by the provider: both count.
        let tor: IpAddr = [9, 9, 9, 9].into();
        let (v, _) = lookups
            .verify(&lead("ana@mail.test", "11222333000181"), tor, Region::BR)
            .await;
        assert_eq!(
            (
                v.email_valid,
                v.cnpj_status,
                v.ip_proxy,
                v.ip_vpn,
                v.ip_risk_score
            ),
            (
                Some(true),
                Some(CnpjStatus::Active),
                Some(true),
                Some(true),
                Some(90)
            )
        );
        assert_eq!(v.ip_reasons, [ip::reason::TOR]);
        assert!(v.email_reasons.is_empty(), "{v:?}");

        // A domain without mail, a closed company.
        let (v, _) = lookups
            .verify(
                &lead("ana@gone.test", "11.444.777/0001-61"),
                tor,
                Region::BR,
            )
            .await;
        assert_eq!(v.email_valid, Some(false));
        assert_eq!(v.email_reasons, [email::reason::NO_MX]);
        assert_eq!(v.cnpj_status, Some(CnpjStatus::Closed));

        // Only what can be judged is looked up: an invalid CNPJ, a local source.
        let before = (registry.asked().len(), provider.asked().len());
        let (v, _) = lookups
            .verify(
                &lead("ana@mail.test", "11.222.333/0001-82"),
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                Region::BR,
            )
            .await;
        assert_eq!((registry.asked().len(), provider.asked().len()), before);
        assert_eq!(
            (v.cnpj_status, v.ip_risk_score, v.ip_proxy, v.ip_vpn),
            (None, None, None, None)
        );
        assert!(v.cnpj_reasons.is_empty() && v.ip_reasons.is_empty());
    }

    #[tokio::test]
    async fn slow_lookups_run_together_and_give_reasons() {
        use test_server::TestServer;
        let dns = mx::tests::TestDns::start().await;
        let hang = |_: &str| (200, "{}".to_owned(), Duration::from_secs(10));
        let registry = TestServer::start(hang).await;
        let provider = TestServer::start(hang).await;
        let dns_server = dns.addr.to_string();
        let lookups = Lookups::from_settings(&settings(&[
            "--mx-lookup",
            "true",
            "--dns-server",
            &dns_server,
            "--cnpj-registry-url",
            &registry.base,
            "--ip-provider-url",
            &provider.base,
            "--lookup-timeout-ms",
            "400",
        ]))
        .expect("lookups");
        let started = std::time::Instant::now();
        let (v, _) = lookups
            .verify(
                &lead("ana@slow.test", "11222333000181"),
                [8, 8, 8, 8].into(),
                Region::BR,
            )
            .await;
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(400) && took < Duration::from_millis(900),
            "three lookups of 400 ms at once: {took:?}"
        );
        assert_eq!(
            v.email_valid,
            Some(true),
            "an unchecked MX does not invalidate"
        );
        assert_eq!(v.email_reasons, [email::reason::MX_UNCHECKED]);
        assert_eq!(v.cnpj_status, None);
        assert_eq!(v.cnpj_reasons, [registry::reason::TIMEOUT]);
        assert_eq!(
            (v.ip_proxy, v.ip_vpn, v.ip_risk_score),
            (None, None, Some(0))
        );
        assert_eq!(v.ip_reasons, [ip::reason::PROVIDER_TIMEOUT]);
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
