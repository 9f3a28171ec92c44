//! Normalisation of inbound fields: a built-in alias table (English and Portuguese) maps
//! the names that form tools and sellers use to the standard fields; wrapper objects
//! (`{"lead": {…}}`, `{"data": {…}}`) are opened; values are trimmed and the email is
//! lower-cased. Everything unrecognised is kept in `custom_fields`.

use serde_json::{Map, Value};

/// A lead's standard fields and the rest.
#[derive(Debug, Default, PartialEq)]
pub struct Normalised {
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    /// Unrecognised fields under their own names, and the canonical extra fields
    /// (`cnpj`, `state`, …) that have no column of their own.
    pub custom_fields: Map<String, Value>,
}

impl Normalised {
    /// No field at all: nothing to call a lead.
    pub fn is_empty(&self) -> bool {
        self.email.is_none()
            && self.name.is_none()
            && self.phone.is_none()
            && self.company.is_none()
            && self.custom_fields.is_empty()
    }

    /// A canonical custom field as text (e.g. [`CNPJ`]), when the seller sent one.
    pub fn custom_text(&self, key: &str) -> Option<&str> {
        self.custom_fields.get(key).and_then(Value::as_str)
    }
}

/// The canonical custom-field key of a CNPJ.
pub const CNPJ: &str = "cnpj";

/// What a recognised field name stands for.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Field {
    Email,
    Name,
    FirstName,
    LastName,
    Phone,
    Company,
    /// A field without a column, kept in `custom_fields` under this canonical key.
    Custom(&'static str),
}

/// Field names, folded (see [`fold`]), that mean a known field.
const ALIASES: &[(&str, Field)] = &[
    // Email
    ("email", Field::Email),
    ("emailaddress", Field::Email),
    ("mail", Field::Email),
    ("youremail", Field::Email),
    ("workemail", Field::Email),
    ("businessemail", Field::Email),
    ("contactemail", Field::Email),
    ("emailcontato", Field::Email),
    ("enderecodeemail", Field::Email),
    ("seuemail", Field::Email),
    ("correioeletronico", Field::Email),
    ("emailcorporativo", Field::Email),
    // Name
    ("name", Field::Name),
    ("fullname", Field::Name),
    ("yourname", Field::Name),
    ("contactname", Field::Name),
    ("leadname", Field::Name),
    ("customername", Field::Name),
    ("nome", Field::Name),
    ("nomecompleto", Field::Name),
    ("seunome", Field::Name),
    ("nomedocontato", Field::Name),
    ("nomecontato", Field::Name),
    ("nomedocliente", Field::Name),
    ("responsavel", Field::Name),
    ("firstname", Field::FirstName),
    ("fname", Field::FirstName),
    ("givenname", Field::FirstName),
    ("forename", Field::FirstName),
    ("primeironome", Field::FirstName),
    ("prenome", Field::FirstName),
    ("lastname", Field::LastName),
    ("lname", Field::LastName),
    ("surname", Field::LastName),
    ("familyname", Field::LastName),
    ("sobrenome", Field::LastName),
    ("ultimonome", Field::LastName),
    // Phone
    ("phone", Field::Phone),
    ("phonenumber", Field::Phone),
    ("phoneno", Field::Phone),
    ("telephone", Field::Phone),
    ("tel", Field::Phone),
    ("mobile", Field::Phone),
    ("mobilephone", Field::Phone),
    ("mobilenumber", Field::Phone),
    ("cell", Field::Phone),
    ("cellphone", Field::Phone),
    ("whatsapp", Field::Phone),
    ("whatsappnumber", Field::Phone),
    ("contactnumber", Field::Phone),
    ("yourphone", Field::Phone),
    ("telefone", Field::Phone),
    ("telefonecelular", Field::Phone),
    ("telefonecontato", Field::Phone),
    ("seutelefone", Field::Phone),
    ("fone", Field::Phone),
    ("celular", Field::Phone),
    ("numerodocelular", Field::Phone),
    ("numerodetelefone", Field::Phone),
    ("whats", Field::Phone),
    ("zap", Field::Phone),
    // Company
    ("company", Field::Company),
    ("companyname", Field::Company),
    ("organization", Field::Company),
    ("organisation", Field::Company),
    ("organizationname", Field::Company),
    ("business", Field::Company),
    ("businessname", Field::Company),
    ("employer", Field::Company),
    ("empresa", Field::Company),
    ("nomedaempresa", Field::Company),
    ("razaosocial", Field::Company),
    ("nomefantasia", Field::Company),
    ("suaempresa", Field::Company),
    ("organizacao", Field::Company),
    // Canonical custom fields
    ("cnpj", Field::Custom(CNPJ)),
    ("cnpjdaempresa", Field::Custom(CNPJ)),
    ("numerocnpj", Field::Custom(CNPJ)),
    ("companytaxid", Field::Custom(CNPJ)),
    ("cpf", Field::Custom("cpf")),
    ("state", Field::Custom("state")),
    ("estado", Field::Custom("state")),
    ("uf", Field::Custom("state")),
    ("province", Field::Custom("state")),
    ("region", Field::Custom("state")),
    ("city", Field::Custom("city")),
    ("town", Field::Custom("city")),
    ("cidade", Field::Custom("city")),
    ("municipio", Field::Custom("city")),
    ("country", Field::Custom("country")),
    ("pais", Field::Custom("country")),
    ("zip", Field::Custom("postal_code")),
    ("zipcode", Field::Custom("postal_code")),
    ("postcode", Field::Custom("postal_code")),
    ("postalcode", Field::Custom("postal_code")),
    ("cep", Field::Custom("postal_code")),
    ("address", Field::Custom("address")),
    ("streetaddress", Field::Custom("address")),
    ("endereco", Field::Custom("address")),
    ("logradouro", Field::Custom("address")),
    ("neighborhood", Field::Custom("neighborhood")),
    ("bairro", Field::Custom("neighborhood")),
    ("jobtitle", Field::Custom("job_title")),
    ("cargo", Field::Custom("job_title")),
    ("website", Field::Custom("website")),
    ("companywebsite", Field::Custom("website")),
    ("message", Field::Custom("message")),
    ("comments", Field::Custom("message")),
    ("comment", Field::Custom("message")),
    ("notes", Field::Custom("message")),
    ("mensagem", Field::Custom("message")),
    ("observacoes", Field::Custom("message")),
    ("comentario", Field::Custom("message")),
];

