//! Checks shared by every mutation's input; each error names the field, as
//! `BAD_USER_INPUT` does everywhere.

use crate::error::{ApiError, ApiResult};
use std::ops::RangeInclusive;

/// A trimmed display name of 1 to 200 characters.
pub fn name(field: &str, raw: &str) -> ApiResult<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::BadInput(format!(
            "{field}: must be 1 to 200 characters"
        )));
    }
    Ok(name.to_owned())
}

/// `n` if it lies in `range`.
pub fn in_range(field: &str, n: i32, range: RangeInclusive<i32>) -> ApiResult<i32> {
    if range.contains(&n) {
        Ok(n)
    } else {
        Err(ApiError::BadInput(format!(
            "{field}: must be between {} and {}",
            range.start(),
            range.end()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("name", "  Solar leads ").unwrap(), "Solar leads");
        assert!(
            name("name", "   ")
                .unwrap_err()
                .to_string()
                .starts_with("name:")
        );
        assert!(
            name("tenantName", &"x".repeat(201))
                .unwrap_err()
                .to_string()
                .starts_with("tenantName:")
        );
        assert!(
            name("name", &"é".repeat(200)).is_ok(),
            "characters, not bytes"
        );
    }

    #[test]
    fn ranges_are_inclusive_and_name_the_field() {
        assert_eq!(in_range("timeoutMs", 10_000, 100..=30_000).unwrap(), 10_000);
        assert!(in_range("timeoutMs", 100, 100..=30_000).is_ok());
        assert!(in_range("timeoutMs", 0, 100..=30_000).is_err());
        let err = in_range("timeoutMs", 60_000, 100..=30_000)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "timeoutMs: must be between 100 and 30000");
    }
}
