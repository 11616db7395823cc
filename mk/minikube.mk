# The offline minikube (docs/minikube.md): minikube, its node image and every image and binary
# it would download, built on this machine. Not needed where minikube reaches the internet.

.PHONY: minikube-cache test-minikube

minikube-cache: ## Build the offline minikube's binaries, node image and images (nothing when in place)
	scripts/minikube-cache.sh

test-minikube: ## Start a real minikube profile offline, check it, start it again, delete it
	tests/minikube/run.sh
