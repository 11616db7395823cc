# End-to-end test: molecule's default scenario on a real local cluster (see molecule/).

.PHONY: molecule verify

molecule: setup ## Run `molecule test`: local cluster, converge, idempotence, verify, destroy
	molecule test

verify: setup ## Run playbooks/verify.yml against the current deployment (report under reports/)
	ansible-playbook playbooks/verify.yml $(VERIFY_ARGS)
