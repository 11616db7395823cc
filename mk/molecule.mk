# End-to-end test: molecule's default scenario on a real local cluster (see molecule/).

.PHONY: molecule verify

molecule: venv ## Run `molecule test`: local cluster, converge, idempotence, verify, destroy
	molecule test

verify: venv ## Run playbooks/verify.yml against the current deployment (report under reports/)
	ansible-playbook playbooks/verify.yml $(ANSIBLE_ARGS) $(VERIFY_ARGS)
