//! The transforms of a mapped field (`{name, arg}` in the API): parsed and checked when
//! the mapping is saved, applied to each lead when its body is rendered.
//!
//! A transform works on the field's value or on its absence. Absent (a missing path, null,
//! or an empty string) passes through every transform untouched except `default`, which
//! gives it a value. A value a transform cannot handle (an unparsable date, an unknown
//! state, a phone number that is not one) is an error naming the value; the mapping
//! records it and goes on as if the value were absent, so a later `default` still applies
//! and the delivery is never held up by one field.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};
use phonenumber::Mode;
pub use phonenumber::country::Id as Region;
use serde_json::Value;
use std::str::FromStr;

/// The names of every transform.
pub const NAMES: &[&str] = &[
    "e164",
    "national_phone",
    "digits_only",
    "lowercase",
    "uppercase",
    "trim",
    "state_abbreviation",
    "date_format",
    "split_name",
    "default",
    "truncate",
];

/// The longest `default` value and the largest `truncate` length.
const MAX_ARG: usize = 1024;
const MAX_TRUNCATE: usize = 100_000;

/// One transform, ready to apply.
#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    /// A phone number in E.164 (`+5511987654321`), read in the given region (default: the
    /// list's phone region) unless it has a country code.
    E164(Option<Region>),
    /// A phone number in its country's national format (`(11) 98765-4321`).
    NationalPhone(Option<Region>),
    /// Only the ASCII digits of the text.
    DigitsOnly,
    Lowercase,
    Uppercase,
    Trim,
    /// A US state or Brazilian UF: to its code, or to its name.
    State(StateTo),
    /// An ISO 8601 date or date-time, re-written (see [`DatePattern`]).
    DateFormat(DatePattern),
    /// The first word of a name, or the rest of it.
    SplitName(NamePart),
    /// The value when the field is absent.
    Default(String),
    /// At most this many characters.
    Truncate(usize),
}

/// Which part of a transform is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Name,
    Arg,
}

/// The countries whose states `state_abbreviation` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Country {
    Us,
    Br,
}

/// The direction of `state_abbreviation`: arg `code` (the default; `code:US`, `code:BR`
/// to accept one country only) or `name:US` / `name:BR` (a code means different states
/// in the two countries, e.g. `PA`, so expanding one needs the country).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateTo {
    Code(Option<Country>),
    Name(Country),
}

/// The output of `date_format`: `unix` (seconds, a number) or a pattern of `YYYY`, `YY`,
/// `MM`, `DD`, `HH`, `mm`, `ss` and the separators ` /-.:,T` (as a chrono format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatePattern {
    Unix,
    Format(String),
}

/// A name split at its first space: (first word, the rest), each None when empty.
pub fn split_name(name: &str) -> (Option<String>, Option<String>) {
    let mut words = name.split_whitespace();
    let first = words.next().map(str::to_owned);
    let rest = words.collect::<Vec<_>>().join(" ");
    (first, (!rest.is_empty()).then_some(rest))
}

/// The part of a name `split_name` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamePart {
    First,
    Last,
}

impl Transform {
    /// Parses `{name, arg}`; the error says which of the two is wrong and why.
    pub fn parse(name: &str, arg: Option<&str>) -> Result<Self, (Part, String)> {
        let bad = |message: String| Err((Part::Arg, message));
        let no_arg = |t: Transform| match arg {
            None => Ok(t),
            Some(_) => bad(format!("{name} takes no argument")),
        };
        let required = || arg.ok_or((Part::Arg, format!("{name} needs an argument")));
        match name {
            "e164" => Ok(Transform::E164(arg.map(region).transpose()?)),
            "national_phone" => Ok(Transform::NationalPhone(arg.map(region).transpose()?)),
            "digits_only" => no_arg(Transform::DigitsOnly),
            "lowercase" => no_arg(Transform::Lowercase),
            "uppercase" => no_arg(Transform::Uppercase),
            "trim" => no_arg(Transform::Trim),
            "state_abbreviation" => Ok(Transform::State(state_to(arg)?)),
            "date_format" => Ok(Transform::DateFormat(date_pattern(required()?)?)),
            "split_name" => match required()? {
                "first" => Ok(Transform::SplitName(NamePart::First)),
                "last" => Ok(Transform::SplitName(NamePart::Last)),
                other => bad(format!("split_name takes first or last, not {other:?}")),
            },
            "default" => match required()? {
                "" => bad("default needs a non-empty value".into()),
                v if v.len() > MAX_ARG => bad(format!("default is at most {MAX_ARG} bytes")),
                v => Ok(Transform::Default(v.to_owned())),
            },
            "truncate" => match required()?.trim().parse::<usize>() {
                Ok(n) if (1..=MAX_TRUNCATE).contains(&n) => Ok(Transform::Truncate(n)),
                _ => bad(format!(
                    "truncate takes a length from 1 to {MAX_TRUNCATE}, not {:?}",
                    arg.unwrap_or_default()
                )),
            },
            other => Err((
                Part::Name,
                format!(
                    "unknown transform {other:?}: use one of {}",
                    NAMES.join(", ")
                ),
            )),
        }
    }

