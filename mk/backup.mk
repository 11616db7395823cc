# Backups of the records collection (roles/backup, playbooks/backup.yml and restore.yml,
# docs/backup.md).

# Extra arguments of ansible-playbook for backup/restore, e.g.
# BACKUP_ARGS='-e backup_fetch_dir=~/flask-k8s-backups' or BACKUP_ARGS='-e backup_replace=true'.
BACKUP_ARGS ?=
# A cron schedule turns the backup CronJob on with it, e.g. BACKUP_SCHEDULE='30 */6 * * *' (a
# schedule's spaces survive here, where -e backup_schedule=... in BACKUP_ARGS would split it).
BACKUP_SCHEDULE ?=
backup_schedule_args = -e '{"backup_schedule_enabled": true, "backup_schedule": "$(BACKUP_SCHEDULE)"}'
# Records of the backup benchmark.
BENCH_BACKUP_RECORDS ?= 100000

.PHONY: backup restore bench-backup

backup: venv ## Write a backup to the backup volume (BACKUP_ARGS='-e backup_fetch_dir=DIR' copies it here too; BACKUP_SCHEDULE='0 3 * * *' schedules them)
	ansible-playbook playbooks/backup.yml $(ANSIBLE_ARGS) \
	  $(if $(BACKUP_SCHEDULE),$(backup_schedule_args)) $(BACKUP_ARGS)

restore: venv ## Restore the latest backup (BACKUP_ARGS='-e backup_name=NAME', '-e backup_restore_file=FILE', '-e backup_replace=true')
	ansible-playbook playbooks/restore.yml $(ANSIBLE_ARGS) $(BACKUP_ARGS)

bench-backup: venv ## Benchmark dump, verify and restore of 100k records (BENCH_BACKUP_RECORDS) against FerretDB
	scripts/ferretdb.sh build
	python bench/bench_backup.py --records $(BENCH_BACKUP_RECORDS)
