"""Drives the running server with a Python client that openapi-generator generated from the
server's own OpenAPI v3 document (see tests/tests/openapi_clients.rs).

Usage: use_client.py <client dir> <kubeconfig>
Prints one line per step and exits non-zero at the first failure."""

import base64
import os
import sys
import tempfile

import yaml

client_dir, kubeconfig = sys.argv[1:3]
sys.path.insert(0, client_dir)

# The server's URL, CA and admin client certificate, from the kubeconfig it wrote.
with open(kubeconfig) as f:
    config_file = yaml.safe_load(f)
cluster = config_file["clusters"][0]["cluster"]
user = config_file["users"][0]["user"]
pems = tempfile.mkdtemp(prefix="openapi-client-")


def pem(name, data):
    path = os.path.join(pems, name)
    with open(path, "wb") as f:
        f.write(base64.b64decode(data))
    return path


url = cluster["server"]
ca = pem("ca.pem", cluster["certificate-authority-data"])
cert = pem("client.pem", user["client-certificate-data"])
key = pem("client-key.pem", user["client-key-data"])

import fooclient  # noqa: E402
from fooclient.api.hello_zeng_dev_v1_api import HelloZengDevV1Api  # noqa: E402
from fooclient.models.dev_zeng_hello_v1_foo import DevZengHelloV1Foo  # noqa: E402
from fooclient.models.dev_zeng_hello_v1_foo_spec import DevZengHelloV1FooSpec  # noqa: E402
from fooclient.models.io_k8s_apimachinery_pkg_apis_meta_v1_object_meta import (  # noqa: E402
    IoK8sApimachineryPkgApisMetaV1ObjectMeta as ObjectMeta,
)

config = fooclient.Configuration(host=url, ssl_ca_cert=ca)
config.cert_file = cert
config.key_file = key
api = HelloZengDevV1Api(fooclient.ApiClient(config))


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}")
        sys.exit(1)
    print(f"ok: {what}")


foo = DevZengHelloV1Foo(
    api_version="hello.zeng.dev/v1",
    kind="Foo",
    metadata=ObjectMeta(name="generated-client", labels={"made-by": "openapi-generator"}),
    spec=DevZengHelloV1FooSpec(msg="hello", msg1="from a generated Python client"),
)
created = api.create_hello_zeng_dev_v1_namespaced_foo("default", foo)
check(created.metadata.uid and created.metadata.resource_version, "create returns a Foo with uid and resourceVersion")
check(created.spec.msg == "hello", "create keeps spec.msg")

got = api.read_hello_zeng_dev_v1_namespaced_foo("generated-client", "default")
check(got.metadata.uid == created.metadata.uid, "read returns the same object")

listed = api.list_hello_zeng_dev_v1_namespaced_foo("default", label_selector="made-by=openapi-generator")
check([f.metadata.name for f in listed.items] == ["generated-client"], "list with a label selector finds it")

got.spec.msg = "replaced"
replaced = api.replace_hello_zeng_dev_v1_namespaced_foo("generated-client", "default", got)
check(replaced.spec.msg == "replaced", "replace (PUT) changes spec.msg")

patched = api.patch_hello_zeng_dev_v1_namespaced_foo(
    "generated-client", "default", {"spec": {"msg1": "patched"}}, _content_type="application/merge-patch+json"
)
check(patched.spec.msg1 == "patched" and patched.spec.msg == "replaced", "merge patch changes spec.msg1 only")

try:
    api.read_hello_zeng_dev_v1_namespaced_foo("missing", "default")
    check(False, "reading a missing object fails")
except fooclient.ApiException as e:
    check(e.status == 404 and '"reason":"NotFound"' in e.body, "reading a missing object is a 404 NotFound Status")

status = api.delete_hello_zeng_dev_v1_namespaced_foo("generated-client", "default")
check(status.status == "Success" or status.kind == "Status", "delete answers a Status")
listed = api.list_hello_zeng_dev_v1_namespaced_foo("default")
check(all(f.metadata.name != "generated-client" for f in listed.items), "the object is gone")
print("all steps passed")
