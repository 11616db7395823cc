# Ansible: set-up, deployment, teardown, and the checks that need no cluster.

# Extra arguments of ansible-playbook for deploy/teardown/verify, e.g. ANSIBLE_ARGS='-e cluster_provider=local'.
ANSIBLE_ARGS ?=
# `make teardown TEARDOWN_CLUSTER=true` also removes the cluster (minikube profile, local cluster).
TEARDOWN_CLUSTER ?= false
# `make teardown TEARDOWN_DELETE_DATA=true` also deletes the database volume (the namespace).
TEARDOWN_DELETE_DATA ?= false
# Rounds of the deploy benchmark (each: kubectl and site.yml, first converge and no-op).
BENCH_DEPLOY_ROUNDS ?= 2
# Scratch directory of test-ansible (throwaway vault password, rendered manifests).
ANSIBLE_TEST_DIR := $(CURDIR)/build/ansible-tests
# Python of the Ansible side: modules, plugins, scripts and their tests.
ANSIBLE_PY := plugins playbooks scripts tests/ansible tests/cluster

.PHONY: setup credentials deploy teardown test-ansible bench-deploy

setup: venv ## Set up: virtual environment and, on first run, a vault password and random credentials
	ansible-playbook playbooks/setup.yml

# What deploy needs of setup: the credentials, created only when there are none.
credentials: venv
	@[[ -e group_vars/secrets.yml ]] || ansible-playbook playbooks/setup.yml

deploy: credentials ## Deploy everything: cluster, images, MongoDB, Flask (ANSIBLE_ARGS='-e name=value')
	ansible-playbook playbooks/site.yml $(ANSIBLE_ARGS)

teardown: venv ## Remove the deployment, keeping the data (TEARDOWN_DELETE_DATA=true, TEARDOWN_CLUSTER=true)
	ansible-playbook playbooks/teardown.yml -e teardown_cluster=$(TEARDOWN_CLUSTER) \
	  -e teardown_delete_data=$(TEARDOWN_DELETE_DATA) $(ANSIBLE_ARGS)

bench-deploy: credentials ## Time site.yml (first converge, no-op) against kubectl apply --server-side on the running cluster
	python bench/bench_deploy.py --rounds $(BENCH_DEPLOY_ROUNDS)

test: test-ansible

test-ansible: venv ## Ansible checks without a cluster: yamllint, ansible-lint, syntax, rendered manifests, tests/ansible
	@mkdir -p "$(ANSIBLE_TEST_DIR)"
	@[[ -s "$(ANSIBLE_TEST_DIR)/vault-pass" ]] || \
	  (umask 077 && $(VENV_BIN)/python -c 'import secrets; print(secrets.token_urlsafe(32))' > "$(ANSIBLE_TEST_DIR)/vault-pass")
	ruff check $(ANSIBLE_PY)
	ruff format --check $(ANSIBLE_PY)
	yamllint --strict .
	scripts/role_docs.py --check
	ANSIBLE_VAULT_PASSWORD_FILE="$(ANSIBLE_TEST_DIR)/vault-pass" ansible-lint --profile production
	@for playbook in playbooks/*.yml; do \
	  echo "ansible-playbook --syntax-check $$playbook"; \
	  ANSIBLE_VAULT_PASSWORD_FILE="$(ANSIBLE_TEST_DIR)/vault-pass" ansible-playbook --syntax-check "$$playbook" >/dev/null; \
	done
	pytest tests/ansible
