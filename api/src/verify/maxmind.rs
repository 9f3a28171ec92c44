//! An offline IP reputation database in MaxMind's format (`LEADRELAY_MAXMIND_DB`), read
//! whole into memory at start: a lookup takes microseconds. The GeoIP2/GeoLite2
//! Anonymous-IP fields are read (`is_anonymous_vpn`, `is_public_proxy`,
//! `is_residential_proxy`, `is_tor_exit_node`, `is_hosting_provider`, `is_anonymous`).
//! An Anonymous-IP database lists only anonymous networks, so an address it does not hold
//! is clean; in a database of another kind (ASN, City) absence says nothing.

use super::ip::Reputation;
use anyhow::Context as _;
use maxminddb::{Reader, geoip2::AnonymousIp};
use std::{net::IpAddr, path::Path};

/// Risk of each finding; an address with several gets the highest.
const TOR_RISK: u8 = 90;
const PUBLIC_PROXY_RISK: u8 = 80;
const RESIDENTIAL_PROXY_RISK: u8 = 75;
const VPN_RISK: u8 = 70;
const ANONYMOUS_RISK: u8 = 60;
const HOSTING_RISK: u8 = 50;

/// The loaded database.
pub struct ReputationDb {
    reader: Reader<Vec<u8>>,
    /// An Anonymous-IP database: an address it does not hold is clean.
    lists_only_anonymous: bool,
}

impl ReputationDb {
    /// Loads the database at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let reader = Reader::open_readfile(path).with_context(|| {
            format!(
                "LEADRELAY_MAXMIND_DB: cannot read {} as a MaxMind database",
                path.display()
            )
        })?;
        Ok(Self::from_reader(reader))
    }

    fn from_reader(reader: Reader<Vec<u8>>) -> Self {
        let kind = reader.metadata().database_type.to_ascii_lowercase();
        let lists_only_anonymous = kind.contains("anonymous");
        if !lists_only_anonymous {
            tracing::warn!(
                database_type = %reader.metadata().database_type,
                "LEADRELAY_MAXMIND_DB is not an Anonymous-IP database; only its is_* fields are read"
            );
        }
        Self {
            reader,
            lists_only_anonymous,
        }
    }

    /// What the database tells about `ip`; `None` when it tells nothing.
    pub fn reputation(&self, ip: IpAddr) -> Option<Reputation> {
        let record = match self
            .reader
            .lookup(ip)
            .and_then(|r| r.decode::<AnonymousIp>())
        {
            Ok(record) => record,
            Err(e) => {
                tracing::warn!(error = %e, "MaxMind database lookup failed");
                return None;
            }
        };
        let Some(record) = record else {
            return self.lists_only_anonymous.then_some(Reputation::CLEAN);
        };
        let flags = [
            record.is_tor_exit_node,
            record.is_public_proxy,
            record.is_residential_proxy,
            record.is_anonymous_vpn,
            record.is_anonymous,
            record.is_hosting_provider,
        ];
        if flags.iter().all(Option::is_none) {
            return self.lists_only_anonymous.then_some(Reputation::CLEAN);
        }
        let [
            tor,
            public_proxy,
            residential_proxy,
            vpn,
            anonymous,
            hosting,
        ] = flags.map(|f| f.unwrap_or(false));
        let risk = [
            (tor, TOR_RISK),
            (public_proxy, PUBLIC_PROXY_RISK),
            (residential_proxy, RESIDENTIAL_PROXY_RISK),
            (vpn, VPN_RISK),
            (anonymous, ANONYMOUS_RISK),
            (hosting, HOSTING_RISK),
        ]
        .iter()
        .filter(|(found, _)| *found)
        .map(|(_, risk)| *risk)
        .max()
        .unwrap_or(0);
        Some(Reputation {
            proxy: tor || public_proxy || residential_proxy,
            vpn,
            tor,
            hosting,
            risk,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use mmdb_writer::Writer;
    use serde::Serialize;

    #[derive(Serialize, Default)]
    struct Record {
        #[serde(skip_serializing_if = "Option::is_none")]
        is_anonymous: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        is_anonymous_vpn: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        is_hosting_provider: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        is_public_proxy: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        is_tor_exit_node: Option<bool>,
    }

    /// A small Anonymous-IP database written as MaxMind's tools do, in `dir`.
    pub(crate) fn anonymous_ip_db(dir: &Path, database_type: &str) -> std::path::PathBuf {
        let mut writer = Writer::new(database_type);
        let yes = Some(true);
        let rows = [
            (
                "1.2.3.0/24",
                Record {
                    is_anonymous: yes,
                    is_anonymous_vpn: yes,
                    ..Record::default()
                },
            ),
            (
                "5.6.7.0/24",
                Record {
                    is_anonymous: yes,
                    is_public_proxy: yes,
                    ..Record::default()
                },
            ),
            (
                "9.9.9.9/32",
                Record {
                    is_anonymous: yes,
                    is_tor_exit_node: yes,
                    ..Record::default()
                },
            ),
            (
                "2a01:4f8::/32",
                Record {
                    is_anonymous: yes,
                    is_hosting_provider: yes,
                    ..Record::default()
                },
            ),
        ];
        for (net, record) in rows {
            writer
                .insert(net.parse::<ipnet::IpNet>().expect("net"), &record)
                .expect("insert");
        }
        let path = dir.join("anonymous-ip.mmdb");
        std::fs::write(&path, writer.to_bytes().expect("bytes")).expect("write");
        path
    }

    #[test]
    fn anonymous_ip_records_map_to_a_reputation() {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path();
        let db = ReputationDb::open(&anonymous_ip_db(dir, "GeoIP2-Anonymous-IP")).expect("open");
        let rep = |proxy, vpn, tor, hosting, risk| {
            Some(Reputation {
                proxy,
                vpn,
                tor,
                hosting,
                risk,
            })
        };
        let cases = [
            ("vpn", "1.2.3.4", rep(false, true, false, false, 70)),
            (
                "public proxy",
                "5.6.7.8",
                rep(true, false, false, false, 80),
            ),
            ("tor exit", "9.9.9.9", rep(true, false, true, false, 90)),
            (
                "hosting v6",
                "2a01:4f8::1",
                rep(false, false, false, true, 60),
            ),
            ("not listed is clean", "8.8.8.8", Some(Reputation::CLEAN)),
        ];
        for (case, ip, expected) in cases {
            let ip: IpAddr = ip.parse().expect("ip");
            assert_eq!(db.reputation(ip), expected, "{case}");
        }

        // Another kind of database: absence tells nothing.
        let other = dir.join("other");
        std::fs::create_dir_all(&other).expect("dir");
        let db = ReputationDb::open(&anonymous_ip_db(&other, "GeoLite2-ASN")).expect("open");
        assert_eq!(db.reputation([8, 8, 8, 8].into()), None);
        assert!(db.reputation([1, 2, 3, 4].into()).is_some_and(|r| r.vpn));

        let garbage = dir.join("garbage.mmdb");
        std::fs::write(&garbage, b"not a database").expect("write");
        let e = ReputationDb::open(&garbage).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.starts_with("LEADRELAY_MAXMIND_DB")));
    }
}
