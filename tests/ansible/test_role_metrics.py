"""scripts/role_metrics.py counts the Jinja filters of a roles tree as documented."""

import subprocess
import sys
from pathlib import Path

from ansible_support import REPO

TASKS = """---
- name: Pick
  ansible.builtin.set_fact:
    picked: "{{ items | select('match', '^a') | map('upper') | list | first }}"
  when: items | length > 0
- name: Loop
  ansible.builtin.debug:
    msg: "{% for item in items | sort %}{{ item }}{% endfor %} | not a filter"
  changed_when: false or x || y
"""
VARS = """---
# A comment counts as a line.
role_value: !unsafe "{{ kept }}"
role_list: "{{ a | default([]) }}"
"""
DEFAULTS = """---
role_setting: 1
role_other: two
"""


def test_counts_filters_lines_and_ratios(tmp_path: Path) -> None:
    for kind, text in (("tasks", TASKS), ("vars", VARS), ("defaults", DEFAULTS)):
        (tmp_path / "role" / kind).mkdir(parents=True)
        (tmp_path / "role" / kind / "main.yml").write_text(text)
    (tmp_path / "role" / "templates").mkdir()
    (tmp_path / "role" / "templates" / "x.yml").write_text("a: '{{ b | c | d | e | f }}'\n")
    result = subprocess.run(
        [sys.executable, REPO / "scripts" / "role_metrics.py", tmp_path, "--top", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = result.stdout.splitlines()
    # tasks: 4 filters in the set_fact, 1 in when, 1 in the loop; 8 non-blank lines after ---.
    assert lines[0].split()[-3:] == ["6", "in", "8"], result.stdout
    assert lines[0].split()[-4] == "75.0"
    # vars + defaults: the default filter only (the !unsafe value has none); 3 + 2 lines.
    assert lines[1].split()[-4:] == ["20.0", "1", "in", "5"], result.stdout
    assert lines[2].split()[-1] == "1"
    assert lines[3].split()[-4:] == ["1.50", "3", ":", "2"], result.stdout
    assert lines[4].split() == ["6", "filters", "8", "lines", "role/tasks/main.yml"]
