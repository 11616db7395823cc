#!/usr/bin/python
"""Ansible module: write records to the Flask service and read them back."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: flask_records
short_description: Write records through the Flask service's API and read them back
description:
  - With O(action=write), posts O(count) JSON records to C(POST /data), each tagged with
    O(marker) and its sequence number, and returns their ids.
  - With O(action=read), fetches every id in O(ids) with C(GET /data/<id>) and reports how
    many came back intact, which are missing and which came back changed.
  - Requests that fail with a connection error or HTTP 503 are retried until O(timeout)
    seconds have passed, so a database restart in progress is waited out, not counted as loss.
options:
  base_url:
    description: Base URL of the service, for example C(http://192.168.49.2:30080).
    type: str
    required: true
  action:
    description: What to do.
    type: str
    choices: [write, read]
    required: true
  count:
    description: Number of records to write (O(action=write)).
    type: int
    default: 200
  marker:
    description: Tag stored in every record, so a run's records are recognisable.
    type: str
    required: true
  ids:
    description: Ids returned by a previous O(action=write), in write order (O(action=read)).
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds to keep retrying a request that meets a connection error or a 503.
    type: int
    default: 180
author: flask-k8s maintainers
"""

EXAMPLES = r"""
- name: Write 200 records
  flask_records:
    base_url: http://127.0.0.1:30080
    action: write
    count: 200
    marker: round-1
  register: written

- name: Read them back
  flask_records:
    base_url: http://127.0.0.1:30080
    action: read
    marker: round-1
    ids: "{{ written.ids }}"
"""

RETURN = r"""
ids:
  description: Ids of the records written (O(action=write)).
  type: list
  returned: when action is write
found:
  description: Number of records read back with the content that was written.
  type: int
  returned: when action is read
missing:
  description: Ids the service answered 404 for.
  type: list
  returned: when action is read
mismatched:
  description: Ids whose content differs from what was written.
  type: list
  returned: when action is read
retries:
  description: Requests that had to be retried (connection errors and 503 answers).
  type: int
  returned: always
"""

import json
import time
from typing import Any
from urllib.error import HTTPError, URLError

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url


class _Client:
    """Small JSON client that waits out connection errors and 503 answers."""

    def __init__(self, base_url: str, timeout: int) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = 0

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        deadline = time.monotonic() + self.timeout
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        while True:
            try:
                response = open_url(
                    self.base_url + path, method=method, data=data, headers=headers, timeout=10
                )
                return response.status, json.loads(response.read() or b"null")
            except HTTPError as error:
                if error.code != 503:
                    return error.code, json.loads(error.read() or b"null")
                reason: object = error
            except (URLError, OSError, ValueError) as error:
                reason = error
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{method} {path} failed for {self.timeout} s: {reason}")
            self.retries += 1
            time.sleep(1)


def _write(client: _Client, count: int, marker: str) -> list[str]:
    ids = []
    for seq in range(count):
        status, body = client.request("POST", "/data", {"marker": marker, "seq": seq})
        if status != 201 or not isinstance(body, dict) or "id" not in body:
            raise RuntimeError(f"POST /data answered {status}: {body!r}")
        ids.append(str(body["id"]))
    return ids


def _read(client: _Client, ids: list[str], marker: str) -> tuple[int, list[str], list[str]]:
    found, missing, mismatched = 0, [], []
    for seq, record_id in enumerate(ids):
        status, body = client.request("GET", f"/data/{record_id}")
        if status == 404:
            missing.append(record_id)
        elif status != 200 or not isinstance(body, dict):
            raise RuntimeError(f"GET /data/{record_id} answered {status}: {body!r}")
        elif body.get("data") != {"marker": marker, "seq": seq}:
            mismatched.append(record_id)
        else:
            found += 1
    return found, missing, mismatched


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "base_url": {"type": "str", "required": True},
            "action": {"type": "str", "required": True, "choices": ["write", "read"]},
            "count": {"type": "int", "default": 200},
            "marker": {"type": "str", "required": True},
            "ids": {"type": "list", "elements": "str", "default": []},
            "timeout": {"type": "int", "default": 180},
        },
        supports_check_mode=False,
    )
    params = module.params
    if params["count"] < 1 or params["count"] > 100000:
        module.fail_json(msg="count must be between 1 and 100000")
    client = _Client(params["base_url"], params["timeout"])
    try:
        if params["action"] == "write":
            ids = _write(client, params["count"], params["marker"])
            module.exit_json(changed=True, ids=ids, retries=client.retries)
        found, missing, mismatched = _read(client, params["ids"], params["marker"])
        module.exit_json(
            changed=False,
            found=found,
            missing=missing,
            mismatched=mismatched,
            retries=client.retries,
        )
    except (RuntimeError, TimeoutError) as error:
        module.fail_json(msg=str(error), retries=client.retries)


if __name__ == "__main__":
    main()
