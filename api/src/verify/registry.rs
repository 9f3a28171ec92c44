//! The CNPJ registry client: the status of a company from a service speaking BrasilAPI's
//! `GET {base}/api/cnpj/v1/{cnpj}` (`descricao_situacao_cadastral`, or the numeric
//! `situacao_cadastral` of the Receita Federal's open data). Only CNPJs with valid check
//! digits are asked about, in the registry's form (`12ABC34501DE35`: digits and capital
//! letters, no punctuation). Answers, "not found" included, are cached for a day.

use super::{
    cnpj,
    lookup::{Cached, Failure, base_url, log_failure},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// Why a valid CNPJ has no status.
pub mod reason {
    /// The registry does not know the CNPJ.
    pub const NOT_FOUND: &str = "cnpj_not_found";
    /// The registry answered with a status this version does not know.
    pub const UNKNOWN_STATUS: &str = "cnpj_status_unknown";
    /// No answer within the lookup timeout.
    pub const TIMEOUT: &str = "cnpj_lookup_timeout";
    /// The registry failed or answered something unreadable.
    pub const FAILED: &str = "cnpj_lookup_failed";
}

/// How long a registry answer is kept.
const TTL: Duration = Duration::from_secs(24 * 3600);

/// A company's registration status (situação cadastral).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CnpjStatus {
    /// ATIVA.
    Active,
    /// SUSPENSA.
    Suspended,
    /// INAPTA.
    Unfit,
    /// BAIXADA: closed down.
    Closed,
    /// NULA: the registration was annulled.
    Void,
}

impl CnpjStatus {
    /// From the registry's description (`ATIVA`), else its code (2).
    fn from_registry(description: Option<&str>, code: Option<&Value>) -> Option<Self> {
        let by_name = description.and_then(|d| match d.trim().to_uppercase().as_str() {
            "ATIVA" => Some(Self::Active),
            "SUSPENSA" => Some(Self::Suspended),
            "INAPTA" => Some(Self::Unfit),
            "BAIXADA" => Some(Self::Closed),
            "NULA" => Some(Self::Void),
            _ => None,
        });
        let code = code.and_then(|c| {
            c.as_u64()
                .or_else(|| c.as_str().and_then(|s| s.trim().parse().ok()))
        });
        by_name.or(match code {
            Some(1) => Some(Self::Void),
            Some(2) => Some(Self::Active),
            Some(3) => Some(Self::Suspended),
            Some(4) => Some(Self::Unfit),
            Some(8) => Some(Self::Closed),
            _ => None,
        })
    }
}

/// What the registry said about one CNPJ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryAnswer {
    Found(CnpjStatus),
    /// The registry does not know the CNPJ (404).
    NotFound,
    /// Found, with a status this version does not know.
    UnknownStatus,
}

#[derive(Deserialize)]
struct Company {
    descricao_situacao_cadastral: Option<String>,
    situacao_cadastral: Option<Value>,
}

/// The registry client (`LEADRELAY_CNPJ_REGISTRY_URL`).
pub struct CnpjRegistry {
    http: reqwest::Client,
    base: String,
    cache: Cached<String, RegistryAnswer>,
}

impl CnpjRegistry {
    pub fn new(base: &str, http: reqwest::Client, timeout: Duration) -> Self {
        Self {
            http,
            base: base_url(base),
            cache: Cached::new(TTL, timeout),
        }
    }

    /// The status of `text`, a CNPJ with valid check digits in any formatting.
    pub async fn status(&self, text: &str) -> Result<RegistryAnswer, Failure> {
        let cnpj = cnpj::canonical(text);
        self.cache.get(cnpj.clone(), self.fetch(cnpj)).await
    }