    /// Applies the transform; `region` reads phone numbers without a country code when the
    /// transform names none. `None` is an absent value (see the module's comment).
    pub fn apply(&self, value: Option<Value>, region: Region) -> Result<Option<Value>, String> {
        let Some(value) = value else {
            return Ok(match self {
                Transform::Default(v) => Some(Value::String(v.clone())),
                _ => None,
            });
        };
        let out = match self {
            Transform::Default(_) => value,
            Transform::E164(r) => phone(&text(&value)?, r.unwrap_or(region), Mode::E164)?,
            Transform::NationalPhone(r) => {
                phone(&text(&value)?, r.unwrap_or(region), Mode::National)?
            }
            Transform::DigitsOnly => {
                let text = text(&value)?;
                let digits: String = text.chars().filter(char::is_ascii_digit).collect();
                if digits.is_empty() {
                    return Err(format!("{text:?} has no digits"));
                }
                Value::String(digits)
            }
            Transform::Lowercase => Value::String(text(&value)?.to_lowercase()),
            Transform::Uppercase => Value::String(text(&value)?.to_uppercase()),
            Transform::Trim => Value::String(text(&value)?.trim().to_owned()),
            Transform::State(to) => Value::String(state(&text(&value)?, *to)?),
            Transform::DateFormat(pattern) => {
                let text = text(&value)?;
                let at = parse_datetime(&text)
                    .ok_or_else(|| format!("{text:?} is not an ISO 8601 date or date-time"))?;
                match pattern {
                    DatePattern::Unix => Value::from(at.timestamp()),
                    DatePattern::Format(f) => Value::String(at.format(f).to_string()),
                }
            }
            Transform::SplitName(part) => {
                let (first, rest) = split_name(&text(&value)?);
                Value::String(
                    match part {
                        NamePart::First => first,
                        NamePart::Last => rest,
                    }
                    .unwrap_or_default(),
                )
            }
            Transform::Truncate(n) => Value::String(text(&value)?.chars().take(*n).collect()),
        };
        Ok(present(out))
    }
}

/// `value` unless it counts as absent (null or an empty string).
pub fn present(value: Value) -> Option<Value> {
    match &value {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        _ => Some(value),
    }
}

/// A scalar as text; objects and arrays are not text.
pub fn text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        Value::Array(_) => Err("a list is not text".into()),
        Value::Object(_) => Err("an object is not text".into()),
    }
}

fn region(arg: &str) -> Result<Region, (Part, String)> {
    Region::from_str(&arg.trim().to_ascii_uppercase()).map_err(|_| {
        (
            Part::Arg,
            format!("{arg:?} is not a region code such as BR or US"),
        )
    })
}

/// Reads `text` in `region` unless it starts with `+`: then only its own country code
/// counts (phonenumber 0.3 given a region misreads some international numbers, e.g.
/// `+55 11 …` with US, by stripping that region's national prefix).
fn phone(text: &str, region: Region, mode: Mode) -> Result<Value, String> {
    let region = (!text.trim_start().starts_with('+')).then_some(region);
    match phonenumber::parse(region, text) {
        Ok(number) if number.is_valid() => {
            Ok(Value::String(number.format().mode(mode).to_string()))
        }
        _ => Err(format!("{text:?} is not a valid phone number")),
    }
}

