"""`scripts/image.sh flash`: it writes an image to a whole disk, and refuses a disk in use
(mounted, held open exclusively), one too small, and one not confirmed. Loop devices stand in
for disks; the image is a small file of random bytes (flash copies bytes, whatever they are).
"""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts/image.sh"


def loop(path: Path, size: int) -> str:
    with open(path, "wb") as f:
        f.truncate(size)
    return subprocess.run(["losetup", "-f", "--show", str(path)], check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def disks(tmp_path):
    made = []

    def make(size):
        dev = loop(tmp_path / f"disk{len(made)}", size)
        made.append(dev)
        return dev

    yield make
    for dev in made:
        subprocess.run(["umount", dev], capture_output=True)
        subprocess.run(["losetup", "-d", dev], capture_output=True)


def flash(image, dev, *extra, stdin=""):
    return subprocess.run(["bash", str(SCRIPT), "flash", str(image), dev, *extra],
                          input=stdin, capture_output=True, text=True, timeout=120)


@pytest.fixture
def image(tmp_path):
    p = tmp_path / "test.img"
    p.write_bytes(os.urandom(8 << 20))
    return p


def test_flash_writes_the_image_and_refuses_disks_in_use(tmp_path, disks, image):
    dev = disks(16 << 20)
    small = disks(4 << 20)

    r = flash(image, small, "--yes")
    assert r.returncode != 0 and "the image needs" in r.stderr, r.stderr

    # Mounted: refused, and not a byte written.
    subprocess.run(["mkfs.ext4", "-q", dev], check=True)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", dev, str(mnt)], check=True)
    r = flash(image, dev, "--yes")
    assert r.returncode != 0 and "is mounted" in r.stderr, r.stderr
    subprocess.run(["umount", str(mnt)], check=True)
    # Not a byte of the image went there: the filesystem is whole.
    subprocess.run(["e2fsck", "-fn", dev], check=True, capture_output=True)

    # Held open exclusively by another user (as a mounted filesystem, RAID or LVM would).
    holder = subprocess.Popen(
        ["python3", "-c", "import os,sys,time; os.open(sys.argv[1], os.O_RDONLY | os.O_EXCL); "
         "print('held', flush=True); time.sleep(60)", dev],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        r = flash(image, dev, "--yes")
        assert r.returncode != 0 and "busy" in r.stderr, r.stderr
    finally:
        holder.kill()
        holder.wait()

    # Not confirmed: the operator must type the device's name back.
    r = flash(image, dev, stdin="yes\n")
    assert r.returncode != 0 and "not confirmed" in r.stderr, r.stderr

    r = flash(image, dev, stdin=os.path.basename(dev) + "\n")
    assert r.returncode == 0, r.stderr
    assert Path(dev).read_bytes()[: 8 << 20] == image.read_bytes()

    # A compressed image is written decompressed.
    subprocess.run(["zstd", "-q", "-f", str(image)], check=True)
    Path(dev).write_bytes(b"\0" * (16 << 20))
    r = flash(Path(str(image) + ".zst"), dev, "--yes")
    assert r.returncode == 0, r.stderr
    assert Path(dev).read_bytes()[: 8 << 20] == image.read_bytes()


def test_flash_refuses_what_is_not_a_disk(tmp_path, image):
    r = flash(image, str(tmp_path / "nothing"), "--yes")
    assert r.returncode != 0 and "not a block device" in r.stderr, r.stderr
    r = flash(tmp_path / "missing.img", "/dev/null", "--yes")
    assert r.returncode != 0 and "no such image" in r.stderr, r.stderr
