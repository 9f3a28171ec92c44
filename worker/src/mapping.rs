//! Field mapping: an integration's own body, built from an ordered list of fields, each a
//! target in the output, a source (a path of [`crate::payload::context`]) or a static
//! value, and [transforms](crate::transform). The body is JSON (a dotted target nests:
//! `contact.mobile`; keys keep the mapping's order) or form-encoded (targets are the
//! keys, as written).
//!
//! A mapping is checked when saved ([`Mapping::validate`]); rendering a lead
//! ([`Mapping::render`]) never fails. A field whose source is absent is left out unless a
//! `default` transform gives it a value; a field a transform cannot handle (an unparsable
//! date, an unknown state…) is treated the same way, and the reason is returned with the
//! body ([`FieldIssue`]) for the worker's log and for `renderPreview`. Sending the rest of
//! the lead beats holding the whole delivery back for one field.

use crate::{
    payload::{Invalid, check_path, lookup},
    transform::{Part, Region, Transform, present, text},
};
use serde::{Deserialize, Serialize, Serializer, ser::SerializeMap};
use serde_json::Value;

/// The most fields a mapping has, transforms a field has, and depth of a JSON target.
const MAX_FIELDS: usize = 200;
const MAX_TRANSFORMS: usize = 20;
const MAX_DEPTH: usize = 10;
/// The longest target, and the largest static value (as JSON), in bytes.
const MAX_TARGET: usize = 256;
const MAX_VALUE: usize = 16 * 1024;

/// The body's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    Json,
    Form,
}

impl BodyFormat {
    /// The `content-type` of a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Json => "application/json",
            BodyFormat::Form => "application/x-www-form-urlencoded",
        }
    }
}

/// A transform as the customer gave it (`{name, arg}`), kept in that form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransformSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arg: Option<String>,
}

/// One field of the body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MappedField {
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// A static value, in place of a source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default)]
    pub transforms: Vec<TransformSpec>,
}

/// An integration's field mapping, as stored on the integration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mapping {
    pub format: BodyFormat,
    pub fields: Vec<MappedField>,
}

/// A field left out of a rendered body, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} ({target}): {message}; left out")]
pub struct FieldIssue {
    /// `mapping.fields[2]`.
    pub field: String,
    pub target: String,
    pub message: String,
}

/// A rendered body.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub issues: Vec<FieldIssue>,
}

impl Mapping {
    /// Checks targets, sources, static values and transforms; the error names the first
    /// faulty part (`mapping.fields[1].transforms[0].arg: …`). Static values are run
    /// through their transforms here (reading phone numbers in `region`, the list's), so
    /// one that cannot be transformed is refused now rather than left out of every body.
    pub fn validate(&self, region: Region) -> Result<(), Invalid> {
        if self.fields.is_empty() {
            return Err(Invalid::new(
                "mapping.fields",
                "give at least one field (or no mapping to send the default body)",
            ));
        }
        if self.fields.len() > MAX_FIELDS {
            return Err(Invalid::new(
                "mapping.fields",
                format!("at most {MAX_FIELDS} fields"),
            ));
        }
        let mut targets: Vec<Vec<&str>> = Vec::with_capacity(self.fields.len());
        for (i, f) in self.fields.iter().enumerate() {
            let at = |part: &str| format!("mapping.fields[{i}].{part}");
            let target = self
                .check_target(&f.target)
                .map_err(|e| Invalid::new(at("target"), e))?;
            if let Some(j) = targets.iter().position(|t| overlaps(t, &target)) {
                return Err(Invalid::new(
                    at("target"),
                    if targets[j] == target {
                        format!("{:?} is already the target of fields[{j}]", f.target)
                    } else {
                        format!(
                            "{:?} and the target of fields[{j}] cannot both be set: one holds the other",
                            f.target
                        )
                    },
                ));
            }
            targets.push(target);
            if f.transforms.len() > MAX_TRANSFORMS {
                return Err(Invalid::new(
                    at("transforms"),
                    format!("at most {MAX_TRANSFORMS} transforms"),
                ));
            }
            let transforms = parse_transforms(&f.transforms).map_err(|(j, part, e)| {
                let part = match part {
                    Part::Name => "name",
                    Part::Arg => "arg",
                };
                Invalid::new(at(&format!("transforms[{j}].{part}")), e)
            })?;
            match (&f.source, f.value.as_ref().filter(|v| !v.is_null())) {
                (Some(source), None) => {
                    check_path(source).map_err(|e| Invalid::new(at("source"), e))?;
                }
                (None, Some(value)) => {
                    self.check_value(value)
                        .map_err(|e| Invalid::new(at("value"), e))?;
                    let mut v = Some(value.clone());
                    for (j, t) in transforms.iter().enumerate() {
                        v = t.apply(v, region).map_err(|e| {
                            Invalid::new(
                                at("value"),
                                format!("{} (transforms[{j}]): {e}", f.transforms[j].name),
                            )
                        })?;
                    }
                }
                (Some(_), Some(_)) => {
                    return Err(Invalid::new(
                        at("source"),
                        "give a source or a value, not both",
                    ));
                }
                (None, None) => {
                    return Err(Invalid::new(at("source"), "give a source or a value"));
                }
            }
        }
        Ok(())
    }

