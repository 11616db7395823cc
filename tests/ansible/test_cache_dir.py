"""The lookup flask_k8s.stack.cache_dir: the cache directory the build scripts use."""

import json
import os
import subprocess
from pathlib import Path

import pytest
from ansible.errors import AnsibleLookupError
from ansible_collections.flask_k8s.stack.plugins.lookup import cache_dir as plugin
from ansible_support import REPO, ansible_env, make_password_file, run


@pytest.mark.parametrize(
    ("environ", "found"),
    [
        ({"FLASK_K8S_CACHE": "/srv/cache", "XDG_CACHE_HOME": "/x", "HOME": "/h"}, "/srv/cache"),
        ({"FLASK_K8S_CACHE": "/srv/cache/", "HOME": "/h"}, "/srv/cache"),
        ({"FLASK_K8S_CACHE": "", "XDG_CACHE_HOME": "/x", "HOME": "/h"}, "/x/flask-k8s"),
        ({"XDG_CACHE_HOME": "", "HOME": "/h"}, "/h/.cache/flask-k8s"),
        ({"HOME": "/h"}, "/h/.cache/flask-k8s"),
    ],
)
def test_the_cache_is_flask_k8s_cache_else_xdg_else_home(environ, found):
    assert plugin.cache_dir(environ) == found


@pytest.mark.parametrize(
    ("term", "found"),
    [("stamps", "/c/stamps"), ("contexts/ferretdb", "/c/contexts/ferretdb"), ("a/../b", "/c/b")],
)
def test_a_term_is_a_path_below_the_cache(term, found):
    assert plugin.below("/c", term) == found


@pytest.mark.parametrize(
    ("term", "says"),
    [
        ("/etc", "is absolute"),
        ("..", "leaves the cache directory"),
        ("stamps/../../etc", "leaves the cache directory"),
        ("", "non-empty string"),
        ("  ", "non-empty string"),
        (3, "non-empty string"),
    ],
)
def test_a_term_outside_the_cache_is_refused(term, says):
    with pytest.raises(AnsibleLookupError, match=says):
        plugin.below("/c", term)


@pytest.mark.parametrize(
    "environ",
    [
        {"FLASK_K8S_CACHE": "/tmp/flask-k8s-cache-test"},
        {"XDG_CACHE_HOME": "/tmp/xdg-cache-test"},
        {"HOME": "/tmp/home-cache-test"},
    ],
)
def test_the_lookup_finds_the_cache_build_sh_uses(tmp_path, environ):
    """cluster/build.sh --status (which builds nothing) names where a binary is kept; the
    lookup, run by ansible-playbook in the same environment, names the same cache."""
    env = {k: v for k, v in os.environ.items() if k not in ("FLASK_K8S_CACHE", "XDG_CACHE_HOME")}
    env |= environ
    status = subprocess.run(
        [str(REPO / "cluster" / "build.sh"), "--status", "kubectl"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    playbook = tmp_path / "lookup.yml"
    playbook.write_text(
        json.dumps(
            [
                {
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "ansible.builtin.debug": {
                                "msg": "{{ lookup('flask_k8s.stack.cache_dir', 'bin') }}"
                            }
                        }
                    ],
                }
            ]
        )
    )
    ansible = ansible_env(make_password_file(tmp_path))
    ansible = {k: v for k, v in ansible.items() if k not in ("FLASK_K8S_CACHE", "XDG_CACHE_HOME")}
    ansible |= environ
    ansible["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.json"
    report = json.loads(run(["ansible-playbook", str(playbook)], ansible).stdout)
    found = report["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"]
    print(status[1], found)
    assert Path(status[1]).parent.parent == Path(found)
