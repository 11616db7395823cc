module flask-k8s/tests/cluster/probe

go 1.24.0
