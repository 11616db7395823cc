"""Jinja filters that make the backup role's Jobs from its table of them, and over what the role
reads from the cluster: a Job's pods (a kubernetes.core.k8s_info result), the JSON lines the
backup tool writes to its log, and the backup CronJob (plugins/plugin_utils/backup_job.py).

{{ backup_job_modes | backup_jobs(prefix, stamp, timeout) }}   the Jobs by mode, each whole

{{ backup_pods | backup_pod_name }}                           the first pod's name, or ''
{{ backup_pods | backup_pod_name(['Running']) }}              the first running pod's
{{ backup_pods | backup_pod_stuck }}                          why the pods cannot start, or ''
{{ backup_pods | backup_job_outcome(backup_log, backup_job) }}   {outcome, printed}
{{ backup_upload_verified | backup_upload_failure(file, path, present) }}   a sentence, or ''
{{ backup_cronjob_found | backup_cronjob }}                   {schedule, fingerprint}
"""

from __future__ import annotations

from collections.abc import Callable

from ansible_collections.flask_k8s.stack.plugins.plugin_utils.backup_job import (
    cronjob,
    job_outcome,
    jobs,
    pod_name,
    stuck_text,
    upload_failure,
)


class FilterModule:
    def filters(self) -> dict[str, Callable[..., object]]:
        return {
            "backup_jobs": jobs,
            "backup_pod_name": pod_name,
            "backup_pod_stuck": stuck_text,
            "backup_job_outcome": job_outcome,
            "backup_upload_failure": upload_failure,
            "backup_cronjob": cronjob,
        }
