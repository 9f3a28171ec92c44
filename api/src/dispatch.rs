//! Dispatch filters and field mappings as the API takes and shows them (ARCHITECTURE §9:
//! `FilterInput`, `MappingInput`…). The rules live in the worker crate
//! (`leadrelay_worker::{filter, mapping, transform}`), so what is checked here at save time
//! is exactly what intake and the worker run; this module converts, validates and stores.

use crate::error::{ApiError, ApiResult};
use async_graphql::{Enum, InputObject, Json, SimpleObject};
use leadrelay_entity::IntegrationKind;
use leadrelay_worker::{
    filter::{self, Condition as StoredCondition, Filter as StoredFilter},
    mapping::{MappedField as StoredField, Mapping as StoredMapping, TransformSpec},
    payload::Invalid,
    preset, request,
    transform::Region,
};
use serde_json::Value;

/// How a filter's conditions are joined.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "leadrelay_worker::filter::MatchMode")]
pub enum MatchMode {
    /// Every condition must pass.
    All,
    /// One passing condition is enough.
    Any,
}

/// A condition's operator. A number equals a numeric text (`85` = `"85"`); text compares
/// exactly (`MATCHES` with `(?i)` ignores case); `NEQ` and `NOT_IN` pass when the field is
/// absent; `EXISTS` means present, not null and not empty; `GT`…`LTE` compare numbers or
/// ISO 8601 dates.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "leadrelay_worker::filter::Op")]
pub enum FilterOp {
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
    /// A regular expression of at most 1 KiB.
    Matches,
}

/// The encoding of a mapped body.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "leadrelay_worker::mapping::BodyFormat")]
pub enum BodyFormat {
    /// `application/json`; dotted targets nest.
    Json,
    /// `application/x-www-form-urlencoded`; targets are the keys.
    Form,
}

/// Which leads an integration takes: conditions on the path space (`lead.email`,
/// `lead.custom_fields.state`, `meta.source_ip`…) joined by ALL or ANY.
#[derive(InputObject)]
pub struct FilterInput {
    #[graphql(name = "match")]
    pub mode: MatchMode,
    pub conditions: Vec<ConditionInput>,
}

/// `field op value`; `exists` and `not_exists` take no value, `in` and `not_in` a list.
#[derive(InputObject)]
pub struct ConditionInput {
    pub field: String,
    pub op: FilterOp,
    pub value: Option<Json<Value>>,
}

/// An integration's own body: its fields, in order.
#[derive(InputObject)]
pub struct MappingInput {
    pub format: BodyFormat,
    pub fields: Vec<MappedFieldInput>,
}

/// One field: its `target` in the body, and a `source` path or a static `value`.
#[derive(InputObject)]
pub struct MappedFieldInput {
    pub target: String,
    pub source: Option<String>,
    pub value: Option<Json<Value>>,
    pub transforms: Option<Vec<TransformInput>>,
}

/// A transform: `e164`, `national_phone`, `digits_only`, `lowercase`, `uppercase`,
/// `trim`, `state_abbreviation` (arg `code`, `name:US`, `name:BR`…), `date_format` (arg
/// `MM/DD/YYYY`-style or `unix`), `split_name` (arg `first`/`last`), `default` (arg: the
/// value), `truncate` (arg: the length).
#[derive(InputObject)]
pub struct TransformInput {
    pub name: String,
    pub arg: Option<String>,
}

/// An integration's dispatch filter.
#[derive(SimpleObject)]
pub struct Filter {
    #[graphql(name = "match")]
    pub mode: MatchMode,
    pub conditions: Vec<Condition>,
}

/// One condition of a filter.
#[derive(SimpleObject)]
pub struct Condition {
    pub field: String,
    pub op: FilterOp,
    pub value: Option<Json<Value>>,
}

/// An integration's field mapping.
#[derive(SimpleObject)]
pub struct Mapping {
    pub format: BodyFormat,
    pub fields: Vec<MappedField>,
}

/// One field of a mapping.
#[derive(SimpleObject)]
pub struct MappedField {
    pub target: String,
    pub source: Option<String>,
    pub value: Option<Json<Value>>,
    pub transforms: Vec<Transform>,
}

/// One transform of a mapped field.
#[derive(SimpleObject)]
pub struct Transform {
    pub name: String,
    pub arg: Option<String>,
}

/// How one condition went for a lead.
#[derive(SimpleObject)]
pub struct ConditionResult {
    /// Position of the condition in the filter.
    pub index: i32,
    pub field: String,
    pub op: FilterOp,
    pub value: Option<Json<Value>>,
    pub passed: bool,
    /// The lead's value at `field`; null when absent.
    pub actual: Option<Json<Value>>,
    /// Why it could not pass, when the value alone does not say it.
    pub reason: Option<String>,
}

impl From<filter::ConditionResult> for ConditionResult {
    fn from(r: filter::ConditionResult) -> Self {
        Self {
            index: i32::try_from(r.index).unwrap_or(i32::MAX),
            field: r.field,
            op: r.op.into(),
            value: json_opt(r.value),
            passed: r.passed,
            actual: r.actual.and_then(json_opt),
            reason: r.reason,
        }
    }
}

