#!/usr/bin/python3
"""Converts Omniglot (Lake et al. 2015) into IDX files: one data format for the whole project.

    scripts/omniglot_to_idx.py --data DIR --out DIR [--size 28] [--resample lanczos|nearest]
                               [--gzip] [--alphabets A,B,...]
    scripts/omniglot_to_idx.py --data DIR --subset DIR --alphabets A,B,...

DIR holds the two official zips (images_background.zip, images_evaluation.zip from
github.com/brendenlake/omniglot, folder python/) or their extracted folders. Writes to --out:

    omniglot-images-idx3-ubyte        n x size x size unsigned bytes, ink 255, paper 0 (as MNIST)
    omniglot-characters-idx1-short    n 16-bit character indices 0..C-1 (the class of each image)
    omniglot-alphabets-idx1-ubyte     n alphabet indices 0..A-1
    omniglot-index.tsv                one line per character: index, set (background or
                                      evaluation), alphabet, character folder, first image, count

(with --gzip each IDX file gets .gz; metalearn/io/idx_gzip.hpp reads those). The order is fixed:
the background set, then the evaluation set; alphabets by name; characters by number; drawings
by file name. So character c of the index is class c of the labels on every machine.

Resizing: each 105 x 105 1-bit drawing is taken as 8-bit grey (0 ink, 255 paper), resized with
Pillow's Lanczos filter (anti-aliased: a thin stroke becomes grey, not lost or doubled) and
inverted. Note that resizing the 1-bit image itself, as the MAML authors' resize_images.py does
(Image.open(f).resize((28, 28), resample=Image.LANCZOS)), is silently nearest-neighbour: Pillow
resamples mode "1" images with NEAREST whatever filter is asked for. --resample nearest
reproduces those binary images (inverted like the default), for comparisons with that code.

--subset writes the drawings of the chosen alphabets, unchanged, into zips in the official
layout (images_background.zip and/or images_evaluation.zip in the folder given; the tests'
committed subset, tests/fixtures/omniglot, is made this way; its idx/ folder is this script's --gzip output).

Needs Debian's python3-pil. Exit status 2 for bad arguments or missing data, 1 for a bad file.
"""
import argparse
import gzip
import io
import os
import re
import struct
import sys
import tempfile
import time
import zipfile

SETS = ("images_background", "images_evaluation")
ORIGINAL_SIZE = 105


class DataError(Exception):
    pass


class Source:
    """The drawings of one set, from its zip or from its extracted folder."""

    def __init__(self, data, name):
        self.name = name
        zpath = os.path.join(data, name + ".zip")
        folder = os.path.join(data, name)
        self.zip = None
        self.folder = None
        if os.path.isfile(zpath):
            try:
                self.zip = zipfile.ZipFile(zpath)
            except zipfile.BadZipFile as e:
                raise DataError(f"{zpath}: not a readable zip ({e})")
            self.where = zpath
            self.paths = [n for n in self.zip.namelist() if n.lower().endswith(".png")]
        elif os.path.isdir(folder):
            self.folder = data
            self.where = folder
            self.paths = []
            for root, _, files in os.walk(folder):
                for f in files:
                    if f.lower().endswith(".png"):
                        rel = os.path.relpath(os.path.join(root, f), data)
                        self.paths.append(rel.replace(os.sep, "/"))
        else:
            self.where = None
            self.paths = []

    def read(self, path):
        if self.zip is not None:
            try:
                return self.zip.read(path)
            except (zipfile.BadZipFile, OSError, EOFError) as e:  # a CRC error, a truncated member
                raise DataError(f"{self.where}: cannot read {path} ({e})")
        with open(os.path.join(self.folder, path), "rb") as f:
            return f.read()


def number(s):
    m = re.search(r"(\d+)$", s)
    return int(m.group(1)) if m else -1


def catalogue(sources, alphabets):
    """[(set, alphabet, character, [paths])] in the fixed order; checks the layout."""
    chars = {}
    for src in sources:
        for p in src.paths:
            parts = p.split("/")
            if len(parts) != 4 or parts[0] != src.name:
                raise DataError(f"{src.where}: unexpected entry '{p}', expected {src.name}/<alphabet>/<character>/<file>.png")
            chars.setdefault((src.name, parts[1], parts[2]), []).append(p)
    if alphabets is not None:
        known = {a for (_, a, _) in chars}
        missing = [a for a in alphabets if a not in known]
        if missing:
            raise DataError(f"no alphabet named {', '.join(missing)} (the data has {len(known)}: {', '.join(sorted(known))})")
        chars = {k: v for k, v in chars.items() if k[1] in alphabets}
    order = sorted(chars, key=lambda k: (SETS.index(k[0]), k[1], number(k[2]), k[2]))
    return [(s, a, c, sorted(chars[(s, a, c)])) for (s, a, c) in order]


def convert_image(data, path, size, resample):
    from PIL import Image, ImageOps
    try:
        im = Image.open(io.BytesIO(data))
        im.load()
    except Exception as e:  # Pillow raises several kinds for a corrupt PNG
        raise DataError(f"{path}: not a readable PNG ({e})")
    if im.size != (ORIGINAL_SIZE, ORIGINAL_SIZE):
        raise DataError(f"{path}: {im.size[0]} x {im.size[1]} pixels, expected {ORIGINAL_SIZE} x {ORIGINAL_SIZE}")
    if resample == "nearest":
        small = im.resize((size, size), resample=Image.NEAREST).convert("L")
    else:
        small = im.convert("L").resize((size, size), resample=Image.LANCZOS)
    return ImageOps.invert(small).tobytes()


