//! The optional MX lookup of an email's domain (`LEADRELAY_MX_LOOKUP`): whether the
//! domain can receive mail, as a sending server decides it (RFC 5321 §5.1): its MX
//! records, else its A/AAAA records (the "implicit MX"). A domain that does not exist,
//! has neither, or publishes a null MX (RFC 7505: `MX 0 .`) cannot. Answers are cached
//! for an hour; a failed or slow lookup says nothing about the address.

use super::lookup::{Cached, Failure};
use hickory_resolver::{
    TokioResolver,
    config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig},
    net::{NetError, runtime::TokioRuntimeProvider},
    proto::rr::RData,
};
use std::{net::SocketAddr, time::Duration};

/// How long an answer is kept.
const TTL: Duration = Duration::from_secs(3600);

/// Whether a domain receives mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailDomain {
    Accepts,
    /// No such domain, no MX and no address, or a null MX.
    NoMail,
}

/// The resolver and its cache.
pub struct MxLookup {
    resolver: TokioResolver,
    cache: Cached<String, MailDomain>,
}

impl MxLookup {
    /// Asks `server` (`LEADRELAY_DNS_SERVER`), or the system's resolvers without one.
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> anyhow::Result<Self> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = match server {
            Some(addr) => {
                let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                    .into_iter()
                    .map(|mut c| {
                        c.port = addr.port();
                        c
                    })
                    .collect();
                let server = NameServerConfig::new(addr.ip(), true, connections);
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![server]),
                    provider,
                )
            }
            None => TokioResolver::builder(provider).map_err(|e| {
                anyhow::anyhow!(
                    "LEADRELAY_MX_LOOKUP: cannot read the system's DNS configuration ({e}); set LEADRELAY_DNS_SERVER"
                )
            })?,
        };
        let options = builder.options_mut();
        // The lookup's own bound (see `Cached`) ends the wait; the resolver's is a backstop.
        options.timeout = timeout * 2;
        options.attempts = 1;
        options.use_hosts_file = ResolveHosts::Never;
        let resolver = builder
            .build()
            .map_err(|e| anyhow::anyhow!("LEADRELAY_MX_LOOKUP: building the resolver: {e}"))?;
        Ok(Self {
            resolver,
            cache: Cached::new(TTL, timeout),
        })
    }

    /// Whether `domain` (ASCII, as email checks leave it) receives mail.
    pub async fn check(&self, domain: &str) -> Result<MailDomain, Failure> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        self.cache.get(domain.clone(), self.lookup(domain)).await
    }

    async fn lookup(&self, domain: String) -> Result<MailDomain, Failure> {
        // Fully qualified: no search domains appended.
        let fqdn = format!("{domain}.");
        match self.resolver.mx_lookup(fqdn.as_str()).await {
            Ok(lookup) => {
                let exchanges: Vec<_> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(mx) => Some(mx),
                        _ => None,
                    })
                    .collect();
                match exchanges.as_slice() {
                    [] => self.has_address(&fqdn).await,
                    [only] if only.exchange.is_root() => Ok(MailDomain::NoMail),
                    _ => Ok(MailDomain::Accepts),
                }
            }
            Err(e) if e.is_nx_domain() => Ok(MailDomain::NoMail),
            Err(e) if e.is_no_records_found() => self.has_address(&fqdn).await,
            Err(e) => Err(failure(&domain, &e)),
        }
    }

    /// The implicit MX: the domain's own A/AAAA records.
    async fn has_address(&self, fqdn: &str) -> Result<MailDomain, Failure> {
        match self.resolver.lookup_ip(fqdn).await {
            Ok(ips) if ips.iter().next().is_some() => Ok(MailDomain::Accepts),
            Ok(_) => Ok(MailDomain::NoMail),
            Err(e) if e.is_no_records_found() => Ok(MailDomain::NoMail),
            Err(e) => Err(failure(fqdn, &e)),
        }
    }
}

