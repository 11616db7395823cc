"""The rendered manifests, for every engine x provider x HPA combination, pin what users rely on."""

import base64
import json
import shutil

import pytest
import yaml
from ansible_support import (
    BIN,
    COMBINATIONS,
    ROLES_DIR,
    admits,
    find,
    load_documents_of,
    one,
    pod_specs,
    reaches,
    selects,
    validate_strictly,
)

NAMES = [combo["name"] for combo in COMBINATIONS]
BY_NAME = {combo["name"]: combo for combo in COMBINATIONS}


@pytest.fixture(params=NAMES)
def combo(request, manifests):
    return BY_NAME[request.param], manifests[request.param]


def test_every_combination_is_rendered(manifests):
    for name, documents in manifests.items():
        kinds = {doc["kind"] for doc in documents}
        assert {"Deployment", "StatefulSet", "Service", "Secret", "Job"} <= kinds, name


def test_every_manifest_passes_strict_schema_validation_for_kubernetes_1_34(rendered_root):
    files = sorted(str(path) for path in rendered_root.glob("*/*.yaml"))
    assert len(files) == 2 * len(COMBINATIONS)
    result = validate_strictly(files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_rejects_an_unknown_field(rendered_root, tmp_path):
    documents = list(yaml.safe_load_all((rendered_root / NAMES[0] / "flaskapp.yaml").read_text()))
    deployment = next(doc for doc in documents if doc and doc["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["bogusField"] = True
    path = tmp_path / "bogus.yaml"
    path.write_text(yaml.safe_dump(deployment))
    assert validate_strictly([path]).returncode != 0


def test_database_is_behind_the_headless_service_mongodb_service(combo):
    _, documents = combo
    service = one(documents, "Service", "mongodb-service")
    assert service["spec"]["clusterIP"] == "None"
    assert [port["port"] for port in service["spec"]["ports"]] == [27017]
    statefulset = one(documents, "StatefulSet", "mongodb")
    assert statefulset["spec"]["serviceName"] == "mongodb-service"
    assert (
        statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
        == "1Gi"
    )


def test_flask_is_reachable_through_the_nodeport_service_flask_service(combo):
    _, documents = combo
    service = one(documents, "Service", "flask-service")
    assert service["spec"]["type"] == "NodePort"
    (port,) = service["spec"]["ports"]
    assert (port["port"], port["targetPort"], port["nodePort"]) == (80, "http", 30080)
    deployment = one(documents, "Deployment", "flask-app")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in container["ports"]


def test_flask_requests_and_limits_are_200m_250mi_and_500m_500mi(combo):
    _, documents = combo
    container = one(documents, "Deployment", "flask-app")["spec"]["template"]["spec"]["containers"][
        0
    ]
    assert container["resources"] == {
        "requests": {"cpu": "200m", "memory": "250Mi"},
        "limits": {"cpu": "500m", "memory": "500Mi"},
    }


def test_hpa_scales_flask_between_2_and_5_replicas_at_70_percent_cpu(combo):
    settings, documents = combo
    hpas = find(documents, "HorizontalPodAutoscaler")
    if not settings["hpa"]:
        assert hpas == []
        return
    (hpa,) = hpas
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "flask-app",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}


def test_deployment_has_no_replicas_while_the_hpa_owns_them(combo):
    settings, documents = combo
    spec = one(documents, "Deployment", "flask-app")["spec"]
    if settings["hpa"]:
        assert "replicas" not in spec
    else:
        assert spec["replicas"] == 2


def test_credentials_reach_pods_only_through_secret_key_refs(combo, vault):
    _, documents = combo
    for where, spec in pod_specs(documents):
        for container in spec["containers"]:
            for env in container.get("env", []):
                if any(word in env["name"] for word in ("USER", "PASS")):
                    ref = env.get("valueFrom", {}).get("secretKeyRef")
                    assert ref, f"{where}: {env['name']}"
                    assert ref["name"] == "mongodb-credentials", f"{where}: {env['name']}"
                    assert "value" not in env
    secret_values = [value for key, value in vault.values.items() if "password" in key]
    encoded = [base64.b64encode(value.encode()).decode() for value in secret_values]
    for doc in documents:
        if doc["kind"] == "Secret":
            continue
        text = json.dumps(doc)
        for value in secret_values + encoded:
            assert value not in text, (
                f"a credential appears in {doc['kind']}/{doc['metadata']['name']}"
            )


def test_secret_uses_data_with_the_four_contract_keys(combo):
    _, documents = combo
    secret = one(documents, "Secret", "mongodb-credentials")
    assert "stringData" not in secret
    assert set(secret["data"]) == {"root-username", "root-password", "app-username", "app-password"}


def test_long_running_containers_have_liveness_and_readiness_probes(combo):
    _, documents = combo
    for where, spec in pod_specs(documents):
        if where.startswith("Job/"):
            continue
        for container in spec["containers"]:
            assert "livenessProbe" in container, where
            assert "readinessProbe" in container, where
    flask = one(documents, "Deployment", "flask-app")["spec"]["template"]["spec"]["containers"][0]
    assert flask["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert flask["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_every_pod_runs_non_root_read_only_without_privileges(combo):
    _, documents = combo
    for where, spec in pod_specs(documents):
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert container["imagePullPolicy"] == "IfNotPresent", where
            assert "/tmp" in [mount["mountPath"] for mount in container["volumeMounts"]], where


def test_flask_pods_carry_the_credentials_checksum(combo):
    _, documents = combo
    template = one(documents, "Deployment", "flask-app")["spec"]["template"]
    checksum = template["metadata"]["annotations"]["checksum/credentials"]
    assert len(checksum) == 64
    job = one(documents, "Job")
    assert job["metadata"]["annotations"]["checksum/credentials"] == checksum


def test_provisioning_job_runs_the_flask_image_with_the_provision_module(combo):
    settings, documents = combo
    job = one(documents, "Job")
    assert job["metadata"]["name"].startswith("mongodb-provision-")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "flaskapp.provision"]
    assert container["image"].endswith("flask-k8s/flaskapp:0123456789ab")
    flask = one(documents, "Deployment", "flask-app")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == flask["image"]
    if settings["provider"] == "existing":
        assert flask["image"].startswith("registry.example.com:5000/")


def pod_labels(documents: list, kind: str) -> dict:
    return one(documents, kind)["spec"]["template"]["metadata"]["labels"]


def test_the_database_admits_pods_by_the_client_label_it_publishes(combo):
    _, documents = combo
    policy = one(documents, "NetworkPolicy", "mongodb")
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 27017}]
    selectors = [peer["podSelector"]["matchLabels"] for peer in rule["from"]]
    assert {"flask-k8s.io/mongodb-client": "true"} in selectors
    assert pod_labels(documents, "Deployment")["flask-k8s.io/mongodb-client"] == "true"


