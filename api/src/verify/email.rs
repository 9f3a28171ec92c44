//! Email checks: syntax as real mail systems accept it (RFC 5321 lengths, a dot-atom or
//! quoted local part, a domain of at least two labels, no address literals), IDN domains
//! converted to punycode, a disposable-domain list, and role accounts. The MX lookup is a
//! network check, in [`super::mx`].

use email_address::{EmailAddress, Options};
use std::{collections::HashSet, sync::LazyLock};

/// The longest address SMTP carries (RFC 5321 §4.5.3.1.3: a 256-octet path less `<>`).
const MAX_ADDRESS: usize = 254;

/// Disposable domains from the `mailchecker` crate (its list is regenerated from the
/// community lists on each release, so `cargo update` refreshes it).
static DISPOSABLE: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| mailchecker::blacklist().into_iter().collect());

/// Local parts that reach a team or a machine rather than a person (folded: lower case,
/// without `.`, `-`, `_`).
const ROLE_ACCOUNTS: &[&str] = &[
    "abuse",
    "admin",
    "administrator",
    "atendimento",
    "billing",
    "careers",
    "comercial",
    "compras",
    "contact",
    "contato",
    "contabilidade",
    "financeiro",
    "faleconosco",
    "hello",
    "help",
    "hostmaster",
    "hr",
    "info",
    "jobs",
    "juridico",
    "legal",
    "mail",
    "marketing",
    "newsletter",
    "noreply",
    "donotreply",
    "office",
    "ouvidoria",
    "postmaster",
    "privacy",
    "rh",
    "root",
    "sac",
    "sales",
    "security",
    "suporte",
    "support",
    "team",
    "vendas",
    "webmaster",
];

/// Why an address is not valid, or what is worth knowing about it.
pub mod reason {
    /// Not an address mail systems accept.
    pub const SYNTAX: &str = "email_syntax_invalid";
    /// Longer than SMTP carries.
    pub const TOO_LONG: &str = "email_too_long";
    /// The domain is not a hostname (or not a valid IDN).
    pub const DOMAIN: &str = "email_domain_invalid";
    /// The domain hands out throwaway mailboxes.
    pub const DISPOSABLE: &str = "email_disposable";
    /// The mailbox belongs to a team or a machine.
    pub const ROLE: &str = "email_role_account";
    /// The domain cannot receive mail: it does not exist, or has no MX and no address.
    pub const NO_MX: &str = "email_no_mx";
    /// The MX lookup failed or timed out; the address was judged without it.
    pub const MX_UNCHECKED: &str = "email_mx_unchecked";
}

/// The outcome of the email checks.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailCheck {
    /// Deliverable-looking and not disposable.
    pub valid: bool,
    pub disposable: bool,
    /// A team or machine mailbox (`info@`, `contato@`); still valid.
    pub role: bool,
    /// Machine-readable reasons ([`reason`]).
    pub reasons: Vec<&'static str>,
}

impl EmailCheck {
    fn invalid(why: &'static str) -> Self {
        Self {
            valid: false,
            disposable: false,
            role: false,
            reasons: vec![why],
        }
    }
}

/// Checks one address (already trimmed and lower-cased by normalisation).
pub fn check(address: &str) -> EmailCheck {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return EmailCheck::invalid(reason::SYNTAX);
    };
    // IDN: the domain as DNS carries it (`ação.com.br` → `xn--ao-siap.com.br`).
    let Ok(domain) = idna::domain_to_ascii(domain) else {
        return EmailCheck::invalid(reason::DOMAIN);
    };
    if !domain_is_hostname(&domain) {
        return EmailCheck::invalid(reason::DOMAIN);
    }
    let ascii = format!("{local}@{domain}");
    if ascii.len() > MAX_ADDRESS {
        return EmailCheck::invalid(reason::TOO_LONG);
    }
    let options = Options {
        minimum_sub_domains: 2,
        allow_domain_literal: false,
        allow_display_text: false,
        ..Options::default()
    };
    if EmailAddress::parse_with_options(&ascii, options).is_err() {
        return EmailCheck::invalid(reason::SYNTAX);
    }
    let disposable = is_disposable(&domain);
    let role = is_role(local);
    let mut reasons = Vec::new();
    if disposable {
        reasons.push(reason::DISPOSABLE);
    }
    if role {
        reasons.push(reason::ROLE);
    }
    EmailCheck {
        valid: !disposable,
        disposable,
        role,
        reasons,
    }
}