fn failure(domain: &str, error: &NetError) -> Failure {
    tracing::warn!(service = "mx lookup", domain, error = %error, "lookup failed");
    match error {
        NetError::Timeout => Failure::Timeout,
        _ => Failure::Failed,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hickory_resolver::proto::{
        op::{Message, ResponseCode},
        rr::{
            Name, Record, RecordType,
            rdata::{A, MX},
        },
    };
    use std::{
        net::Ipv4Addr,
        sync::{Arc, Mutex},
        time::Instant,
    };
    use tokio::{net::UdpSocket, task::JoinHandle};

    /// A DNS server on a random loopback UDP port, authoritative for a few test
    /// domains; it counts the questions it gets.
    pub(crate) struct TestDns {
        pub addr: SocketAddr,
        questions: Arc<Mutex<Vec<(String, RecordType)>>>,
        task: JoinHandle<()>,
    }

    impl Drop for TestDns {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl TestDns {
        pub(crate) async fn start() -> Self {
            let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
            let addr = socket.local_addr().expect("addr");
            let questions = Arc::new(Mutex::new(Vec::new()));
            let seen = questions.clone();
            let task = tokio::spawn(async move {
                let mut buf = vec![0; 4096];
                loop {
                    let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                        return;
                    };
                    let Ok(query) = Message::from_vec(&buf[..n]) else {
                        continue;
                    };
                    if let Some(reply) = answer(&query, &seen)
                        && let Ok(bytes) = reply.to_vec()
                    {
                        let _ = socket.send_to(&bytes, from).await;
                    }
                }
            });
            Self {
                addr,
                questions,
                task,
            }
        }

        pub(crate) fn questions(&self) -> Vec<(String, RecordType)> {
            self.questions.lock().expect("questions").clone()
        }
    }

    /// The zone: `mail.test` has an MX, `aonly.test` only an A record, `nullmx.test` a
    /// null MX, `slow.test` never answers, anything else does not exist.
    fn answer(query: &Message, seen: &Mutex<Vec<(String, RecordType)>>) -> Option<Message> {
        let question = query.queries.first()?;
        let name = question
            .name()
            .to_ascii()
            .to_ascii_lowercase()
            .trim_end_matches('.')
            .to_owned();
        let kind = question.query_type();
        seen.lock().expect("questions").push((name.clone(), kind));
        let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
        reply.metadata.recursion_desired = query.metadata.recursion_desired;
        reply.metadata.recursion_available = true;
        reply.metadata.authoritative = true;
        reply.add_query(question.clone());
        let owner = question.name().clone();
        let mx = |preference, exchange: Name| RData::MX(MX::new(preference, exchange));
        match (name.as_str(), kind) {
            ("slow.test", _) => return None,
            ("mail.test", RecordType::MX) => {
                let exchange = Name::from_ascii("mx1.mail.test.").expect("exchange");
                reply.add_answer(Record::from_rdata(owner, 300, mx(10, exchange)));
            }
            ("nullmx.test", RecordType::MX) => {
                reply.add_answer(Record::from_rdata(owner, 300, mx(0, Name::root())));
            }
            ("aonly.test", RecordType::A) => {
                reply.add_answer(Record::from_rdata(
                    owner,
                    300,
                    RData::A(A(Ipv4Addr::new(192, 0, 2, 10))),
                ));
            }
            ("mail.test" | "nullmx.test" | "aonly.test", _) => {} // exists, no such record
            _ => reply.metadata.response_code = ResponseCode::NXDomain,
        }
        Some(reply)
    }

    const TIMEOUT: Duration = Duration::from_millis(400);

    #[tokio::test]
    async fn domains_are_judged_by_their_records() {
        let dns = TestDns::start().await;
        let mx = MxLookup::new(Some(dns.addr), TIMEOUT).expect("resolver");
        let cases = [
            ("mx record", "mail.test", Ok(MailDomain::Accepts)),
            ("upper case", "MAIL.test", Ok(MailDomain::Accepts)),
            ("only an a record", "aonly.test", Ok(MailDomain::Accepts)),
            ("null mx", "nullmx.test", Ok(MailDomain::NoMail)),
            ("nxdomain", "gone.test", Ok(MailDomain::NoMail)),
        ];
        for (case, domain, expected) in cases {
            assert_eq!(mx.check(domain).await, expected, "{case}");
        }
        let started = Instant::now();
        assert_eq!(mx.check("slow.test").await, Err(Failure::Timeout), "slow");
        let took = started.elapsed();
        assert!(took < TIMEOUT + Duration::from_millis(500), "{took:?}");
    }

    #[tokio::test]
    async fn answers_are_cached() {
        let dns = TestDns::start().await;
        let mx = MxLookup::new(Some(dns.addr), TIMEOUT).expect("resolver");
        for _ in 0..3 {
            assert_eq!(mx.check("mail.test").await, Ok(MailDomain::Accepts));
            assert_eq!(mx.check("gone.test").await, Ok(MailDomain::NoMail));
        }
        let asked = dns.questions();
        let count = |name: &str| asked.iter().filter(|(n, _)| n == name).count();
        assert_eq!(count("mail.test"), 1, "{asked:?}");
        assert_eq!(
            count("gone.test"),
            1,
            "a negative answer is cached: {asked:?}"
        );
    }
}
