# Ansible: set-up, deployment, teardown, and the checks that need no cluster.

# Extra arguments of ansible-playbook for deploy/teardown/verify, e.g. ANSIBLE_ARGS='-e cluster_provider=local'.
ANSIBLE_ARGS ?=
# `make teardown TEARDOWN_CLUSTER=true` also removes the cluster, keeping its data (the local
# cluster's volumes stay on this host, the minikube profile is stopped).
TEARDOWN_CLUSTER ?= false
# `make teardown TEARDOWN_DELETE_DATA=true` also deletes the data: the namespace and the volumes
# of its claims (with TEARDOWN_CLUSTER=true, every volume of the cluster).
TEARDOWN_DELETE_DATA ?= false
# `make api-key SCOPE=read` prints a key of scope read (default write); NAME=<name> picks one.
# Only the command line sets them: a NAME or SCOPE in the environment (some shells set NAME)
# is not a request.
api_key_scope = $(if $(filter command line,$(origin SCOPE)),$(SCOPE))
api_key_name = $(if $(filter command line,$(origin NAME)),$(NAME))
# Rounds of the deploy benchmark (each: kubectl and site.yml, first converge and no-op).
BENCH_DEPLOY_ROUNDS ?= 3
# Scratch directory of test-ansible (throwaway vault password, rendered manifests).
ANSIBLE_TEST_DIR := $(CURDIR)/build/ansible-tests
# Python of the Ansible side: modules, plugins, scripts and their tests.
ANSIBLE_PY := collections playbooks scripts tests/ansible tests/cluster

.PHONY: setup credentials deploy teardown test-ansible sanity role-metrics bench-deploy bench-key-rotation api-key

setup: venv ## Set up: virtual environment and, on first run, a vault password and random credentials
	ansible-playbook playbooks/setup.yml

# What deploy needs of setup: the credentials and API keys. setup.yml runs when there is no
# vault yet, or when the vault changed since it last ran (it adds what an older vault lacks).
SETUP_STAMP := build/setup.stamp
credentials: venv
	@if [[ ! -e group_vars/secrets.yml || ! $(SETUP_STAMP) -nt group_vars/secrets.yml ]]; then \
	  ansible-playbook playbooks/setup.yml && mkdir -p $(dir $(SETUP_STAMP)) && touch $(SETUP_STAMP); \
	fi

deploy: credentials ## Deploy everything: cluster, images, MongoDB, Flask (ANSIBLE_ARGS='-e name=value')
	ansible-playbook playbooks/site.yml $(ANSIBLE_ARGS)

teardown: venv ## Remove the deployment, keeping the data (TEARDOWN_CLUSTER=true: the cluster too; TEARDOWN_DELETE_DATA=true: the data)
	ansible-playbook playbooks/teardown.yml -e teardown_cluster=$(TEARDOWN_CLUSTER) \
	  -e teardown_delete_data=$(TEARDOWN_DELETE_DATA) $(ANSIBLE_ARGS)

api-key: ## Print one API key of the vault, nothing else on stdout (SCOPE=read|write, default write; NAME=name)
	@$(MAKE) --no-print-directory -s venv >&2
	@key_file=$$(mktemp) && trap 'rm -f "$$key_file"' EXIT && \
	  ansible-playbook playbooks/api-key.yml -e api_key_file="$$key_file" \
	    -e api_key_scope='$(api_key_scope)' -e api_key_name='$(api_key_name)' $(ANSIBLE_ARGS) >&2 && \
	  cat "$$key_file"

bench-deploy: credentials ## Time site.yml (first converge, no-op) against kubectl apply --server-side on the running cluster
	python bench/bench_deploy.py --rounds $(BENCH_DEPLOY_ROUNDS)

bench-key-rotation: credentials ## Rotate an API key as docs/security.md says, under load, in a namespace of its own; count failed requests
	python bench/bench_key_rotation.py

test: test-ansible

role-metrics: venv ## Jinja filters per 100 lines of the roles' tasks and vars, and vars:defaults (scripts/role_metrics.py)
	scripts/role_metrics.py

sanity: venv ## ansible-test sanity on the project's collection of plugins (flask_k8s.stack)
	scripts/ansible-test-sanity.sh

test-ansible: venv ## Ansible checks without a cluster: yamllint, ansible-lint, syntax, rendered manifests, tests/ansible
	@mkdir -p "$(ANSIBLE_TEST_DIR)"
	@[[ -s "$(ANSIBLE_TEST_DIR)/vault-pass" ]] || \
	  (umask 077 && $(VENV_BIN)/python -c 'import secrets; print(secrets.token_urlsafe(32))' > "$(ANSIBLE_TEST_DIR)/vault-pass")
	ruff check $(ANSIBLE_PY)
	ruff format --check $(ANSIBLE_PY)
	yamllint --strict .
	scripts/role_docs.py --check
	scripts/ansible-test-sanity.sh
	ANSIBLE_VAULT_PASSWORD_FILE="$(ANSIBLE_TEST_DIR)/vault-pass" ansible-lint --profile production
	@for playbook in playbooks/*.yml; do \
	  echo "ansible-playbook --syntax-check $$playbook"; \
	  ANSIBLE_VAULT_PASSWORD_FILE="$(ANSIBLE_TEST_DIR)/vault-pass" ansible-playbook --syntax-check "$$playbook" >/dev/null; \
	done
	@echo "ansible-playbook --syntax-check cluster/cluster.yml (with cluster/ansible.cfg)"
	@cd cluster && ANSIBLE_CONFIG=ansible.cfg ansible-playbook --syntax-check cluster.yml >/dev/null
	pytest tests/ansible
