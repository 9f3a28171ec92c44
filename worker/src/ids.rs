//! Prefixed, time-ordered identifiers (`lead_0193…`): the prefix tells a reader what an id
//! names, and UUIDv7 hex sorts by creation time, which keeps cursors simple.

/// A new id with the given prefix, e.g. `new_id("dlv")` → `dlv_0193f0…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// A random, unguessable token of 32 hex characters (122 random bits), for inbound URLs.
pub fn random_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Whether `id` looks like an id made by [`new_id`] with `prefix`.
pub fn has_prefix(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_carry_their_prefix_and_sort_by_time() {
        let a = new_id("dlv");
        let b = new_id("dlv");
        assert!(has_prefix(&a, "dlv"));
        assert!(a < b);
    }

    #[test]
    fn wrong_prefix_or_shape_is_rejected() {
        assert!(!has_prefix(&new_id("lead"), "dlv"));
        assert!(!has_prefix("dlv_xyz", "dlv"));
        assert!(!has_prefix("dlv", "dlv"));
    }
}
