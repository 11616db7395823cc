# Local single-node Kubernetes cluster (cluster/, roles/local_cluster, docs/local-cluster.md).
CLUSTER_PLAYBOOK := cluster/cluster.yml
CLUSTER_KUBECONFIG := /var/lib/flask-k8s/cluster/admin.kubeconfig
CLUSTER_ANSIBLE := ANSIBLE_CONFIG=cluster/ansible.cfg ansible-playbook $(CLUSTER_PLAYBOOK)

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

cluster-down: venv ## Stop the local cluster and remove everything it left on the host
	$(CLUSTER_ANSIBLE) -e local_cluster_state=absent

test-cluster: venv ## Acceptance tests of the local cluster: up, checks, idempotency, down, clean host
	tests/cluster/run.sh
