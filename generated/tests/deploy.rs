//! `generated/deploy/` holds the deploy manifests codegen renders from the spec for the
//! default settings, without the per-installation TLS material (`apiserver manifests` adds the
//! serving Secret and the APIServices' caBundle). This test fails when the copy is stale;
//! refresh it with `UPDATE_GOLDEN=1 cargo test -p generated --test deploy`.

use codegen::generate::deploy::{render, DeploySettings};
use std::path::{Path, PathBuf};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

#[test]
fn committed_manifests_are_current() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let dir = deploy_dir();
    let manifests = render(generated::model(), &DeploySettings::default()).expect("the default settings render");
    if update {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
    }
    let mut stale = Vec::new();
    for (i, manifest) in manifests.iter().enumerate() {
        // Numbered, so `kubectl apply -f generated/deploy/` applies them in order.
        let path = dir.join(format!("{:02}-{}", i, manifest.file));
        if update {
            std::fs::write(&path, &manifest.text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(manifest.text.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    let expected = manifests.len();
    let present = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    if present != expected {
        stale.push(format!("{} holds {present} files, codegen renders {expected}", dir.display()));
    }
    assert!(stale.is_empty(), "generated/deploy is stale; run UPDATE_GOLDEN=1 cargo test -p generated --test deploy\n{}", stale.join("\n"));
}

#[test]
fn every_served_group_version_has_an_apiservice() {
    let manifests = render(generated::model(), &DeploySettings::default()).unwrap();
    let apiservices = &manifests.iter().find(|m| m.file == "apiservices.yaml").unwrap().text;
    for endpoint in generated::ENDPOINTS {
        let resource = endpoint.resource();
        let name = format!("name: {}.{}\n", endpoint.version, resource.group);
        assert!(apiservices.contains(&name), "no APIService {name:?} in\n{apiservices}");
    }
}