/// The domain of `address` as DNS carries it (punycode).
pub fn ascii_domain(address: &str) -> Option<String> {
    let (_, domain) = address.rsplit_once('@')?;
    idna::domain_to_ascii(domain).ok()
}

/// LDH labels of 1–63 characters and a top-level domain that is not all digits.
fn domain_is_hostname(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()))
}

/// The domain or any parent of it is on the list (`x.mailinator.com` counts).
fn is_disposable(domain: &str) -> bool {
    let mut rest = domain;
    loop {
        if DISPOSABLE.contains(rest) {
            return true;
        }
        match rest.split_once('.') {
            Some((_, parent)) if parent.contains('.') => rest = parent,
            _ => return false,
        }
    }
}

fn is_role(local: &str) -> bool {
    let base = local.split('+').next().unwrap_or(local);
    let folded: String = base
        .chars()
        .filter(|c| !matches!(c, '.' | '-' | '_'))
        .collect::<String>()
        .to_lowercase();
    ROLE_ACCOUNTS.contains(&folded.as_str())
}

/// Loads the disposable list now rather than on the first lead.
pub fn warm_up() {
    LazyLock::force(&DISPOSABLE);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn addresses() {
        // (case, address, valid, disposable, role)
        let cases = [
            ("plain", "ana@example.com", true, false, false),
            ("subaddress", "ana+leads@example.com.br", true, false, false),
            (
                "dots and digits",
                "ana.souza.1990@mail.example.org",
                true,
                false,
                false,
            ),
            (
                "quoted local part",
                "\"ana souza\"@example.com",
                true,
                false,
                false,
            ),
            ("idn domain", "ana@ação.com.br", true, false, false),
            (
                "punycode domain",
                "ana@xn--ao-siap.com.br",
                true,
                false,
                false,
            ),
            ("utf-8 local part", "joão@example.com", true, false, false),
            ("role info", "info@example.com", true, false, true),
            ("role contato", "contato@empresa.com.br", true, false, true),
            ("role no-reply", "no-reply@example.com", true, false, true),
            ("role with tag", "sales+br@example.com", true, false, true),
            ("disposable", "x@mailinator.com", false, true, false),
            (
                "disposable subdomain",
                "x@eu.mailinator.com",
                false,
                true,
                false,
            ),
            ("disposable role", "admin@mailinator.com", false, true, true),
            ("no at", "ana.example.com", false, false, false),
            ("two ats", "ana@@example.com", false, false, false),
            ("empty local", "@example.com", false, false, false),
            ("single label domain", "ana@localhost", false, false, false),
            ("address literal", "ana@[127.0.0.1]", false, false, false),
            ("numeric tld", "ana@example.123", false, false, false),
            ("leading dot", ".ana@example.com", false, false, false),
            ("double dot", "ana..souza@example.com", false, false, false),
            ("space", "ana souza@example.com", false, false, false),
            (
                "underscore in domain",
                "ana@exa_mple.com",
                false,
                false,
                false,
            ),
            ("hyphen edge label", "ana@-example.com", false, false, false),
            (
                "local part of 65",
                &format!("{}@example.com", "a".repeat(65)),
                false,
                false,
                false,
            ),
            (
                "label of 64",
                &format!("ana@{}.com", "a".repeat(64)),
                false,
                false,
                false,
            ),
            (
                "address of 255",
                &format!("ana@{}.com", vec!["a".repeat(50); 5].join(".")),
                false,
                false,
                false,
            ),
        ];
        for (case, address, valid, disposable, role) in cases {
            let got = check(address);
            assert_eq!(
                (got.valid, got.disposable, got.role),
                (valid, disposable, role),
                "{case}: {address} → {got:?}"
            );
            assert_eq!(got.reasons.is_empty(), valid && !role, "{case}: {got:?}");
        }
    }

    proptest! {
        #[test]
        fn email_never_panics(address in ".*", local in "[a-z.+\"]{0,70}", domain in "[a-zà-ü.-]{0,80}") {
            let _ = check(&address);
            let _ = check(&format!("{local}@{domain}"));
        }
    }
}
