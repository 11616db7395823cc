"""The Pod Security Standards' restricted profile (Kubernetes 1.34), as rules over a pod spec.

Each rule is one control of the profile (baseline's controls included, as restricted includes
them), checked the way the Pod Security admission reads it: a container-level field overrides
the pod's, and init containers count like the others. restricted_violations() returns one line
per breach, naming the control, the container and the value.
"""

from collections.abc import Callable, Iterator

# Volume types the restricted profile allows.
VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
# The sysctls every profile allows.
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
SECCOMP_TYPES = {"RuntimeDefault", "Localhost"}
APPARMOR_TYPES = {"RuntimeDefault", "Localhost"}


def containers(spec: dict) -> Iterator[tuple[str, dict]]:
    for part in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(part) or []:
            yield f"{part}/{container['name']}", container


def _own(holder: dict, field: str) -> object:
    """A field of a container's (or the pod's) own securityContext."""
    return (holder.get("securityContext") or {}).get(field)


def _effective(spec: dict, container: dict, field: str) -> object:
    """A securityContext field as the container sees it: its own, else the pod's."""
    own = _own(container, field)
    return own if own is not None else _own(spec, field)


def _host_namespaces(spec: dict) -> list[str]:
    return [
        f"host namespaces: {field} is true"
        for field in ("hostNetwork", "hostPID", "hostIPC")
        if spec.get(field)
    ]


def _host_process(spec: dict) -> list[str]:
    found = []
    if (_own(spec, "windowsOptions") or {}).get("hostProcess"):
        found.append("HostProcess: the pod asks for it")
    for where, container in containers(spec):
        if (_own(container, "windowsOptions") or {}).get("hostProcess"):
            found.append(f"HostProcess: {where} asks for it")
    return found


def _privileged(spec: dict) -> list[str]:
    return [
        f"privileged containers: {where} is privileged"
        for where, container in containers(spec)
        if _own(container, "privileged")
    ]


def _capabilities(spec: dict) -> list[str]:
    found = []
    for where, container in containers(spec):
        capabilities = _own(container, "capabilities") or {}
        added = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            found.append(f"capabilities: {where} adds {sorted(added)}")
        if "ALL" not in (capabilities.get("drop") or []):
            found.append(f"capabilities: {where} does not drop ALL")
    return found


def _volumes(spec: dict) -> list[str]:
    found = []
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= VOLUME_TYPES:
            found.append(f"volume types: {volume['name']} is {sorted(kinds - VOLUME_TYPES)}")
    return found


def _host_ports(spec: dict) -> list[str]:
    return [
        f"host ports: {where} binds host port {port['hostPort']}"
        for where, container in containers(spec)
        for port in container.get("ports") or []
        if port.get("hostPort")
    ]


def _apparmor(spec: dict) -> list[str]:
    found = []
    for where, container in containers(spec):
        profile = _effective(spec, container, "appArmorProfile") or {}
        if profile and profile.get("type") not in APPARMOR_TYPES:
            found.append(f"AppArmor: {where} runs {profile.get('type')}")
    return found


def _selinux(spec: dict) -> list[str]:
    found = []
    for where, container in containers(spec):
        options = _effective(spec, container, "seLinuxOptions") or {}
        if options.get("type", "") not in SELINUX_TYPES:
            found.append(f"SELinux: {where} has type {options['type']}")
        if options.get("user") or options.get("role"):
            found.append(f"SELinux: {where} sets a user or role")
    return found


def _proc_mount(spec: dict) -> list[str]:
    return [
        f"/proc mount type: {where} asks for {mount}"
        for where, container in containers(spec)
        if (mount := _own(container, "procMount") or "Default") != "Default"
    ]


def _seccomp(spec: dict) -> list[str]:
    found = []
    for where, container in containers(spec):
        profile = _effective(spec, container, "seccompProfile") or {}
        if profile.get("type") not in SECCOMP_TYPES:
            found.append(f"seccomp: {where} runs {profile.get('type') or 'without a profile'}")
    return found


def _sysctls(spec: dict) -> list[str]:
    return [
        f"sysctls: the pod sets {sysctl['name']}"
        for sysctl in _own(spec, "sysctls") or []
        if sysctl["name"] not in SAFE_SYSCTLS
    ]


def _privilege_escalation(spec: dict) -> list[str]:
    return [
        f"privilege escalation: {where} does not set allowPrivilegeEscalation: false"
        for where, container in containers(spec)
        if _own(container, "allowPrivilegeEscalation") is not False
    ]


def _non_root(spec: dict) -> list[str]:
    found = []
    for where, container in containers(spec):
        if _effective(spec, container, "runAsNonRoot") is not True:
            found.append(f"running as non-root: {where} may run as root")
        if _effective(spec, container, "runAsUser") == 0:
            found.append(f"running as non-root user: {where} runs as uid 0")
    return found


RULES: list[Callable[[dict], list[str]]] = [
    _host_process,
    _host_namespaces,
    _privileged,
    _capabilities,
    _volumes,
    _host_ports,
    _apparmor,
    _selinux,
    _proc_mount,
    _seccomp,
    _sysctls,
    _privilege_escalation,
    _non_root,
]


def restricted_violations(spec: dict) -> list[str]:
    """Every breach of the restricted profile by a pod spec, one line each."""
    return [line for rule in RULES for line in rule(spec)]


def pod_specs_of(documents: list) -> list[tuple[str, dict]]:
    """(kind/name, pod spec) of every workload, CronJobs and bare Pods included."""
    specs = []
    for doc in documents:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet", "ReplicaSet"):
            specs.append((where, doc["spec"]["template"]["spec"]))
        elif doc["kind"] == "CronJob":
            specs.append((where, doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
        elif doc["kind"] == "Pod":
            specs.append((where, doc["spec"]))
    return specs
