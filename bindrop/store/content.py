"""What an uploaded file is, judged from its first bytes.

A deploy that uploads the wrong thing (a .zip, a binary for another CPU, a script saved with
Windows line endings) would otherwise fail later as systemd's terse ``203/EXEC``. These checks
catch it at upload and say what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from bindrop.errors import InvalidInput

Kind = Literal["elf", "script", "gzip"]

HEAD_SIZE = 256

ELF_MAGIC = b"\x7fELF"
GZIP_MAGIC = b"\x1f\x8b"
SHEBANG = b"#!"

_ET_EXEC = 2
_ET_DYN = 3
# e_machine values (the ELF spec) for the machines ``platform.machine()`` reports.
ELF_MACHINES: dict[str, int] = {
    "x86_64": 62,
    "amd64": 62,
    "aarch64": 183,
    "arm64": 183,
    "armv7l": 40,
    "armv6l": 40,
    "i386": 3,
    "i686": 3,
    "riscv64": 243,
    "ppc64le": 21,
    "s390x": 22,
}
_MACHINE_NAMES = {
    62: "x86_64",
    183: "aarch64 (arm64)",
    40: "32-bit arm",
    3: "i386",
    243: "riscv64",
    21: "ppc64",
    22: "s390x",
}


def read_head(path: Path, size: int = HEAD_SIZE) -> bytes:
    """Return the first ``size`` bytes of the file at ``path`` (fewer if it is shorter)."""
    with open(path, "rb") as f:
        return f.read(size)


def kind_of(head: bytes) -> Kind | None:
    """Return what the bytes ``head`` start: an ELF binary, a ``#!`` script, gzip data, or
    ``None`` for anything else. Pure."""
    if head.startswith(ELF_MAGIC):
        return "elf"
    if head.startswith(SHEBANG):
        return "script"
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    return None


def sniff_kind(path: Path) -> Kind | None:
    """Return ``kind_of`` the first bytes of the file at ``path``."""
    return kind_of(read_head(path))


def check_executable_content(head: bytes, *, bundle: bool, machine: str | None = None) -> None:
    """Raise ``InvalidInput`` unless ``head`` starts something bindrop can run. Pure.

    A bundle must be gzip data (a ``.tar.gz``). Anything else must be an ELF executable (not
    an object file; built for ``machine``, as ``platform.machine()`` names it, when given and
    known) or a script whose ``#!`` line names an interpreter and does not end in CRLF.
    ``head`` should be at least ``HEAD_SIZE`` bytes of the file, or all of it.
    """
    kind = kind_of(head)
    if not head:
        raise InvalidInput("the upload is empty")
    if bundle:
        if kind != "gzip":
            raise InvalidInput(
                "the upload is not a .tar.gz bundle (it is not gzip-compressed); upload a "
                ".tar.gz archive with --cmd, or leave out --cmd to deploy a single program"
            )
        return
    if kind == "gzip":
        raise InvalidInput(
            "the upload is gzip-compressed, not a program; for a .tar.gz bundle pass --cmd "
            "with the command to run inside it"
        )
    if kind == "elf":
        _check_elf(head, machine)
    elif kind == "script":
        _check_shebang(head)
    else:
        raise InvalidInput(
            "the upload is neither an ELF binary nor a script with a #! line; for a .tar.gz "
            "bundle pass --cmd"
        )


def _check_elf(head: bytes, machine: str | None) -> None:
    if len(head) < 20 or head[5] not in (1, 2):
        raise InvalidInput("the upload starts like an ELF binary but is cut short or damaged")
    order: Literal["little", "big"] = "little" if head[5] == 1 else "big"
    e_type = int.from_bytes(head[16:18], order)
    e_machine = int.from_bytes(head[18:20], order)
    if e_type not in (_ET_EXEC, _ET_DYN):
        raise InvalidInput(
            "the upload is an ELF file but not a program (an object file or core dump?); "
            "upload the linked executable"
        )
    wanted = ELF_MACHINES.get(machine or "")
    if wanted is not None and e_machine != wanted:
        built_for = _MACHINE_NAMES.get(e_machine, f"machine type {e_machine}")
        raise InvalidInput(
            f"the upload is a program for {built_for}, but this server is {machine}; build it "
            f"for {machine} (for Go: GOARCH=amd64 for x86_64, GOARCH=arm64 for aarch64)"
        )


def _check_shebang(head: bytes) -> None:
    line, newline, _ = head.partition(b"\n")
    if not line[len(SHEBANG) :].strip():
        raise InvalidInput("the script's #! line names no interpreter; use e.g. #!/bin/sh")
    if newline and line.endswith(b"\r"):
        raise InvalidInput(
            "the script's #! line ends with a Windows line ending (CRLF), so the kernel "
            "cannot find its interpreter; convert the file to LF line endings (dos2unix)"
        )
