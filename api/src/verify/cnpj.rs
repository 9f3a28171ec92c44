//! CNPJ check digits (mod 11) for the classic numeric CNPJ and the alphanumeric one the
//! Receita Federal issues from July 2026: twelve characters `0-9A-Z` then two check
//! digits, each character valued at its ASCII code − 48 (so `A` is 17). Dots, slashes,
//! dashes and spaces are optional.

/// The weights of the first and the second check digit.
const WEIGHTS_1: [u32; 12] = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
const WEIGHTS_2: [u32; 13] = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];

/// The check digit of `chars` (values already ASCII − 48) under `weights`.
fn check_digit(values: &[u32], weights: &[u32]) -> u32 {
    let sum: u32 = values.iter().zip(weights).map(|(v, w)| v * w).sum();
    match sum % 11 {
        0 | 1 => 0,
        r => 11 - r,
    }
}

/// The CNPJ as registries take it: without punctuation or spaces, letters in upper
/// case (`12.abc.345/01de-35` → `12ABC34501DE35`).
pub fn canonical(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '.' | '/' | '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Whether `text` is a CNPJ with correct check digits. A classic CNPJ of one repeated
/// digit (`00.000.000/0000-00`) passes the arithmetic but is never issued, so it fails.
pub fn is_valid(text: &str) -> bool {
    let chars: Vec<char> = canonical(text).chars().collect();
    if chars.len() != 14 {
        return false;
    }
    let (base, digits) = chars.split_at(12);
    if !base
        .iter()
        .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        || !digits.iter().all(char::is_ascii_digit)
    {
        return false;
    }
    if chars.iter().all(|c| *c == chars[0]) {
        return false;
    }
    let values: Vec<u32> = chars.iter().map(|c| u32::from(*c) - 48).collect();
    let first = check_digit(&values[..12], &WEIGHTS_1);
    let second = check_digit(&values[..13], &WEIGHTS_2);
    values[12] == first && values[13] == second
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_cnpjs() {
        let cases = [
            ("classic formatted valid", "11.222.333/0001-81", true),
            ("classic bare valid", "11222333000181", true),
            ("classic valid with spaces", " 11 222 333 0001 81 ", true),
            ("classic Petrobras valid", "33.000.167/0001-01", true),
            ("classic first digit wrong", "11.222.333/0001-91", false),
            ("classic second digit wrong", "11.222.333/0001-82", false),
            ("classic all zeros", "00.000.000/0000-00", false),
            ("classic all ones", "11111111111111", false),
            ("classic too short", "1122233300018", false),
            ("classic too long", "112223330001811", false),
            ("alphanumeric official example", "12.ABC.345/01DE-35", true),
            ("alphanumeric official bare", "12ABC34501DE35", true),
            ("alphanumeric lower case", "12abc34501de35", true),
            ("alphanumeric wrong digit", "12.ABC.345/01DE-36", false),
            ("letter in check digits", "12.ABC.345/01DE-3A", false),
            ("symbol in base", "12.AB#.345/01DE-35", false),
            ("empty", "", false),
            ("garbage", "not a cnpj", false),
        ];
        for (case, text, expected) in cases {
            assert_eq!(is_valid(text), expected, "{case}: {text}");
        }
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(canonical("12.abc.345/01de-35"), "12ABC34501DE35");
        assert_eq!(canonical(" 11.222.333/0001-81 "), "11222333000181");
    }

    /// An independent implementation: weights 2..=9 cycling from the right, as the
    /// Receita Federal describes them, over characters valued by a lookup table.
    fn reference_digits(base: &str) -> String {
        const ALPHABET: &str = "0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let value = |c: char| ALPHABET.find(c).map_or(0, |i| i as u64);
        let dv = |s: &str| -> char {
            let sum: u64 = s
                .chars()
                .rev()
                .enumerate()
                .map(|(i, c)| value(c) * (2 + (i as u64 % 8)))
                .sum();
            let d = if sum % 11 < 2 { 0 } else { 11 - sum % 11 };
            char::from_digit(d as u32, 10).unwrap_or('?')
        };
        let first = dv(base);
        let second = dv(&format!("{base}{first}"));
        format!("{first}{second}")
    }

    #[test]
    fn the_reference_agrees_on_the_official_example() {
        assert_eq!(reference_digits("12ABC34501DE"), "35");
        assert_eq!(reference_digits("112223330001"), "81");
    }

    proptest! {
        #[test]
        fn generated_cnpjs_agree_with_the_reference(base in "[0-9A-Z]{12}", numeric in "[0-9]{12}") {
            for base in [base, numeric] {
                let digits = reference_digits(&base);
                let repeated = format!("{base}{digits}").chars().all(|c| c == base.chars().next().unwrap_or('x'));
                prop_assert_eq!(is_valid(&format!("{base}{digits}")), !repeated);
                let wrong: u32 = (digits[1..].parse::<u32>().unwrap_or(0) + 1) % 10;
                let corrupted = format!("{base}{}{wrong}", &digits[..1]);
                prop_assert!(!is_valid(&corrupted));
            }
        }

        #[test]
        fn cnpj_never_panics(text in ".*") {
            let _ = is_valid(&text);
        }
    }
}