/// Reads ISO 8601: a date-time with an offset keeps its offset (so the date is the one
/// the sender wrote); without one it is UTC; a date alone is midnight UTC.
pub fn parse_datetime(text: &str) -> Option<DateTime<FixedOffset>> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at);
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z"] {
        if let Ok(at) = DateTime::parse_from_str(text, f) {
            return Some(at);
        }
    }
    let utc = |naive: NaiveDateTime| naive.and_utc().fixed_offset();
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, f) {
            return Some(utc(naive));
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(utc)
}

/// Whether `text` reads as an ISO 8601 date (what filters compare dates with).
pub fn is_datetime(text: &str) -> bool {
    parse_datetime(text).is_some()
}

/// The instant of an ISO 8601 `text`, for comparisons.
pub fn instant(text: &str) -> Option<DateTime<Utc>> {
    parse_datetime(text).map(|at| at.with_timezone(&Utc))
}

/// Turns a `MM/DD/YYYY`-style pattern into a chrono format; refuses anything else.
fn date_pattern(arg: &str) -> Result<DatePattern, (Part, String)> {
    if arg.trim().eq_ignore_ascii_case("unix") {
        return Ok(DatePattern::Unix);
    }
    const TOKENS: [(&str, &str); 7] = [
        ("YYYY", "%Y"),
        ("YY", "%y"),
        ("MM", "%m"),
        ("DD", "%d"),
        ("HH", "%H"),
        ("mm", "%M"),
        ("ss", "%S"),
    ];
    let bad = || {
        Err((
            Part::Arg,
            format!(
                "{arg:?} is not a date pattern: use unix, or YYYY, YY, MM, DD, HH, mm, ss \
                 and the separators / - . : , T and space (e.g. MM/DD/YYYY)"
            ),
        ))
    };
    let (mut rest, mut format, mut tokens) = (arg, String::new(), 0);
    while !rest.is_empty() {
        if let Some((token, f)) = TOKENS.iter().find(|(t, _)| rest.starts_with(t)) {
            format.push_str(f);
            rest = &rest[token.len()..];
            tokens += 1;
        } else if let Some(c) = rest.chars().next().filter(|c| " /-.:,T".contains(*c)) {
            format.push(c);
            rest = &rest[c.len_utf8()..];
        } else {
            return bad();
        }
    }
    if tokens == 0 || arg.len() > 64 {
        return bad();
    }
    Ok(DatePattern::Format(format))
}

fn state_to(arg: Option<&str>) -> Result<StateTo, (Part, String)> {
    let arg = arg.unwrap_or("code").trim();
    let (direction, country) = match arg.split_once(':') {
        Some((d, c)) => (d, Some(c)),
        None => (arg, None),
    };
    let country = match country.map(str::to_ascii_uppercase).as_deref() {
        None => None,
        Some("US") => Some(Country::Us),
        Some("BR") => Some(Country::Br),
        Some(_) => return Err((Part::Arg, format!("{arg:?}: the country is US or BR"))),
    };
    match (direction, country) {
        ("code", country) => Ok(StateTo::Code(country)),
        ("name", Some(country)) => Ok(StateTo::Name(country)),
        ("name", None) => Err((
            Part::Arg,
            "name needs the country (name:US or name:BR): codes such as PA mean a state in each"
                .into(),
        )),
        _ => Err((
            Part::Arg,
            format!("{arg:?}: use code, code:US, code:BR, name:US or name:BR"),
        )),
    }
}

