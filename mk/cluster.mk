# Local single-node Kubernetes cluster (cluster/, flask_k8s.stack.local_cluster, docs/local-cluster.md).
CLUSTER_PLAYBOOK := cluster/cluster.yml
# `make cluster-up CLUSTER_INSTANCE=test` / `cluster-down CLUSTER_INSTANCE=test`: the tests'
# own instance (cluster/test-instance.yml) instead of the one `make deploy` uses.
CLUSTER_INSTANCE ?=
$(if $(filter-out test,$(CLUSTER_INSTANCE)),$(error CLUSTER_INSTANCE must be empty or test, got '$(CLUSTER_INSTANCE)'))
# `make cluster-down CLUSTER_DELETE_DATA=true` also deletes the cluster's volumes (kept otherwise).
CLUSTER_DELETE_DATA ?= false
CLUSTER_STATE_DIR := /var/lib/flask-k8s/$(if $(filter test,$(CLUSTER_INSTANCE)),test/)cluster
CLUSTER_KUBECONFIG := $(CLUSTER_STATE_DIR)/admin.kubeconfig
CLUSTER_ANSIBLE := ANSIBLE_CONFIG=cluster/ansible.cfg ansible-playbook $(CLUSTER_PLAYBOOK) \
  $(if $(filter test,$(CLUSTER_INSTANCE)),-e @cluster/test-instance.yml)

.PHONY: cluster-build binaries cluster-up cluster-down test-cluster

cluster-build: ## Build the local cluster's binaries into $FLASK_K8S_CACHE (nothing when cached)
	cluster/build.sh all

binaries: ## Build every cluster binary the tests use: the local cluster's, kube-router, the offline minikube's
	cluster/build.sh all
	cluster/build.sh kube-router
	cluster/build.sh --minikube all

cluster-up: venv ## Bring the local single-node cluster up and print its kubeconfig path
	$(CLUSTER_ANSIBLE) -e local_cluster_state=present
	@echo $(CLUSTER_KUBECONFIG)

cluster-down: venv ## Stop the local cluster and clean the host, keeping its volumes (CLUSTER_DELETE_DATA=true deletes them)
	$(CLUSTER_ANSIBLE) -e local_cluster_state=absent -e local_cluster_delete_volumes=$(CLUSTER_DELETE_DATA)

test-cluster: venv ## Acceptance tests of the local cluster (its own instance): up, checks, idempotency, down, clean host
	tests/cluster/run.sh
