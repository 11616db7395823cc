# Ansible: set-up, deployment, teardown, and the checks that need no cluster.

# The vault password file (created by `make setup`, mode 0600, outside the repository).
# ansible.cfg names the same default; exported so every ansible command run by make uses it.
ANSIBLE_VAULT_PASSWORD_FILE ?= $(HOME)/.config/flask-k8s/vault-pass
export ANSIBLE_VAULT_PASSWORD_FILE
# Extra arguments of ansible-playbook for deploy/teardown, e.g. ANSIBLE_ARGS='-e cluster_provider=local'.
ANSIBLE_ARGS ?=
# `make teardown TEARDOWN_CLUSTER=true` also removes the cluster (minikube profile, local cluster).
TEARDOWN_CLUSTER ?= false
# Scratch directory of test-ansible (throwaway vault password, rendered manifests).
ANSIBLE_TEST_DIR := $(CURDIR)/build/ansible-tests

.PHONY: setup deploy teardown test-ansible

setup: venv ## Set up: virtual environment and, on first run, a vault password and random credentials
	@if [[ ! -s "$(ANSIBLE_VAULT_PASSWORD_FILE)" ]]; then \
	  if [[ -e group_vars/secrets.yml ]]; then \
	    echo "setup: group_vars/secrets.yml exists but $(ANSIBLE_VAULT_PASSWORD_FILE) holds no vault password: put your team's vault password there (mode 0600)." >&2; \
	    exit 1; \
	  fi; \
	  mkdir -p -m 700 "$$(dirname "$(ANSIBLE_VAULT_PASSWORD_FILE)")"; \
	  (umask 077 && $(VENV_BIN)/python -c 'import secrets; print(secrets.token_urlsafe(48))' > "$(ANSIBLE_VAULT_PASSWORD_FILE)"); \
	  echo "setup: created the vault password file $(ANSIBLE_VAULT_PASSWORD_FILE) (mode 0600)"; \
	fi
	@chmod go-rwx "$(ANSIBLE_VAULT_PASSWORD_FILE)"
	ansible-playbook playbooks/setup.yml

deploy: setup ## Deploy everything: set-up, then playbooks/site.yml (cluster, images, MongoDB, Flask)
	ansible-playbook playbooks/site.yml $(ANSIBLE_ARGS)

teardown: setup ## Remove the deployment (TEARDOWN_CLUSTER=true: the cluster too)
	ansible-playbook playbooks/teardown.yml -e teardown_cluster=$(TEARDOWN_CLUSTER) $(ANSIBLE_ARGS)

test: test-ansible

test-ansible: venv ## Ansible checks without a cluster: yamllint, ansible-lint, syntax, rendered manifests, tests/ansible
	@mkdir -p "$(ANSIBLE_TEST_DIR)"
	@[[ -s "$(ANSIBLE_TEST_DIR)/vault-pass" ]] || \
	  (umask 077 && $(VENV_BIN)/python -c 'import secrets; print(secrets.token_urlsafe(32))' > "$(ANSIBLE_TEST_DIR)/vault-pass")
	yamllint --strict .
	ANSIBLE_VAULT_PASSWORD_FILE="$(ANSIBLE_TEST_DIR)/vault-pass" ansible-lint --profile production
	@for playbook in playbooks/*.yml; do \
	  echo "ansible-playbook --syntax-check $$playbook"; \
	  ANSIBLE_VAULT_PASSWORD_FILE="$(ANSIBLE_TEST_DIR)/vault-pass" ansible-playbook --syntax-check "$$playbook" >/dev/null; \
	done
	pytest tests/ansible