/// US states (and DC), then Brazilian UFs: (country, code, name).
const STATES: &[(Country, &str, &str)] = &[
    (Country::Us, "AL", "Alabama"),
    (Country::Us, "AK", "Alaska"),
    (Country::Us, "AZ", "Arizona"),
    (Country::Us, "AR", "Arkansas"),
    (Country::Us, "CA", "California"),
    (Country::Us, "CO", "Colorado"),
    (Country::Us, "CT", "Connecticut"),
    (Country::Us, "DE", "Delaware"),
    (Country::Us, "DC", "District of Columbia"),
    (Country::Us, "FL", "Florida"),
    (Country::Us, "GA", "Georgia"),
    (Country::Us, "HI", "Hawaii"),
    (Country::Us, "ID", "Idaho"),
    (Country::Us, "IL", "Illinois"),
    (Country::Us, "IN", "Indiana"),
    (Country::Us, "IA", "Iowa"),
    (Country::Us, "KS", "Kansas"),
    (Country::Us, "KY", "Kentucky"),
    (Country::Us, "LA", "Louisiana"),
    (Country::Us, "ME", "Maine"),
    (Country::Us, "MD", "Maryland"),
    (Country::Us, "MA", "Massachusetts"),
    (Country::Us, "MI", "Michigan"),
    (Country::Us, "MN", "Minnesota"),
    (Country::Us, "MS", "Mississippi"),
    (Country::Us, "MO", "Missouri"),
    (Country::Us, "MT", "Montana"),
    (Country::Us, "NE", "Nebraska"),
    (Country::Us, "NV", "Nevada"),
    (Country::Us, "NH", "New Hampshire"),
    (Country::Us, "NJ", "New Jersey"),
    (Country::Us, "NM", "New Mexico"),
    (Country::Us, "NY", "New York"),
    (Country::Us, "NC", "North Carolina"),
    (Country::Us, "ND", "North Dakota"),
    (Country::Us, "OH", "Ohio"),
    (Country::Us, "OK", "Oklahoma"),
    (Country::Us, "OR", "Oregon"),
    (Country::Us, "PA", "Pennsylvania"),
    (Country::Us, "RI", "Rhode Island"),
    (Country::Us, "SC", "South Carolina"),
    (Country::Us, "SD", "South Dakota"),
    (Country::Us, "TN", "Tennessee"),
    (Country::Us, "TX", "Texas"),
    (Country::Us, "UT", "Utah"),
    (Country::Us, "VT", "Vermont"),
    (Country::Us, "VA", "Virginia"),
    (Country::Us, "WA", "Washington"),
    (Country::Us, "WV", "West Virginia"),
    (Country::Us, "WI", "Wisconsin"),
    (Country::Us, "WY", "Wyoming"),
    (Country::Br, "AC", "Acre"),
    (Country::Br, "AL", "Alagoas"),
    (Country::Br, "AP", "Amapá"),
    (Country::Br, "AM", "Amazonas"),
    (Country::Br, "BA", "Bahia"),
    (Country::Br, "CE", "Ceará"),
    (Country::Br, "DF", "Distrito Federal"),
    (Country::Br, "ES", "Espírito Santo"),
    (Country::Br, "GO", "Goiás"),
    (Country::Br, "MA", "Maranhão"),
    (Country::Br, "MT", "Mato Grosso"),
    (Country::Br, "MS", "Mato Grosso do Sul"),
    (Country::Br, "MG", "Minas Gerais"),
    (Country::Br, "PA", "Pará"),
    (Country::Br, "PB", "Paraíba"),
    (Country::Br, "PR", "Paraná"),
    (Country::Br, "PE", "Pernambuco"),
    (Country::Br, "PI", "Piauí"),
    (Country::Br, "RJ", "Rio de Janeiro"),
    (Country::Br, "RN", "Rio Grande do Norte"),
    (Country::Br, "RS", "Rio Grande do Sul"),
    (Country::Br, "RO", "Rondônia"),
    (Country::Br, "RR", "Roraima"),
    (Country::Br, "SC", "Santa Catarina"),
    (Country::Br, "SP", "São Paulo"),
    (Country::Br, "SE", "Sergipe"),
    (Country::Br, "TO", "Tocantins"),
];

