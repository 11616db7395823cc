"""What the local cluster's probe uses: running a command, and the certificates' expiry."""

from __future__ import annotations

import glob
import os
import subprocess
from collections.abc import Callable

# Runs a command: (argv, extra environment) -> (exit status, standard output, standard error).
Runner = Callable[[list[str], dict[str, str]], tuple[int, str, str]]


def run(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Exit status, output and error output of a command; 127 and the reason when it cannot be
    started, as in a shell."""
    try:
        done = subprocess.run(  # noqa: S603 (the role's scripts, checks and binaries)
            argv,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
    except OSError as exc:
        return 127, "", str(exc)
    return (
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
    )


def certificates(pki_dir: str) -> list[str]:
    """The files `pki_dir/*.crt` (hidden ones left out, as a shell's glob does), in byte order."""
    found = glob.glob(os.path.join(glob.escape(pki_dir), "*.crt"))
    return sorted((path for path in found if os.path.isfile(path)), key=os.fsencode)


def expiring_certificates(pki_dir: str, seconds: int, runner: Runner) -> list[str]:
    """The certificates of pki_dir that end within seconds, or that openssl cannot read."""
    return [
        crt
        for crt in certificates(pki_dir)
        if runner(["openssl", "x509", "-noout", "-checkend", str(seconds), "-in", crt], {})[0]
    ]


def certificate_name(path: str) -> str:
    """A certificate's name: its file's without .crt."""
    return os.path.basename(path).removesuffix(".crt")
