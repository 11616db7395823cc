"""The verify_plan filter, which chooses the checks verify.yml runs, compared with the Jinja
expressions the play used before, as Ansible renders them."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.flask_k8s.stack.plugins.filter.verify import verify_plan
from ansible_support import jinja

CATALOG = {
    "smoke": {},
    "dns": {},
    "backup": {},
    "disruption": {"disrupts": "restarts the Flask Deployment and deletes one of its pods"},
    "persistence": {"disrupts": "deletes the database pod while clients write"},
}
SELECTED = "{{ only.split(',') | map('trim') | select | list if only is string else only }}"
RUNS = """{{ catalog | dict2items | selectattr('key', 'in', selected)
   | rejectattr('value.disrupts', 'defined') | map(attribute='key') | list
   if not disruptive | bool else selected }}"""
UNKNOWN = "{{ selected | difference(catalog.keys() | list) }}"
PLAN = """{% set plan = [] %}{% for name, check in catalog.items() %}{%
   set _ = plan.append(name ~ ': '
   ~ ('runs' if name in runs else 'skipped, not in verify_only' if name not in selected
      else 'skipped, it ' ~ check.disrupts ~ ' (verify_disruptive=true runs it)'))
   %}{% endfor %}{{ plan }}"""


@pytest.mark.parametrize(
    "only",
    [
        list(CATALOG),
        "smoke,dns",
        " dns , smoke ,, ",
        "persistence,smoke,disruption",
        ["disruption", "smoke"],
        "smoke,nope,nope,other",
        "",
        [],
        ",",
    ],
)
@pytest.mark.parametrize("disruptive", [False, True, "false", "true", "yes"])
def test_plan_is_the_one_the_play_made(only: object, disruptive: object) -> None:
    plan = verify_plan(CATALOG, only, disruptive)
    selected = jinja(SELECTED, only=only)
    runs = jinja(RUNS, catalog=CATALOG, selected=selected, disruptive=disruptive)
    assert plan["selected"] == selected
    assert plan["runs"] == runs
    # difference gave the unknown names in the order of a set (it varies between runs); the
    # filter gives them in the user's order.
    assert sorted(plan["unknown"]) == sorted(jinja(UNKNOWN, selected=selected, catalog=CATALOG))
    assert plan["unknown"] == [name for name in dict.fromkeys(selected) if name not in CATALOG]
    assert plan["plan"] == jinja(PLAN, catalog=CATALOG, runs=runs, selected=selected)


def test_plan_says_why_a_check_is_skipped() -> None:
    plan = verify_plan(CATALOG, "smoke,disruption", False)
    assert plan["runs"] == ["smoke"]
    assert plan["plan"] == [
        "smoke: runs",
        "dns: skipped, not in verify_only",
        "backup: skipped, not in verify_only",
        "disruption: skipped, it restarts the Flask Deployment and deletes one of its pods"
        " (verify_disruptive=true runs it)",
        "persistence: skipped, not in verify_only",
    ]


@pytest.mark.parametrize(
    ("catalog", "only"),
    [(None, "smoke"), (["smoke"], "smoke"), (CATALOG, None), (CATALOG, 3), (CATALOG, {"smoke": 1})],
)
def test_what_is_not_a_catalog_and_names_is_refused(catalog: object, only: object) -> None:
    with pytest.raises(AnsibleFilterError, match="verify_plan takes"):
        verify_plan(catalog, only, False)
