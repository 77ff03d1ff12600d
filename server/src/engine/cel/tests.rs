//! Rules evaluated over schemas built from JSON, checked against kube-apiserver's wording.

use super::*;
use serde_json::json;

fn schema(v: Value) -> Schema {
    serde_json::from_value(v).expect("a schema")
}

/// A resource schema whose `spec` is `spec`.
fn resource(spec: Value) -> Schema {
    schema(json!({"kind": {"type": "object", "properties": {"spec": spec}}}))
}

fn obj(spec: Value) -> Value {
    json!({"apiVersion": "x.io/v1", "kind": "Foo", "metadata": {"name": "a"}, "spec": spec})
}

/// Errors as kube renders them (`<field>: <detail>`), with each cause's reason, and warnings.
fn run(schema: &Schema, new: &Value, old: Option<&Value>) -> (Vec<String>, Vec<String>) {
    let outcome = validate(schema, new, old, &[]);
    (outcome.errors.iter().map(|e| format!("{} [{}]", e, e.kind.reason())).collect(), outcome.warnings)
}

fn errors(schema: &Schema, new: &Value, old: Option<&Value>) -> Vec<String> {
    let (errors, warnings) = run(schema, new, old);
    assert!(warnings.is_empty(), "unexpected warnings {warnings:?}");
    errors
}

/// A spec with one integer field `n`, a string `s`, a list `l` of ints, and the given rule on
/// the spec.
fn spec_rule(rule: Value) -> Schema {
    resource(json!({"kind": {"type": "object", "properties": {
        "n": {"kind": {"type": "integer"}},
        "s": {"kind": {"type": "string"}},
        "l": {"kind": {"type": "array", "items": {"kind": {"type": "integer"}}}},
        "q": {"kind": {"type": "string"}},
        "u": {"kind": {"type": "string"}},
        "d": {"kind": {"type": "string"}, "format": "duration"},
        "t": {"kind": {"type": "string"}, "format": "date-time"},
        "x-y": {"kind": {"type": "integer"}},
        "namespace": {"kind": {"type": "string"}},
        "labels": {"kind": {"type": "object", "additional_properties": {"kind": {"type": "string"}}}}
    }}, "validations": [rule]}))
}

