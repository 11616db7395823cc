"""Jinja tests for Kubernetes names and quantities, image names and host addresses, for the
checks that compare settings with each other (each setting's own format is data in its role's
argument spec, checked by the check_settings action).

{{ mongodb_namespace is flask_k8s.stack.k8s_dns_label }}
{{ flaskapp_cpu_limit is flask_k8s.stack.k8s_cpu }}
"""

from __future__ import annotations

from collections.abc import Callable

from ansible_collections.flask_k8s.stack.plugins.plugin_utils.formats import FORMATS

# Paths are tested with Ansible's own tests (abs, file, directory).
_PATHS = ("absolute_path", "home_path", "file", "directory")


class TestModule:
    def tests(self) -> dict[str, Callable[[object], bool]]:
        return {name: form.test for name, form in FORMATS.items() if name not in _PATHS}
