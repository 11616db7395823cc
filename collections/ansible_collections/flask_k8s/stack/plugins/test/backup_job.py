"""Jinja test over the pods of a Job of the backup role (a kubernetes.core.k8s_info result):
whether the wait for them is over (plugins/plugin_utils/backup_job.py).

{{ backup_pods is flask_k8s.stack.backup_pod_settled(['Succeeded', 'Failed']) }}
"""

from __future__ import annotations

from collections.abc import Callable

from ansible_collections.flask_k8s.stack.plugins.plugin_utils.backup_job import settled


class TestModule:
    def tests(self) -> dict[str, Callable[..., bool]]:
        return {"backup_pod_settled": settled}