def test_network_policies_admit_exactly_the_paths_the_service_needs(combo):
    _, documents = combo
    policies = find(documents, "NetworkPolicy")
    database = pod_labels(documents, "StatefulSet")
    flask = pod_labels(documents, "Deployment")
    provisioner = pod_labels(documents, "Job")
    stranger = {"app.kubernetes.io/name": "debug-shell"}
    # The Flask pods' name label alone does not open the database: the client label does.
    named_like_flask = {"app.kubernetes.io/name": "flask-app", "app.kubernetes.io/instance": "x"}
    assert admits(policies, database, flask, 27017)
    assert admits(policies, database, provisioner, 27017)
    assert not admits(policies, database, stranger, 27017)
    assert not admits(policies, database, named_like_flask, 27017)
    assert not admits(policies, database, flask, 8088)
    assert admits(policies, flask, stranger, 8000)
    assert not admits(policies, flask, stranger, 9000)
    assert not admits(policies, provisioner, stranger, 8000)


def test_a_default_deny_policy_covers_every_pod_of_the_namespace(combo):
    _, documents = combo
    deny = one(documents, "NetworkPolicy", "default-deny-ingress")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert deny["metadata"]["namespace"] == one(documents, "Namespace")["metadata"]["name"]


def test_flask_port_is_open_to_all_sources_for_nodeport_traffic(combo):
    _, documents = combo
    policy = one(documents, "NetworkPolicy", "flask-app")
    assert selects(policy["spec"]["podSelector"], pod_labels(documents, "Deployment"))
    assert policy["spec"]["ingress"][0] == {"ports": [{"protocol": "TCP", "port": 8000}]}


SCRAPER = {"flask-k8s.io/metrics-scraper": "true"}


