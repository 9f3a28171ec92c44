//! Dispatch filters: which of a list's leads an integration takes. A filter is a list of
//! conditions on the path space ([`crate::payload::context`]) joined by ALL or ANY; it is
//! checked when saved ([`Filter::validate`]) and evaluated at intake for every qualified
//! lead ([`Filter::evaluate`]), never failing there.
//!
//! Comparisons, so that form posts (all text) and JSON posts filter alike:
//! - `eq`, `neq`, `in`, `not_in`: a number equals a numeric string of the same value
//!   (`85` = `"85"`), a boolean equals `"true"`/`"false"`; text compares exactly (use
//!   `matches` with `(?i)` to ignore case). `neq` and `not_in` are the negations of `eq`
//!   and `in`, so they pass when the field is absent.
//! - `contains`: text containing the value, or a list holding an equal item;
//!   `starts_with`: text starting with it. Numbers and booleans are read as text.
//! - `gt`, `gte`, `lt`, `lte`: numbers (numeric strings count), or ISO 8601 dates
//!   compared as instants; anything else does not pass.
//! - `exists`: present, not null and not empty text; `not_exists` is its negation.
//! - `matches`: a regular expression (at most 1 KiB, compiled under a size limit) that
//!   finds a match in the text.

use crate::{
    payload::{Invalid, check_path, lookup},
    transform::{instant, is_datetime, text},
};
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cmp::Ordering;

/// The most conditions a filter has, and items an `in` list has.
const MAX_CONDITIONS: usize = 50;
const MAX_ITEMS: usize = 500;
/// The longest `matches` pattern, and the most memory its compiled program may take.
pub const MAX_PATTERN: usize = 1024;
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// How conditions are joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchMode {
    All,
    Any,
}

/// A condition's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Eq,
    Neq,
    In,
    NotIn,
    Contains,
    StartsWith,
    Exists,
    NotExists,
    Gt,
    Gte,
    Lt,
    Lte,
    Matches,
}

/// One condition: `field op value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub field: String,
    pub op: Op,
    #[serde(default)]
    pub value: Value,
}

/// An integration's dispatch filter, as stored on the integration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    #[serde(rename = "match")]
    pub mode: MatchMode,
    pub conditions: Vec<Condition>,
}

/// How one condition went for one lead.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionResult {
    /// Position of the condition in the filter.
    pub index: usize,
    pub field: String,
    pub op: Op,
    pub value: Value,
    pub passed: bool,
    /// The lead's value at `field` (None when absent).
    pub actual: Option<Value>,
    /// Why the condition could not pass, when the value alone does not say it.
    pub reason: Option<String>,
}

impl Filter {
    /// Checks every condition; the error names the first faulty one
    /// (`filter.conditions[2].value: …`).
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.conditions.is_empty() {
            return Err(Invalid::new(
                "filter.conditions",
                "give at least one condition (or no filter to take every lead)",
            ));
        }
        if self.conditions.len() > MAX_CONDITIONS {
            return Err(Invalid::new(
                "filter.conditions",
                format!("at most {MAX_CONDITIONS} conditions"),
            ));
        }
        for (i, c) in self.conditions.iter().enumerate() {
            let at = |part: &str| format!("filter.conditions[{i}].{part}");
            check_path(&c.field).map_err(|e| Invalid::new(at("field"), e))?;
            check_value(c.op, &c.value).map_err(|e| Invalid::new(at("value"), e))?;
        }
        Ok(())
    }

    /// Evaluates every condition on `context`; returns whether the lead passes (all of
    /// them, or any, by the filter's mode) and each condition's result.
    pub fn evaluate(&self, context: &Value) -> (bool, Vec<ConditionResult>) {
        let results: Vec<ConditionResult> = self
            .conditions
            .iter()
            .enumerate()
            .map(|(index, c)| {
                let actual = lookup(context, &c.field).cloned();
                let (passed, reason) = c.test(actual.as_ref());
                ConditionResult {
                    index,
                    field: c.field.clone(),
                    op: c.op,
                    value: c.value.clone(),
                    passed,
                    actual,
                    reason,
                }
            })
            .collect();
        let passed = match self.mode {
            MatchMode::All => results.iter().all(|r| r.passed),
            MatchMode::Any => results.iter().any(|r| r.passed),
        };
        (passed, results)
    }
}

