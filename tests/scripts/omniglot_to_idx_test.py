#!/usr/bin/python3
"""Tests of scripts/omniglot_to_idx.py on the committed subset (tests/fixtures/omniglot).

Exit status 77 (ctest: skipped) when Pillow is missing; 0 when every check passes.
"""
import gzip
import hashlib
import io
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import zipfile

try:
    from PIL import Image
except ImportError:
    print("skipped: Pillow is missing (sudo apt-get install python3-pil)")
    sys.exit(77)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "omniglot_to_idx.py")
SUBSET = os.path.join(ROOT, "tests", "fixtures", "omniglot")
FIRST = "images_background/Alphabet_of_the_Magi/character01/0709_01.png"


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)


def slurp(path):
    with open(path, "rb") as f:
        return f.read()


def read_idx(path):
    data = slurp(path)
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    assert zero == 0
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    body = data[4 + 4 * ndim:]
    if type_code == 0x08:
        values = list(body)
    elif type_code == 0x0B:
        values = list(struct.unpack(">" + "h" * (len(body) // 2), body))
    else:
        raise AssertionError(f"unexpected type {type_code:#x}")
    return type_code, dims, values, body


class Converter(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="omniglot-test-")
        cls.out = os.path.join(cls.tmp, "lanczos")
        r = run("--data", SUBSET, "--out", cls.out)
        assert r.returncode == 0, r.stderr
        cls.summary = r.stdout

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def idx(self, name):
        return read_idx(os.path.join(self.out, name))

    def test_counts_and_types(self):
        self.assertIn("1140 images of 57 characters in 3 alphabets, 28 x 28, lanczos", self.summary)
        t, dims, _, body = self.idx("omniglot-images-idx3-ubyte")
        self.assertEqual((t, dims, len(body)), (0x08, (1140, 28, 28), 1140 * 784))
        t, dims, chars, _ = self.idx("omniglot-characters-idx1-short")
        self.assertEqual((t, dims), (0x0B, (1140,)))
        self.assertEqual(chars, [c for c in range(57) for _ in range(20)])  # 20 drawings each, in order
        t, dims, alphabets, _ = self.idx("omniglot-alphabets-idx1-ubyte")
        self.assertEqual((t, dims), (0x08, (1140,)))
        self.assertEqual(alphabets, [0] * 400 + [1] * 340 + [2] * 400)  # Magi 20, Tagalog 17, Angelic 20

    def test_index(self):
        lines = slurp(os.path.join(self.out, "omniglot-index.tsv")).decode("utf-8").splitlines()
        self.assertEqual(lines[0], "character\tset\talphabet\tfolder\tfirst\tcount")
        self.assertEqual(len(lines), 58)
        self.assertEqual(lines[1], "0\tbackground\tAlphabet_of_the_Magi\tcharacter01\t0\t20")
        self.assertEqual(lines[38], "37\tevaluation\tAngelic\tcharacter01\t740\t20")
        folders = [l.split("\t")[3] for l in lines[1:21]]  # by number, not by text
        self.assertEqual(folders, [f"character{i:02d}" for i in range(1, 21)])

    def test_known_drawing(self):
        z = zipfile.ZipFile(os.path.join(SUBSET, "images_background.zip"))
        png = z.read(FIRST)
        self.assertEqual(hashlib.sha256(png).hexdigest(),
                         "437a6a4c96caa67554627896528129086f131e6ee85cc8a7e7397bf1ed42b71e")  # the official bytes
        _, _, _, body = self.idx("omniglot-images-idx3-ubyte")
        first = body[:784]
        original = Image.open(io.BytesIO(png)).convert("L").tobytes()
        ink = sum(1 for v in original if v == 0) / len(original)
        # anti-aliased: grey levels between ink and paper; paper 0 and ink high, as MNIST
        self.assertGreater(len(set(first)), 10)
        self.assertEqual(first[0], 0)
        # the ink's mass is kept (Lanczos preserves the mean up to its small overshoot)
        self.assertAlmostEqual(sum(first) / 255 / 784, ink, delta=0.1 * ink)

    def test_nearest_reproduces_the_binary_images(self):
        out = os.path.join(self.tmp, "nearest")
        r = run("--data", SUBSET, "--out", out, "--resample", "nearest", "--gzip", "--alphabets", "Alphabet_of_the_Magi")
        self.assertEqual(r.returncode, 0, r.stderr)
        _, dims, values, body = read_idx(os.path.join(out, "omniglot-images-idx3-ubyte.gz"))
        self.assertEqual(dims, (400, 28, 28))
        self.assertEqual(set(values), {0, 255})
        self.assertEqual(hashlib.sha256(body[:784]).hexdigest(),
                         "08c4d050340c82c00f4178d700e12b53aabf608439e1c11d099eb04f9d077796")
        # what the MAML authors' resize_images.py does: a Lanczos resize of the 1-bit image,
        # which Pillow performs as nearest-neighbour
        z = zipfile.ZipFile(os.path.join(SUBSET, "images_background.zip"))
        im = Image.open(io.BytesIO(z.read(FIRST)))
        theirs = im.resize((28, 28), resample=Image.LANCZOS).convert("L").tobytes()
        self.assertEqual(bytes(255 - v for v in theirs), body[:784])

    def test_extracted_folders_give_the_same_files(self):
        folder = os.path.join(self.tmp, "extracted")
        for name in ("images_background.zip", "images_evaluation.zip"):
            zipfile.ZipFile(os.path.join(SUBSET, name)).extractall(folder)
        out = os.path.join(self.tmp, "from-folders")
        r = run("--data", folder, "--out", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        for name in ("omniglot-images-idx3-ubyte", "omniglot-characters-idx1-short", "omniglot-index.tsv"):
            self.assertEqual(slurp(os.path.join(out, name)), slurp(os.path.join(self.out, name)))

    def test_committed_converted_subset_is_the_converters_output(self):
        # tests/fixtures/omniglot/idx (read by the C++ tests) holds exactly what the converter makes
        committed = os.path.join(SUBSET, "idx")
        for name in ("omniglot-images-idx3-ubyte", "omniglot-characters-idx1-short", "omniglot-alphabets-idx1-ubyte"):
            self.assertEqual(gzip.decompress(slurp(os.path.join(committed, name + ".gz"))),
                             slurp(os.path.join(self.out, name)), name)
        self.assertEqual(slurp(os.path.join(committed, "omniglot-index.tsv")),
                         slurp(os.path.join(self.out, "omniglot-index.tsv")))

    def test_bad_input(self):
        r = run("--data", os.path.join(self.tmp, "nothing-here"), "--out", os.path.join(self.tmp, "x"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("expected images_background.zip and images_evaluation.zip", r.stderr)
        self.assertIn("github.com/brendenlake/omniglot", r.stderr)
        r = run("--data", SUBSET, "--out", os.path.join(self.tmp, "x"), "--alphabets", "Klingon")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no alphabet named Klingon", r.stderr)
        bad = os.path.join(self.tmp, "bad")
        os.makedirs(bad)
        with open(os.path.join(bad, "images_background.zip"), "wb") as f:
            f.write(b"PK\x03\x04 not really a zip")
        r = run("--data", bad, "--out", os.path.join(self.tmp, "x"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a readable zip", r.stderr)
        with zipfile.ZipFile(os.path.join(bad, "images_background.zip"), "w") as z:  # a drawing of another size
            buf = io.BytesIO()
            Image.new("1", (64, 64), 1).save(buf, format="PNG")
            z.writestr("images_background/A/character01/0001_01.png", buf.getvalue())
        r = run("--data", bad, "--out", os.path.join(self.tmp, "x"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("64 x 64 pixels, expected 105 x 105", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "x", "omniglot-images-idx3-ubyte")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
