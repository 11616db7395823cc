# Backups of the records collection (roles/backup, playbooks/backup.yml and restore.yml,
# docs/backup.md).

# Extra arguments of ansible-playbook for backup/restore, e.g.
# BACKUP_ARGS='-e backup_fetch_dir=~/flask-k8s-backups' or BACKUP_ARGS='-e backup_replace=true'.
BACKUP_ARGS ?=
# Records of the backup benchmark.
BENCH_BACKUP_RECORDS ?= 100000

.PHONY: backup restore bench-backup

backup: venv ## Write a backup to the backup volume (BACKUP_ARGS='-e backup_fetch_dir=DIR' copies it here too)
	ansible-playbook playbooks/backup.yml $(ANSIBLE_ARGS) $(BACKUP_ARGS)

restore: venv ## Restore the latest backup (BACKUP_ARGS='-e backup_name=NAME', '-e backup_restore_file=FILE', '-e backup_replace=true')
	ansible-playbook playbooks/restore.yml $(ANSIBLE_ARGS) $(BACKUP_ARGS)

bench-backup: venv ## Benchmark dump, verify and restore of 100k records (BENCH_BACKUP_RECORDS) against FerretDB
	scripts/ferretdb.sh build
	python bench/bench_backup.py --records $(BENCH_BACKUP_RECORDS)
