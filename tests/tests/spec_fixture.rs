//! "Editing the spec is the whole workflow": build the server from a spec directory that adds a
//! second resource (`tests/fixtures/spec-with-bar/`: Foo plus a cluster-scoped `Bar` in group
//! `other.example.com`) and show with kubectl that Bar is served — discovery, CRUD, table
//! columns, schema validation, explain — while Foo keeps working.
//!
//! This builds the server a second time (`SPEC_DIR=<fixture>`, in `target/fixture-bar` so the
//! main build is not disturbed); the first run takes minutes.

use e2e::{build_server, describe, looks_like_age, looks_like_uuid, target_dir, workspace_root, BuildOptions, Manifests, Server, Table};
use serde_json::{json, Value};
use std::path::PathBuf;

/// One kubectl version is enough here; the kubectl tests cover the rest.
const V: &str = "1.33";

fn fixture_dir() -> PathBuf {
    workspace_root().join("tests").join("fixtures").join("spec-with-bar")
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn get_json(server: &Server, args: &[&str]) -> Value {
    let out = server.kubectl_ok(V, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("`kubectl {}` printed invalid JSON ({e}):\n{out}", args.join(" ")))
}

#[test]
fn fixture_foo_is_a_copy_of_the_spec() {
    let spec = workspace_root().join("spec").join("foo.yaml");
    let copy = fixture_dir().join("foo.yaml");
    let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    assert!(
        read(&spec) == read(&copy),
        "{} is out of date with {}; refresh it with:\n  cp spec/foo.yaml tests/fixtures/spec-with-bar/foo.yaml",
        copy.display(),
        spec.display()
    );
}

#[test]
fn a_resource_added_to_the_spec_is_served() {
    let fixture = fixture_dir();
    assert!(fixture.join("bar.yaml").is_file(), "missing fixture {}", fixture.join("bar.yaml").display());
    let binary = build_server(&BuildOptions { target_dir: Some(target_dir().join("fixture-bar")), spec_dir: Some(fixture.clone()) });
    let server = Server::start_binary(&binary);
    let manifests = Manifests::new();

    // Discovery: bars (cluster-scoped) next to foos.
    let out = server.kubectl_ok(V, &["api-resources"]);
    let table = Table::parse(&out);
    assert_eq!(table.header, ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"], "api-resources:\n{out}");
    let bars = table.row_where("NAME", "bars").unwrap_or_else(|| panic!("api-resources does not list bars:\n{out}"));
    assert_eq!(bars, &["bars", "br", "other.example.com/v1alpha1", "false", "Bar"], "the bars row:\n{out}");
    let foos = table.row_where("NAME", "foos").unwrap_or_else(|| panic!("api-resources no longer lists foos:\n{out}"));
    assert_eq!(foos, &["foos", "fo", "hello.zeng.dev/v1", "true", "Foo"], "the foos row:\n{out}");
    let out = server.kubectl_ok(V, &["api-resources", "--namespaced=false", "-o", "name"]);
    assert!(out.lines().any(|l| l == "bars.other.example.com"), "`api-resources --namespaced=false` lacks bars:\n{out}");

    // Create a Bar and read it back unchanged.
    let bar = "bar-e2e";
    let manifest = format!(
        "apiVersion: other.example.com/v1alpha1\nkind: Bar\nmetadata:\n  name: {bar}\nspec:\n  replicas: 3\n  enabled: true\n  owner:\n    name: alice\n    email: alice@example.com\n  ports:\n  - 80\n  - 443\n"
    );
    let path = manifests.write("bar.yaml", &manifest);
    let out = server.kubectl_ok(V, &["create", "-f", &path]);
    assert_eq!(out.trim(), format!("bar.other.example.com/{bar} created"), "create -f bar.yaml");
    let obj = get_json(&server, &["get", "br", bar, "-o", "json"]);
    let spec = json!({"replicas": 3, "enabled": true, "owner": {"name": "alice", "email": "alice@example.com"}, "ports": [80, 443]});
    assert_eq!(obj["spec"], spec, "stored spec: {obj:#}");
    assert_eq!(obj["apiVersion"], "other.example.com/v1alpha1", "{obj:#}");
    assert_eq!(obj["kind"], "Bar", "{obj:#}");
    assert_eq!(obj["metadata"]["name"], bar, "{obj:#}");
    assert!(obj["metadata"].get("namespace").is_none(), "a cluster-scoped object has no namespace: {obj:#}");
    assert!(looks_like_uuid(obj["metadata"]["uid"].as_str().unwrap_or_default()), "{obj:#}");
    assert_eq!(obj["metadata"]["generation"], 1, "{obj:#}");
    let by_full_name = get_json(&server, &["get", "bars.other.example.com", bar, "-o", "json"]);
    assert_eq!(by_full_name, obj, "get by plural.group and by short name differ");

    // The table with Bar's printer columns (Email only with -o wide).
    let out = server.kubectl_ok(V, &["get", "br", bar]);
    let table = Table::parse(&out);
    assert_eq!(table.header, ["NAME", "REPLICAS", "ENABLED", "OWNER", "AGE"], "`get br {bar}`:\n{out}");
    assert_eq!(table.rows.len(), 1, "`get br {bar}`:\n{out}");
    assert_eq!(&table.rows[0][..4], [bar, "3", "true", "alice"], "`get br {bar}`:\n{out}");
    assert!(looks_like_age(&table.rows[0][4]), "`get br {bar}` AGE:\n{out}");
    let out = server.kubectl_ok(V, &["get", "bars", "-o", "wide"]);
    let table = Table::parse(&out);
    assert_eq!(table.header, ["NAME", "REPLICAS", "ENABLED", "OWNER", "EMAIL", "AGE"], "`get bars -o wide`:\n{out}");
    let row = table.row_where("NAME", bar).unwrap_or_else(|| panic!("`get bars -o wide` has no {bar} row:\n{out}"));
    assert_eq!(&row[..5], [bar, "3", "true", "alice", "alice@example.com"], "`get bars -o wide`:\n{out}");

    // Schema validation: a string where an integer belongs is a 422 naming the field.
    let bad = "bar-bad-replicas";
    let bad_path = manifests.write(
        "bad.yaml",
        &format!("apiVersion: other.example.com/v1alpha1\nkind: Bar\nmetadata:\n  name: {bad}\nspec:\n  replicas: \"x\"\n"),
    );
    let out = server.kubectl_err(V, &["create", "-f", &bad_path]);
    let expected = "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\"";
    assert!(stderr(&out).contains(expected), "expected stderr to contain {expected:?}\n{}", describe("kubectl create -f bad.yaml", &out));
    assert!(stderr(&out).contains(&format!("The Bar \"{bad}\" is invalid")), "{}", describe("kubectl create -f bad.yaml", &out));
    // … and the minimum.
    let negative = "bar-negative-replicas";
    let negative_path = manifests.write(
        "negative.yaml",
        &format!("apiVersion: other.example.com/v1alpha1\nkind: Bar\nmetadata:\n  name: {negative}\nspec:\n  replicas: -1\n"),
    );
    let out = server.kubectl_err(V, &["create", "-f", &negative_path]);
    let expected = "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0";
    assert!(
        stderr(&out).contains(expected),
        "expected stderr to contain {expected:?}\n{}",
        describe("kubectl create -f negative.yaml", &out)
    );
    for name in [bad, negative] {
        let out = server.kubectl_err(V, &["get", "br", name]);
        let expected = format!("Error from server (NotFound): bars.other.example.com \"{name}\" not found");
        assert!(stderr(&out).contains(&expected), "a rejected Bar was stored?\n{}", describe(&format!("kubectl get br {name}"), &out));
    }

    // Updates: a merge patch, checked in storage and in the table.
    let out = server.kubectl_ok(V, &["patch", "br", bar, "--type", "merge", "-p", r#"{"spec":{"replicas":5,"ports":[8080]}}"#]);
    assert_eq!(out.trim(), format!("bar.other.example.com/{bar} patched"), "patch br");
    let patched = get_json(&server, &["get", "br", bar, "-o", "json"]);
    assert_eq!(patched["spec"]["replicas"], 5, "{patched:#}");
    assert_eq!(patched["spec"]["ports"], json!([8080]), "{patched:#}");
    assert_eq!(patched["spec"]["owner"], spec["owner"], "{patched:#}");
    assert_eq!(patched["metadata"]["generation"], 2, "{patched:#}");
    let out = server.kubectl_ok(V, &["get", "br", bar, "--no-headers"]);
    assert_eq!(out.split_whitespace().take(4).collect::<Vec<_>>(), [bar, "5", "true", "alice"], "`get br {bar}` after the patch:\n{out}");

    // explain knows Bar's schema.
    let out = server.kubectl_ok(V, &["explain", "br.spec"]);
    for (field, kind, description) in [
        ("replicas", "<integer>", "How many copies to run."),
        ("owner", "<Object>", "Who to call."),
        ("ports", "<[]integer>", "Ports to open."),
    ] {
        let lines: Vec<&str> = out.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.split_whitespace().take(2).eq([field, kind]))
            .unwrap_or_else(|| panic!("`explain br.spec` lacks `{field} {kind}`:\n{out}"));
        assert!(
            lines.get(at + 1).is_some_and(|l| l.trim() == description),
            "`explain br.spec`: {field} should say {description:?}:\n{out}"
        );
    }

    // Foo still works in the same server.
    let foo = "foo-next-to-bar";
    let foo_path = manifests
        .write("foo.yaml", &format!("apiVersion: hello.zeng.dev/v1\nkind: Foo\nmetadata:\n  name: {foo}\nspec:\n  msg: still-here\n"));
    let out = server.kubectl_ok(V, &["create", "-f", &foo_path]);
    assert_eq!(out.trim(), format!("foo.hello.zeng.dev/{foo} created"));
    let out = server.kubectl_ok(V, &["get", "fo", foo]);
    let table = Table::parse(&out);
    assert_eq!(table.header, ["NAME", "MESSAGE", "AGE"], "`get fo {foo}`:\n{out}");
    assert_eq!(&table.rows[0][..2], [foo, "still-here"], "`get fo {foo}`:\n{out}");
    let obj = get_json(&server, &["get", "fo", foo, "-o", "json"]);
    assert_eq!(obj["spec"], json!({"msg": "still-here"}), "{obj:#}");
    assert_eq!(obj["metadata"]["namespace"], "default", "{obj:#}");

    // Delete the Bar.
    let out = server.kubectl_ok(V, &["delete", "br", bar]);
    assert!(out.contains(&format!("bar.other.example.com \"{bar}\" deleted")), "delete br:\n{out}");
    let out = server.kubectl_err(V, &["get", "br", bar]);
    assert!(
        stderr(&out).contains(&format!("Error from server (NotFound): bars.other.example.com \"{bar}\" not found")),
        "{}",
        describe(&format!("kubectl get br {bar} (after delete)"), &out)
    );
}