def test_metrics_are_served_on_their_own_port_outside_the_nodeport_service(combo):
    _, documents = combo
    container = one(documents, "Deployment", "flask-app")["spec"]["template"]["spec"]["containers"][
        0
    ]
    assert {"name": "metrics", "containerPort": 9100, "protocol": "TCP"} in container["ports"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["APP_METRICS_PORT"] == "9100"
    for service in find(documents, "Service"):
        for port in service["spec"]["ports"]:
            assert port["port"] != 9100, service["metadata"]["name"]
            assert port["targetPort"] not in (9100, "metrics"), service["metadata"]["name"]


def test_only_pods_labelled_as_metrics_scrapers_reach_the_metrics_port(combo):
    _, documents = combo
    policies = find(documents, "NetworkPolicy")
    flask = pod_labels(documents, "Deployment")
    database = pod_labels(documents, "StatefulSet")
    stranger = {"app.kubernetes.io/name": "debug-shell"}
    scraper = {"app.kubernetes.io/name": "prometheus", **SCRAPER}
    assert admits(policies, flask, scraper, 9100)
    assert not admits(policies, flask, stranger, 9100)
    assert not admits(policies, flask, flask, 9100)
    # The label opens the metrics port and nothing else.
    assert not admits(policies, database, scraper, 27017)
    assert not admits(policies, flask, scraper, 9000)
    (rule,) = [
        rule
        for rule in one(documents, "NetworkPolicy", "flask-app")["spec"]["ingress"]
        if rule.get("from")
    ]
    assert rule == {
        "from": [{"podSelector": {"matchLabels": SCRAPER}}],
        "ports": [{"protocol": "TCP", "port": 9100}],
    }


def test_only_the_database_role_creates_the_namespace(rendered_root):
    for name in NAMES:
        flask_kinds = {doc["kind"] for doc in load_documents_of(rendered_root / name, "flaskapp")}
        assert "Namespace" not in flask_kinds, name
        (namespace,) = find(load_documents_of(rendered_root / name, "mongodb"), "Namespace")
        assert namespace["metadata"]["name"] == "flask-mongodb", name


def test_every_object_lives_in_the_namespace_flask_mongodb(combo):
    _, documents = combo
    namespaced = [doc for doc in documents if doc["kind"] != "Namespace"]
    assert {doc["metadata"]["namespace"] for doc in namespaced} == {"flask-mongodb"}


def test_a_rollout_goes_on_when_the_node_has_no_room_for_a_new_pod(combo):
    """Two replicas or more: one old pod may go first. The HPA's minimum is 2 in every combo
    of the matrix; without the HPA the Deployment runs flaskapp_replicas (2 by default)."""
    _, documents = combo
    (deployment,) = find(documents, "Deployment")
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 1}


def test_flask_keeps_a_replica_through_a_drain_and_the_database_blocks_none(combo):
    _, documents = combo
    (pdb,) = find(documents, "PodDisruptionBudget")
    assert pdb["metadata"]["name"] == "flask-app"
    assert pdb["spec"]["maxUnavailable"] == 1
    assert "minAvailable" not in pdb["spec"]
    assert selects(pdb["spec"]["selector"], pod_labels(documents, "Deployment"))
    assert not selects(pdb["spec"]["selector"], pod_labels(documents, "StatefulSet"))


def test_flask_pods_serve_10_seconds_after_termination_starts(combo):
    _, documents = combo
    spec = one(documents, "Deployment", "flask-app")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 10}}}
    assert spec["terminationGracePeriodSeconds"] == 40


