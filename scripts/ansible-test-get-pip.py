"""Put pip into the running interpreter, then run `pip install` with the arguments given.

ansible-test creates an empty virtual environment for each sanity test and bootstraps pip into
it with a script it downloads from ci-files.testing.ansible.com, cached as
~/.ansible/test/cache/get_pip_<version>.py. scripts/ansible-test-sanity.sh puts this script
there instead, so that the bootstrap needs no host but the package index: pip comes from the
wheel Python ships (ensurepip), and then upgrades itself to the version ansible-test pins.
"""

from __future__ import annotations

import ensurepip
import os
import runpy
import sys

# Options of the downloaded script that pip itself does not take.
BOOTSTRAP_ONLY = {"--no-setuptools", "--no-wheel"}

# ensurepip clears the PIP_* settings of the process (the index, the CA bundle): keep them.
environment = dict(os.environ)
ensurepip.bootstrap(upgrade=True)
os.environ.clear()
os.environ.update(environment)
sys.argv = [sys.argv[0], "install", *(arg for arg in sys.argv[1:] if arg not in BOOTSTRAP_ONLY)]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
