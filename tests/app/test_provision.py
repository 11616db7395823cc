"""python -m flaskapp.provision against the real server: create, unchanged, password update."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
import uuid

import pytest
from conftest import needs_ferretdb
from flaskapp.provision import ADMIN_REFUSED, EXIT_ADMIN_REFUSED, EXIT_CONFIG
from pymongo import MongoClient, uri_parser
from pymongo.errors import OperationFailure
from support import APP_DIR, REPO, FerretDB, mongo_uri


def admin_env(mongo) -> dict[str, str]:
    return admin_env_for(mongo.admin_uri, mongo.host, mongo.port)


def admin_env_for(admin_uri: str, host: str, port: int) -> dict[str, str]:
    parsed = uri_parser.parse_uri(admin_uri)
    return {
        "MONGODB_HOST": host,
        "MONGODB_PORT": str(port),
        "MONGODB_ADMIN_USERNAME": parsed["username"],
        "MONGODB_ADMIN_PASSWORD": parsed["password"],
        "MONGODB_ADMIN_AUTH_SOURCE": parsed["options"].get("authSource", "admin"),
    }


def provision(env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MONGODB_")}
    return subprocess.run(
        [sys.executable, "-m", "flaskapp.provision"],
        env={**clean, "PYTHONPATH": str(APP_DIR), "MONGODB_TIMEOUT_MS": "1000", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def can_log_in(mongo, user: str, password: str, database: str) -> bool:
    uri = mongo_uri(mongo.host, mongo.port, user, password, database)
    with MongoClient(uri, serverSelectionTimeoutMS=3000) as client:
        try:
            client[database]["probe"].insert_one({"ok": True})
            return True
        except OperationFailure as exc:
            if exc.code in (13, 18):
                return False
            raise


@pytest.fixture
def app_user(mongo):
    user = f"app_{uuid.uuid4().hex[:8]}"
    database = f"prov_{uuid.uuid4().hex[:8]}"
    yield user, database
    with mongo.client() as client:
        with contextlib.suppress(OperationFailure):
            client[database].command("dropUser", user)
        client.drop_database(database)


def test_creates_then_unchanged_then_updates_password(mongo, app_user):
    user, database = app_user
    first, second = f"pw-{uuid.uuid4().hex}", f"pw-{uuid.uuid4().hex}"
    env = {**admin_env(mongo), "MONGODB_USERNAME": user, "MONGODB_DATABASE": database}

    created = provision({**env, "MONGODB_PASSWORD": first})
    assert created.returncode == 0, created.stderr
    assert created.stdout.count("\n") == 1
    assert f"user '{user}' on database '{database}': created" in created.stdout
    assert can_log_in(mongo, user, first, database)

    again = provision({**env, "MONGODB_PASSWORD": first})
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().endswith(": unchanged") or "unchanged (" in again.stdout

    updated = provision({**env, "MONGODB_PASSWORD": second})
    assert updated.returncode == 0, updated.stderr
    assert ": password updated" in updated.stdout
    assert can_log_in(mongo, user, second, database)
    # FerretDB with new authentication (and MongoDB) refuse the replaced password.
    assert not can_log_in(mongo, user, first, database)

    for result in (created, again, updated):
        for secret in (first, second, admin_env(mongo)["MONGODB_ADMIN_PASSWORD"]):
            assert secret not in result.stdout + result.stderr


def test_roles_are_readwrite_on_the_database_where_supported(mongo, app_user):
    user, database = app_user
    env = {
        **admin_env(mongo),
        "MONGODB_USERNAME": user,
        "MONGODB_DATABASE": database,
        "MONGODB_PASSWORD": "pw-roles",
    }
    result = provision(env)
    assert result.returncode == 0, result.stderr
    with mongo.client() as client:
        info = client[database].command("usersInfo", {"user": user, "db": database})["users"][0]
    if mongo.is_ferretdb:
        # FerretDB 1.24 refuses non-empty roles (NotImplemented): no authorization there.
        assert info["roles"] == []
        assert "does not implement roles" in result.stdout
    else:
        assert [(r["role"], r["db"]) for r in info["roles"]] == [("readWrite", database)]


def test_wrong_admin_password_fails_with_one_line(mongo, app_user):
    user, database = app_user
    env = {
        **admin_env(mongo),
        "MONGODB_ADMIN_PASSWORD": "wrong",
        "MONGODB_USERNAME": user,
        "MONGODB_PASSWORD": "x",
        "MONGODB_DATABASE": database,
    }
    result = provision(env)
    # 3: certain, so the Job's pod failure policy fails the Job at once instead of retrying.
    assert result.returncode == EXIT_ADMIN_REFUSED == 3
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "flaskapp.provision: error: the database refused the administrator credentials:"
        " they are not those its data was created with"
    ]


def test_the_mongodb_role_recognises_refused_administrator_credentials():
    # The role's rescue tells the user how to recover when the Job's last line has these words
    # (a re-run cannot help there); elsewhere it says a re-run replaces the Job.
    role = REPO / "collections/ansible_collections/flask_k8s/stack/roles/mongodb"
    tasks = role / "tasks/provision.yml"
    words = re.findall(r"'([^']+)' in mongodb_provision_line", tasks.read_text())
    assert len(words) == 1
    assert words[0] in ADMIN_REFUSED


def test_the_provisioning_job_fails_at_once_on_the_certain_exit_codes():
    # The Job's pod failure policy ends it on the exits that no retry mends, and on no other
    # (a database still starting is retried).
    job = REPO / "collections/ansible_collections/flask_k8s/stack/roles/mongodb/templates"
    text = (job / "provision-job.yaml.j2").read_text()
    rules = re.findall(
        r"- action: FailJob\s+onExitCodes:\s+containerName: provision\s+"
        r"operator: In\s+values: \[([0-9, ]+)\]",
        text,
    )
    assert [sorted(int(code) for code in rule.split(",")) for rule in rules] == [
        sorted([EXIT_CONFIG, EXIT_ADMIN_REFUSED])
    ]


@pytest.mark.parametrize("missing", ["MONGODB_PASSWORD", "MONGODB_ADMIN_USERNAME"])
def test_missing_setting_is_a_configuration_error(mongo, missing):
    env = {**admin_env(mongo), "MONGODB_USERNAME": "u", "MONGODB_PASSWORD": "p"}
    env[missing] = ""
    result = provision(env)
    assert result.returncode == EXIT_CONFIG == 2
    assert (
        result.stderr.strip() == f"flaskapp.provision: configuration error: {missing} must be set"
    )


@needs_ferretdb
def test_waits_for_a_late_server_and_gives_up_at_the_deadline(ferretdb_bin, tmp_path):
    server = FerretDB(ferretdb_bin, tmp_path / "late")
    env = {
        **admin_env(
            type(
                "M", (), {"admin_uri": server.admin_uri, "host": "127.0.0.1", "port": server.port}
            )()
        ),
        "MONGODB_USERNAME": "app",
        "MONGODB_PASSWORD": "pw",
        "MONGODB_DATABASE": "late",
    }

    started = time.monotonic()
    # A long MONGODB_TIMEOUT_MS does not stretch the wait: attempts are capped at 10 s.
    gave_up = provision({**env, "PROVISION_TIMEOUT_SECONDS": "3", "MONGODB_TIMEOUT_MS": "240000"})
    assert gave_up.returncode == 1
    assert "database not reachable before the deadline" in gave_up.stderr
    assert len(gave_up.stderr.strip().splitlines()) == 1
    assert time.monotonic() - started < 20

    starter = threading.Timer(3, server.start)
    starter.start()
    try:
        result = provision({**env, "PROVISION_TIMEOUT_SECONDS": "60"})
        assert result.returncode == 0, result.stderr
        assert ": created" in result.stdout
    finally:
        starter.join()
        server.stop()
