//! Phone checks with libphonenumber's metadata (the `phonenumber` crate): parse in the
//! list's default region, E.164 output, validity and line type. A Brazilian mobile sent
//! in the old eight-digit form (before the ninth digit was added) is repaired.

use phonenumber::{Mode, PhoneNumber, Type, country::Id};

/// The region a number without a country code is read in when the list's region is not
/// one libphonenumber knows (lists default to BR too).
pub const DEFAULT_REGION: Id = Id::BR;

/// The outcome of the phone check.
#[derive(Debug, Clone, PartialEq)]
pub struct PhoneCheck {
    /// The number is possible and matches a known numbering plan.
    pub valid: bool,
    /// E.164 (`+5511987654321`) when valid.
    pub e164: Option<String>,
    /// Line type when the metadata knows it (`mobile`, `fixed_line`, …).
    pub line_type: Option<&'static str>,
}

/// Checks `text` as a phone number, reading it in `region` unless it has a country code.
pub fn check(text: &str, region: Id) -> PhoneCheck {
    // A number with its country code is read without the list's region: given one,
    // libphonenumber 0.3 misreads some (`+55 11 98765-4321` in US).
    let region = (!text.trim_start().starts_with('+')).then_some(region);
    let parsed = phonenumber::parse(region, text).ok();
    let number = match parsed {
        Some(n) if n.is_valid() => Some(n),
        other => other.and_then(|n| with_ninth_digit(&n)),
    };
    match number {
        Some(number) => PhoneCheck {
            valid: true,
            e164: Some(number.format().mode(Mode::E164).to_string()),
            line_type: line_type(number.number_type(&phonenumber::metadata::DATABASE)),
        },
        None => PhoneCheck {
            valid: false,
            e164: None,
            line_type: None,
        },
    }
}

/// A Brazilian number of a two-digit area code and eight digits starting 6–9 was a
/// mobile before 2016; today it is the same mobile with a 9 in front.
fn with_ninth_digit(number: &PhoneNumber) -> Option<PhoneNumber> {
    if number.code().value() != 55 {
        return None;
    }
    let national = number.national().value().to_string();
    let (area, subscriber) = national.split_at_checked(2)?;
    if subscriber.len() != 8 || !subscriber.starts_with(['6', '7', '8', '9']) {
        return None;
    }
    let repaired = phonenumber::parse(Some(Id::BR), format!("+55{area}9{subscriber}")).ok()?;
    (repaired.is_valid() && repaired.number_type(&phonenumber::metadata::DATABASE) == Type::Mobile)
        .then_some(repaired)
}

fn line_type(kind: Type) -> Option<&'static str> {
    Some(match kind {
        Type::FixedLine => "fixed_line",
        Type::Mobile => "mobile",
        Type::FixedLineOrMobile => "fixed_line_or_mobile",
        Type::TollFree => "toll_free",
        Type::PremiumRate => "premium_rate",
        Type::SharedCost => "shared_cost",
        Type::PersonalNumber => "personal_number",
        Type::Voip => "voip",
        Type::Pager => "pager",
        Type::Uan => "uan",
        Type::Voicemail => "voicemail",
        _ => return None,
    })
}

/// Loads the numbering metadata now rather than on the first lead.
pub fn warm_up() {
    let _ = check("+5511987654321", DEFAULT_REGION);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbers() {
        /// (case, input, region, E.164 when valid, line type)
        type Case = (
            &'static str,
            &'static str,
            Id,
            Option<&'static str>,
            Option<&'static str>,
        );
        let cases: &[Case] = &[
            (
                "BR mobile, area code, 9th digit",
                "(11) 98765-4321",
                Id::BR,
                Some("+5511987654321"),
                Some("mobile"),
            ),
            (
                "BR mobile, bare digits",
                "11987654321",
                Id::BR,
                Some("+5511987654321"),
                Some("mobile"),
            ),
            (
                "BR mobile, +55",
                "+55 11 98765-4321",
                Id::BR,
                Some("+5511987654321"),
                Some("mobile"),
            ),
            (
                "BR mobile, 55 without plus",
                "5511987654321",
                Id::BR,
                Some("+5511987654321"),
                Some("mobile"),
            ),
            (
                "BR mobile, trunk 0",
                "0 11 98765-4321",
                Id::BR,
                Some("+5511987654321"),
                Some("mobile"),
            ),
            (
                "BR mobile without 9th digit",
                "(11) 8765-4321",
                Id::BR,
                Some("+5511987654321"),
                Some("mobile"),
            ),
            (
                "BR mobile without 9th digit, +55",
                "+55 21 8765 4321",
                Id::BR,
                Some("+5521987654321"),
                Some("mobile"),
            ),
            (
                "BR mobile without area code",
                "98765-4321",
                Id::BR,
                None,
                None,
            ),
            (
                "BR mobile without area code or 9th digit",
                "8765-4321",
                Id::BR,
                None,
                None,
            ),
            (
                "BR landline",
                "(11) 3456-7890",
                Id::BR,
                Some("+551134567890"),
                Some("fixed_line"),
            ),
            (
                "BR landline stays a landline",
                "+55 11 2345 6789",
                Id::BR,
                Some("+551123456789"),
                Some("fixed_line"),
            ),
            (
                "BR toll free",
                "0800 123 4567",
                Id::BR,
                Some("+558001234567"),
                Some("toll_free"),
            ),
            (
                "US with +1",
                "+1 650-253-0000",
                Id::BR,
                Some("+16502530000"),
                Some("fixed_line_or_mobile"),
            ),
            (
                "US in region US",
                "(650) 253-0000",
                Id::US,
                Some("+16502530000"),
                Some("fixed_line_or_mobile"),
            ),
            (
                "PT mobile",
                "+351 912 345 678",
                Id::BR,
                Some("+351912345678"),
                Some("mobile"),
            ),
            (
                "PT landline",
                "+351 21 123 4567",
                Id::BR,
                Some("+351211234567"),
                Some("fixed_line"),
            ),
            (
                "PT with 00 prefix",
                "00351912345678",
                Id::PT,
                Some("+351912345678"),
                Some("mobile"),
            ),
            (
                "BR with country code on a US list",
                "+55 11 98765-4321",
                Id::US,
                Some("+5511987654321"),
                Some("mobile"),
            ),
            (
                "US with country code on a BR list",
                "+1 650-253-0000",
                Id::BR,
                Some("+16502530000"),
                Some("fixed_line_or_mobile"),
            ),
            ("too short", "123", Id::BR, None, None),
            (
                "too long",
                "+55 11 98765-4321-0000-1111",
                Id::BR,
                None,
                None,
            ),
            (
                "impossible area code",
                "(00) 98765-4321",
                Id::BR,
                None,
                None,
            ),
            ("letters", "call me maybe", Id::BR, None, None),
            ("empty", "", Id::BR, None, None),
            ("only punctuation", "()-+", Id::BR, None, None),
        ];
        for (case, input, region, e164, kind) in cases {
            let got = check(input, *region);
            assert_eq!(got.valid, e164.is_some(), "{case}: {input} → {got:?}");
            assert_eq!(got.e164.as_deref(), *e164, "{case}: {input}");
            assert_eq!(got.line_type, *kind, "{case}: {input}");
        }
    }

    proptest! {
        #[test]
        fn phone_never_panics(text in ".*", digits in "\\+?[0-9 ()-]{0,30}") {
            let _ = check(&text, DEFAULT_REGION);
            let _ = check(&digits, DEFAULT_REGION);
        }
    }
}
