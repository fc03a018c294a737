"""`crm export -o PATH` writes where a shell redirection would, and never replaces what is at
PATH with something else: a regular file is replaced only by a complete export (write, then
rename), a symlink is followed, devices and named pipes are written directly; a full disk is
one line and exit 1, with nothing half-written left behind."""
from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import threading

import pytest

CUSTOMERS = "external_ref,name\n" + "".join(f"C{i:03},Customer number {i}\n" for i in range(60))


@pytest.fixture
def data(cli, tmp_path):
    src = tmp_path / "c.csv"
    src.write_text(CUSTOMERS, encoding="utf-8")
    res = cli("import", "customers", str(src))
    assert res.exit_code == 0, res.output
    return cli("export", "customers").output  # what every target must receive


def crm(crm_url: str, *args: str, **kw) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", "from crmcore.cli import main; main()", "--database", crm_url, *args]
    env = {**os.environ, "CRM_DISABLE_PLUGINS": ""}
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.run(cmd, text=True, env=env, timeout=60, check=False, **kw)


def test_regular_file_is_replaced_whole_and_keeps_its_mode(cli, data, tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("old content\n")
    out.chmod(0o640)
    res = cli("export", "customers", "-o", str(out))
    assert res.exit_code == 0, res.output
    assert out.read_text(encoding="utf-8") == data
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir() if ".part" in p.name) == []


def test_symlink_is_followed_like_a_redirection(cli, data, tmp_path):
    target = tmp_path / "real.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    assert cli("export", "customers", "-o", str(link)).exit_code == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text(encoding="utf-8") == data
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "created-by-export.csv")
    assert cli("export", "customers", "-o", str(dangling)).exit_code == 0
    assert dangling.is_symlink() and (tmp_path / "created-by-export.csv").read_text(encoding="utf-8") == data


def test_fifo_is_written_directly(cli, data, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text(encoding="utf-8")))
    reader.start()
    res = cli("export", "customers", "-o", str(fifo))
    reader.join(10)
    assert res.exit_code == 0, res.output
    assert got == [data]
    assert stat.S_ISFIFO(fifo.stat().st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_character_devices_stay_devices(cli, data, tmp_path):
    node = tmp_path / "x"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # `mknod x c 1 3`: a /dev/null
    res = cli("export", "customers", "-o", str(node))
    assert res.exit_code == 0, res.output
    st = node.stat()
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert cli("export", "customers", "-o", "/dev/null").exit_code == 0
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_dev_full_is_one_line_and_exit_1(crm_url, data):
    res = crm(crm_url, "export", "customers", "-o", "/dev/full")
    assert res.returncode == 1, res.stderr
    assert res.stderr.strip() == "error: cannot write /dev/full: No space left on device"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    with open("/dev/full", "w") as full:  # standard output on a full disk: the same, never a traceback
        res = crm(crm_url, "export", "customers", stdout=full, stderr=subprocess.PIPE)
    assert res.returncode == 1
    assert res.stderr.strip() == "error: cannot write to standard output: No space left on device"


def test_a_full_disk_leaves_the_old_file_and_no_partial_file(cli, data, tmp_path, monkeypatch):
    from crmcore.bulk import cli as bulk_cli

    real = bulk_cli.exporter.export

    def fills_the_disk(crm, entity, out, fmt="csv"):  # half an export, then the disk is full
        out.write(data[: len(data) // 2])
        out.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    out = tmp_path / "out.csv"
    out.write_text("the previous export\n")
    monkeypatch.setattr(bulk_cli.exporter, "export", fills_the_disk)
    res = cli("export", "customers", "-o", str(out))
    assert res.exit_code == 1
    assert res.output.strip() == f"error: cannot write {out}: No space left on device"
    assert out.read_text() == "the previous export\n"
    new = tmp_path / "new.csv"
    assert cli("export", "customers", "-o", str(new)).exit_code == 1 and not new.exists()
    assert [p.name for p in tmp_path.iterdir() if ".part" in p.name] == []
    monkeypatch.setattr(bulk_cli.exporter, "export", real)
    assert cli("export", "customers", "-o", str(out)).exit_code == 0 and out.read_text(encoding="utf-8") == data


def test_directories_and_missing_folders_are_refused(cli, data, tmp_path):
    res = cli("export", "customers", "-o", str(tmp_path))
    assert res.exit_code == 1 and res.output.strip() == f"error: cannot write {tmp_path}: it is a directory"
    res = cli("export", "customers", "-o", str(tmp_path / "no" / "such.csv"))
    assert res.exit_code == 1 and "does not exist" in res.output
