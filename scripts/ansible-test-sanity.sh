#!/usr/bin/env bash
# ansible-test sanity on the collection flask_k8s.stack (collections/ansible_collections/
# flask_k8s/stack): the plugins' documentation, imports, pylint, the modules' argument specs
# against their docs. ansible-test reads the files git tracks, so a new plugin is checked once
# it is added to git. Its virtual environments are kept under ~/.ansible/test between runs.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
python=$(command -v python)
# The pip version ansible-test bootstraps into each virtual environment, and the script it
# bootstraps with (see scripts/ansible-test-get-pip.py).
pip_version=$("$python" -c '
import types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version="3"))["pip"])')
get_pip=$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py
if [[ ! -s $get_pip ]]; then
    mkdir -p "$(dirname "$get_pip")"
    cp "$here/scripts/ansible-test-get-pip.py" "$get_pip"
fi
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
cd "$here/collections/ansible_collections/flask_k8s/stack"
# Only ansible-test's findings and verdict; pip's progress goes to the log below.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ansible-test sanity --python "$version" --color no >"$log" 2>&1; then
    grep -c '^Running sanity test' "$log" | xargs printf 'ansible-test sanity: %s tests passed\n'
else
    grep -E '^(ERROR|FATAL|Running sanity test)' "$log" >&2 || cat "$log" >&2
    exit 1
fi
