#!/usr/bin/python3
"""Build the byte-level training corpus from documentation that Debian packages install.

For each package in corpus_packages.txt, `dpkg -L` lists its files; RULES below pick the
ones read and say how each becomes text (rst/txt/pod as is, HTML through the standard
library's html.parser, man pages through `man -l | col -bx`). Text is reduced to printable
ASCII and newlines. Whole files go to a held-out split chosen by a stable hash of their
path (about 1.5%); the rest is the training text. Everything is sorted, so the output is a
function of the installed files (and, for man pages, of the installed groff).

Files whose bytes or extracted text equal an earlier file's are skipped (split
"duplicate" in the manifest). Writes OUT/train.txt, OUT/heldout.txt and OUT/files.tsv
(path, package, bytes of text, sha256 of the installed file, split). Usage:
  nice -n 10 /usr/bin/python3 tools/train/build_corpus.py --out /work/corpus
"""
import argparse
import gzip
import hashlib
import html.parser
import os
import re
import subprocess
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
HELDOUT_PER_MILLE = 15  # files whose path hash mod 1000 falls below this are held out

# package -> (include regex, exclude regex or None, kind). Sources are preferred over
# rendered copies of the same text (linux-doc, python3.11-doc and debian-policy install both).
RULES = {
    "linux-doc-6.1": (r"^/usr/share/doc/linux-doc-6\.1/Documentation/.*\.(rst|txt)(\.gz)?$",
                      r"/translations/|/devicetree/bindings/", "text"),
    "python3.11-doc": (r"^/usr/share/doc/python3\.11/html/_sources/.*\.rst\.txt$", None, "text"),
    "postgresql-doc-15": (r"^/usr/share/doc/postgresql-doc-15/html/.*\.html$", None, "html"),
    "perl-doc": (r"^/usr/share/perl/5\.36\.0/pod/.*\.pod$", None, "text"),
    "debian-handbook": (r"^/usr/share/doc/debian-handbook/html/en-US/.*\.html$", None, "html"),
    "debian-reference-en": (r"^/usr/share/debian-reference/.*\.en\.html$", None, "html"),
    "developers-reference": (r"/_sources/.*\.rst\.txt$", None, "text"),
    "debian-policy": (r"(/_sources/.*\.rst\.txt|\.txt\.gz)$",
                      r"/policy\.txt\.gz$|/upgrading-checklist\.txt\.gz$", "text"),
    "git-doc": (r"^/usr/share/doc/git-doc/.*\.txt$", None, "text"),
    "gnu-standards": (r"^/usr/share/doc/gnu-standards/.*\.text\.gz$", None, "text"),
    "manpages": (r"^/usr/share/man/man[0-9]/.*\.gz$", None, "man"),
    "manpages-dev": (r"^/usr/share/man/man[0-9]/.*\.gz$", None, "man"),
    "freebsd-manpages": (r"^/usr/share/man/man[0-9]/.*\.gz$", None, "man"),
    "libssl-doc": (r"^/usr/share/man/man[0-9]/.*\.gz$", None, "man"),
    "python-django-doc": (r"^/usr/share/doc/python-django-doc/html/.*\.html$",
                          r"/_modules/|/(genindex|py-modindex|search)\.html$", "html"),
    "llvm-15-doc": (r"^/usr/share/doc/llvm-15-doc/html/_sources/.*\.(rst|md)\.txt$",
                    r"/_sources/AMDGPU/", "text"),
    "clang-15-doc": (r"^/usr/share/doc/clang-15/html/_sources/.*\.(rst|md)\.txt$", None, "text"),
    "cmake-doc": (r"^/usr/share/doc/cmake-data/html/_sources/.*\.rst\.txt$", None, "text"),
    "sphinx-doc": (r"^/usr/share/doc/sphinx-doc/html/_sources/.*\.rst\.txt$", None, "text"),
    "nodejs-doc": (r"^/usr/share/doc/nodejs/api/.*\.md(\.gz)?$", r"/all\.md", "text"),
    "vim-runtime": (r"^/usr/share/vim/vim90/doc/.*\.txt$", None, "text"),
    "octave-doc": (r"^/usr/share/doc/octave/.*\.html/.*\.html$", r"/index\.html$", "html"),
    "rust-doc": (r"^/usr/share/doc/rust-doc/html/(book|nomicon|reference|rust-by-example|"
                 r"edition-guide|embedded-book|rustc|rustdoc|cargo)/.*\.html$",
                 r"/print\.html$|/(toc|404|SUMMARY)\.html$", "html"),
}

# Common non-ASCII punctuation mapped to ASCII before the rest is dropped.
ASCII_MAP = {
    0x2018: "'", 0x2019: "'", 0x201A: "'", 0x201C: '"', 0x201D: '"', 0x201E: '"',
    0x2013: "-", 0x2014: "--", 0x2212: "-", 0x2026: "...", 0x00A0: " ", 0x2022: "*",
    0x00B7: "*", 0x2192: "->", 0x2190: "<-", 0x00D7: "x", 0x00AB: "<<", 0x00BB: ">>",
    0x00A9: "(c)", 0x00AE: "(R)", 0x2122: "(TM)", 0x2264: "<=", 0x2265: ">=", 0x2260: "!=",
}


def read_packages(path):
    pkgs = []
    with open(path) as f:
        for line in f:
            name = line.split("#", 1)[0].strip()
            if name:
                pkgs.append(name)
    return pkgs


def package_files(pkg):
    out = subprocess.run(["dpkg", "-L", pkg], capture_output=True, text=True, check=True).stdout
    return sorted(p for p in out.splitlines() if os.path.isfile(p) and not os.path.islink(p))