def idx_bytes(type_code, dims, payload):
    return struct.pack(">BBBB", 0, 0, type_code, len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + payload


def write_atomically(path, content, compress):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".omniglot-", dir=directory)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make the data private
    try:
        with os.fdopen(fd, "wb") as f:
            if compress:
                with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as g:  # mtime 0: reproducible
                    g.write(content)
            else:
                f.write(content)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="folder with the two official zips or their extracted folders")
    ap.add_argument("--out", help="folder for the IDX files (created)")
    ap.add_argument("--size", type=int, default=28, help="side of the resized images (default 28)")
    ap.add_argument("--resample", choices=("lanczos", "nearest"), default="lanczos")
    ap.add_argument("--gzip", action="store_true", help="write .gz IDX files")
    ap.add_argument("--alphabets", help="only these alphabets (comma-separated folder names)")
    ap.add_argument("--subset", help="write the chosen alphabets' drawings, unchanged, as zips into this folder")
    a = ap.parse_args()
    if (a.out is None) == (a.subset is None):
        ap.error("give exactly one of --out and --subset")
    if a.subset and not a.alphabets:
        ap.error("--subset needs --alphabets")
    if not 1 <= a.size <= ORIGINAL_SIZE:
        ap.error(f"--size must be 1 to {ORIGINAL_SIZE}, got {a.size}")
    alphabets = [s for s in a.alphabets.split(",") if s] if a.alphabets else None

    try:
        import PIL  # noqa: F401
    except ImportError:
        print("omniglot_to_idx: needs Pillow: sudo apt-get install python3-pil", file=sys.stderr)
        return 2
    sources = [Source(a.data, s) for s in SETS]
    if not any(s.where for s in sources):
        print(f"omniglot_to_idx: no Omniglot data in '{a.data}': expected images_background.zip and "
              "images_evaluation.zip (or their extracted folders), from "
              "https://github.com/brendenlake/omniglot (folder python/)", file=sys.stderr)
        return 2
    start = time.time()
    try:
        chars = catalogue([s for s in sources if s.where], alphabets)
        if not chars:
            raise DataError(f"'{a.data}' holds no drawings")
        by_set = {s.name: s for s in sources}
        if a.subset:
            os.makedirs(a.subset, exist_ok=True)
            for name in SETS:
                mine = [c for c in chars if c[0] == name]
                if not mine:
                    continue
                path = os.path.join(a.subset, name + ".zip")
                with zipfile.ZipFile(path, "w") as z:
                    for (s, _, _, paths) in mine:
                        for p in paths:
                            info = zipfile.ZipInfo(p, date_time=(1980, 1, 1, 0, 0, 0))  # reproducible
                            info.compress_type = zipfile.ZIP_STORED  # PNGs are compressed already
                            z.writestr(info, by_set[s].read(p))
                print(f"{path}: {sum(len(c[3]) for c in mine)} drawings of {len(mine)} characters")
            return 0
        os.makedirs(a.out, exist_ok=True)
        images, characters, alphabet_ids, index = bytearray(), bytearray(), bytearray(), []
        alphabet_names = []
        n = 0
        for c, (s, alphabet, char, paths) in enumerate(chars):
            if (s, alphabet) not in alphabet_names:
                alphabet_names.append((s, alphabet))
            aid = alphabet_names.index((s, alphabet))
            index.append(f"{c}\t{s[len('images_'):]}\t{alphabet}\t{char}\t{n}\t{len(paths)}")
            for p in paths:
                images += convert_image(by_set[s].read(p), p, a.size, a.resample)
                characters += struct.pack(">h", c)
                alphabet_ids.append(aid)
                n += 1
        if len(chars) > 32767 or len(alphabet_names) > 255:
            raise DataError(f"{len(chars)} characters / {len(alphabet_names)} alphabets do not fit the label types")
        ext = ".gz" if a.gzip else ""
        out = lambda name: os.path.join(a.out, name + ext)  # noqa: E731
        write_atomically(out("omniglot-images-idx3-ubyte"), idx_bytes(0x08, [n, a.size, a.size], bytes(images)), a.gzip)
        write_atomically(out("omniglot-characters-idx1-short"), idx_bytes(0x0B, [n], bytes(characters)), a.gzip)
        write_atomically(out("omniglot-alphabets-idx1-ubyte"), idx_bytes(0x08, [n], bytes(alphabet_ids)), a.gzip)
        tsv = "character\tset\talphabet\tfolder\tfirst\tcount\n" + "\n".join(index) + "\n"
        write_atomically(os.path.join(a.out, "omniglot-index.tsv"), tsv.encode("utf-8"), False)
    except DataError as e:
        print(f"omniglot_to_idx: {e}", file=sys.stderr)
        return 1
    print(f"{a.out}: {n} images of {len(chars)} characters in {len(alphabet_names)} alphabets, "
          f"{a.size} x {a.size}, {a.resample}, in {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