    /// The target's segments: dotted for JSON, the whole key for a form.
    fn check_target<'a>(&self, target: &'a str) -> Result<Vec<&'a str>, String> {
        if target.trim().is_empty() || target.len() > MAX_TARGET {
            return Err(format!("must be 1 to {MAX_TARGET} bytes"));
        }
        if target.chars().any(char::is_control) {
            return Err("must not hold control characters".into());
        }
        match self.format {
            BodyFormat::Form => Ok(vec![target]),
            BodyFormat::Json => {
                let segments: Vec<&str> = target.split('.').collect();
                if segments.iter().any(|s| s.trim().is_empty()) {
                    return Err(format!("{target:?} has an empty segment"));
                }
                if segments.len() > MAX_DEPTH {
                    return Err(format!("at most {MAX_DEPTH} levels deep"));
                }
                Ok(segments)
            }
        }
    }

    fn check_value(&self, value: &Value) -> Result<(), String> {
        if self.format == BodyFormat::Form
            && !matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_))
        {
            return Err("a form field's value is a text, number or boolean".into());
        }
        if value.to_string().len() > MAX_VALUE {
            return Err(format!("at most {MAX_VALUE} bytes"));
        }
        Ok(())
    }

    /// Renders the body for `context` (see the module's comment); `region` reads phone
    /// numbers without a country code.
    pub fn render(&self, context: &Value, region: Region) -> Rendered {
        let mut issues = Vec::new();
        let mut values = Vec::with_capacity(self.fields.len());
        for (i, f) in self.fields.iter().enumerate() {
            let issue = |message: String| FieldIssue {
                field: format!("mapping.fields[{i}]"),
                target: f.target.clone(),
                message,
            };
            let mut value = match (&f.source, &f.value) {
                (Some(path), _) => lookup(context, path).cloned().and_then(present),
                (None, Some(v)) => present(v.clone()),
                (None, None) => None,
            };
            for spec in &f.transforms {
                let applied = Transform::parse(&spec.name, spec.arg.as_deref())
                    .map_err(|(_, e)| e)
                    .and_then(|t| t.apply(value.take(), region));
                value = applied.unwrap_or_else(|e| {
                    issues.push(issue(format!("{}: {e}", spec.name)));
                    None
                });
            }
            if let Some(v) = value {
                values.push((f.target.as_str(), v));
            }
        }
        let body = match self.format {
            BodyFormat::Json => {
                let mut root = Vec::new();
                for (target, value) in values {
                    let path: Vec<&str> = target.split('.').collect();
                    if !insert(&mut root, &path, value) {
                        issues.push(FieldIssue {
                            field: "mapping".into(),
                            target: target.to_owned(),
                            message: "another field already holds this target".into(),
                        });
                    }
                }
                serde_json::to_vec(&Node::Branch(root)).unwrap_or_else(|_| b"{}".to_vec())
            }
            BodyFormat::Form => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                for (target, value) in values {
                    let text = match &value {
                        Value::Array(_) | Value::Object(_) => value.to_string(),
                        scalar => text(scalar).unwrap_or_default(),
                    };
                    form.append_pair(target, &text);
                }
                form.finish().into_bytes()
            }
        };
        Rendered {
            content_type: self.format.content_type(),
            body,
            issues,
        }
    }
}