/// Whether a scalar is given (what `eq`, `contains`… compare with).
fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

fn check_value(op: Op, value: &Value) -> Result<(), String> {
    match op {
        Op::Exists | Op::NotExists => match value {
            Value::Null => Ok(()),
            _ => Err("exists and not_exists take no value".into()),
        },
        Op::Eq | Op::Neq if is_scalar(value) => Ok(()),
        Op::Eq | Op::Neq => Err("give a text, number or boolean to compare with".into()),
        Op::In | Op::NotIn => match value {
            Value::Array(items) if items.is_empty() => Err("give at least one item".into()),
            Value::Array(items) if items.len() > MAX_ITEMS => {
                Err(format!("at most {MAX_ITEMS} items"))
            }
            Value::Array(items) if items.iter().all(is_scalar) => Ok(()),
            _ => Err("give a list of texts, numbers or booleans".into()),
        },
        Op::Contains | Op::StartsWith => match value {
            Value::String(s) if s.is_empty() => Err("give a non-empty text".into()),
            v if is_scalar(v) => Ok(()),
            _ => Err("give a text".into()),
        },
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => match value {
            v if number(v).is_some() => Ok(()),
            Value::String(s) if is_datetime(s) => Ok(()),
            _ => Err("give a number or an ISO 8601 date".into()),
        },
        Op::Matches => match value {
            Value::String(pattern) => compile(pattern).map(|_| ()),
            _ => Err("give a regular expression as text".into()),
        },
    }
}

/// Compiles a `matches` pattern under the size limits.
fn compile(pattern: &str) -> Result<Regex, String> {
    if pattern.len() > MAX_PATTERN {
        return Err(format!(
            "the regular expression is {} bytes; at most {MAX_PATTERN}",
            pattern.len()
        ));
    }
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let detail = e.to_string();
            format!(
                "not a valid regular expression: {}",
                detail.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        })
}

/// `eq` with the coercions of the module's comment.
fn equal(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Bool(a), Value::String(s)) | (Value::String(s), Value::Bool(a)) => s
            .trim()
            .eq_ignore_ascii_case(if *a { "true" } else { "false" }),
        (Value::Number(_), _) | (_, Value::Number(_)) => {
            matches!((number(actual), number(expected)), (Some(a), Some(b)) if a == b)
        }
        (a, b) => a == b,
    }
}

/// Numbers compare as numbers; otherwise ISO 8601 dates as instants.
fn order(actual: &Value, expected: &Value) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (number(actual), number(expected)) {
        return a.partial_cmp(&b);
    }
    match (actual, expected) {
        (Value::String(a), Value::String(b)) => Some(instant(a)?.cmp(&instant(b)?)),
        _ => None,
    }
}

fn present(actual: Option<&Value>) -> Option<&Value> {
    actual.filter(|v| !v.is_null() && v.as_str() != Some(""))
}

