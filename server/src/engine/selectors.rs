//! Label and field selectors (`labelSelector`, `fieldSelector`), parsed once per request.

use serde_json::Value;

/// One label requirement.
#[derive(Debug, Clone, PartialEq)]
enum LabelRequirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; empty selects everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelSelector(Vec<LabelRequirement>);

/// Splits at commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn check_key(key: &str) -> Result<String, String> {
    if crate::engine::validation::is_qualified_name(key) {
        Ok(key.to_string())
    } else {
        Err(format!("unable to parse requirement: invalid label key {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"))
    }
}

fn check_value(value: &str) -> Result<String, String> {
    if crate::engine::validation::is_label_value(value) {
        Ok(value.to_string())
    } else {
        Err(format!("unable to parse requirement: invalid label value: {value:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"))
    }
}

fn parse_set(rest: &str) -> Result<Vec<String>, String> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("unable to parse requirement: found '{}', expected: '('", rest.trim()))?;
    inner.split(',').map(|v| check_value(v.trim())).collect()
}

impl LabelSelector {
    /// Parses kube's selector syntax: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(LabelSelector(reqs));
        }
        for part in split_top_level(s) {
            let part = part.trim();
            if part.is_empty() {
                return Err("unable to parse requirement: found '', expected: identifier".into());
            }
            let req = if let Some(key) = part.strip_prefix('!') {
                LabelRequirement::NotExists(check_key(key.trim())?)
            } else if let Some((k, v)) = part.split_once("!=") {
                LabelRequirement::NotEquals(check_key(k.trim())?, check_value(v.trim())?)
            } else if let Some((k, v)) = part.split_once("==") {
                LabelRequirement::Equals(check_key(k.trim())?, check_value(v.trim())?)
            } else if let Some((k, v)) = part.split_once('=') {
                LabelRequirement::Equals(check_key(k.trim())?, check_value(v.trim())?)
            } else if let Some((k, rest)) = part.split_once(" notin ") {
                LabelRequirement::NotIn(check_key(k.trim())?, parse_set(rest)?)
            } else if let Some((k, rest)) = part.split_once(" in ") {
                LabelRequirement::In(check_key(k.trim())?, parse_set(rest)?)
            } else {
                LabelRequirement::Exists(check_key(part)?)
            };
            reqs.push(req);
        }
        Ok(LabelSelector(reqs))
    }

    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether an object's labels match.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.get("metadata").and_then(|m| m.get("labels"));
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            LabelRequirement::Equals(k, v) => get(k) == Some(v.as_str()),
            LabelRequirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            LabelRequirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelRequirement::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            LabelRequirement::Exists(k) => get(k).is_some(),
            LabelRequirement::NotExists(k) => get(k).is_none(),
        })
    }
}

/// One field requirement: field path (`metadata.name`), value, and whether it must equal.
#[derive(Debug, Clone, PartialEq)]
struct FieldRequirement {
    path: Vec<String>,
    value: String,
    equal: bool,
}

/// A parsed field selector; empty selects everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldSelector(Vec<FieldRequirement>);

impl FieldSelector {
    /// Parses `a=b,c!=d`, accepting only `metadata.name`, `metadata.namespace` (when
    /// namespaced) and the spec's selectable fields.
    pub fn parse(s: &str, namespaced: bool, selectable: &[String]) -> Result<Self, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(FieldSelector(reqs));
        }
        for part in s.split(',') {
            let (field, value, equal) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, true)
            } else {
                return Err(format!("invalid selector: '{s}'; can't understand '{part}'"));
            };
            let field = field.trim();
            let supported = field == "metadata.name"
                || (field == "metadata.namespace" && namespaced)
                || selectable.iter().any(|p| p.strip_prefix('.') == Some(field));
            if !supported {
                return Err(format!("field label not supported: {field}"));
            }
            reqs.push(FieldRequirement { path: field.split('.').map(str::to_string).collect(), value: value.trim().to_string(), equal });
        }
        Ok(FieldSelector(reqs))
    }

    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The single `metadata.name=` value, which lets a list read one key instead of scanning.
    pub fn exact_name(&self) -> Option<&str> {
        match self.0.as_slice() {
            [r] if r.equal && r.path == ["metadata", "name"] => Some(&r.value),
            _ => None,
        }
    }

    /// Whether an object matches. Absent fields compare as the empty string, as in kube.
    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|r| {
            let v = r.path.iter().try_fold(object, |v, k| v.get(k.as_str()));
            let text = match v {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            (text == r.value) == r.equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors() {
        let obj = json!({"metadata": {"labels": {"app": "web", "tier": "front"}}});
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (web, db)", true),
            ("app notin (web)", false),
            ("app,tier", true),
            ("!app", false),
            ("!missing", true),
            ("missing notin (x)", true),
            ("app=web,tier in (front)", true),
            ("app=web,tier=back", false),
        ];
        for (s, want) in cases {
            assert_eq!(LabelSelector::parse(s).unwrap().matches(&obj), want, "{s}");
        }
        assert!(LabelSelector::parse("a in b").is_err());
        assert!(LabelSelector::parse("-bad=x").is_err());
    }

    #[test]
    fn field_selectors() {
        let obj = json!({"metadata": {"name": "a", "namespace": "ns"}, "spec": {"color": "red"}});
        let selectable = vec![".spec.color".to_string()];
        let sel = |s: &str| FieldSelector::parse(s, true, &selectable).unwrap();
        assert!(sel("metadata.name=a").matches(&obj));
        assert!(!sel("metadata.name!=a").matches(&obj));
        assert!(sel("metadata.namespace==ns,spec.color=red").matches(&obj));
        assert_eq!(sel("metadata.name=a").exact_name(), Some("a"));
        assert_eq!(FieldSelector::parse("spec.msg=x", true, &selectable).unwrap_err(), "field label not supported: spec.msg");
    }
}
