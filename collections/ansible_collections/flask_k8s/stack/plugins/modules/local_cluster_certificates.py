#!/usr/bin/python
"""Ansible module: the local cluster's certificates that a converge signs anew."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: local_cluster_certificates
short_description: Find the certificates that end within some days
description:
  - Checks every certificate C(*.crt) of O(path) with openssl and returns those that end
    within O(renew_days), or that openssl cannot read, with the date each ends. Changes
    nothing.
options:
  path:
    description: Directory of the certificates; none are found when it does not exist.
    type: path
    required: true
  renew_days:
    description: A certificate that ends within this many days is renewed.
    type: int
    required: true
requirements:
  - openssl
author: flask-k8s maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Find the certificates that expire within 30 days
  flask_k8s.stack.local_cluster_certificates:
    path: /var/lib/flask-k8s/cluster/pki
    renew_days: 30
  register: expiring
"""

RETURN = r"""
renew:
  description: Names of the certificates to renew (their file's without C(.crt)), in name order.
  type: list
  elements: str
  returned: success
  sample: [apiserver, ca]
count:
  description: How many certificates are to be renewed.
  type: int
  returned: success
summary:
  description: Each of RV(renew) with the date it ends, comma-separated.
  type: str
  returned: success
  sample: "apiserver (until Dec  5 00:00:00 2027 GMT), ca (until Dec  5 00:00:00 2027 GMT)"
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.flask_k8s.stack.plugins.module_utils.local_cluster import (
    Runner,
    certificate_name,
    end_date,
    expiring_certificates,
    run,
)


def renewals(path: str, renew_days: int, runner: Runner) -> dict[str, Any]:
    """The module's result."""
    expiring = expiring_certificates(path, renew_days * 86400, runner)
    names = [certificate_name(crt) for crt in expiring]
    ends = [end_date(crt, runner) for crt in expiring]
    return {
        "renew": names,
        "count": len(names),
        "summary": ", ".join(f"{n} (until {end})" for n, end in zip(names, ends, strict=True)),
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "renew_days": {"type": "int", "required": True},
        },
        supports_check_mode=True,
    )
    module.exit_json(
        changed=False, **renewals(module.params["path"], module.params["renew_days"], run)
    )


if __name__ == "__main__":
    main()