impl Condition {
    /// Whether the condition holds for `actual`, and why not when that needs saying.
    fn test(&self, actual: Option<&Value>) -> (bool, Option<String>) {
        let absent = || (false, Some(format!("{} is absent", self.field)));
        let value = present(actual);
        match self.op {
            Op::Exists => (value.is_some(), None),
            Op::NotExists => (value.is_none(), None),
            Op::Neq => (value.is_none_or(|v| !equal(v, &self.value)), None),
            Op::NotIn => (value.is_none_or(|v| !self.any_equal(v)), None),
            _ => {
                let Some(v) = value else {
                    return absent();
                };
                match self.op {
                    Op::Eq => (equal(v, &self.value), None),
                    Op::In => (self.any_equal(v), None),
                    Op::Contains => match v {
                        Value::Array(items) => (items.iter().any(|i| equal(i, &self.value)), None),
                        _ => self.on_text(v, |t, want| t.contains(want)),
                    },
                    Op::StartsWith => self.on_text(v, |t, want| t.starts_with(want)),
                    Op::Gt | Op::Gte | Op::Lt | Op::Lte => match order(v, &self.value) {
                        Some(o) => (
                            match self.op {
                                Op::Gt => o == Ordering::Greater,
                                Op::Gte => o != Ordering::Less,
                                Op::Lt => o == Ordering::Less,
                                _ => o != Ordering::Greater,
                            },
                            None,
                        ),
                        None => (
                            false,
                            Some(format!(
                                "{v} and {} are not both numbers or both dates",
                                self.value
                            )),
                        ),
                    },
                    Op::Matches => {
                        let pattern = self.value.as_str().unwrap_or_default();
                        match compile(pattern) {
                            Ok(re) => self.on_text(v, |t, _| re.is_match(t)),
                            Err(e) => (false, Some(e)),
                        }
                    }
                    Op::Exists | Op::NotExists | Op::Neq | Op::NotIn => (false, None),
                }
            }
        }
    }

    fn any_equal(&self, v: &Value) -> bool {
        self.value
            .as_array()
            .is_some_and(|items| items.iter().any(|i| equal(v, i)))
    }