/// The transforms of a field, or the position, part and reason of the first bad one.
fn parse_transforms(specs: &[TransformSpec]) -> Result<Vec<Transform>, (usize, Part, String)> {
    specs
        .iter()
        .enumerate()
        .map(|(j, s)| Transform::parse(&s.name, s.arg.as_deref()).map_err(|(p, e)| (j, p, e)))
        .collect()
}

/// Whether two targets collide: the same, or one inside the other.
fn overlaps(a: &[&str], b: &[&str]) -> bool {
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// A JSON body under construction: objects keep the mapping's order.
enum Node {
    Leaf(Value),
    Branch(Vec<(String, Node)>),
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Leaf(v) => v.serialize(s),
            Node::Branch(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// Puts `value` at `path` under `branch`; false when something already holds the spot.
fn insert(branch: &mut Vec<(String, Node)>, path: &[&str], value: Value) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let existing = branch.iter().position(|(k, _)| k == first);
    match (existing, rest.is_empty()) {
        (None, true) => {
            branch.push(((*first).to_owned(), Node::Leaf(value)));
            true
        }
        (None, false) => {
            let mut child = Vec::new();
            let inserted = insert(&mut child, rest, value);
            branch.push(((*first).to_owned(), Node::Branch(child)));
            inserted
        }
        (Some(i), false) => match &mut branch[i].1 {
            Node::Branch(child) => insert(child, rest, value),
            Node::Leaf(_) => false,
        },
        (Some(_), true) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context() -> Value {
        json!({
            "lead": {
                "id": "lead_1", "email": "ana@example.com", "name": "Ana Maria Silva",
                "phone": "+5511987654321", "score": 85,
                "custom_fields": {"state": "São Paulo", "birth": "1990-07-14", "bad_date": "14/07/1990"},
            },
            "list": {"id": "lst_1", "name": "Solar"},
            "meta": {"integration_name": "CRM", "lead_id": "lead_1"}
        })
    }

    fn field(target: &str, source: &str, transforms: &[(&str, Option<&str>)]) -> MappedField {
        MappedField {
            target: target.into(),
            source: Some(source.into()),
            value: None,
            transforms: transforms
                .iter()
                .map(|(n, a)| TransformSpec {
                    name: (*n).into(),
                    arg: a.map(Into::into),
                })
                .collect(),
        }
    }

    fn fixed(target: &str, value: Value) -> MappedField {
        MappedField {
            target: target.into(),
            source: None,
            value: Some(value),
            transforms: Vec::new(),
        }
    }

    #[test]
    fn json_nests_dotted_targets_in_order() {
        let mapping = Mapping {
            format: BodyFormat::Json,
            fields: vec![
                field("contact.email", "lead.email", &[]),
                field(
                    "contact.first",
                    "lead.name",
                    &[("split_name", Some("first"))],
                ),
                field("score", "lead.score", &[]),
                field(
                    "contact.state",
                    "lead.custom_fields.state",
                    &[("state_abbreviation", None)],
                ),
                fixed("source", json!("leadrelay")),
                field("missing", "lead.custom_fields.nope", &[]),
                field("company", "lead.company", &[("default", Some("n/a"))]),
            ],
        };
        mapping.validate(Region::BR).expect("valid");
        let rendered = mapping.render(&context(), Region::BR);
        assert_eq!(rendered.content_type, "application/json");
        assert_eq!(
            String::from_utf8(rendered.body).unwrap(),
            r#"{"contact":{"email":"ana@example.com","first":"Ana","state":"SP"},"score":85,"source":"leadrelay","company":"n/a"}"#
        );
        assert!(rendered.issues.is_empty());
    }

    #[test]
    fn form_bodies_are_flat_and_encoded() {
        let mapping = Mapping {
            format: BodyFormat::Form,
            fields: vec![
                field("first_name", "lead.name", &[("split_name", Some("first"))]),
                field("last_name", "lead.name", &[("split_name", Some("last"))]),
                field("phone", "lead.phone", &[("national_phone", None)]),
                field(
                    "uf",
                    "lead.custom_fields.state",
                    &[("state_abbreviation", None)],
                ),
                field(
                    "dob",
                    "lead.custom_fields.birth",
                    &[("date_format", Some("MM/DD/YYYY"))],
                ),
                field("contact.id", "meta.lead_id", &[]),
                fixed("vendor", json!(42)),
            ],
        };
        mapping.validate(Region::BR).expect("valid");
        let rendered = mapping.render(&context(), Region::BR);
        assert_eq!(rendered.content_type, "application/x-www-form-urlencoded");
        assert_eq!(
            String::from_utf8(rendered.body).unwrap(),
            "first_name=Ana&last_name=Maria+Silva&phone=%2811%29+98765-4321&uf=SP\
             &dob=07%2F14%2F1990&contact.id=lead_1&vendor=42"
        );
    }

    #[test]
    fn a_field_that_cannot_be_transformed_is_left_out_with_a_reason() {
        let mapping = Mapping {
            format: BodyFormat::Json,
            fields: vec![
                field(
                    "dob",
                    "lead.custom_fields.bad_date",
                    &[("date_format", Some("YYYY-MM-DD"))],
                ),
                field(
                    "dob2",
                    "lead.custom_fields.bad_date",
                    &[
                        ("date_format", Some("YYYY-MM-DD")),
                        ("default", Some("unknown")),
                    ],
                ),
                field("email", "lead.email", &[]),
            ],
        };
        let rendered = mapping.render(&context(), Region::BR);
        assert_eq!(
            String::from_utf8(rendered.body).unwrap(),
            r#"{"dob2":"unknown","email":"ana@example.com"}"#
        );
        assert_eq!(rendered.issues.len(), 2);
        assert_eq!(
            rendered.issues[0].to_string(),
            "mapping.fields[0] (dob): date_format: \"14/07/1990\" is not an ISO 8601 date or date-time; left out"
        );
    }

    #[test]
    fn bad_mappings_name_the_field() {
        let json = |fields: Vec<MappedField>| Mapping {
            format: BodyFormat::Json,
            fields,
        };
        let form = |fields: Vec<MappedField>| Mapping {
            format: BodyFormat::Form,
            fields,
        };
        let both = MappedField {
            value: Some(json!("x")),
            ..field("a", "lead.email", &[])
        };
        let neither = MappedField {
            source: None,
            ..field("a", "lead.email", &[])
        };
        let cases: Vec<(&str, Mapping, &str)> = vec![
            ("no fields", json(vec![]), "mapping.fields"),
            (
                "unknown source",
                json(vec![field("a", "lead.emial", &[])]),
                "mapping.fields[0].source",
            ),
            (
                "unknown transform",
                json(vec![
                    field("a", "lead.email", &[]),
                    field("b", "lead.email", &[("rot13", None)]),
                ]),
                "mapping.fields[1].transforms[0].name",
            ),
            (
                "bad date pattern",
                json(vec![field(
                    "a",
                    "lead.email",
                    &[("trim", None), ("date_format", Some("DD/MM/AAAA"))],
                )]),
                "mapping.fields[0].transforms[1].arg",
            ),
            (
                "empty target",
                json(vec![field(" ", "lead.email", &[])]),
                "mapping.fields[0].target",
            ),
            (
                "empty segment",
                json(vec![field("a..b", "lead.email", &[])]),
                "mapping.fields[0].target",
            ),
            (
                "duplicate target",
                json(vec![
                    field("a", "lead.email", &[]),
                    field("a", "lead.name", &[]),
                ]),
                "mapping.fields[1].target",
            ),
            (
                "target inside another",
                json(vec![
                    field("a", "lead.email", &[]),
                    field("a.b", "lead.name", &[]),
                ]),
                "mapping.fields[1].target",
            ),
            (
                "source and value",
                json(vec![both]),
                "mapping.fields[0].source",
            ),
            (
                "neither source nor value",
                json(vec![neither]),
                "mapping.fields[0].source",
            ),
            (
                "object in a form",
                form(vec![fixed("a", json!({"b": 1}))]),
                "mapping.fields[0].value",
            ),
            (
                "static value a transform refuses",
                json(vec![MappedField {
                    transforms: vec![TransformSpec {
                        name: "date_format".into(),
                        arg: Some("unix".into()),
                    }],
                    ..fixed("a", json!("yesterday"))
                }]),
                "mapping.fields[0].value",
            ),
        ];
        for (case, mapping, field) in cases {
            let err = mapping.validate(Region::BR).expect_err(case);
            assert_eq!(err.field, field, "{case}: {err}");
        }
        assert!(
            form(vec![
                field("a.b", "lead.email", &[]),
                field("a", "lead.email", &[])
            ])
            .validate(Region::BR)
            .is_ok(),
            "form keys are flat: a.b and a are different keys"
        );
    }
}