fn json_opt(v: Value) -> Option<Json<Value>> {
    (!v.is_null()).then_some(Json(v))
}

fn stored(value: &impl serde::Serialize) -> ApiResult<Value> {
    serde_json::to_value(value)
        .map_err(|e| ApiError::internal("serialising a filter or mapping", e))
}

fn bad(invalid: Invalid) -> ApiError {
    ApiError::BadInput(invalid.to_string())
}

/// Checks a filter and returns it as stored; `BAD_USER_INPUT` names the faulty condition.
pub fn filter_to_store(input: FilterInput) -> ApiResult<Value> {
    let filter = StoredFilter {
        mode: input.mode.into(),
        conditions: input
            .conditions
            .into_iter()
            .map(|c| StoredCondition {
                field: c.field.trim().to_owned(),
                op: c.op.into(),
                value: c.value.map(|v| v.0).unwrap_or(Value::Null),
            })
            .collect(),
    };
    filter.validate().map_err(bad)?;
    stored(&filter)
}

/// Checks a mapping (static values transformed with the list's phone `region`) and
/// returns it as stored; `BAD_USER_INPUT` names the faulty field.
pub fn mapping_to_store(
    input: MappingInput,
    kind: IntegrationKind,
    region: Region,
) -> ApiResult<Value> {
    let mapping = StoredMapping {
        format: input.format.into(),
        fields: input
            .fields
            .into_iter()
            .map(|f| StoredField {
                target: f.target.trim().to_owned(),
                source: f.source.map(|s| s.trim().to_owned()),
                value: f.value.map(|v| v.0).filter(|v| !v.is_null()),
                transforms: f
                    .transforms
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| TransformSpec {
                        name: t.name.trim().to_ascii_lowercase(),
                        arg: t.arg,
                    })
                    .collect(),
            })
            .collect(),
    };
    mapping.validate(region).map_err(bad)?;
    preset::check_mapping(kind, &mapping).map_err(bad)?;
    stored(&mapping)
}

/// A stored filter as the API shows it (None when there is none).
pub fn filter_from_store(value: Option<&Value>) -> Option<Filter> {
    let filter: StoredFilter = request::stored(value).ok()??;
    Some(Filter {
        mode: filter.mode.into(),
        conditions: filter
            .conditions
            .into_iter()
            .map(|c| Condition {
                field: c.field,
                op: c.op.into(),
                value: json_opt(c.value),
            })
            .collect(),
    })
}

/// A stored mapping as the API shows it (None when there is none).
pub fn mapping_from_store(value: Option<&Value>) -> Option<Mapping> {
    let mapping: StoredMapping = request::stored(value).ok()??;
    Some(Mapping {
        format: mapping.format.into(),
        fields: mapping
            .fields
            .into_iter()
            .map(|f| MappedField {
                target: f.target,
                source: f.source,
                value: f.value.and_then(json_opt),
                transforms: f
                    .transforms
                    .into_iter()
                    .map(|t| Transform {
                        name: t.name,
                        arg: t.arg,
                    })
                    .collect(),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_filter_round_trips_through_storage() {
        let stored = filter_to_store(FilterInput {
            mode: MatchMode::Any,
            conditions: vec![ConditionInput {
                field: " lead.custom_fields.state ".into(),
                op: FilterOp::In,
                value: Some(Json(json!(["SP", "RJ"]))),
            }],
        })
        .expect("valid");
        assert_eq!(
            stored,
            json!({"match": "any", "conditions": [
                {"field": "lead.custom_fields.state", "op": "in", "value": ["SP", "RJ"]}]})
        );
        let shown = filter_from_store(Some(&stored)).expect("readable");
        assert!(shown.mode == MatchMode::Any);
        assert!(shown.conditions[0].op == FilterOp::In);
    }

    #[test]
    fn bad_filters_and_mappings_are_bad_user_input_naming_the_field() {
        let err = filter_to_store(FilterInput {
            mode: MatchMode::All,
            conditions: vec![ConditionInput {
                field: "lead.nope".into(),
                op: FilterOp::Exists,
                value: None,
            }],
        })
        .expect_err("unknown path");
        assert_eq!(err.code(), "BAD_USER_INPUT");
        assert!(
            err.to_string().starts_with("filter.conditions[0].field:"),
            "{err}"
        );
        let err = mapping_to_store(
            MappingInput {
                format: BodyFormat::Form,
                fields: vec![MappedFieldInput {
                    target: "dob".into(),
                    source: Some("lead.custom_fields.dob".into()),
                    value: None,
                    transforms: Some(vec![TransformInput {
                        name: "Date_Format".into(),
                        arg: Some("YYYY/QQ".into()),
                    }]),
                }],
            },
            IntegrationKind::Webhook,
            Region::BR,
        )
        .expect_err("bad pattern");
        assert!(
            err.to_string()
                .starts_with("mapping.fields[0].transforms[0].arg:"),
            "{err}"
        );
    }
}