    async fn fetch(&self, cnpj: String) -> Result<RegistryAnswer, Failure> {
        let url = format!("{}/api/cnpj/v1/{cnpj}", self.base);
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| log_failure("cnpj registry", e))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(RegistryAnswer::NotFound);
        }
        if !status.is_success() {
            tracing::warn!(service = "cnpj registry", %status, "lookup refused");
            return Err(Failure::Failed);
        }
        let company: Company = response
            .json()
            .await
            .map_err(|e| log_failure("cnpj registry", e))?;
        Ok(
            match CnpjStatus::from_registry(
                company.descricao_situacao_cadastral.as_deref(),
                company.situacao_cadastral.as_ref(),
            ) {
                Some(status) => RegistryAnswer::Found(status),
                None => RegistryAnswer::UnknownStatus,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{
        lookup::http_client,
        test_server::{Answer, TestServer},
    };
    use serde_json::json;
    use std::time::Instant;

    const TIMEOUT: Duration = Duration::from_millis(300);

    /// A registry that knows one CNPJ per situação (by its first two digits) and nothing
    /// else, answering like BrasilAPI.
    fn brasilapi(target: &str) -> Answer {
        let Some(cnpj) = target.strip_prefix("/api/cnpj/v1/") else {
            return (404, "{}".into(), Duration::ZERO);
        };
        let company = |description: &str, code: u8| {
            json!({"cnpj": cnpj, "razao_social": "EMPRESA TESTE LTDA",
                   "situacao_cadastral": code,
                   "descricao_situacao_cadastral": description})
            .to_string()
        };
        let ok = |body| (200, body, Duration::ZERO);
        match cnpj {
            "11222333000181" => ok(company("ATIVA", 2)),
            "33000167000101" => ok(company("SUSPENSA", 3)),
            "12ABC34501DE35" => ok(company("INAPTA", 4)),
            "11444777000161" => ok(company("BAIXADA", 8)),
            "45723174000110" => ok(company("NULA", 1)),
            "06990590000123" => ok(json!({"situacao_cadastral": "2"}).to_string()),
            "19131243000197" => ok(company("EM ANALISE", 9)),
            "27865757000102" => (200, "<html>oops</html>".into(), Duration::ZERO),
            "60701190000104" => (503, "{}".into(), Duration::ZERO),
            "00000000000191" => (200, company("ATIVA", 2), Duration::from_secs(5)),
            _ => (
                404,
                json!({"message": format!("CNPJ {cnpj} não encontrado."),
                       "type": "not_found", "name": "CnpjNotFound"})
                .to_string(),
                Duration::ZERO,
            ),
        }
    }

    async fn registry(server: &TestServer) -> CnpjRegistry {
        CnpjRegistry::new(
            &format!("{}/", server.base),
            http_client(TIMEOUT).expect("client"),
            TIMEOUT,
        )
    }

    #[tokio::test]
    async fn each_situacao_maps_to_a_status() {
        let server = TestServer::start(brasilapi).await;
        let registry = registry(&server).await;
        use CnpjStatus::*;
        use RegistryAnswer::*;
        let cases = [
            ("ativa", "11.222.333/0001-81", Ok(Found(Active))),
            ("suspensa", "33.000.167/0001-01", Ok(Found(Suspended))),
            (
                "inapta, alphanumeric",
                "12.abc.345/01de-35",
                Ok(Found(Unfit)),
            ),
            ("baixada", "11.444.777/0001-61", Ok(Found(Closed))),
            ("nula", "45.723.174/0001-10", Ok(Found(Void))),
            ("code only", "06.990.590/0001-23", Ok(Found(Active))),
            ("unknown situação", "19.131.243/0001-97", Ok(UnknownStatus)),
            ("404", "04.252.011/0001-10", Ok(NotFound)),
            ("not json", "27.865.757/0001-02", Err(Failure::Failed)),
            ("server error", "60.701.190/0001-04", Err(Failure::Failed)),
        ];
        for (case, cnpj, expected) in cases {
            assert_eq!(registry.status(cnpj).await, expected, "{case}");
        }
        let asked = server.asked();
        assert!(
            asked.contains(&"/api/cnpj/v1/12ABC34501DE35".to_owned()),
            "the alphanumeric CNPJ is sent bare and in capitals: {asked:?}"
        );
    }

    #[tokio::test]
    async fn answers_are_cached_failures_are_not() {
        let server = TestServer::start(brasilapi).await;
        let registry = registry(&server).await;
        for _ in 0..3 {
            assert_eq!(
                registry.status("11222333000181").await,
                Ok(RegistryAnswer::Found(CnpjStatus::Active))
            );
            // The same CNPJ written another way is the same key.
            assert_eq!(
                registry.status("11.222.333/0001-81").await,
                Ok(RegistryAnswer::Found(CnpjStatus::Active))
            );
            assert_eq!(
                registry.status("04252011000110").await,
                Ok(RegistryAnswer::NotFound)
            );
            assert_eq!(
                registry.status("60701190000104").await,
                Err(Failure::Failed)
            );
        }
        let asked = server.asked();
        let count = |cnpj: &str| asked.iter().filter(|a| a.ends_with(cnpj)).count();
        assert_eq!(count("11222333000181"), 1, "{asked:?}");
        assert_eq!(count("04252011000110"), 1, "a 404 is cached too");
        assert_eq!(count("60701190000104"), 3, "a failure is asked again");
    }

    #[tokio::test]
    async fn a_slow_registry_times_out() {
        let server = TestServer::start(brasilapi).await;
        let registry = registry(&server).await;
        let started = Instant::now();
        assert_eq!(
            registry.status("00000000000191").await,
            Err(Failure::Timeout)
        );
        let took = started.elapsed();
        assert!(
            took >= TIMEOUT && took < TIMEOUT + Duration::from_millis(500),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_registry_fails() {
        // A port that was free a moment ago: nothing listens there.
        let port = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let registry = CnpjRegistry::new(
            &format!("http://127.0.0.1:{port}"),
            http_client(TIMEOUT).expect("client"),
            TIMEOUT,
        );
        assert_eq!(
            registry.status("11222333000181").await,
            Err(Failure::Failed)
        );
    }
}