class HtmlText(html.parser.HTMLParser):
    """Visible text of an HTML page: block elements become line breaks, <pre> is kept as is,
    scripts, styles and navigation bars are dropped."""

    BLOCK = {"p", "div", "br", "li", "ul", "ol", "dl", "dt", "dd", "tr", "table", "h1", "h2",
             "h3", "h4", "h5", "h6", "pre", "blockquote", "section", "title", "hr"}
    SKIP = {"script", "style", "head"}
    SKIP_CLASSES = ("navheader", "navfooter", "sphinxsidebar", "related", "footer", "toc")

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.skip_depth, self.pre, self.stack = [], 0, 0, []

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class") or ""
        skipping = tag in self.SKIP or any(c in cls.split() for c in self.SKIP_CLASSES)
        if tag not in ("br", "hr", "img", "meta", "link", "input"):
            self.stack.append((tag, skipping))
            if skipping:
                self.skip_depth += 1
        if tag == "pre":
            self.pre += 1
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag == "pre" and self.pre:
            self.pre -= 1
        # pop to the matching open tag (HTML in the wild is not always well nested)
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                for _, sk in self.stack[i:]:
                    if sk:
                        self.skip_depth -= 1
                del self.stack[i:]
                break
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if self.skip_depth:
            return
        self.parts.append(data if self.pre else re.sub(r"\s+", " ", data))

    def text(self):
        lines = [ln.strip() if not ln.startswith("  ") else ln.rstrip()
                 for ln in "".join(self.parts).split("\n")]
        return "\n".join(lines)


def html_to_text(raw):
    p = HtmlText()
    p.feed(raw.decode("utf-8", errors="replace"))
    p.close()
    return p.text()


def man_to_text(path):
    head = gzip.open(path).read(200) if path.endswith(".gz") else open(path, "rb").read(200)
    if head.startswith(b".so ") or head.startswith(b"'\\\" t\n.so "):
        return ""  # a link to another page, which is read on its own
    env = dict(os.environ, MANWIDTH="80", LANG="C.UTF-8", LC_ALL="C.UTF-8",
               MAN_KEEP_FORMATTING="0", MAN_DISABLE_SECCOMP="1")
    out = subprocess.run(["man", "-l", path], capture_output=True, env=env, check=False).stdout
    out = subprocess.run(["col", "-bx"], input=out, capture_output=True, check=False).stdout
    return out.decode("utf-8", errors="replace")


def to_ascii(text):
    """Printable ASCII and newlines only; tabs expanded; at most two blank lines in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(ASCII_MAP)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    lines = []
    for line in text.split("\n"):
        line = line.expandtabs(8)
        line = "".join(ch for ch in line if " " <= ch <= "~").rstrip()
        lines.append(line)
    text = "\n".join(lines)
    text = re.sub(r"\n{4,}", "\n\n\n", text)
    return text.strip("\n")


def extract(path, kind):
    raw = open(path, "rb").read()
    if kind == "man":
        return raw, man_to_text(path)
    data = gzip.decompress(raw) if path.endswith(".gz") else raw
    if kind == "html":
        return raw, html_to_text(data)
    return raw, data.decode("utf-8", errors="replace")


def is_heldout(path):
    return int(hashlib.sha256(path.encode()).hexdigest()[:8], 16) % 1000 < HELDOUT_PER_MILLE


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--packages", default=os.path.join(HERE, "corpus_packages.txt"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    pkgs = read_packages(args.packages)
    missing = [p for p in pkgs if p not in RULES]
    if missing:
        sys.exit(f"no RULES entry for packages {missing}")
    sep = "\n\n"
    n = {"train": 0, "heldout": 0}
    seen = set()  # sha256 of installed files and of extracted texts already taken
    with open(os.path.join(args.out, "train.txt"), "w", newline="\n") as ftr, \
            open(os.path.join(args.out, "heldout.txt"), "w", newline="\n") as fho, \
            open(os.path.join(args.out, "files.tsv"), "w", newline="\n") as fman:
        fman.write("path\tpackage\tbytes\tsha256\tsplit\n")
        for pkg in pkgs:
            inc, exc, kind = RULES[pkg]
            files = [p for p in package_files(pkg)
                     if re.search(inc, p) and not (exc and re.search(exc, p))]
            pkg_bytes = 0
            for path in files:
                raw = open(path, "rb").read()
                raw_sha = hashlib.sha256(raw).hexdigest()
                if raw_sha in seen:  # e.g. FreeBSD installs one page under many names
                    fman.write(f"{path}\t{pkg}\t0\t{raw_sha}\tduplicate\n")
                    continue
                seen.add(raw_sha)
                _, text = extract(path, kind)
                text = to_ascii(text)
                if len(text) < 64:
                    continue
                text_sha = hashlib.sha256(text.encode()).hexdigest()
                if text_sha in seen:
                    fman.write(f"{path}\t{pkg}\t0\t{raw_sha}\tduplicate\n")
                    continue
                seen.add(text_sha)
                split = "heldout" if is_heldout(path) else "train"
                out = fho if split == "heldout" else ftr
                if n[split]:
                    out.write(sep)
                out.write(text)
                n[split] += len(text) + (len(sep) if n[split] else 0)
                pkg_bytes += len(text)
                fman.write(f"{path}\t{pkg}\t{len(text)}\t{raw_sha}\t{split}\n")
            print(f"{pkg}: {len(files)} files, {pkg_bytes / 1e6:.1f} MB of text", flush=True)
    print(f"train {n['train'] / 1e6:.1f} MB, heldout {n['heldout'] / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