/// Lower case, accents off, single spaces: how state names are compared.
fn fold(text: &str) -> String {
    let plain: String = text
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            '-' | '_' | '.' => ' ',
            c => c,
        })
        .collect();
    plain.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn state(text: &str, to: StateTo) -> Result<String, String> {
    let in_country = |c: Country, only: Option<Country>| only.is_none_or(|o| o == c);
    let (only, want_code) = match to {
        StateTo::Code(only) => (only, true),
        StateTo::Name(country) => (Some(country), false),
    };
    let folded = fold(text);
    let code = text.trim().to_ascii_uppercase();
    let found = STATES
        .iter()
        .filter(|(c, _, _)| in_country(*c, only))
        .find(|(_, abbr, name)| fold(name) == folded || *abbr == code);
    match found {
        Some((_, abbr, name)) => Ok(if want_code { abbr } else { name }.to_string()),
        None => Err(format!(
            "{text:?} is not {}",
            match only {
                Some(Country::Us) => "a US state",
                Some(Country::Br) => "a Brazilian state (UF)",
                None => "a US state or a Brazilian state (UF)",
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(name: &str, arg: Option<&str>, input: Value) -> Result<Option<Value>, String> {
        let t = Transform::parse(name, arg).expect("a valid transform");
        t.apply(present(input), Region::BR)
    }

    #[test]
    fn each_transform_on_good_input() {
        let cases: &[(&str, &str, Option<&str>, Value, Value)] = &[
            (
                "e164, BR national",
                "e164",
                None,
                json!("(11) 98765-4321"),
                json!("+5511987654321"),
            ),
            (
                "e164, explicit US",
                "e164",
                Some("US"),
                json!("(415) 555-2671"),
                json!("+14155552671"),
            ),
            (
                "e164, international kept",
                "e164",
                Some("US"),
                json!("+55 11 98765 4321"),
                json!("+5511987654321"),
            ),
            (
                "national_phone BR",
                "national_phone",
                None,
                json!("+5511987654321"),
                json!("(11) 98765-4321"),
            ),
            (
                "digits_only",
                "digits_only",
                None,
                json!("12.345.678/0001-95"),
                json!("12345678000195"),
            ),
            (
                "digits_only of a number",
                "digits_only",
                None,
                json!(85),
                json!("85"),
            ),
            (
                "lowercase",
                "lowercase",
                None,
                json!("ÁNA@X.COM"),
                json!("ána@x.com"),
            ),
            ("uppercase", "uppercase", None, json!("sp"), json!("SP")),
            ("trim", "trim", None, json!("  a b  "), json!("a b")),
            (
                "state name to code, BR",
                "state_abbreviation",
                None,
                json!("sao paulo"),
                json!("SP"),
            ),
            (
                "state name to code, US",
                "state_abbreviation",
                None,
                json!("New York"),
                json!("NY"),
            ),
            (
                "state code stays a code",
                "state_abbreviation",
                None,
                json!("rj"),
                json!("RJ"),
            ),
            (
                "state code to name, BR",
                "state_abbreviation",
                Some("name:BR"),
                json!("PA"),
                json!("Pará"),
            ),
            (
                "state code to name, US",
                "state_abbreviation",
                Some("name:US"),
                json!("pa"),
                json!("Pennsylvania"),
            ),
            (
                "state name to canonical name",
                "state_abbreviation",
                Some("name:BR"),
                json!("ESPIRITO SANTO"),
                json!("Espírito Santo"),
            ),
            (
                "date MM/DD/YYYY",
                "date_format",
                Some("MM/DD/YYYY"),
                json!("2024-03-05T14:30:00Z"),
                json!("03/05/2024"),
            ),
            (
                "date DD/MM/YYYY",
                "date_format",
                Some("DD/MM/YYYY"),
                json!("2024-03-05"),
                json!("05/03/2024"),
            ),
            (
                "date YYYY-MM-DD",
                "date_format",
                Some("YYYY-MM-DD"),
                json!("2024-03-05T14:30:00.123Z"),
                json!("2024-03-05"),
            ),
            (
                "date keeps its offset",
                "date_format",
                Some("YYYY-MM-DD HH:mm"),
                json!("2024-03-05T23:30:00-03:00"),
                json!("2024-03-05 23:30"),
            ),
            (
                "naive date-time is UTC",
                "date_format",
                Some("unix"),
                json!("2024-03-05T00:00:00"),
                json!(1_709_596_800),
            ),
            (
                "unix of an offset",
                "date_format",
                Some("unix"),
                json!("2024-03-04T21:00:00-03:00"),
                json!(1_709_596_800),
            ),
            (
                "split first",
                "split_name",
                Some("first"),
                json!("Ana Maria Silva"),
                json!("Ana"),
            ),
            (
                "split last",
                "split_name",
                Some("last"),
                json!("Ana Maria  Silva"),
                json!("Maria Silva"),
            ),
            (
                "default when present",
                "default",
                Some("x"),
                json!("given"),
                json!("given"),
            ),
            (
                "truncate by characters",
                "truncate",
                Some("3"),
                json!("São Paulo"),
                json!("São"),
            ),
        ];
        for (case, name, arg, input, expected) in cases {
            assert_eq!(
                run(name, *arg, input.clone()),
                Ok(Some(expected.clone())),
                "{case}"
            );
        }
    }

    #[test]
    fn absent_values_pass_through_except_default() {
        for name in ["e164", "digits_only", "lowercase", "trim"] {
            assert_eq!(run(name, None, Value::Null), Ok(None), "{name}");
            assert_eq!(run(name, None, json!("")), Ok(None), "{name} of empty");
        }
        assert_eq!(
            run("default", Some("n/a"), Value::Null),
            Ok(Some(json!("n/a")))
        );
        assert_eq!(
            run("split_name", Some("last"), json!("Ana")),
            Ok(None),
            "one word: no last name"
        );
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let cases: &[(&str, &str, Option<&str>, Value, &str)] = &[
            (
                "non-numeric phone",
                "e164",
                None,
                json!("call me"),
                "is not a valid phone number",
            ),
            (
                "too short phone",
                "national_phone",
                None,
                json!("123"),
                "is not a valid phone number",
            ),
            (
                "no digits",
                "digits_only",
                None,
                json!("abc"),
                "has no digits",
            ),
            (
                "unknown state",
                "state_abbreviation",
                None,
                json!("Narnia"),
                "is not a US state or a Brazilian state",
            ),
            (
                "code of the other country",
                "state_abbreviation",
                Some("name:US"),
                json!("SP"),
                "is not a US state",
            ),
            (
                "unparsable date",
                "date_format",
                Some("MM/DD/YYYY"),
                json!("31/02/2020"),
                "is not an ISO 8601 date",
            ),
            (
                "impossible date",
                "date_format",
                Some("MM/DD/YYYY"),
                json!("2020-02-31"),
                "is not an ISO 8601 date",
            ),
            (
                "object is not text",
                "uppercase",
                None,
                json!({"a": 1}),
                "an object is not text",
            ),
        ];
        for (case, name, arg, input, expected) in cases {
            let err = run(name, *arg, input.clone()).expect_err(case);
            assert!(err.contains(expected), "{case}: {err}");
        }
    }

    proptest::proptest! {
        /// Whatever a lead holds, every transform answers a value or an error: no panic.
        #[test]
        fn transforms_never_panic(input in proptest::prelude::any::<String>(), number in proptest::prelude::any::<f64>()) {
            let all = [
                ("e164", None), ("e164", Some("US")), ("national_phone", None),
                ("digits_only", None), ("lowercase", None), ("uppercase", None), ("trim", None),
                ("state_abbreviation", None), ("state_abbreviation", Some("name:US")),
                ("date_format", Some("DD/MM/YYYY HH:mm:ss")), ("date_format", Some("unix")),
                ("split_name", Some("first")), ("split_name", Some("last")),
                ("default", Some("x")), ("truncate", Some("3")),
            ];
            for (name, arg) in all {
                let t = Transform::parse(name, arg).expect("a valid transform");
                let _ = t.apply(Some(Value::String(input.clone())), Region::BR);
                let _ = t.apply(Some(json!(number)), Region::BR);
            }
        }
    }

    #[test]
    fn bad_transforms_are_refused_naming_the_part() {
        let cases: &[(&str, &str, Option<&str>, Part)] = &[
            ("unknown name", "capitalize", None, Part::Name),
            ("bad region", "e164", Some("XX"), Part::Arg),
            ("arg where none is taken", "trim", Some("x"), Part::Arg),
            ("missing date pattern", "date_format", None, Part::Arg),
            ("bad date pattern", "date_format", Some("QQ/ZZ"), Part::Arg),
            (
                "pattern without tokens",
                "date_format",
                Some("//"),
                Part::Arg,
            ),
            (
                "strftime is not a pattern",
                "date_format",
                Some("%Y-%m-%d"),
                Part::Arg,
            ),
            ("bad name part", "split_name", Some("middle"), Part::Arg),
            ("empty default", "default", Some(""), Part::Arg),
            ("truncate zero", "truncate", Some("0"), Part::Arg),
            ("truncate text", "truncate", Some("ten"), Part::Arg),
            (
                "state name without country",
                "state_abbreviation",
                Some("name"),
                Part::Arg,
            ),
            (
                "state of another country",
                "state_abbreviation",
                Some("code:MX"),
                Part::Arg,
            ),
        ];
        for (case, name, arg, part) in cases {
            let (got, message) = Transform::parse(name, *arg).expect_err(case);
            assert_eq!(got, *part, "{case}: {message}");
        }
    }
}
