//! Versions that differ by more than `apiVersion`, converted by a `Conversion` document of the
//! spec (no webhook): the fixture's Gadget stores v1 (`spec.size`, `spec.image` as
//! `{repository, tag}`) and also serves v1beta1 (`spec.replicas`, a declarative field move, and
//! `spec.image` as one string, the `gadget_v1beta1` hook of its `conversions.rs`).

use e2e::{build_server, describe, for_each_kubectl, target_dir, workspace_root, BuildOptions, Manifests, Server, Table};
use serde_json::{json, Value};

const V1: &str = "/apis/other.example.com/v1/namespaces/default/gadgets";
const V1BETA1: &str = "/apis/other.example.com/v1beta1/namespaces/default/gadgets";

#[test]
fn gadget_versions_convert_both_ways() {
    let fixture = workspace_root().join("tests").join("fixtures").join("spec-with-bar");
    let binary = build_server(&BuildOptions { target_dir: Some(target_dir().join("fixture-bar")), spec_dir: Some(fixture) });
    let server = Server::start_binary(&binary);
    let manifests = Manifests::new();

    for_each_kubectl(|v| {
        let name = format!("beta-{}", v.replace('.', "-"));
        // Written in v1beta1 …
        let path = manifests.write(
            &format!("{name}.yaml"),
            &format!(
                "apiVersion: other.example.com/v1beta1\nkind: Gadget\nmetadata:\n  name: {name}\nspec:\n  replicas: 3\n  image: registry.example.com:5000/app:1.2\n"
            ),
        );
        server.kubectl_ok(v, &["apply", "-f", &path]);
        // … stored and read in v1, …
        let stored = server.get_raw_json(&format!("{V1}/{name}"));
        assert_eq!(stored["apiVersion"], "other.example.com/v1", "{stored:#}");
        assert_eq!(
            stored["spec"],
            json!({"size": 3, "image": {"repository": "registry.example.com:5000/app", "tag": "1.2"}}),
            "{stored:#}"
        );
        // … and read back in v1beta1 as written.
        let beta = server.get_raw_json(&format!("{V1BETA1}/{name}"));
        assert_eq!(beta["apiVersion"], "other.example.com/v1beta1", "{beta:#}");
        assert_eq!(beta["spec"], json!({"replicas": 3, "image": "registry.example.com:5000/app:1.2"}), "{beta:#}");
        assert_eq!(beta["metadata"]["uid"], stored["metadata"]["uid"]);
        // kubectl prints each version with its own columns.
        let out = server.kubectl_ok(v, &["get", "gadgets.v1beta1.other.example.com", &name]);
        let table = Table::parse(&out);
        assert_eq!(&table.header[..3], ["NAME", "REPLICAS", "IMAGE"], "{out}");
        assert_eq!(
            table.row_where("NAME", &name).map(|r| r[1..3].to_vec()),
            Some(vec!["3".into(), "registry.example.com:5000/app:1.2".into()]),
            "{out}"
        );
        let out = server.kubectl_ok(v, &["get", "gadgets.v1.other.example.com", &name]);
        let table = Table::parse(&out);
        assert_eq!(&table.header[..2], ["NAME", "SIZE"], "{out}");
        assert_eq!(table.row_where("NAME", &name).map(|r| r[1].clone()), Some("3".into()), "{out}");
        // A second apply in v1beta1 changes the stored v1 fields.
        std::fs::write(&path, std::fs::read_to_string(&path).unwrap().replace("replicas: 3", "replicas: 4")).unwrap();
        server.kubectl_ok(v, &["apply", "-f", &path]);
        assert_eq!(server.get_raw_json(&format!("{V1}/{name}"))["spec"]["size"], 4);
    });

    // Written in v1, read in v1beta1; a merge patch through v1beta1 lands in v1's field.
    let path = manifests.write(
        "stable.yaml",
        "apiVersion: other.example.com/v1\nkind: Gadget\nmetadata:\n  name: stable\nspec:\n  size: 2\n  image:\n    repository: app\n",
    );
    server.kubectl_ok("1.33", &["create", "-f", &path]);
    let beta = server.get_raw_json(&format!("{V1BETA1}/stable"));
    assert_eq!(beta["spec"], json!({"replicas": 2, "image": "app"}), "{beta:#}");
    server.kubectl_ok(
        "1.33",
        &["patch", "gadgets.v1beta1.other.example.com", "stable", "--type=merge", "-p", r#"{"spec":{"replicas":7,"image":"app:v2"}}"#],
    );
    let stored = server.get_raw_json(&format!("{V1}/stable"));
    assert_eq!(stored["spec"], json!({"size": 7, "image": {"repository": "app", "tag": "v2"}}), "{stored:#}");

    // Lists convert every item; server-side apply works in the converted version.
    let list = server.get_raw_json(V1BETA1);
    assert_eq!(list["apiVersion"], "other.example.com/v1beta1");
    let items = list["items"].as_array().unwrap();
    assert!(items.len() >= 2 && items.iter().all(|i| i["spec"].get("size").is_none() && i["spec"]["replicas"].is_number()), "{list:#}");
    let applied = manifests.write(
        "ssa.yaml",
        "apiVersion: other.example.com/v1beta1\nkind: Gadget\nmetadata:\n  name: ssa\nspec:\n  replicas: 1\n  image: app:x\n",
    );
    server.kubectl_ok("1.33", &["apply", "--server-side", "-f", &applied]);
    assert_eq!(server.get_raw_json(&format!("{V1}/ssa"))["spec"], json!({"size": 1, "image": {"repository": "app", "tag": "x"}}));

    // Each version validates with its own schema.
    let bad =
        manifests.write("bad.yaml", "apiVersion: other.example.com/v1beta1\nkind: Gadget\nmetadata:\n  name: bad\nspec:\n  replicas: -1\n");
    let out = server.kubectl("1.33", &["create", "-f", &bad]);
    assert!(!out.status.success(), "{}", describe("create with replicas -1", &out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"), "{stderr}");
    let value: Value = server.get_raw_json(&format!("{V1}/stable"));
    assert_eq!(value["spec"]["size"], 7, "a failed write changes nothing");
}
