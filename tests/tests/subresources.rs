//! Subresources, defaults, selectable fields, validation modes and dry-run, driven by every
//! kubectl version against a server built from `tests/fixtures/spec-with-bar/` (whose `Widget`
//! declares status and scale subresources).

use e2e::{build_server, describe, for_each_kubectl, target_dir, workspace_root, BuildOptions, Manifests, Server};
use serde_json::Value;

/// One server for all scenarios, stopped when the test ends (a `static` would outlive the test
/// process's cleanup and leave the server running).
#[test]
fn widget_scenarios() {
    let fixture = workspace_root().join("tests").join("fixtures").join("spec-with-bar");
    let binary = build_server(&BuildOptions { target_dir: Some(target_dir().join("fixture-bar")), spec_dir: Some(fixture) });
    let server = Server::start_binary(&binary);
    defaults_scale_and_status_with_every_kubectl(&server);
    validation_modes_and_server_dry_run_with_every_kubectl(&server);
    versions_share_objects_and_deprecated_ones_warn(&server);
}

fn get(server: &Server, v: &str, name: &str) -> Value {
    let out = server.kubectl_ok(v, &["get", "widget", name, "-o", "json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("invalid JSON ({e}): {out}"))
}

fn create(server: &Server, v: &str, manifests: &Manifests, name: &str, spec: &str) {
    let path = manifests.write(
        &format!("{name}.yaml"),
        &format!("apiVersion: other.example.com/v1\nkind: Widget\nmetadata:\n  name: {name}\nspec:{spec}\n"),
    );
    server.kubectl_ok(v, &["create", "-f", &path]);
}

fn defaults_scale_and_status_with_every_kubectl(server: &Server) {
    let manifests = Manifests::new();
    for_each_kubectl(|v| {
        let name = format!("w-{}", v.replace('.', "-"));
        // Defaults fill what the manifest leaves out.
        create(server, v, &manifests, &name, " {}");
        let w = get(server, v, &name);
        assert_eq!((w["spec"]["replicas"].as_i64(), w["spec"]["color"].as_str()), (Some(1), Some("green")), "defaults: {w:#}");

        // kubectl scale goes through /scale.
        let out = server.kubectl_ok(v, &["scale", "widget", &name, "--replicas=3"]);
        assert_eq!(out.trim(), format!("widget.other.example.com/{name} scaled"));
        let w = get(server, v, &name);
        assert_eq!(w["spec"]["replicas"], 3, "{w:#}");
        assert_eq!(w["metadata"]["generation"], 2, "scaling changes the spec: {w:#}");
        let scale: Value = server.get_raw_json(&format!("/apis/other.example.com/v1/namespaces/default/widgets/{name}/scale"));
        assert_eq!(
            (scale["kind"].as_str(), scale["apiVersion"].as_str(), scale["spec"]["replicas"].as_i64()),
            (Some("Scale"), Some("autoscaling/v1"), Some(3)),
            "{scale:#}"
        );

        // Status writes go through /status and leave the spec and generation alone.
        let out = server.kubectl(
            v,
            &[
                "patch",
                "widget",
                &name,
                "--subresource=status",
                "--type=merge",
                "-p",
                r#"{"status":{"replicas":3,"ready":true,"selector":"app=w"},"spec":{"color":"red"}}"#,
            ],
        );
        assert!(out.status.success(), "{}", describe("patch --subresource=status", &out));
        let w = get(server, v, &name);
        assert_eq!(
            (w["status"]["ready"].as_bool(), w["spec"]["color"].as_str()),
            (Some(true), Some("green")),
            "a status write changes only status: {w:#}"
        );
        assert_eq!(w["metadata"]["generation"], 2, "{w:#}");
        let scale: Value = server.get_raw_json(&format!("/apis/other.example.com/v1/namespaces/default/widgets/{name}/scale"));
        assert_eq!((scale["status"]["replicas"].as_i64(), scale["status"]["selector"].as_str()), (Some(3), Some("app=w")), "{scale:#}");

        // Writes to the main resource ignore status.
        server.kubectl_ok(v, &["patch", "widget", &name, "--type=merge", "-p", r#"{"status":{"ready":false},"spec":{"color":"blue"}}"#]);
        let w = get(server, v, &name);
        assert_eq!((w["status"]["ready"].as_bool(), w["spec"]["color"].as_str()), (Some(true), Some("blue")), "{w:#}");
        assert_eq!(w["metadata"]["generation"], 3, "{w:#}");

        // The spec's selectable field works as a field selector; others are refused.
        let out = server.kubectl_ok(v, &["get", "widgets", "--field-selector", "spec.color=blue", "-o", "name"]);
        assert!(out.lines().any(|l| l == format!("widget.other.example.com/{name}")), "{out}");
        let out = server.kubectl(v, &["get", "widgets", "--field-selector", "spec.replicas=3"]);
        assert!(
            !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("field label not supported: spec.replicas"),
            "{}",
            describe("get --field-selector spec.replicas", &out)
        );

        // x-kubernetes-validations: a plain rule, and a transition rule with oldSelf.
        let out = server.kubectl(v, &["scale", "widget", &name, "--replicas=11"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("spec: Invalid value: \"object\": a widget runs at most 10 replicas"),
            "{}",
            describe("scale --replicas=11", &out)
        );
        let out = server.kubectl(v, &["patch", "widget", &name, "--type=merge", "-p", r#"{"spec":{"color":"red"}}"#]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains("cannot turn blue into red"), "{}", describe("patch color=red", &out));
        assert_eq!(get(server, v, &name)["spec"]["color"], "blue", "a rejected write changes nothing");

        // An enum violation is a 422 with kube's wording.
        let out = server.kubectl(v, &["patch", "widget", &name, "--type=merge", "-p", r#"{"spec":{"color":"purple"}}"#]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success()
                && stderr.contains(r#"spec.color: Unsupported value: "purple": supported values: "red", "green", "blue""#),
            "{}",
            describe("patch color=purple", &out)
        );
    });
}

fn validation_modes_and_server_dry_run_with_every_kubectl(server: &Server) {
    let manifests = Manifests::new();
    for_each_kubectl(|v| {
        let name = format!("val-{}", v.replace('.', "-"));
        let path = manifests.write(
            &format!("{name}.yaml"),
            &format!("apiVersion: other.example.com/v1\nkind: Widget\nmetadata:\n  name: {name}\nspec:\n  replicas: 2\n  bogus: 1\n"),
        );
        // Strict: refused, naming the field; nothing stored.
        let out = server.kubectl(v, &["create", "--validate=strict", "-f", &path]);
        assert!(
            !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("unknown field \"spec.bogus\""),
            "{}",
            describe("create --validate=strict", &out)
        );
        assert!(!server.kubectl(v, &["get", "widget", &name]).status.success(), "strict validation stored the object");
        // Server-side dry run: validated and answered, not stored.
        let out = server.kubectl(v, &["apply", "--dry-run=server", "--validate=false", "-f", &path]);
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("(server dry run)"),
            "{}",
            describe("apply --dry-run=server", &out)
        );
        assert!(!server.kubectl(v, &["get", "widget", &name]).status.success(), "dry run stored the object");
        // Warn: stored, pruned, with a warning naming the field.
        let out = server.kubectl(v, &["create", "--validate=warn", "-f", &path]);
        assert!(out.status.success(), "{}", describe("create --validate=warn", &out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("unknown field \"spec.bogus\""),
            "{}",
            describe("create --validate=warn", &out)
        );
        let w = get(server, v, &name);
        assert!(w["spec"].get("bogus").is_none() && w["spec"]["replicas"] == 2, "pruned: {w:#}");
        // Ignore: silently pruned.
        server.kubectl_ok(v, &["delete", "widget", &name]);
        let out = server.kubectl(v, &["create", "--validate=false", "-f", &path]);
        assert!(
            out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("unknown field"),
            "{}",
            describe("create --validate=false", &out)
        );
    });
}

fn versions_share_objects_and_deprecated_ones_warn(server: &Server) {
    let manifests = Manifests::new();
    let v = e2e::NEWEST_KUBECTL;
    let path = manifests
        .write("old.yaml", "apiVersion: other.example.com/v1beta1\nkind: Widget\nmetadata:\n  name: from-beta\nspec:\n  replicas: 4\n");
    let out = server.kubectl(v, &["create", "-f", &path]);
    assert!(out.status.success(), "{}", describe("create v1beta1", &out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Warning: other.example.com/v1beta1 Widget is deprecated; use other.example.com/v1 Widget"),
        "{}",
        describe("create v1beta1", &out)
    );
    // Written through v1beta1, read through v1 (the storage version) and back.
    let via_v1 = server.get_raw_json("/apis/other.example.com/v1/namespaces/default/widgets/from-beta");
    assert_eq!((via_v1["apiVersion"].as_str(), via_v1["spec"]["replicas"].as_i64()), (Some("other.example.com/v1"), Some(4)), "{via_v1:#}");
    let via_beta = server.get_raw_json("/apis/other.example.com/v1beta1/namespaces/default/widgets/from-beta");
    assert_eq!(via_beta["apiVersion"], "other.example.com/v1beta1", "{via_beta:#}");
    assert_eq!(via_beta["metadata"]["uid"], via_v1["metadata"]["uid"]);
    // Discovery prefers v1.
    let group = server.get_raw_json("/apis/other.example.com");
    assert_eq!(group["preferredVersion"]["version"], "v1", "{group:#}");
}