#[test]
fn rule_table() {
    let spec = json!({"n": 3, "s": "ab12", "l": [1, 2, 3], "q": "1500m", "u": "https://example.com:8443/p?a=1",
        "d": "90s", "t": "2024-05-01T10:00:00Z", "x-y": 7, "namespace": "ns", "labels": {"a.b": "c"}});
    // (rule, expected errors)
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"rule": "self.n == 3"}), vec![]),
        (json!({"rule": "self.n > 5"}), vec![r#"spec: Invalid value: "object": failed rule: self.n > 5 [FieldValueInvalid]"#]),
        (
            json!({"rule": " self.n > 5 ", "message": " n must exceed 5 "}),
            vec![r#"spec: Invalid value: "object": n must exceed 5 [FieldValueInvalid]"#],
        ),
        (
            json!({"rule": "self.n > 5", "messageExpression": "'n is ' + string(self.n) + ', want more than 5'"}),
            vec![r#"spec: Invalid value: "object": n is 3, want more than 5 [FieldValueInvalid]"#],
        ),
        // A messageExpression that fails, or gives no usable string, falls back to the message.
        (
            json!({"rule": "self.n > 5", "message": "fallback", "messageExpression": "self.missing"}),
            vec![r#"spec: Invalid value: "object": fallback [FieldValueInvalid]"#],
        ),
        (
            json!({"rule": "self.n > 5", "messageExpression": "42"}),
            vec![r#"spec: Invalid value: "object": failed rule: self.n > 5 [FieldValueInvalid]"#],
        ),
        (
            json!({"rule": "self.n > 5", "messageExpression": "'two\\nlines'"}),
            vec![r#"spec: Invalid value: "object": failed rule: self.n > 5 [FieldValueInvalid]"#],
        ),
        (
            json!({"rule": "self.n > 5", "messageExpression": "'   '", "message": "m"}),
            vec![r#"spec: Invalid value: "object": m [FieldValueInvalid]"#],
        ),
        // Reasons.
        (
            json!({"rule": "self.n > 5", "message": "no", "reason": "FieldValueForbidden"}),
            vec!["spec: Forbidden: no [FieldValueForbidden]"],
        ),
        (
            json!({"rule": "self.n > 5", "message": "no", "reason": "FieldValueRequired"}),
            vec!["spec: Required value: no [FieldValueRequired]"],
        ),
        (
            json!({"rule": "self.n > 5", "message": "no", "reason": "FieldValueDuplicate"}),
            vec![r#"spec: Duplicate value: "object" [FieldValueDuplicate]"#],
        ),
        (
            json!({"rule": "self.n > 5", "message": "no", "reason": "FieldValueInvalid"}),
            vec![r#"spec: Invalid value: "object": no [FieldValueInvalid]"#],
        ),
        // fieldPath, relative to the node: properties by name, map keys in brackets.
        (
            json!({"rule": "self.n > 5", "message": "no", "fieldPath": ".n"}),
            vec![r#"spec.n: Invalid value: "object": no [FieldValueInvalid]"#],
        ),
        (
            json!({"rule": "self.n > 5", "message": "no", "fieldPath": ".labels['a.b']"}),
            vec![r#"spec.labels[a.b]: Invalid value: "object": no [FieldValueInvalid]"#],
        ),
        (
            json!({"rule": "self.n > 5", "message": "no", "fieldPath": "['x-y']"}),
            vec![r#"spec.x-y: Invalid value: "object": no [FieldValueInvalid]"#],
        ),
        // Runtime errors, in kube's words.
        (
            json!({"rule": "self.nope == 1"}),
            vec![r#"spec: Invalid value: "object": no such key: nope evaluating rule: self.nope == 1 [FieldValueInvalid]"#],
        ),
        (
            json!({"rule": "self.l[5] == 1", "message": "m"}),
            vec![r#"spec: Invalid value: "object": index out of bounds: 5 evaluating rule: m [FieldValueInvalid]"#],
        ),
        (
            json!({"rule": "self.n / 0 == 1"}),
            vec![r#"spec: Invalid value: "object": division by zero evaluating rule: self.n / 0 == 1 [FieldValueInvalid]"#],
        ),
        (
            json!({"rule": "self.n % 0 == 1"}),
            vec![r#"spec: Invalid value: "object": modulus by zero evaluating rule: self.n % 0 == 1 [FieldValueInvalid]"#],
        ),
        (
            json!({"rule": "9223372036854775807 + self.n > 0"}),
            vec![
                r#"spec: Invalid value: "object": integer overflow evaluating rule: 9223372036854775807 + self.n > 0 [FieldValueInvalid]"#,
            ],
        ),
        (
            json!({"rule": "self.s > 1"}),
            vec![
                r#"spec: Invalid value: "object": 'no such overload': call arguments did not match a supported operator, function or macro signature for rule: self.s > 1 [FieldValueInvalid]"#,
            ],
        ),
        // has(), escaping of property names.
        (json!({"rule": "has(self.n) && !has(self.missing)"}), vec![]),
        (json!({"rule": "self.x__dash__y == 7 && self.__namespace__ == 'ns'"}), vec![]),
        (json!({"rule": "self.labels['a.b'] == 'c' && 'a.b' in self.labels"}), vec![]),
        // Standard library and extensions.
        (
            json!({"rule": "self.s.matches('^[a-z]+[0-9]+$') && self.s.startsWith('ab') && self.s.endsWith('12') && self.s.contains('b1')"}),
            vec![],
        ),
        (json!({"rule": "self.s.upperAscii() == 'AB12' && 'AbC'.lowerAscii() == 'abc' && ' x '.trim() == 'x'"}), vec![]),
        (json!({"rule": "self.s.indexOf('1') == 2 && self.s.replace('12', '34') == 'ab34' && 'a,b'.split(',') == ['a', 'b']"}), vec![]),
        (json!({"rule": "['a', 'b'].join('-') == 'a-b' && self.s.substring(1, 3) == 'b1' && size(self.s) == 4"}), vec![]),
        (json!({"rule": "self.l.all(x, x > 0) && self.l.exists(x, x == 2) && self.l.exists_one(x, x == 3)"}), vec![]),
        (json!({"rule": "self.l.map(x, x * 2).filter(x, x > 2) == [4, 6]"}), vec![]),
        (
            json!({"rule": "self.l.isSorted() && self.l.sum() == 6 && self.l.min() == 1 && self.l.max() == 3 && self.l.indexOf(2) == 1"}),
            vec![],
        ),
        (json!({"rule": "self.s.find('[0-9]+') == '12' && 'a1b2'.findAll('[0-9]') == ['1', '2']"}), vec![]),
        (
            json!({"rule": "isURL(self.u) && url(self.u).getHostname() == 'example.com' && url(self.u).getPort() == '8443' && url(self.u).getScheme() == 'https'"}),
            vec![],
        ),
        (json!({"rule": "url(self.u).getQuery()['a'] == ['1'] && url(self.u).getEscapedPath() == '/p' && !isURL('no')"}), vec![]),
        (
            json!({"rule": "quantity(self.q).isLessThan(quantity('2')) && quantity(self.q).compareTo(quantity('1.5')) == 0 && isQuantity('1Gi')"}),
            vec![],
        ),
        (json!({"rule": "self.d == duration('1m30s') && self.d < duration('1h')"}), vec![]),
        (json!({"rule": "self.t > timestamp('2024-01-01T00:00:00Z') && self.t.getFullYear() == 2024"}), vec![]),
        (json!({"rule": "cel.bind(total, self.l.sum(), total == 6)"}), vec![]),
        (json!({"rule": "sets.contains(self.l, [1, 3]) && sets.intersects(self.l, [3, 4]) && !sets.equivalent(self.l, [1])"}), vec![]),
        (json!({"rule": "isIP('10.0.0.1') && cidr('10.0.0.0/8').containsIP(ip('10.1.2.3')) && !isCIDR('10.0.0.1')"}), vec![]),
        (json!({"rule": "type(self.n) == int && type(self.s) == string && int('5') == 5"}), vec![]),
        // A result that is not `true` is a failure.
        (json!({"rule": "self.n"}), vec![r#"spec: Invalid value: "object": failed rule: self.n [FieldValueInvalid]"#]),
    ];
    let mut failures = Vec::new();
    for (rule, want) in cases {
        let s = spec_rule(rule.clone());
        let got = errors(&s, &obj(spec.clone()), None);
        if got != want {
            failures.push(format!("{rule}\n  got:  {got:?}\n  want: {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn compile_errors_are_reported_at_the_node() {
    let s = spec_rule(json!({"rule": "self.n ==", "message": "m"}));
    let got = errors(&s, &obj(json!({"n": 1})), None);
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with(r#"spec: Invalid value: "object": rule compile error: compilation failed: "#), "{got:?}");
    let s = spec_rule(json!({"rule": "self.s.frobnicate()"}));
    let got = errors(&s, &obj(json!({"s": "x"})), None);
    assert_eq!(
        got,
        vec![
            r#"spec: Invalid value: "object": rule compile error: compilation failed: ERROR: <input>: undeclared reference to 'frobnicate' (in container '') [FieldValueInvalid]"#
        ]
    );
}

#[test]
fn root_rules_see_type_and_name_and_have_a_nil_path() {
    let s = schema(
        json!({"kind": {"type": "object", "properties": {"spec": {"kind": {"type": "object", "properties": {"n": {"kind": {"type": "integer"}}}}}}},
        "validations": [
            {"rule": "self.kind == 'Foo' && self.apiVersion == 'x.io/v1' && self.metadata.name.startsWith('a')"},
            {"rule": "has(self.metadata.labels)", "message": "labels are not visible to rules"},
            {"rule": "self.spec.n < 2"}
        ]}),
    );
    let o = json!({"apiVersion": "x.io/v1", "kind": "Foo", "metadata": {"name": "abc", "labels": {"a": "b"}}, "spec": {"n": 3}});
    assert_eq!(
        errors(&s, &o, None),
        vec![
            r#"<nil>: Invalid value: "object": labels are not visible to rules [FieldValueInvalid]"#,
            r#"<nil>: Invalid value: "object": failed rule: self.spec.n < 2 [FieldValueInvalid]"#,
        ]
    );
}

#[test]
fn rules_on_scalars_list_items_and_map_values_run_per_element() {
    let s = resource(json!({"kind": {"type": "object", "properties": {
        "name": {"kind": {"type": "string"}, "validations": [{"rule": "self.startsWith('a')", "message": "must start with a"}]},
        "items": {"kind": {"type": "array", "items": {"kind": {"type": "object", "properties": {
            "name": {"kind": {"type": "string"}},
            "port": {"kind": {"type": "integer"}, "validations": [{"rule": "self < 1024"}]}
        }}, "validations": [{"rule": "self.name != ''", "message": "name is empty"}]}}},
        "labels": {"kind": {"type": "object", "additional_properties": {"kind": {"type": "string"}, "validations": [{"rule": "self.size() <= 3"}]}}},
        "opt": {"kind": {"type": "string"}, "nullable": true, "validations": [{"rule": "self.size() > 10"}]},
        "ios": {"kind": {"type": "intOrString"}, "validations": [{"rule": "type(self) == string ? self.endsWith('%') : self >= 0"}]}
    }}}));
    let o = obj(
        json!({"name": "bob", "items": [{"name": "x", "port": 80}, {"name": "", "port": 8080}], "labels": {"a": "ok", "b": "toolong"}, "opt": null, "ios": "50"}),
    );
    assert_eq!(
        errors(&s, &o, None),
        vec![
            r#"spec.name: Invalid value: "string": must start with a [FieldValueInvalid]"#,
            r#"spec.items[1]: Invalid value: "object": name is empty [FieldValueInvalid]"#,
            r#"spec.items[1].port: Invalid value: "integer": failed rule: self < 1024 [FieldValueInvalid]"#,
            r#"spec.labels[b]: Invalid value: "string": failed rule: self.size() <= 3 [FieldValueInvalid]"#,
            r#"spec.ios: Invalid value: "": failed rule: type(self) == string ? self.endsWith('%') : self >= 0 [FieldValueInvalid]"#,
        ]
    );
    let fine = obj(json!({"name": "al", "ios": 5}));
    assert!(errors(&s, &fine, None).is_empty());
}

fn immutable_spec() -> Schema {
    resource(json!({"kind": {"type": "object", "properties": {
        "name": {"kind": {"type": "string"}, "validations": [{"rule": "self == oldSelf", "message": "name is immutable"}]},
        "size": {"kind": {"type": "integer"}, "validations": [{"rule": "self >= oldSelf", "messageExpression": "'size may not shrink from ' + string(oldSelf)"}]},
        "level": {"kind": {"type": "integer"}, "validations": [
            {"rule": "!oldSelf.hasValue() || self >= oldSelf.value()", "optionalOldSelf": true, "message": "level may not drop"},
            {"rule": "oldSelf.hasValue()", "optionalOldSelf": true, "message": "level must have existed"}
        ]}
    }}}))
}

#[test]
fn transition_rules_need_an_old_value() {
    let s = immutable_spec();
    // Create: no oldSelf; plain transition rules are skipped, optional ones run with none.
    let created = obj(json!({"name": "a", "size": 5, "level": 2}));
    assert_eq!(errors(&s, &created, None), vec![r#"spec.level: Invalid value: "integer": level must have existed [FieldValueInvalid]"#]);
    // Update that changes everything.
    let updated = obj(json!({"name": "b", "size": 4, "level": 1}));
    assert_eq!(
        errors(&s, &updated, Some(&created)),
        vec![
            r#"spec.name: Invalid value: "string": name is immutable [FieldValueInvalid]"#,
            r#"spec.size: Invalid value: "integer": size may not shrink from 5 [FieldValueInvalid]"#,
            r#"spec.level: Invalid value: "integer": level may not drop [FieldValueInvalid]"#,
        ]
    );
    // A field absent from the old object has no oldSelf: its transition rules are skipped.
    let old = obj(json!({"level": 1}));
    assert!(errors(&s, &updated, Some(&old)).is_empty());
    // Unchanged values pass.
    assert!(errors(&s, &created, Some(&created)).is_empty());
}

fn lists_spec() -> Schema {
    let item = json!({"kind": {"type": "object", "properties": {
        "name": {"kind": {"type": "string"}},
        "value": {"kind": {"type": "integer"}}
    }}, "validations": [{"rule": "self.value >= oldSelf.value", "message": "value may not decrease"}]});
    resource(json!({"kind": {"type": "object", "properties": {
        "byName": {"kind": {"type": "array", "items": item.clone(), "list_type": "map", "list_map_keys": ["name"]}},
        "atomic": {"kind": {"type": "array", "items": item}},
        "tags": {"kind": {"type": "array", "items": {"kind": {"type": "string"}, "validations": [{"rule": "self == oldSelf", "message": "tags never correlate"}]}, "list_type": "set"},
            "validations": [{"rule": "self == oldSelf", "message": "tags are immutable"}]},
        "order": {"kind": {"type": "array", "items": {"kind": {"type": "string"}}}, "validations": [{"rule": "self == oldSelf", "message": "order is immutable"}]}
    }}}))
}

#[test]
fn map_list_items_correlate_by_key_and_other_lists_do_not() {
    let s = lists_spec();
    let old = obj(json!({
        "byName": [{"name": "a", "value": 5}, {"name": "b", "value": 5}],
        "atomic": [{"name": "a", "value": 5}],
        "tags": ["x", "y"],
        "order": ["x", "y"]
    }));
    // Reordered map list: items still correlate by name; b decreased; c is new (no oldSelf).
    // Atomic list items never correlate, so their transition rules are skipped. A set compares
    // equal in any order; an atomic list does not.
    let new = obj(json!({
        "byName": [{"name": "c", "value": 0}, {"name": "b", "value": 4}, {"name": "a", "value": 6}],
        "atomic": [{"name": "a", "value": 1}],
        "tags": ["y", "x"],
        "order": ["y", "x"]
    }));
    assert_eq!(
        errors(&s, &new, Some(&old)),
        vec![
            r#"spec.byName[1]: Invalid value: "object": value may not decrease [FieldValueInvalid]"#,
            r#"spec.order: Invalid value: "array": order is immutable [FieldValueInvalid]"#,
        ]
    );
    let changed_set = obj(json!({"tags": ["x", "z"]}));
    assert_eq!(errors(&s, &changed_set, Some(&old)), vec![r#"spec.tags: Invalid value: "array": tags are immutable [FieldValueInvalid]"#]);
}

#[test]
fn unchanged_values_ratchet_to_warnings() {
    let s = resource(json!({"kind": {"type": "object", "properties": {
        "a": {"kind": {"type": "integer"}, "validations": [{"rule": "self > 5"}]},
        "b": {"kind": {"type": "integer"}, "validations": [{"rule": "self > 5"}]},
        "c": {"kind": {"type": "integer"}, "validations": [{"rule": "self > oldSelf"}]}
    }}}));
    let old = obj(json!({"a": 1, "b": 1, "c": 1}));
    let new = obj(json!({"a": 1, "b": 2, "c": 1}));
    let (errors, warnings) = run(&s, &new, Some(&old));
    // `a` did not change: its failure is a warning. Transition rules never ratchet.
    assert_eq!(warnings, vec![r#"spec.a: Invalid value: "integer": failed rule: self > 5"#]);
    assert_eq!(
        errors,
        vec![
            r#"spec.b: Invalid value: "integer": failed rule: self > 5 [FieldValueInvalid]"#,
            r#"spec.c: Invalid value: "integer": failed rule: self > oldSelf [FieldValueInvalid]"#,
        ]
    );
}

#[test]
fn embedded_resources_see_their_type() {
    let s = resource(json!({"kind": {"type": "object", "properties": {
        "template": {"kind": {"type": "object", "embedded_resource": true, "preserve_unknown_fields": true},
            "validations": [{"rule": "self.kind == 'Pod' && self.metadata.name == 'p'"}]}
    }}}));
    assert!(
        errors(&s, &obj(json!({"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}})), None).is_empty()
    );
    assert_eq!(errors(&s, &obj(json!({"template": {"apiVersion": "v1", "kind": "Svc", "metadata": {"name": "p"}}})), None).len(), 1);
}

#[test]
fn schema_errors_keep_rules_from_running() {
    let s = spec_rule(json!({"rule": "self.n > 100"}));
    let prior = [FieldError::new(FieldErrorKind::TypeInvalid, "spec.n", None, "")];
    let outcome = validate(&s, &obj(json!({"n": "x"})), None, &prior);
    let rendered: Vec<String> = outcome.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        rendered,
        vec![
            r#"<nil>: Invalid value: "null": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"#
        ]
    );
    // An Invalid error (say, a pattern) does not block.
    let prior = [FieldError::new(FieldErrorKind::Invalid, "spec.s", None, "")];
    assert_eq!(validate(&s, &obj(json!({"n": 1})), None, &prior).errors.len(), 1);
    // Without rules there is nothing to say.
    let plain = resource(json!({"kind": {"type": "object"}}));
    assert!(validate(&plain, &obj(json!({})), None, &[FieldError::new(FieldErrorKind::Required, "x", None, "")]).errors.is_empty());
}

#[test]
fn cost_is_bounded() {
    let s = resource(json!({"kind": {"type": "object", "properties": {
        "l": {"kind": {"type": "array", "items": {"kind": {"type": "integer"}}},
            "validations": [
                {"rule": "self.size() >= 0"},
                {"rule": "self.all(a, self.all(b, a == b || a != b))", "message": "quadratic"},
                {"rule": "self.size() < 0", "message": "never reached"}
            ]}
    }}}));
    let small = obj(json!({"l": [1, 2, 3]}));
    assert_eq!(errors(&s, &small, None), vec![r#"spec.l: Invalid value: "array": never reached [FieldValueInvalid]"#]);
    let big = obj(json!({"l": (0..5000).collect::<Vec<i64>>()}));
    let started = std::time::Instant::now();
    assert_eq!(
        errors(&s, &big, None),
        vec![
            r#"spec.l: Invalid value: "array": 'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: quadratic [FieldValueInvalid]"#
        ]
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Copying a large string once per item would take gigabytes: refused before it starts.
    let copies = resource(json!({"kind": {"type": "object", "properties": {
        "l": {"kind": {"type": "array", "items": {"kind": {"type": "integer"}}}},
        "s": {"kind": {"type": "string"}}
    }}, "validations": [{"rule": "self.l.map(x, self.s + self.s).size() > 0", "message": "copies"}]}));
    let got = errors(&copies, &obj(json!({"l": vec![1; 2000], "s": "x".repeat(1 << 20)})), None);
    assert!(got[0].contains("call cost exceeds limit for rule: copies"), "{got:?}");
    assert!(program::compiled("self.l.map(x, self.s + self.s)").per_byte);
    assert!(!program::compiled("self.l.all(x, x.name != '')").per_byte);
    assert!(!program::compiled("self.l.exists_one(x, x > 0) && self.s + 'a' != ''").per_byte);
    // Many cheap evaluations add up to the total budget.
    let per_item = resource(json!({"kind": {"type": "object", "properties": {
        "l": {"kind": {"type": "array", "items": {"kind": {"type": "string"}, "validations": [{"rule": "self.split('').all(c, c != '')"}]}}}
    }}}));
    let huge = obj(json!({"l": vec!["x".repeat(100); 100]}));
    let got: Vec<String> =
        validate_within(&per_item, &huge, None, &[], 20_000.0).errors.iter().map(|e| format!("{} [{}]", e, e.kind.reason())).collect();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].ends_with(r#"Invalid value: "string": validation failed due to running out of cost budget, no further validation rules will be run [FieldValueInvalid]"#), "{got:?}");
}

#[test]
fn programs_compile_once() {
    let a = program::compiled("self.x > 0 && self.y < 1");
    let b = program::compiled("self.x > 0 && self.y < 1");
    assert!(Arc::ptr_eq(&a, &b));
    assert!(!a.uses_old_self);
    assert!(program::compiled("self == oldSelf").uses_old_self);
    assert_eq!(program::compiled("self.all(a, self.exists(b, a == b))").loop_depth, 2);
    assert_eq!(program::compiled("cel.bind(x, 1, x == 1)").loop_depth, 0);
}

#[test]
fn check_reports_what_kube_refuses_at_crd_creation() {
    let s = resource(json!({"kind": {"type": "object", "properties": {
        "tags": {"kind": {"type": "array", "items": {"kind": {"type": "string"}, "validations": [{"rule": "self == oldSelf"}]}, "list_type": "set"}},
        "n": {"kind": {"type": "integer"}}
    }}, "validations": [
        {"rule": "self.n >"},
        {"rule": "self.n > 0", "reason": "FieldValueWrong"},
        {"rule": "self.n > 0", "fieldPath": ".nope"},
        {"rule": "self.n > 0", "optionalOldSelf": true},
        {"rule": "self.n > 0", "messageExpression": "'a' +"},
        {"rule": "self.n.bogus()"},
        {"rule": "self.n > 0", "fieldPath": ".n", "message": "fine"}
    ]}));
    let problems = check(&s);
    let expect = [
        "openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: \"self.n >\": compilation failed",
        "openAPIV3Schema.properties[spec].x-kubernetes-validations[1].reason: Unsupported value: \"FieldValueWrong\"",
        "openAPIV3Schema.properties[spec].x-kubernetes-validations[2].fieldPath: Invalid value: \".nope\": does not refer to a valid field",
        "openAPIV3Schema.properties[spec].x-kubernetes-validations[3].optionalOldSelf: Forbidden: may not be set if rule does not use oldSelf",
        "openAPIV3Schema.properties[spec].x-kubernetes-validations[4].messageExpression: Invalid value: \"'a' +\": messageExpression compilation failed",
        "openAPIV3Schema.properties[spec].x-kubernetes-validations[5].rule: Invalid value: \"self.n.bogus()\": compilation failed: ERROR: <input>: undeclared reference to 'bogus'",
        "openAPIV3Schema.properties[spec].properties[tags].items.x-kubernetes-validations[0].rule: Invalid value: \"self == oldSelf\": oldSelf cannot be used on the uncorrelatable portion of the schema within openAPIV3Schema.properties[spec].properties[tags].items",
    ];
    assert_eq!(problems.len(), expect.len(), "{problems:#?}");
    for (got, want) in problems.iter().zip(expect) {
        assert!(got.starts_with(want), "{got}\n  does not start with\n{want}");
    }
}

#[test]
fn the_served_spec_has_valid_rules() {
    assert_eq!(check_model(generated::model()), Vec::<String>::new());
}

/// Every rule of the real-world CRDs in `shared/crds` compiles in our environment (every
/// function they call exists).
#[test]
fn real_world_rules_compile() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/crds");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipped: no real-world CRDs at {}", dir.display());
        return;
    };
    fn collect(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::Array(rules)) = map.get("x-kubernetes-validations") {
                    for r in rules {
                        for key in ["rule", "messageExpression"] {
                            if let Some(Value::String(s)) = r.get(key) {
                                out.push(s.clone());
                            }
                        }
                    }
                }
                map.values().for_each(|v| collect(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    let mut sources = Vec::new();
    for entry in entries.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "yaml")) {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let value: Value = match serde::Deserialize::deserialize(doc) {
                Ok(v) => v,
                Err(_) => continue,
            };
            collect(&value, &mut sources);
        }
    }
    assert!(sources.len() > 700, "found only {} rules", sources.len());
    let failures: Vec<String> =
        sources.iter().filter_map(|s| program::compiled(s).program.as_ref().err().map(|e| format!("{s}: {e}"))).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn matches_uses_cached_patterns_and_reports_bad_ones() {
    let s = spec_rule(json!({"rule": "self.s.matches('^a') && matches(self.s, 'b') && !self.s.matches('^z')"}));
    assert!(errors(&s, &obj(json!({"s": "ab"})), None).is_empty());
    let s = spec_rule(json!({"rule": "self.s.matches(self.q)"}));
    assert_eq!(
        errors(&s, &obj(json!({"s": "ab", "q": "("})), None),
        vec!["spec: Invalid value: \"object\": error parsing regexp: unclosed group: `(` evaluating rule: self.s.matches(self.q) [FieldValueInvalid]"]
    );
}
