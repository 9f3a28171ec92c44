//! How secret values are shown: never whole (ARCHITECTURE §7).

/// The preview of a secret header value: its first 4 characters when it has 12 or
/// more, else `••••`, so short secrets reveal nothing.
pub fn preview(value: &str) -> String {
    if value.chars().count() >= 12 {
        format!("{}••••", value.chars().take(4).collect::<String>())
    } else {
        "••••".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::preview;

    #[test]
    fn long_values_show_four_characters() {
        assert_eq!(preview("Bearer abcdefghijkl"), "Bear••••");
    }

    #[test]
    fn short_values_show_nothing() {
        assert_eq!(preview("short-key"), "••••");
        assert_eq!(preview(""), "••••");
    }
}