def test_engine_decides_the_database_container(combo):
    settings, documents = combo
    container = one(documents, "StatefulSet", "mongodb")["spec"]["template"]["spec"]["containers"][
        0
    ]
    env = {item["name"]: item for item in container["env"]}
    if settings["engine"] == "ferretdb":
        assert container["image"].endswith("flask-k8s/ferretdb:1.24.2")
        assert env["FERRETDB_HANDLER"]["value"] == "sqlite"
        assert env["FERRETDB_TEST_ENABLE_NEW_AUTH"]["value"] == "true"
        assert env["FERRETDB_SETUP_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "root-password"
    else:
        assert container["image"].startswith("mongo:")
        assert (
            env["MONGO_INITDB_ROOT_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "root-password"
        )


def test_ferretdb_debug_listener_stays_on_loopback_and_probes_use_ferretdb_ping(combo):
    settings, documents = combo
    if settings["engine"] != "ferretdb":
        return
    (container,) = one(documents, "StatefulSet", "mongodb")["spec"]["template"]["spec"][
        "containers"
    ]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["FERRETDB_DEBUG_ADDR"] == "127.0.0.1:8088"
    assert env["FERRETDB_LISTEN_ADDR"] == ":27017"
    assert [port["containerPort"] for port in container["ports"]] == [27017]
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe]["exec"]["command"] == ["/ferretdb", "ping"], probe
    assert container["livenessProbe"]["tcpSocket"] == {"port": "mongodb"}
    assert {"name": "mongodb", "containerPort": 27017, "protocol": "TCP"} in container["ports"]


def test_storage_class_follows_the_provider(combo):
    settings, documents = combo
    claim = one(documents, "StatefulSet", "mongodb")["spec"]["volumeClaimTemplates"][0]
    if settings["provider"] == "local":
        assert claim["spec"]["storageClassName"] == "local-path"
    else:
        assert "storageClassName" not in claim["spec"]


def test_every_template_of_the_roles_is_rendered():
    for role, listed in (("mongodb", "mongodb_manifests"), ("flaskapp", "flaskapp_manifests")):
        variables = yaml.safe_load((ROLES_DIR / role / "vars" / "main.yml").read_text())
        templates = {
            path.name.removesuffix(".yaml.j2")
            for path in (ROLES_DIR / role / "templates").glob("*.j2")
        }
        assert templates == set(variables[listed]), role


def test_kubernetes_validate_is_installed():
    assert shutil.which("kubernetes-validate", path=str(BIN))


def test_the_database_volume_is_handed_to_its_user_by_fsgroup_without_a_chown(combo):
    _, documents = combo
    spec = one(documents, "StatefulSet", "mongodb")["spec"]["template"]["spec"]
    assert spec.get("initContainers", []) == []
    context = spec["securityContext"]
    assert context["fsGroup"] == context["runAsUser"] == context["runAsGroup"]
    assert context["fsGroupChangePolicy"] == "OnRootMismatch"


KUBE_SYSTEM = {"kubernetes.io/metadata.name": "kube-system"}
DNS = {"k8s-app": "kube-dns"}


def test_the_database_s_clients_reach_only_the_database_and_dns(combo):
    _, documents = combo
    policies = find(documents, "NetworkPolicy")
    database = pod_labels(documents, "StatefulSet")
    for source in (pod_labels(documents, "Deployment"), pod_labels(documents, "Job")):
        assert reaches(policies, source, database, 27017)
        assert reaches(policies, source, DNS, 53, "UDP", KUBE_SYSTEM)
        assert reaches(policies, source, DNS, 53, "TCP", KUBE_SYSTEM)
        # Nothing else: another port of the database, DNS elsewhere, the service, the world.
        assert not reaches(policies, source, database, 8088)
        assert not reaches(policies, source, DNS, 53, "UDP")
        assert not reaches(policies, source, {"k8s-app": "other"}, 53, "UDP", KUBE_SYSTEM)
        assert not reaches(policies, source, pod_labels(documents, "Deployment"), 8000)
        assert not reaches(policies, source, {}, 443, "TCP", {"name": "internet"})


def test_the_database_opens_no_connection(combo):
    _, documents = combo
    policies = find(documents, "NetworkPolicy")
    database = pod_labels(documents, "StatefulSet")
    assert not reaches(policies, database, DNS, 53, "UDP", KUBE_SYSTEM)
    assert not reaches(policies, database, pod_labels(documents, "Deployment"), 8000)
    assert not reaches(policies, database, database, 27017)


def test_pods_without_the_client_labels_keep_their_egress(combo):
    """verify.yml's load Jobs reach the service: no policy restricts their egress."""
    _, documents = combo
    policies = find(documents, "NetworkPolicy")
    loadgen = {"app.kubernetes.io/component": "verification"}
    assert reaches(policies, loadgen, pod_labels(documents, "Deployment"), 8000)


def test_the_flask_pods_egress_is_restricted_by_a_policy_of_their_own(combo):
    _, documents = combo
    policy = one(documents, "NetworkPolicy", "flask-app")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "egress" not in policy["spec"]
    assert pod_labels(documents, "Job")["flask-k8s.io/mongodb-client"] == "true"
