//! The generated types as a typed client library: kube-rs `Api<Foo>` against the running server
//! for create, get, list, merge patch, server-side apply, watch (kube-runtime's watcher) and
//! delete.

use e2e::Server;
use futures::StreamExt;
use generated::hello_zeng_dev::v1::{Foo, FooSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Client, Config};
use serde_json::json;
use std::time::Duration;

async fn client(server: &Server) -> Client {
    let kubeconfig = Kubeconfig::read_from(server.kubeconfig()).expect("the server's kubeconfig parses");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.expect("a client config");
    Client::try_from(config).expect("a client")
}

fn foo(name: &str, msg: &str) -> Foo {
    Foo {
        metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
        spec: Some(FooSpec { msg: Some(msg.into()), msg1: None }),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kube_rs_api_with_generated_types() {
    let server = tokio::task::spawn_blocking(Server::start).await.unwrap();
    let foos: Api<Foo> = Api::namespaced(client(&server).await, "default");

    let created = foos.create(&PostParams::default(), &foo("typed", "hello")).await.expect("create");
    assert!(created.metadata.uid.is_some() && created.metadata.resource_version.is_some());
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(created.spec.as_ref().and_then(|s| s.msg.as_deref()), Some("hello"));

    let got = foos.get("typed").await.expect("get");
    assert_eq!(got.metadata.uid, created.metadata.uid);
    assert!(matches!(foos.get("missing").await, Err(kube::Error::Api(e)) if e.code == 404 && e.reason == "NotFound"));

    foos.create(&PostParams::default(), &foo("typed-2", "second")).await.expect("create a second");
    let list = foos.list(&ListParams::default()).await.expect("list");
    let names: Vec<_> = list.items.iter().filter_map(|f| f.metadata.name.clone()).collect();
    assert_eq!(names, ["typed", "typed-2"]);
    let one = foos.list(&ListParams::default().fields("metadata.name=typed-2")).await.expect("list by field");
    assert_eq!(one.items.len(), 1);

    // A watcher sees the patch that follows.
    let mut events = watcher(foos.clone(), watcher::Config::default().fields("metadata.name=typed")).boxed();
    let init_done = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = events.next().await {
            if matches!(event, Ok(watcher::Event::InitDone)) {
                return;
            }
        }
    });
    init_done.await.expect("the watcher lists and starts watching");

    let patched =
        foos.patch("typed", &PatchParams::default(), &Patch::Merge(json!({"spec": {"msg1": "merged"}}))).await.expect("merge patch");
    assert_eq!(patched.spec.as_ref().and_then(|s| s.msg1.as_deref()), Some("merged"));
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = events.next().await {
            if let Ok(watcher::Event::Apply(f)) = event {
                if f.spec.as_ref().and_then(|s| s.msg1.as_deref()) == Some("merged") {
                    return f;
                }
            }
        }
        panic!("watch ended");
    })
    .await
    .expect("the watcher sees the change");
    assert_eq!(seen.metadata.resource_version, patched.metadata.resource_version);

    // Server-side apply through the typed API: owned fields appear in managedFields.
    let applied = foos
        .patch(
            "applied",
            &PatchParams::apply("typed-client"),
            &Patch::Apply(
                json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"name": "applied"}, "spec": {"msg": "from apply"}}),
            ),
        )
        .await
        .expect("server-side apply creates");
    assert_eq!(applied.spec.as_ref().and_then(|s| s.msg.as_deref()), Some("from apply"));
    let managers: Vec<_> = applied.metadata.managed_fields.unwrap_or_default().into_iter().map(|m| (m.manager, m.operation)).collect();
    assert!(managers.contains(&(Some("typed-client".into()), Some("Apply".into()))), "{managers:?}");
    // Another manager changing the applied field without force conflicts.
    let conflict = foos
        .patch(
            "applied",
            &PatchParams::apply("other"),
            &Patch::Apply(
                json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"name": "applied"}, "spec": {"msg": "theirs"}}),
            ),
        )
        .await;
    assert!(matches!(conflict, Err(kube::Error::Api(e)) if e.code == 409), "a conflict");

    foos.delete("typed", &DeleteParams::default()).await.expect("delete");
    assert!(matches!(foos.get("typed").await, Err(kube::Error::Api(e)) if e.code == 404));
}
