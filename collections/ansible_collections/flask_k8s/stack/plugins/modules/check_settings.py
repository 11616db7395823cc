#!/usr/bin/python
"""Documentation of the check_settings action (plugins/action/check_settings.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: check_settings
short_description: Check a role's settings against the checks of its argument spec
description:
  - Reads the options of the C(main) entry point of the role the task belongs to
    (C(meta/argument_specs.yml)), or O(argument_spec), and checks the value of every option
    that has C(checks), as the role sees it, against them. A value given as a string, the way
    C(-e name=value) gives it, is read as the option's type.
  - "The keys of C(checks): C(min) and C(max), numbers or the name of another setting, for an
    C(int) or C(float) option; C(off_value), a number also accepted (the setting switched off);
    C(format), one of the formats of the collection (a Kubernetes name or quantity, an image
    name, a host address, C(absolute_path), C(home_path), C(file), C(directory)); C(pattern),
    a regular expression, with C(means), what it accepts in words; C(min_length) and
    C(max_length); C(empty), the empty string also accepted; C(note), a few words the message
    adds in parentheses; C(means), what the message says is accepted."
  - A setting that is not defined yet (another role computes it later) is not checked.
  - The message of an option with C(no_log) does not show its value.
  - Fails with one line per setting out of range and per failed rule, naming the setting and
    what it accepts.
version_added: 1.0.0
options:
  rules:
    description:
      - The role's own checks that relate settings to each other, each a mapping of C(ok) (a
        boolean) and C(msg) (the line to report when C(ok) is false).
    type: list
    elements: dict
    default: []
  argument_spec:
    description:
      - The options to check, as under C(options) of an argument spec; by default the role's
        C(main) entry point.
    type: dict
attributes:
  check_mode:
    description: Checks the same in check mode; it changes nothing either way.
    support: full
  diff_mode:
    description: Has no diff to show.
    support: none
author: flask-k8s maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Ensure every setting is in range
  flask_k8s.stack.check_settings:
    rules:
      - ok: "{{ flaskapp_hpa_max_replicas | int >= flaskapp_hpa_min_replicas | int }}"
        msg: flaskapp_hpa_max_replicas must be at least flaskapp_hpa_min_replicas.
"""

RETURN = r"""
msg:
  description: How many settings and rules were checked, or one line per problem.
  returned: always
  type: str
"""
