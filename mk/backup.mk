# Backups of the records collection (flask_k8s.stack.backup, playbooks/backup.yml and restore.yml,
# docs/backup.md).

# Extra arguments of ansible-playbook for the backup targets, e.g.
# BACKUP_ARGS='-e backup_fetch_dir=~/flask-k8s-backups' or BACKUP_ARGS='-e backup_replace=true'.
BACKUP_ARGS ?=
# A cron schedule turns the backup CronJob on with it, e.g. BACKUP_SCHEDULE='30 */6 * * *' (a
# schedule's spaces survive here, where -e backup_schedule=... in BACKUP_ARGS would split it).
BACKUP_SCHEDULE ?=
backup_schedule_args = -e '{"backup_schedule_enabled": true, "backup_schedule": "$(BACKUP_SCHEDULE)"}'
# Records of the backup benchmark.
BENCH_BACKUP_RECORDS ?= 100000
# playbooks/backup.yml doing one of the tool's other jobs: $(call backup_play,ACTION).
backup_play = ansible-playbook playbooks/backup.yml -e backup_action=$(1) $(ANSIBLE_ARGS) $(BACKUP_ARGS)

.PHONY: backup restore backup-status backup-verify backup-prune backup-drill bench-backup

backup: venv ## Write a backup to the backup volume (BACKUP_ARGS='-e backup_fetch_dir=DIR' copies it here too; BACKUP_SCHEDULE='0 3 * * *' schedules them)
	ansible-playbook playbooks/backup.yml $(ANSIBLE_ARGS) \
	  $(if $(BACKUP_SCHEDULE),$(backup_schedule_args)) $(BACKUP_ARGS)

restore: venv ## Restore the latest backup (BACKUP_ARGS='-e backup_name=NAME', '-e backup_restore_file=FILE', '-e backup_replace=true', '-e backup_recover=true')
	ansible-playbook playbooks/restore.yml $(ANSIBLE_ARGS) $(BACKUP_ARGS)

backup-status: venv ## Print the newest good backup; fail when the scheduled ones are older than twice the CronJob's interval
	$(call backup_play,status)

backup-verify: venv ## Read every backup on the backup volume whole (count and SHA-256); fail naming any damaged one
	$(call backup_play,verify)

backup-prune: venv ## Keep the newest backup_keep backups (BACKUP_ARGS='-e backup_prune_min_ratio=0' accepts a shrink)
	$(call backup_play,prune)

backup-drill: venv ## Restore a backup into a scratch collection and compare it with the records, changing nothing (BACKUP_ARGS='-e backup_name=NAME')
	$(call backup_play,drill)

bench-backup: venv ## Benchmark dump, verify, drill and restore (today's and freeze-and-swap, beside a writer) of 100k records (BENCH_BACKUP_RECORDS) against FerretDB
	scripts/ferretdb.sh build
	python bench/bench_backup.py --records $(BENCH_BACKUP_RECORDS)
