//! The server as kubectl 1.27–1.33 users see it: every test starts its own server and runs the
//! same scenario with each kubectl version (object names carry the version), asserting on what
//! kubectl prints and on what the server stored (read back with `kubectl get -o json`).

use e2e::{
    describe, for_each_kubectl, kubectl_path, looks_like_age, looks_like_timestamp, looks_like_uuid, Manifests, Server, Table,
    KUBECTL_VERSIONS,
};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const SMP: &str = "application/strategic-merge-patch+json";
const MERGE: &str = "application/merge-patch+json";

/// `PREFIX-1-27` for kubectl 1.27.
fn name_for(prefix: &str, version: &str) -> String {
    format!("{prefix}-{}", version.replace('.', "-"))
}

/// A Foo manifest.
fn foo_manifest(name: &str, msg: &str, msg1: Option<&str>) -> String {
    let mut m = format!("apiVersion: hello.zeng.dev/v1\nkind: Foo\nmetadata:\n  name: {name}\nspec:\n  msg: {msg}\n");
    if let Some(msg1) = msg1 {
        m.push_str(&format!("  msg1: {msg1}\n"));
    }
    m
}

/// The stored object, as `kubectl get fo NAME -o json` prints it.
fn stored(server: &Server, v: &str, name: &str) -> Value {
    let out = server.kubectl_ok(v, &["get", "fo", name, "-o", "json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("`kubectl get fo {name} -o json` printed invalid JSON ({e}):\n{out}"))
}

fn rv(obj: &Value) -> String {
    obj["metadata"]["resourceVersion"].as_str().unwrap_or_else(|| panic!("no metadata.resourceVersion in {obj:#}")).to_string()
}

fn generation(obj: &Value) -> i64 {
    obj["metadata"]["generation"].as_i64().unwrap_or_else(|| panic!("no integer metadata.generation in {obj:#}"))
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that `get fo NAME` fails with kube-apiserver's NotFound message.
fn assert_not_found(server: &Server, v: &str, name: &str) {
    let out = server.kubectl_err(v, &["get", "fo", name]);
    let expected = format!("Error from server (NotFound): foos.hello.zeng.dev \"{name}\" not found");
    assert!(
        stderr(&out).contains(&expected),
        "expected stderr to contain {expected:?}\n{}",
        describe(&format!("kubectl.{v} get fo {name}"), &out)
    );
}

#[test]
fn kubectl_binaries_are_installed() {
    let missing: Vec<String> = KUBECTL_VERSIONS
        .iter()
        .map(|v| std::path::Path::new(e2e::KUBECTL_DIR).join(format!("kubectl.{v}")))
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    assert!(missing.is_empty(), "kubectl binaries missing (the end-to-end tests need all of {KUBECTL_VERSIONS:?}): {missing:?}");
    for v in KUBECTL_VERSIONS {
        let out = std::process::Command::new(kubectl_path(v)).args(["version", "--client"]).output().expect("run kubectl version");
        assert!(
            out.status.success() && stdout(&out).contains(&format!("v{v}.")),
            "kubectl.{v} does not report version {v}:\n{}",
            describe(&format!("kubectl.{v} version --client"), &out)
        );
    }
}

#[test]
fn api_resources_lists_foos() {
    let server = Server::start();
    for_each_kubectl(|v| {
        let out = server.kubectl_ok(v, &["api-resources"]);
        let table = Table::parse(&out);
        assert_eq!(table.header, ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"], "api-resources header:\n{out}");
        let row = table.row_where("NAME", "foos").unwrap_or_else(|| panic!("no `foos` row in api-resources:\n{out}"));
        assert_eq!(row, &["foos", "fo", "hello.zeng.dev/v1", "true", "Foo"], "the foos row of api-resources:\n{out}");

        let out = server.kubectl_ok(v, &["api-resources", "--api-group=hello.zeng.dev", "-o", "name"]);
        assert_eq!(out.trim(), "foos.hello.zeng.dev", "api-resources --api-group=hello.zeng.dev -o name");
    });
}

#[test]
fn create_then_get_in_every_format() {
    let server = Server::start();
    let manifests = Manifests::new();
    for_each_kubectl(|v| {
        let name = name_for("created", v);
        let msg = name_for("hello", v);
        let msg1 = name_for("world", v);
        let path = manifests.write(&format!("{name}.yaml"), &foo_manifest(&name, &msg, Some(&msg1)));

        // create -f
        let out = server.kubectl_ok(v, &["create", "-f", &path]);
        assert_eq!(out.trim(), format!("foo.hello.zeng.dev/{name} created"), "create -f output");

        // get fo NAME: the default columns only.
        let out = server.kubectl_ok(v, &["get", "fo", &name]);
        let table = Table::parse(&out);
        assert_eq!(table.header, ["NAME", "MESSAGE", "AGE"], "`get fo {name}` columns (MESSAGE1 has priority 1):\n{out}");
        assert!(!out.contains("MESSAGE1") && !out.contains(&msg1), "`get fo {name}` shows the priority-1 column:\n{out}");
        assert_eq!(table.rows.len(), 1, "`get fo {name}` rows:\n{out}");
        let row = &table.rows[0];
        assert_eq!(&row[..2], [name.as_str(), msg.as_str()], "`get fo {name}` row:\n{out}");
        assert!(looks_like_age(&row[2]), "AGE cell {:?} is not an age:\n{out}", row[2]);

        // get fo -o wide: the priority-1 column too.
        let out = server.kubectl_ok(v, &["get", "fo", "-o", "wide"]);
        let table = Table::parse(&out);
        assert_eq!(table.header, ["NAME", "MESSAGE", "MESSAGE1", "AGE"], "`get fo -o wide` columns:\n{out}");
        let row = table.row_where("NAME", &name).unwrap_or_else(|| panic!("no row for {name} in `get fo -o wide`:\n{out}"));
        assert_eq!(&row[..3], [name.as_str(), msg.as_str(), msg1.as_str()], "`get fo -o wide` row:\n{out}");
        assert!(looks_like_age(&row[3]), "AGE cell {:?} is not an age:\n{out}", row[3]);

        // -o json: the stored object with its server-set metadata.
        let obj = stored(&server, v, &name);
        assert_eq!(obj["apiVersion"], "hello.zeng.dev/v1", "{obj:#}");
        assert_eq!(obj["kind"], "Foo", "{obj:#}");
        assert_eq!(obj["metadata"]["name"], name.as_str(), "{obj:#}");
        assert_eq!(obj["metadata"]["namespace"], "default", "{obj:#}");
        assert_eq!(obj["spec"], json!({"msg": msg, "msg1": msg1}), "stored spec: {obj:#}");
        let uid = obj["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        assert!(looks_like_uuid(&uid), "metadata.uid {uid:?} is not a UUID: {obj:#}");
        let resource_version = rv(&obj);
        assert!(!resource_version.is_empty(), "empty resourceVersion: {obj:#}");
        let created = obj["metadata"]["creationTimestamp"].as_str().unwrap_or_default().to_string();
        assert!(looks_like_timestamp(&created), "creationTimestamp {created:?} is not RFC 3339: {obj:#}");
        assert_eq!(generation(&obj), 1, "a new object has generation 1: {obj:#}");

        // -o yaml: the same object.
        let yaml = server.kubectl_ok(v, &["get", "fo", &name, "-o", "yaml"]);
        let lines: Vec<&str> = yaml.lines().collect();
        for expected in [
            "apiVersion: hello.zeng.dev/v1".to_string(),
            "kind: Foo".to_string(),
            format!("  name: {name}"),
            "  namespace: default".to_string(),
            format!("  uid: {uid}"),
            format!("  resourceVersion: \"{resource_version}\""),
            format!("  creationTimestamp: \"{created}\""),
            "  generation: 1".to_string(),
            format!("  msg: {msg}"),
            format!("  msg1: {msg1}"),
        ] {
            assert!(lines.contains(&expected.as_str()), "`get fo {name} -o yaml` lacks the line {expected:?}:\n{yaml}");
        }

        // The same manifest in a second namespace, then get -A: a NAMESPACE column and both.
        let other = name_for("e2e-other", v);
        let out = server.kubectl_ok(v, &["create", "-f", &path, "-n", &other]);
        assert_eq!(out.trim(), format!("foo.hello.zeng.dev/{name} created"), "create -n {other}");
        let obj = server.kubectl_ok(v, &["get", "fo", &name, "-n", &other, "-o", "json"]);
        let obj: Value = serde_json::from_str(&obj).expect("JSON");
        assert_eq!(obj["metadata"]["namespace"], other.as_str(), "{obj:#}");
        assert_ne!(obj["metadata"]["uid"], uid.as_str(), "two objects share a uid: {obj:#}");

        let out = server.kubectl_ok(v, &["get", "fo", "-A"]);
        let table = Table::parse(&out);
        assert_eq!(table.header, ["NAMESPACE", "NAME", "MESSAGE", "AGE"], "`get fo -A` columns:\n{out}");
        for ns in ["default", other.as_str()] {
            let found = table.rows.iter().any(|r| r.len() == 4 && r[0] == ns && r[1] == name && r[2] == msg && looks_like_age(&r[3]));
            assert!(found, "`get fo -A` has no row {ns} {name} {msg} AGE:\n{out}");
        }
    });
}

#[test]
fn get_missing_is_not_found() {
    let server = Server::start();
    for_each_kubectl(|v| {
        let out = server.kubectl_err(v, &["get", "fo", "missing"]);
        let expected = "Error from server (NotFound): foos.hello.zeng.dev \"missing\" not found";
        assert!(stderr(&out).contains(expected), "expected stderr to contain {expected:?}\n{}", describe("kubectl get fo missing", &out));
        assert!(stdout(&out).trim().is_empty(), "{}", describe("kubectl get fo missing", &out));
    });
}

#[test]
fn create_existing_is_already_exists() {
    let server = Server::start();
    let manifests = Manifests::new();
    for_each_kubectl(|v| {
        let name = name_for("dup", v);
        let first = manifests.write(&format!("{name}-1.yaml"), &foo_manifest(&name, "first", None));
        let second = manifests.write(&format!("{name}-2.yaml"), &foo_manifest(&name, "second", None));
        server.kubectl_ok(v, &["create", "-f", &first]);
        let before = stored(&server, v, &name);

        let out = server.kubectl_err(v, &["create", "-f", &second]);
        let expected =
            format!("Error from server (AlreadyExists): error when creating \"{second}\": foos.hello.zeng.dev \"{name}\" already exists");
        assert!(
            stderr(&out).contains(&expected),
            "expected stderr to contain {expected:?}\n{}",
            describe("kubectl create -f (existing)", &out)
        );

        let after = stored(&server, v, &name);
        assert_eq!(after, before, "a rejected create changed the stored object");
        assert_eq!(after["spec"]["msg"], "first");
    });
}

/// The patch media types the PATCH operation on one Foo lists in OpenAPI v2 (`consumes`) and
/// v3 (`requestBody.content`).
fn advertised_patch_types(server: &Server) -> (Vec<String>, Vec<String>) {
    let item_path = |paths: &Value| -> String {
        let map = paths.as_object().expect("paths is an object");
        map.keys()
            .find(|k| k.contains("/namespaces/{namespace}/foos/{name}") && !k.ends_with("/status"))
            .unwrap_or_else(|| panic!("no Foo item path among {:?}", map.keys().collect::<Vec<_>>()))
            .clone()
    };
    let v2 = server.get_raw_json("/openapi/v2");
    let path = item_path(&v2["paths"]);
    let v2_types = v2["paths"][&path]["patch"]["consumes"]
        .as_array()
        .unwrap_or_else(|| panic!("/openapi/v2: no patch.consumes under {path}"))
        .iter()
        .map(|t| t.as_str().unwrap_or_default().to_string())
        .collect();

    let index = server.get_raw_json("/openapi/v3");
    let url = index["paths"]["apis/hello.zeng.dev/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap_or_else(|| panic!("/openapi/v3 has no apis/hello.zeng.dev/v1 entry: {index:#}"))
        .to_string();
    let v3 = server.get_raw_json(&url);
    let path = item_path(&v3["paths"]);
    let v3_types = v3["paths"][&path]["patch"]["requestBody"]["content"]
        .as_object()
        .unwrap_or_else(|| panic!("{url}: no patch.requestBody.content under {path}"))
        .keys()
        .cloned()
        .collect();
    (v2_types, v3_types)
}

/// The patch Content-Types in kubectl's `-v=8` request log (1.27–1.29 log one header per
/// line after `round_trippers.go:…]`, 1.30+ log them tab-indented under `"Request" …`).
fn patch_content_types(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.split_once("Content-Type: ").map(|(_, t)| t.trim()))
        .filter(|t| t.ends_with("patch+json") || t.ends_with("patch+yaml"))
        .map(String::from)
        .collect()
}

/// The request/response lines of a `-v=8` log (no bodies), for assertion messages.
fn request_lines(log: &str) -> String {
    log.lines()
        .filter(|l| {
            ["PATCH", "POST", "PUT", "Content-Type", "Response Status", "\"Response\"", "\"Request\""].iter().any(|k| l.contains(k))
        })
        .map(|l| if l.len() > 300 { &l[..l.char_indices().nth(300).map_or(l.len(), |(i, _)| i)] } else { l })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn apply_creates_then_updates_with_the_advertised_patch_type() {
    let server = Server::start();
    let manifests = Manifests::new();
    let (v2_types, v3_types) = advertised_patch_types(&server);
    // Our server accepts strategic merge patch and says so in OpenAPI v3, which 1.29+ consult.
    assert!(v3_types.iter().any(|t| t == SMP), "OpenAPI v3 does not advertise {SMP} for PATCH of a Foo: {v3_types:?}");
    for_each_kubectl(|v| {
        // kubectl 1.27/1.28 decide from OpenAPI v2 (`consumes` of the PATCH operation), 1.29+
        // from OpenAPI v3; whichever lists strategic merge patch gets it, else merge patch.
        let old = matches!(v, "1.27" | "1.28");
        let consulted = if old { &v2_types } else { &v3_types };
        let expected = if consulted.iter().any(|t| t == SMP) { SMP } else { MERGE };

        let name = name_for("applied", v);
        let file = format!("{name}.yaml");
        let path = manifests.write(&file, &foo_manifest(&name, "applied-1", Some("w1")));
        let out = server.kubectl_ok(v, &["apply", "-f", &path]);
        assert_eq!(out.trim(), format!("foo.hello.zeng.dev/{name} created"), "first apply -f");
        let obj = stored(&server, v, &name);
        assert_eq!(obj["spec"], json!({"msg": "applied-1", "msg1": "w1"}), "{obj:#}");
        let last_applied = |obj: &Value| -> Value {
            let text = obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
                .as_str()
                .unwrap_or_else(|| panic!("no last-applied-configuration annotation: {obj:#}"));
            serde_json::from_str(text).unwrap_or_else(|e| panic!("last-applied-configuration is not JSON ({e}): {text}"))
        };
        assert_eq!(last_applied(&obj)["spec"], json!({"msg": "applied-1", "msg1": "w1"}), "{obj:#}");

        // Edit the manifest: change msg, drop msg1 (a three-way merge must delete it).
        manifests.write(&file, &foo_manifest(&name, "applied-2", None));
        let out = server.kubectl(v, &["apply", "-f", &path, "-v=8"]);
        assert!(out.status.success(), "{}", describe("kubectl apply -f (update) -v=8", &out));
        assert!(
            stdout(&out).contains(&format!("foo.hello.zeng.dev/{name} configured")),
            "second apply should print `configured`\n{}",
            describe("kubectl apply -f (update) -v=8", &out)
        );
        let sent = patch_content_types(&stderr(&out));
        assert_eq!(
            sent,
            [expected],
            "kubectl {v} should send exactly one PATCH, as {expected} (OpenAPI {} lists {consulted:?}); it sent {sent:?}\n--- requests in the -v=8 log ---\n{}",
            if old { "v2" } else { "v3" },
            request_lines(&stderr(&out))
        );
        println!("kubectl {v}: client-side apply update sent {}", sent[0]);
        let updated = stored(&server, v, &name);
        assert_eq!(updated["spec"], json!({"msg": "applied-2"}), "after the second apply: {updated:#}");
        assert_eq!(last_applied(&updated)["spec"], json!({"msg": "applied-2"}), "{updated:#}");
        assert_eq!(generation(&updated), 2, "a spec change bumps generation: {updated:#}");
        assert_eq!(updated["metadata"]["uid"], obj["metadata"]["uid"], "apply must update in place");

        // Applying the same manifest again changes nothing.
        let out = server.kubectl_ok(v, &["apply", "-f", &path]);
        assert_eq!(out.trim(), format!("foo.hello.zeng.dev/{name} unchanged"), "third apply -f (no edits)");
        let again = stored(&server, v, &name);
        assert_eq!(rv(&again), rv(&updated), "an unchanged apply must not write: {again:#}");
    });
}

#[test]
fn patch_json_merge_and_strategic() {
    let server = Server::start();
    let manifests = Manifests::new();
    for_each_kubectl(|v| {
        let name = name_for("patched", v);
        let path = manifests.write(&format!("{name}.yaml"), &foo_manifest(&name, "orig", Some("orig1")));
        server.kubectl_ok(v, &["create", "-f", &path]);
        let mut previous = stored(&server, v, &name);

        let steps: [(&str, &str, Value); 4] = [
            ("json", r#"[{"op":"replace","path":"/spec/msg","value":"json-patched"}]"#, json!({"msg": "json-patched", "msg1": "orig1"})),
            ("merge", r#"{"spec":{"msg1":"merge-patched"}}"#, json!({"msg": "json-patched", "msg1": "merge-patched"})),
            ("strategic", r#"{"spec":{"msg":"strategic-patched"}}"#, json!({"msg": "strategic-patched", "msg1": "merge-patched"})),
            ("merge", r#"{"spec":{"msg1":null}}"#, json!({"msg": "strategic-patched"})),
        ];
        for (kind, patch, expected) in steps {
            let out = server.kubectl_ok(v, &["patch", "fo", &name, "--type", kind, "-p", patch]);
            assert_eq!(out.trim(), format!("foo.hello.zeng.dev/{name} patched"), "patch --type {kind} -p {patch}");
            let obj = stored(&server, v, &name);
            assert_eq!(obj["spec"], expected, "after patch --type {kind} -p {patch}: {obj:#}");
            assert_ne!(rv(&obj), rv(&previous), "patch --type {kind} did not change resourceVersion: {obj:#}");
            assert_eq!(
                generation(&obj),
                generation(&previous) + 1,
                "patch --type {kind} changed spec, generation must go up by one: {obj:#}"
            );
            assert_eq!(obj["metadata"]["uid"], previous["metadata"]["uid"]);
            previous = obj;
        }

        // A JSON patch whose `test` fails is rejected and changes nothing.
        let out = server.kubectl_err(
            v,
            &[
                "patch",
                "fo",
                &name,
                "--type",
                "json",
                "-p",
                r#"[{"op":"test","path":"/spec/msg","value":"nope"},{"op":"replace","path":"/spec/msg","value":"bad"}]"#,
            ],
        );
        assert!(!stderr(&out).trim().is_empty(), "{}", describe("kubectl patch --type json (failing test op)", &out));
        assert_eq!(stored(&server, v, &name), previous, "a failed JSON patch changed the object");
    });
}

#[test]
fn replace_overwrites_the_object() {
    let server = Server::start();
    let manifests = Manifests::new();
    for_each_kubectl(|v| {
        let name = name_for("replaced", v);
        let path = manifests.write(&format!("{name}.yaml"), &foo_manifest(&name, "before", Some("gone-after-replace")));
        server.kubectl_ok(v, &["create", "-f", &path]);
        let before = stored(&server, v, &name);

        manifests.write(&format!("{name}.yaml"), &foo_manifest(&name, "after-replace", None));
        let out = server.kubectl_ok(v, &["replace", "-f", &path]);
        assert_eq!(out.trim(), format!("foo.hello.zeng.dev/{name} replaced"), "replace -f output");
        let after = stored(&server, v, &name);
        assert_eq!(after["spec"], json!({"msg": "after-replace"}), "replace writes the whole spec: {after:#}");
        assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"], "replace keeps the uid");
        assert_eq!(after["metadata"]["creationTimestamp"], before["metadata"]["creationTimestamp"], "replace keeps creationTimestamp");
        assert_eq!(generation(&after), 2, "{after:#}");
        assert_ne!(rv(&after), rv(&before));

        // Replacing something that does not exist is NotFound.
        let absent = name_for("never-created", v);
        let absent_path = manifests.write(&format!("{absent}.yaml"), &foo_manifest(&absent, "x", None));
        let out = server.kubectl_err(v, &["replace", "-f", &absent_path]);
        assert!(
            stderr(&out).contains("(NotFound)") && stderr(&out).contains(&format!("foos.hello.zeng.dev \"{absent}\" not found")),
            "{}",
            describe("kubectl replace -f (absent object)", &out)
        );
        assert_not_found(&server, v, &absent);
    });
}

#[test]
fn delete_removes_the_object() {
    let server = Server::start();
    let manifests = Manifests::new();
    for_each_kubectl(|v| {
        let name = name_for("deleted", v);
        let path = manifests.write(&format!("{name}.yaml"), &foo_manifest(&name, "bye", None));
        server.kubectl_ok(v, &["create", "-f", &path]);
        stored(&server, v, &name);

        let out = server.kubectl_ok(v, &["delete", "fo", &name]);
        assert!(out.contains(&format!("foo.hello.zeng.dev \"{name}\" deleted")), "delete output:\n{out}");
        assert_not_found(&server, v, &name);
        let list = server.kubectl(v, &["get", "fo"]);
        assert!(list.status.success() && !stdout(&list).contains(&name), "{}", describe("kubectl get fo (after delete)", &list));

        let out = server.kubectl_err(v, &["delete", "fo", &name]);
        assert!(
            stderr(&out).contains(&format!("Error from server (NotFound): foos.hello.zeng.dev \"{name}\" not found")),
            "{}",
            describe("kubectl delete fo (already deleted)", &out)
        );
    });
}

#[test]
fn explain_shows_the_schema() {
    let server = Server::start();
    for_each_kubectl(|v| {
        let out = server.kubectl_ok(v, &["explain", "fo.spec"]);
        let lines: Vec<&str> = out.lines().collect();
        for (field, description) in [("msg", "Msg says hello world!"), ("msg1", "Msg1 provides verbose information")] {
            let at = lines
                .iter()
                .position(|l| {
                    let mut words = l.split_whitespace();
                    words.next() == Some(field) && words.next() == Some("<string>")
                })
                .unwrap_or_else(|| panic!("`explain fo.spec` has no `{field} <string>` line:\n{out}"));
            assert!(
                lines.get(at + 1).is_some_and(|l| l.trim() == description),
                "`explain fo.spec`: the line after `{field}` should be its description {description:?}:\n{out}"
            );
        }

        let out = server.kubectl_ok(v, &["explain", "foos"]);
        assert!(out.lines().any(|l| l.split_whitespace().eq(["KIND:", "Foo"])), "`explain foos` lacks `KIND: Foo`:\n{out}");
        assert!(out.lines().any(|l| l.split_whitespace().eq(["VERSION:", "v1"])), "`explain foos` lacks `VERSION: v1`:\n{out}");
        assert!(out.contains("spec"), "`explain foos` lacks the spec field:\n{out}");
    });
}

#[test]
fn diff_is_a_dry_run() {
    let server = Server::start();
    let manifests = Manifests::new();
    for_each_kubectl(|v| {
        let name = name_for("diffed", v);
        let base = manifests.write(&format!("{name}.yaml"), &foo_manifest(&name, "before-diff", Some("kept")));
        server.kubectl_ok(v, &["apply", "-f", &base]);
        let before = stored(&server, v, &name);

        // Same manifest: no differences, exit 0.
        let out = server.kubectl(v, &["diff", "-f", &base]);
        assert!(
            out.status.code() == Some(0) && stdout(&out).trim().is_empty(),
            "diff against the applied manifest should print nothing and exit 0\n{}",
            describe("kubectl diff -f (unchanged)", &out)
        );

        // Changed manifest: a diff, exit 1, nothing stored.
        let changed = manifests.write(&format!("{name}-changed.yaml"), &foo_manifest(&name, "after-diff", Some("kept")));
        let out = server.kubectl(v, &["diff", "-f", &changed]);
        let shown = describe("kubectl diff -f (changed)", &out);
        assert_eq!(out.status.code(), Some(1), "diff with differences exits 1\n{shown}");
        let text = stdout(&out);
        assert!(text.lines().any(|l| l == "-  msg: before-diff"), "diff lacks `-  msg: before-diff`\n{shown}");
        assert!(text.lines().any(|l| l == "+  msg: after-diff"), "diff lacks `+  msg: after-diff`\n{shown}");
        let changed_lines =
            text.lines().filter(|l| (l.starts_with('-') || l.starts_with('+')) && !l.starts_with("---") && !l.starts_with("+++"));
        assert!(!changed_lines.clone().any(|l| l.contains("msg1")), "diff shows the unchanged msg1 as changed\n{shown}");
        let after = stored(&server, v, &name);
        assert_eq!(after, before, "kubectl diff changed the stored object (dryRun=All not honoured on PATCH)");

        // A new object: a diff, exit 1, nothing created.
        let fresh = name_for("diffed-new", v);
        let fresh_path = manifests.write(&format!("{fresh}.yaml"), &foo_manifest(&fresh, "new", None));
        let out = server.kubectl(v, &["diff", "-f", &fresh_path]);
        let shown = describe("kubectl diff -f (new object)", &out);
        assert_eq!(out.status.code(), Some(1), "diff of a new object exits 1\n{shown}");
        assert!(stdout(&out).lines().any(|l| l == format!("+  name: {fresh}")), "diff lacks `+  name: {fresh}`\n{shown}");
        assert_not_found(&server, v, &fresh);
    });
}

#[test]
fn get_watch_shows_modifications() {
    let server = Server::start();
    let manifests = Manifests::new();
    for_each_kubectl(|v| {
        let name = name_for("watched", v);
        let path = manifests.write(&format!("{name}.yaml"), &foo_manifest(&name, "unwatched", None));
        server.kubectl_ok(v, &["create", "-f", &path]);

        let mut watch = server.kubectl_spawn(v, &["get", "fo", &name, "-w", "--output-watch-events"]);
        let added =
            watch.wait_for_line(Duration::from_secs(30), |l| l.split_whitespace().take(3).eq(["ADDED", name.as_str(), "unwatched"]));
        assert!(added.is_some(), "no `ADDED {name} unwatched` line within 30s\n{}", watch.describe());

        // kubectl prints ADDED from its GET before the watch request is under way, and drops the
        // first watch event; a change made in that window is (correctly) not shown as MODIFIED.
        // So change the object until a MODIFIED line appears, each time with a new value.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut attempt = 0;
        let modified = loop {
            attempt += 1;
            let value = format!("watched-{attempt}");
            server.kubectl_ok(v, &["patch", "fo", &name, "--type", "merge", "-p", &format!(r#"{{"spec":{{"msg":"{value}"}}}}"#)]);
            let wait = if attempt == 1 { Duration::from_secs(5) } else { Duration::from_secs(3) };
            let seen = watch.wait_for_line(wait, |l| {
                let cells: Vec<&str> = l.split_whitespace().collect();
                cells.len() >= 3 && cells[0] == "MODIFIED" && cells[1] == name && cells[2].starts_with("watched-")
            });
            if let Some(line) = seen {
                break line;
            }
            assert!(!watch.has_exited(), "the watch exited early\n{}", watch.describe());
            assert!(Instant::now() < deadline, "no MODIFIED line after {attempt} changes in 60s\n{}", watch.describe());
        };
        let cells: Vec<&str> = modified.split_whitespace().collect();
        let shown: u32 = cells[2].trim_start_matches("watched-").parse().unwrap_or(0);
        assert!(
            (1..=attempt).contains(&shown) && looks_like_age(cells.get(3).copied().unwrap_or_default()),
            "MODIFIED line {modified:?} does not show a value we set (watched-1..watched-{attempt}) and an age\n{}",
            watch.describe()
        );
        println!("kubectl {v}: watch showed {modified:?} after {attempt} change(s)");
        let lines = watch.lines();
        assert!(
            lines.first().is_some_and(|h| h.split_whitespace().eq(["EVENT", "NAME", "MESSAGE", "AGE"])),
            "watch output should start with the header `EVENT NAME MESSAGE AGE`\n{}",
            watch.describe()
        );
        watch.kill();
    });
}

#[test]
fn chunked_lists_show_every_object() {
    let server = Server::start();
    let manifests = Manifests::new();
    // Ten objects in their own namespace, so the list holds exactly these.
    let mut all = String::new();
    for i in 0..10 {
        all.push_str(
            &foo_manifest(&format!("chunk-{i}"), &format!("m{i}"), None).replace("metadata:\n", "metadata:\n  namespace: chunks\n"),
        );
        all.push_str("---\n");
    }
    let path = manifests.write("chunks.yaml", &all);
    server.kubectl_ok(KUBECTL_VERSIONS[KUBECTL_VERSIONS.len() - 1], &["create", "-f", &path]);
    for_each_kubectl(|v| {
        let out = server.kubectl(v, &["get", "fo", "-n", "chunks", "--chunk-size=2", "-v=6"]);
        assert!(out.status.success(), "{}", describe("kubectl get --chunk-size=2", &out));
        let table = Table::parse(&stdout(&out));
        let names: Vec<&str> = table.rows.iter().map(|r| r[0].as_str()).collect();
        let want: Vec<String> = (0..10).map(|i| format!("chunk-{i}")).collect();
        assert_eq!(names, want, "{}", describe("kubectl get --chunk-size=2", &out));
        // The pages were really fetched two at a time, following continue tokens.
        let requests = stderr(&out).lines().filter(|l| l.contains("limit=2")).count();
        assert!(requests >= 5, "expected 5+ paged requests, saw {requests}\n{}", describe("kubectl get --chunk-size=2 -v=6", &out));
        assert!(stderr(&out).contains("continue="), "{}", describe("kubectl get --chunk-size=2 -v=6", &out));
    });
}

#[test]
fn server_side_apply_with_conflicts_and_migration() {
    let server = Server::start();
    let manifests = Manifests::new();
    for_each_kubectl(|v| {
        let name = name_for("ssa", v);
        let path = manifests.write(&format!("{name}.yaml"), &foo_manifest(&name, "one", Some("x")));
        let out = server.kubectl_ok(v, &["apply", "--server-side", "-f", &path]);
        assert_eq!(out.trim(), format!("foo.hello.zeng.dev/{name} serverside-applied"));
        let out = server.kubectl_ok(v, &["get", "fo", &name, "-o", "json", "--show-managed-fields"]);
        let obj: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("invalid JSON ({e}): {out}"));
        let managers: Vec<(String, String)> = obj["metadata"]["managedFields"]
            .as_array()
            .unwrap_or_else(|| panic!("no managedFields: {obj:#}"))
            .iter()
            .map(|m| (m["manager"].as_str().unwrap_or_default().to_string(), m["operation"].as_str().unwrap_or_default().to_string()))
            .collect();
        assert!(managers.contains(&("kubectl".into(), "Apply".into())), "{managers:?}");
        // Another manager takes msg; applying a different msg then conflicts …
        server.kubectl_ok(v, &["patch", "fo", &name, "--type=merge", "-p", r#"{"spec":{"msg":"theirs"}}"#]);
        let path = manifests.write(&format!("{name}.yaml"), &foo_manifest(&name, "mine", Some("x")));
        let out = server.kubectl(v, &["apply", "--server-side", "-f", &path]);
        assert!(!out.status.success() && stderr(&out).contains("conflict"), "{}", describe("apply --server-side (conflict)", &out));
        assert_eq!(stored(&server, v, &name)["spec"]["msg"], "theirs", "a conflicting apply changes nothing");
        // … until forced.
        let out = server.kubectl(v, &["apply", "--server-side", "--force-conflicts", "-f", &path]);
        assert!(out.status.success(), "{}", describe("apply --server-side --force-conflicts", &out));
        assert_eq!(stored(&server, v, &name)["spec"]["msg"], "mine");

        // Client-side apply, then server-side apply of the same manifest: no conflict.
        let migrated = name_for("ssa-migrate", v);
        let path = manifests.write(&format!("{migrated}.yaml"), &foo_manifest(&migrated, "csa", None));
        server.kubectl_ok(v, &["apply", "-f", &path]);
        let path = manifests.write(&format!("{migrated}.yaml"), &foo_manifest(&migrated, "ssa", None));
        let out = server.kubectl(v, &["apply", "--server-side", "-f", &path]);
        assert!(out.status.success(), "{}", describe("apply --server-side after client-side apply", &out));
        assert_eq!(stored(&server, v, &migrated)["spec"]["msg"], "ssa");
    });
}