/// Names of wrapper objects whose members are the lead's fields.
const WRAPPERS: &[&str] = &["lead", "data", "contact", "payload", "fields", "formdata"];

/// How deep wrappers are opened (`{"data": {"lead": {…}}}` is two).
const MAX_WRAPPER_DEPTH: usize = 3;

/// Lower case, letters and digits only, common accents removed: `E-mail` and
/// `Endereço de e-mail` fold to `email` and `enderecodeemail`.
fn fold(key: &str) -> String {
    key.chars()
        .flat_map(char::to_lowercase)
        .filter_map(|c| match c {
            'á' | 'à' | 'â' | 'ã' | 'ä' => Some('a'),
            'é' | 'è' | 'ê' | 'ë' => Some('e'),
            'í' | 'ì' | 'î' | 'ï' => Some('i'),
            'ó' | 'ò' | 'ô' | 'õ' | 'ö' => Some('o'),
            'ú' | 'ù' | 'û' | 'ü' => Some('u'),
            'ç' => Some('c'),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

fn known_field(key: &str, extra: &Aliases) -> Option<Field> {
    let folded = fold(key);
    extra
        .0
        .iter()
        .map(|(alias, field)| (alias.as_str(), *field))
        .chain(ALIASES.iter().copied())
        .find(|(alias, _)| *alias == folded)
        .map(|(_, field)| field)
}

/// One list's extra aliases (folded name → field), consulted before the built-in table.
#[derive(Debug, Default, Clone)]
pub struct Aliases(Vec<(String, Field)>);

impl Aliases {
    /// Reads `(from, to)` pairs; `to` is a standard field (`email`, `name`, `first_name`,
    /// `last_name`, `phone`, `company`) or a canonical extra one (`cnpj`, `state`, …).
    /// The error says which pair does not fit.
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, String> {
        pairs
            .into_iter()
            .map(|(from, to)| {
                let folded = fold(from);
                if folded.is_empty() {
                    return Err(format!("{from:?} has no letters or digits"));
                }
                let field = target(to).ok_or_else(|| format!("{to:?} is not a known field"))?;
                Ok((folded, field))
            })
            .collect::<Result<_, _>>()
            .map(Aliases)
    }
}

/// The field a canonical name stands for.
fn target(name: &str) -> Option<Field> {
    Some(match name {
        "email" => Field::Email,
        "name" => Field::Name,
        "first_name" => Field::FirstName,
        "last_name" => Field::LastName,
        "phone" => Field::Phone,
        "company" => Field::Company,
        other => {
            return ALIASES.iter().find_map(|(_, field)| match field {
                Field::Custom(key) if *key == other => Some(*field),
                _ => None,
            });
        }
    })
}

/// Opens wrapper objects in place: their members take the wrapper's position, siblings
/// stay. Anything deeper than [`MAX_WRAPPER_DEPTH`] stays as it is.
pub fn unwrap_nested(fields: Vec<(String, Value)>) -> Vec<(String, Value)> {
    fn open(fields: Vec<(String, Value)>, depth: usize, out: &mut Vec<(String, Value)>) {
        for (key, value) in fields {
            match value {
                Value::Object(inner)
                    if depth < MAX_WRAPPER_DEPTH && WRAPPERS.contains(&fold(&key).as_str()) =>
                {
                    open(inner.into_iter().collect(), depth + 1, out);
                }
                value => out.push((key, value)),
            }
        }
    }
    let mut out = Vec::with_capacity(fields.len());
    open(fields, 0, &mut out);
    out
}

/// A scalar value as trimmed text; empty text counts as absent.
fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Trims the whitespace around string values.
fn trimmed(value: Value) -> Value {
    match value {
        Value::String(s) if s.trim().len() != s.len() => Value::String(s.trim().to_owned()),
        other => other,
    }
}

/// `text` without U+0000, which PostgreSQL's `text` and `jsonb` cannot hold (a lead
/// carrying one would otherwise fail to store); borrowed when there is none.
fn without_nul(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        text.replace('\0', "").into()
    } else {
        text.into()
    }
}

/// `value` with U+0000 removed from every string and key in it. Parsed JSON is at most
/// 128 levels deep (serde_json's limit), so the recursion is bounded.
fn storable(value: Value) -> Value {
    match value {
        Value::String(s) if s.contains('\0') => Value::String(s.replace('\0', "")),
        Value::Array(items) => Value::Array(items.into_iter().map(storable).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (without_nul(&k).into_owned(), storable(v)))
                .collect(),
        ),
        other => other,
    }
}

/// The longest value (in bytes) taken as a standard field; a longer one is no email,
/// phone, name or company and stays a custom field (it would not fit the indexes on
/// email and phone either).
pub const MAX_STANDARD_LEN: usize = 1_000;

/// Maps field names to the standard fields; keeps everything else in `custom_fields`.
/// The first value of a field wins; a later one stays a custom field under its own name.
/// `first_name` and `last_name` become the name when no full name was sent. `extra` are
/// the list's own aliases.
pub fn normalise(fields: Vec<(String, Value)>, extra: &Aliases) -> Normalised {
    let mut lead = Normalised::default();
    let (mut first, mut last) = (None, None);
    for (key, value) in unwrap_nested(fields) {
        let key = without_nul(&key).into_owned();
        let value = trimmed(storable(value));
        let field = known_field(&key, extra);
        let slot = match field {
            Some(Field::Email) => &mut lead.email,
            Some(Field::Name) => &mut lead.name,
            Some(Field::FirstName) => &mut first,
            Some(Field::LastName) => &mut last,
            Some(Field::Phone) => &mut lead.phone,
            Some(Field::Company) => &mut lead.company,
            Some(Field::Custom(canonical)) => {
                let key = match as_text(&value) {
                    Some(_) if !lead.custom_fields.contains_key(canonical) => canonical.to_owned(),
                    _ => key,
                };
                lead.custom_fields.entry(key).or_insert(value);
                continue;
            }
            None => {
                lead.custom_fields.entry(key).or_insert(value);
                continue;
            }
        };
        let text = match as_text(&value) {
            Some(email) if field == Some(Field::Email) => Some(email.to_lowercase()),
            text => text,
        };
        match text {
            Some(text) if slot.is_none() && text.len() <= MAX_STANDARD_LEN => *slot = Some(text),
            _ => {
                lead.custom_fields.entry(key).or_insert(value);
            }
        }
    }
    if lead.name.is_none() {
        lead.name = match (first, last) {
            (Some(first), Some(last)) => Some(format!("{first} {last}")),
            (first, last) => first.or(last),
        };
    }
    lead
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// The normaliser with the built-in aliases only.
    fn normalise(fields: Vec<(String, Value)>) -> Normalised {
        super::normalise(fields, &Aliases::default())
    }

    #[test]
    fn list_aliases_come_before_the_built_in_table() {
        let extra = Aliases::new([
            ("Celular do Pai", "phone"),
            ("email", "cpf"),
            ("UF", "state"),
        ])
        .expect("valid aliases");
        let lead = super::normalise(
            fields(&[
                ("celular_do_pai", json!("11 98765-4321")),
                ("email", json!("123")),
                ("uf", json!("PE")),
            ]),
            &extra,
        );
        assert_eq!(lead.phone.as_deref(), Some("11 98765-4321"));
        assert_eq!(lead.email, None);
        assert_eq!(lead.custom_fields["cpf"], json!("123"));
        assert_eq!(lead.custom_fields["state"], json!("PE"));
    }

    #[test]
    fn bad_list_aliases_are_named() {
        let cases = [
            (
                "unknown target",
                ("x", "shoe_size"),
                "\"shoe_size\" is not a known field",
            ),
            (
                "empty source",
                ("--", "email"),
                "\"--\" has no letters or digits",
            ),
        ];
        for (case, pair, expected) in cases {
            assert_eq!(Aliases::new([pair]).unwrap_err(), expected, "{case}");
        }
    }

    fn fields(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn the_alias_table_has_over_100_distinct_names() {
        let mut names: Vec<&str> = ALIASES.iter().map(|(a, _)| *a).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALIASES.len(), "an alias appears twice");
        assert!(names.len() > 100, "{} aliases", names.len());
        for name in names {
            assert_eq!(fold(name), name, "{name} is not folded");
        }
    }

    #[test]
    fn aliases_match_case_accent_and_punctuation_insensitively() {
        let cases: &[(&str, Field)] = &[
            ("e-mail", Field::Email),
            ("Email Address", Field::Email),
            ("E_MAIL", Field::Email),
            ("Endereço de e-mail", Field::Email),
            ("telefone", Field::Phone),
            ("Celular", Field::Phone),
            ("WhatsApp", Field::Phone),
            ("phone_number", Field::Phone),
            ("Nome", Field::Name),
            ("full_name", Field::Name),
            ("first-name", Field::FirstName),
            ("Last Name", Field::LastName),
            ("empresa", Field::Company),
            ("company_name", Field::Company),
            ("Razão Social", Field::Company),
            ("C.N.P.J.", Field::Custom(CNPJ)),
            ("state", Field::Custom("state")),
            ("Estado", Field::Custom("state")),
            ("UF", Field::Custom("state")),
        ];
        for (name, expected) in cases {
            assert_eq!(
                known_field(name, &Aliases::default()),
                Some(*expected),
                "{name}"
            );
        }
        assert_eq!(known_field("utm_source", &Aliases::default()), None);
    }

    #[test]
    fn aliases_map_to_standard_fields() {
        let lead = normalise(fields(&[
            ("E-mail", json!("  Ana@Example.com ")),
            ("full_name", json!("Ana Souza")),
            ("phone_number", json!(5511999999999_u64)),
            ("Company Name", json!("ACME")),
            ("utm_source", json!(" google ")),
            ("UF", json!("SP")),
            ("CNPJ", json!("11.222.333/0001-81")),
        ]));
        assert_eq!(lead.email.as_deref(), Some("ana@example.com"));
        assert_eq!(lead.name.as_deref(), Some("Ana Souza"));
        assert_eq!(lead.phone.as_deref(), Some("5511999999999"));
        assert_eq!(lead.company.as_deref(), Some("ACME"));
        assert_eq!(
            Value::Object(lead.custom_fields.clone()),
            json!({"utm_source": "google", "state": "SP", "cnpj": "11.222.333/0001-81"})
        );
        assert_eq!(lead.custom_text(CNPJ), Some("11.222.333/0001-81"));
    }

    #[test]
    fn first_and_last_name_join_unless_a_full_name_was_sent() {
        let joined = normalise(fields(&[
            ("first_name", json!(" Ana ")),
            ("sobrenome", json!("Souza")),
        ]));
        assert_eq!(joined.name.as_deref(), Some("Ana Souza"));
        assert!(joined.custom_fields.is_empty());
        let only_first = normalise(fields(&[("primeiro_nome", json!("Ana"))]));
        assert_eq!(only_first.name.as_deref(), Some("Ana"));
        let full_wins = normalise(fields(&[
            ("firstName", json!("A")),
            ("nome", json!("Ana Souza")),
        ]));
        assert_eq!(full_wins.name.as_deref(), Some("Ana Souza"));
    }

    #[test]
    fn nul_characters_are_removed_everywhere() {
        let lead = normalise(fields(&[
            ("email", json!("ana\u{0}@example.com")),
            ("\u{0}", json!("x")),
            ("extra\u{0}", json!({"k\u{0}": ["\u{0}v", 1]})),
            ("lead", json!({"name": "\u{0}Ana\u{0}"})),
        ]));
        assert_eq!(lead.email.as_deref(), Some("ana@example.com"));
        assert_eq!(lead.name.as_deref(), Some("Ana"));
        assert_eq!(
            Value::Object(lead.custom_fields),
            json!({"": "x", "extra": {"k": ["v", 1]}})
        );
    }

    #[test]
    fn overlong_values_are_no_standard_field() {
        let long = "9".repeat(MAX_STANDARD_LEN + 1);
        let cases = [
            ("email", format!("{long}@example.com")),
            ("phone", long.clone()),
            ("name", long.clone()),
            ("company", long.clone()),
        ];
        for (field, value) in cases {
            let lead = normalise(fields(&[(field, json!(value))]));
            assert_eq!(
                (&lead.email, &lead.phone, &lead.name, &lead.company),
                (&None, &None, &None, &None),
                "{field}"
            );
            assert_eq!(lead.custom_fields[field], json!(value), "{field} is kept");
        }
        let fits = "a".repeat(MAX_STANDARD_LEN);
        assert_eq!(
            normalise(fields(&[("name", json!(fits))])).name.as_deref(),
            Some(fits.as_str())
        );
    }

    #[test]
    fn non_text_and_repeated_fields_stay_custom() {
        let lead = normalise(fields(&[
            ("email", json!({"a": 1})),
            ("mail", json!("x@y.z")),
            ("e_mail", json!("second@y.z")),
            ("estado", json!("SP")),
            ("uf", json!("RJ")),
        ]));
        assert_eq!(lead.email.as_deref(), Some("x@y.z"));
        assert_eq!(lead.custom_fields["email"], json!({"a": 1}));
        assert_eq!(lead.custom_fields["e_mail"], json!("second@y.z"));
        assert_eq!(lead.custom_fields["state"], json!("SP"));
        assert_eq!(lead.custom_fields["uf"], json!("RJ"));
    }

    #[test]
    fn wrapper_objects_are_opened_in_place() {
        let cases = [
            ("lead", json!({"lead": {"email": "a@b.co"}, "form": "x"})),
            ("data", json!({"data": {"email": "a@b.co"}, "form": "x"})),
            (
                "data then lead",
                json!({"data": {"lead": {"email": "a@b.co"}}, "form": "x"}),
            ),
        ];
        for (what, body) in cases {
            let Value::Object(map) = body else {
                unreachable!("the cases are objects")
            };
            let lead = normalise(map.into_iter().collect());
            assert_eq!(lead.email.as_deref(), Some("a@b.co"), "{what}");
            assert_eq!(lead.custom_fields["form"], json!("x"), "{what}");
        }
        let not_a_wrapper = normalise(fields(&[("address", json!({"city": "Recife"}))]));
        assert_eq!(
            not_a_wrapper.custom_fields["address"],
            json!({"city": "Recife"})
        );
    }

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".*".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::vec(("(lead|data|email|nome|.*)", inner), 0..6)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn normalise_never_panics(pairs in prop::collection::vec((".*", arbitrary_json()), 0..12)) {
            let lead = normalise(pairs);
            for text in [&lead.email, &lead.phone, &lead.company].into_iter().flatten() {
                prop_assert!(text.len() <= MAX_STANDARD_LEN, "{text:?}");
            }
            for text in [&lead.email, &lead.phone, &lead.company, &lead.name].into_iter().flatten() {
                prop_assert!(!text.contains('\0'), "{text:?}");
            }
            let stored = serde_json::to_string(&lead.custom_fields).unwrap_or_default();
            prop_assert!(!stored.contains("\\u0000"), "{stored}");
            if let Some(email) = lead.email {
                prop_assert_eq!(email.to_lowercase(), email);
            }
        }

        /// A list's aliases, whatever the owner typed: accepted or refused with a reason,
        /// and the normaliser runs with any accepted ones.
        #[test]
        fn list_aliases_never_panic(
            pairs in prop::collection::vec((".{0,20}", "(email|phone|first_name|state|cnpj|.{0,12})"), 0..6),
            lead in prop::collection::vec(("(.{0,12}|email|phone)", arbitrary_json()), 0..6),
        ) {
            let aliases = Aliases::new(pairs.iter().map(|(from, to)| (from.as_str(), to.as_str())));
            match aliases {
                Ok(extra) => {
                    let _ = super::normalise(lead, &extra);
                }
                Err(why) => prop_assert!(!why.is_empty()),
            }
        }
    }
}