    /// Tests `v` as text against the condition's value as text.
    fn on_text(&self, v: &Value, test: impl Fn(&str, &str) -> bool) -> (bool, Option<String>) {
        match (text(v), text(&self.value)) {
            (Ok(t), Ok(want)) => (test(&t, &want), None),
            (Err(e), _) | (_, Err(e)) => (false, Some(format!("{}: {e}", self.field))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context() -> Value {
        json!({
            "lead": {
                "email": "ana@example.com", "score": 85, "status": "qualified",
                "name": null,
                "created_at": "2024-03-05T12:00:00.000Z",
                "custom_fields": {"state": "SP", "age": "42", "tags": ["solar", "b2b"],
                                  "consent": "true", "blank": ""},
                "verifications": {"email_valid": true, "ip_risk_score": 5}
            },
            "list": {"id": "lst_1", "name": "Solar"},
            "meta": {"integration_name": "CRM", "source_ip": "203.0.113.9"}
        })
    }

    fn test(field: &str, op: Op, value: Value) -> bool {
        let c = Condition {
            field: field.into(),
            op,
            value,
        };
        Filter {
            mode: MatchMode::All,
            conditions: vec![c.clone()],
        }
        .validate()
        .unwrap_or_else(|e| panic!("{field} {op:?}: {e}"));
        c.test(lookup(&context(), field)).0
    }

    #[test]
    fn each_operator() {
        use Op::*;
        let cases: &[(&str, &str, Op, Value, bool)] = &[
            ("eq text", "lead.custom_fields.state", Eq, json!("SP"), true),
            (
                "eq is case-sensitive",
                "lead.custom_fields.state",
                Eq,
                json!("sp"),
                false,
            ),
            (
                "eq number and numeric text",
                "lead.custom_fields.age",
                Eq,
                json!(42),
                true,
            ),
            ("eq number", "lead.score", Eq, json!("85"), true),
            (
                "eq boolean and text",
                "lead.verifications.email_valid",
                Eq,
                json!("true"),
                true,
            ),
            (
                "eq text boolean",
                "lead.custom_fields.consent",
                Eq,
                json!(true),
                true,
            ),
            (
                "eq absent",
                "lead.custom_fields.city",
                Eq,
                json!("x"),
                false,
            ),
            ("neq", "lead.custom_fields.state", Neq, json!("RJ"), true),
            (
                "neq same",
                "lead.custom_fields.state",
                Neq,
                json!("SP"),
                false,
            ),
            (
                "neq absent passes",
                "lead.custom_fields.city",
                Neq,
                json!("x"),
                true,
            ),
            (
                "in",
                "lead.custom_fields.state",
                In,
                json!(["RJ", "SP"]),
                true,
            ),
            ("in numbers", "lead.score", In, json!([80, 85]), true),
            (
                "in missing",
                "lead.custom_fields.state",
                In,
                json!(["RJ"]),
                false,
            ),
            (
                "not_in",
                "lead.custom_fields.state",
                NotIn,
                json!(["RJ", "MG"]),
                true,
            ),
            (
                "not_in listed",
                "lead.custom_fields.state",
                NotIn,
                json!(["SP"]),
                false,
            ),
            (
                "not_in absent passes",
                "lead.custom_fields.city",
                NotIn,
                json!(["SP"]),
                true,
            ),
            (
                "contains text",
                "lead.email",
                Contains,
                json!("@example."),
                true,
            ),
            (
                "contains not",
                "lead.email",
                Contains,
                json!("@gmail."),
                false,
            ),
            (
                "contains in a list",
                "lead.custom_fields.tags",
                Contains,
                json!("b2b"),
                true,
            ),
            (
                "contains number as text",
                "lead.score",
                Contains,
                json!(8),
                true,
            ),
            ("starts_with", "lead.email", StartsWith, json!("ana@"), true),
            (
                "starts_with not",
                "lead.email",
                StartsWith,
                json!("bob"),
                false,
            ),
            ("exists", "lead.email", Exists, Value::Null, true),
            ("exists null", "lead.name", Exists, Value::Null, false),
            (
                "exists empty text",
                "lead.custom_fields.blank",
                Exists,
                Value::Null,
                false,
            ),
            (
                "exists absent",
                "lead.custom_fields.city",
                Exists,
                Value::Null,
                false,
            ),
            (
                "not_exists absent",
                "lead.custom_fields.city",
                NotExists,
                Value::Null,
                true,
            ),
            (
                "not_exists present",
                "lead.email",
                NotExists,
                Value::Null,
                false,
            ),
            ("gt", "lead.score", Gt, json!(80), true),
            ("gt equal", "lead.score", Gt, json!(85), false),
            ("gte equal", "lead.score", Gte, json!(85), true),
            (
                "lt numeric text",
                "lead.custom_fields.age",
                Lt,
                json!(50),
                true,
            ),
            ("lte", "lead.score", Lte, json!("84.5"), false),
            ("gt date", "lead.created_at", Gt, json!("2024-03-05"), true),
            (
                "lt date with offset",
                "lead.created_at",
                Lt,
                json!("2024-03-05T08:00:00-03:00"),
                false,
            ),
            ("gt on text is false", "lead.email", Gt, json!(1), false),
            ("gt absent", "lead.custom_fields.city", Gt, json!(1), false),
            (
                "matches",
                "lead.email",
                Matches,
                json!("^[a-z]+@example\\.com$"),
                true,
            ),
            (
                "matches case-insensitive",
                "lead.custom_fields.state",
                Matches,
                json!("(?i)^sp$"),
                true,
            ),
            ("matches not", "lead.email", Matches, json!("@gmail"), false),
            (
                "matches a number",
                "lead.score",
                Matches,
                json!("^8\\d$"),
                true,
            ),
            (
                "matches meta",
                "meta.source_ip",
                Matches,
                json!("^203\\."),
                true,
            ),
        ];
        for (case, field, op, value, expected) in cases {
            assert_eq!(test(field, *op, value.clone()), *expected, "{case}");
        }
    }

    #[test]
    fn all_and_any() {
        let conditions = vec![
            Condition {
                field: "lead.custom_fields.state".into(),
                op: Op::Eq,
                value: json!("SP"),
            },
            Condition {
                field: "lead.score".into(),
                op: Op::Gt,
                value: json!(90),
            },
        ];
        let all = Filter {
            mode: MatchMode::All,
            conditions: conditions.clone(),
        };
        let (passed, results) = all.evaluate(&context());
        assert!(!passed);
        assert_eq!(
            results.iter().map(|r| r.passed).collect::<Vec<_>>(),
            [true, false]
        );
        assert_eq!(results[1].actual, Some(json!(85)));
        let any = Filter {
            mode: MatchMode::Any,
            conditions,
        };
        assert!(any.evaluate(&context()).0);
    }

    #[test]
    fn absent_fields_say_so() {
        let filter = Filter {
            mode: MatchMode::All,
            conditions: vec![Condition {
                field: "lead.custom_fields.city".into(),
                op: Op::Eq,
                value: json!("x"),
            }],
        };
        let (_, results) = filter.evaluate(&context());
        assert_eq!(
            results[0].reason.as_deref(),
            Some("lead.custom_fields.city is absent")
        );
    }

    #[test]
    fn bad_filters_name_the_condition() {
        let cond = |field: &str, op: Op, value: Value| Condition {
            field: field.into(),
            op,
            value,
        };
        let cases: Vec<(&str, Vec<Condition>, &str)> = vec![
            ("no conditions", vec![], "filter.conditions"),
            (
                "unknown path",
                vec![
                    cond("lead.email", Op::Exists, Value::Null),
                    cond("lead.mail", Op::Exists, Value::Null),
                ],
                "filter.conditions[1].field",
            ),
            (
                "regex over 1 KiB",
                vec![cond("lead.email", Op::Matches, json!("a".repeat(2048)))],
                "filter.conditions[0].value",
            ),
            (
                "broken regex",
                vec![cond("lead.email", Op::Matches, json!("(unclosed"))],
                "filter.conditions[0].value",
            ),
            (
                "regex too big when compiled",
                vec![cond("lead.email", Op::Matches, json!("\\w{1000}\\w{1000}"))],
                "filter.conditions[0].value",
            ),
            (
                "in without a list",
                vec![cond("lead.email", Op::In, json!("a"))],
                "filter.conditions[0].value",
            ),
            (
                "empty in",
                vec![cond("lead.email", Op::In, json!([]))],
                "filter.conditions[0].value",
            ),
            (
                "gt on a word",
                vec![cond("lead.score", Op::Gt, json!("high"))],
                "filter.conditions[0].value",
            ),
            (
                "eq without a value",
                vec![cond("lead.score", Op::Eq, Value::Null)],
                "filter.conditions[0].value",
            ),
            (
                "exists with a value",
                vec![cond("lead.score", Op::Exists, json!(1))],
                "filter.conditions[0].value",
            ),
            (
                "too many",
                vec![cond("lead.email", Op::Exists, Value::Null); 51],
                "filter.conditions",
            ),
        ];
        for (case, conditions, field) in cases {
            let err = Filter {
                mode: MatchMode::All,
                conditions,
            }
            .validate()
            .expect_err(case);
            assert_eq!(err.field, field, "{case}: {err}");
        }
    }

    proptest::proptest! {
        /// Whatever a lead holds, evaluation answers: no panic.
        #[test]
        fn evaluation_never_panics(actual in "\\PC{0,40}", number in proptest::prelude::any::<f64>()) {
            let ctx = json!({"lead": {"custom_fields": {"x": actual, "n": number}}});
            for field in ["lead.custom_fields.x", "lead.custom_fields.n"] {
                for (op, value) in [
                    (Op::Eq, json!("a")), (Op::Neq, json!(1)), (Op::In, json!(["a", 2])),
                    (Op::Contains, json!("a")), (Op::StartsWith, json!("a")),
                    (Op::Exists, Value::Null), (Op::Gt, json!(1.5)),
                    (Op::Lte, json!("2024-01-01")), (Op::Matches, json!("^\\d+$")),
                ] {
                    let filter = Filter {
                        mode: MatchMode::Any,
                        conditions: vec![Condition { field: field.into(), op, value }],
                    };
                    let _ = filter.evaluate(&ctx);
                }
            }
        }
    }

    #[test]
    fn stored_form_round_trips() {
        let stored = json!({"match": "any", "conditions": [
            {"field": "lead.score", "op": "gte", "value": 50},
            {"field": "lead.email", "op": "not_exists"}
        ]});
        let filter: Filter = serde_json::from_value(stored.clone()).expect("parses");
        assert_eq!(filter.mode, MatchMode::Any);
        assert_eq!(filter.conditions[1].value, Value::Null);
        assert!(filter.validate().is_ok());
    }
}
