# End-to-end tests: molecule's scenarios (see molecule/) and verify.yml against a deployment.

# `make molecule-minikube MINIKUBE_OFFLINE=true` builds minikube and everything it would
# download on this machine first (docs/minikube.md), for machines without internet.
MINIKUBE_OFFLINE ?= false

.PHONY: molecule molecule-minikube verify

molecule: venv ## Run `molecule test` (log: build/logs/molecule-default.log): local cluster, converge, idempotence, verify, destroy
	scripts/molecule-test.sh default

molecule-minikube: venv ## Run `molecule test -s minikube` (MINIKUBE_OFFLINE=true: no internet needed)
	MINIKUBE_OFFLINE=$(MINIKUBE_OFFLINE) scripts/molecule-test.sh minikube

verify: venv ## Run playbooks/verify.yml against the current deployment (report under reports/)
	ansible-playbook playbooks/verify.yml $(ANSIBLE_ARGS) $(VERIFY_ARGS)
