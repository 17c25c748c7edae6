"""Readers for the Debian packages the corpus is made of: each turns an extracted package tree
(the output of `dpkg-deb -x`) into documents, a document being (title, [paragraph, ...]).

Paragraphs come out as raw single-line text; cleaning, filtering and deduplication happen in
gather_corpus.py, so the readers only know their file formats.
"""

import gzip
import html.parser
import os
import re

# ---------------------------------------------------------------------------------------------
# small helpers


def read_text(path):
    """A text file, gzip-compressed (.gz, dictd .dz) or not, decoded as UTF-8 (Latin-1 where
    that fails: some old files are)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def squash(text):
    return " ".join(text.split())


def chunks(items, size):
    """Groups of `size` consecutive items: dictionary entries become documents of a few dozen
    neighbouring entries, so that shuffling by document still mixes the alphabet."""
    for i in range(0, len(items), size):
        yield items[i:i + size]


def blocks(text):
    """Blank-line separated blocks of a text, each as its list of lines."""
    out, cur = [], []
    for line in text.split("\n"):
        if line.strip():
            cur.append(line)
        elif cur:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


# ---------------------------------------------------------------------------------------------
# HTML (Sphinx, DocBook, Debiandoc output)

# Subtrees that are navigation, code or decoration, not prose.
_SKIP_TAGS = {"script", "style", "pre", "head", "nav", "header", "footer", "table", "math", "svg"}
_SKIP_CLASS_WORDS = {"sphinxsidebar", "related", "footer", "navheader", "navfooter", "headerlink",
                     "highlight", "toc", "breadcrumb", "navigation", "sidebar", "literallayout",
                     "programlisting", "screen", "synopsis", "cmdsynopsis", "funcsynopsis"}
# Elements that end the current paragraph (old HTML often leaves <p> unclosed).
_BLOCK_TAGS = {"p", "div", "li", "dd", "dt", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
               "br", "ul", "ol", "dl", "section", "body", "tr", "td", "th", "hr"}
_VOID_TAGS = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "wbr"}


class _ProseParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.paragraphs = []
        self.title = ""
        self._cur = []
        self._skip = []  # stack of tag names whose subtree is skipped
        self._in_title = False

    def _flush(self):
        text = squash("".join(self._cur))
        if text:
            self.paragraphs.append(text)
        self._cur = []

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self._in_title = True
        if tag in _VOID_TAGS:
            if tag in _BLOCK_TAGS and not self._skip:
                self._flush()
            return
        if self._skip:
            self._skip.append(tag)
            return
        classes = set()
        for k, v in attrs:
            if k == "class" and v:
                classes.update(v.split())
        if tag in _SKIP_TAGS or classes & _SKIP_CLASS_WORDS:
            self._flush()
            self._skip.append(tag)
            return
        if tag in _BLOCK_TAGS:
            self._flush()

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        if self._skip:
            # Pop back to the matching start tag (tolerates unclosed children).
            if tag in self._skip:
                while self._skip and self._skip.pop() != tag:
                    pass
            return
        if tag in _BLOCK_TAGS:
            self._flush()

    def handle_data(self, data):
        if self._in_title:
            self.title += data
            return
        if not self._skip:
            self._cur.append(data)

    def close(self):
        super().close()
        self._flush()


def html_document(path):
    p = _ProseParser()
    p.feed(read_text(path))
    p.close()
    return squash(p.title) or os.path.basename(path), p.paragraphs


def html_documents(root, subdirs, name_filter=None, exclude=()):
    """Every .html file under root/<subdir> (sorted, so runs are reproducible)."""
    docs = []
    for sub in subdirs:
        base = os.path.join(root, sub)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            rel = os.path.relpath(dirpath, base)
            if any(rel == e or rel.startswith(e + os.sep) for e in exclude):
                continue
            for name in sorted(filenames):
                if not name.endswith(".html") or (name_filter and not name_filter(name)):
                    continue
                if name.startswith(("genindex", "search", "py-modindex")):
                    continue
                docs.append(html_document(os.path.join(dirpath, name)))
    return docs


# ---------------------------------------------------------------------------------------------
# fortune files: entries separated by lines holding a single "%"

# Collections that are ASCII pictures, or jokes at the expense of groups of people.
FORTUNE_SKIP = {"ascii-art", "ethnic", "men-women"}


def fortune_entries(root):
    """(collection, entry text with line breaks) for every fortune."""
    out = []
    base = os.path.join(root, "usr/share/games/fortunes")
    for name in sorted(os.listdir(base)):
        path = os.path.join(base, name)
        if "." in name or name in FORTUNE_SKIP or not os.path.isfile(path):
            continue
        u8 = path + ".u8"  # the UTF-8 copy, where the package has one
        text = read_text(u8 if os.path.isfile(u8) else path)
        for entry in text.split("\n%\n"):
            entry = entry.strip("\n%")
            if entry.strip():
                out.append((name, entry))
    return out


def fortune_paragraph(entry):
    """A fortune as one line: its lines joined, the attribution kept after a dash."""
    lines = [l.strip() for l in entry.split("\n") if l.strip()]
    body, attribution = [], []
    for l in lines:
        (attribution if l.startswith("--") else body).append(l)
    text = " ".join(body)
    if attribution:
        text += " " + " ".join(attribution)
    return squash(text)


def fortunes(root):
    by_collection = {}
    for name, entry in fortune_entries(root):
        by_collection.setdefault(name, []).append(fortune_paragraph(entry))
    docs = []
    for name, paras in by_collection.items():
        for i, group in enumerate(chunks(paras, 20)):
            docs.append(("fortunes/%s/%d" % (name, i), group))
    return docs


# ---------------------------------------------------------------------------------------------
# The Jargon File (jargon.txt): entries start with "   :term: pos."

_JARGON_HEAD = re.compile(r"^\s*:([^:]+):\s*(.*)$")


def jargon_entries(root):
    """(term, [definition paragraphs]) for every entry of the lexicon."""
    text = read_text(os.path.join(root, "usr/share/doc/jargon-text/jargon.txt.gz"))
    entries, cur = [], None
    for block in blocks(text):
        m = _JARGON_HEAD.match(block[0])
        if m and len(block) == 1:
            cur = (m.group(1).strip(), [])
            entries.append(cur)
            continue
        if cur is None:
            continue
        para = squash(" ".join(block))
        if para.startswith("[") and para.endswith("]"):  # etymology / usage notes
            continue
        # Cross-references are written {term}; keep the term.
        cur[1].append(re.sub(r"[{}]", "", para))
    return [(t, d) for t, d in entries if d]


def jargon(root):
    docs = []
    for i, group in enumerate(chunks(jargon_entries(root), 10)):
        paras = []
        for term, defs in group:
            paras.append("%s: %s" % (term, defs[0]))
            paras.extend(defs[1:])
        docs.append(("jargon/%d" % i, paras))
    return docs


# ---------------------------------------------------------------------------------------------
# dictd databases (GCIDE, FOLDOC): headword lines at column 0, bodies indented


def dictd_entries(path):
    """(headword line, body text) of every entry; the 00-database-* entries are skipped."""
    entries, head, body = [], None, []
    for line in read_text(path).split("\n"):
        if line and not line[0].isspace():
            if head is not None:
                entries.append((head, body))
            head, body = line.strip(), []
        elif head is not None:
            body.append(line)
    if head is not None:
        entries.append((head, body))
    return [(h, b) for h, b in entries if not h.startswith("00")]


_GCIDE_PRON = re.compile(r"\\[^\\]*\\")
_BRACKETS = re.compile(r"\[[^\]]*\]")
_CITATION = re.compile(r"--[A-Z][\w.' ]{0,40}\.")


def gcide_paragraph(head, body):
    """'Abdication \\Ab`di*ca"tion\\, n. [L. ...]' + body -> 'Abdication, n. The act of ...'"""
    text = squash(head + " " + " ".join(body))
    text = _GCIDE_PRON.sub("", text)
    text = _BRACKETS.sub("", text)
    text = _CITATION.sub("", text)
    text = re.sub(r"\s+([,.;:])", r"\1", text)
    return squash(text)


def gcide(root):
    entries = dictd_entries(os.path.join(root, "usr/share/dictd/gcide.dict.dz"))
    # The first "entries" are the licence text and file banners; real entries have a body.
    paras = [gcide_paragraph(h, b) for h, b in entries if any(l.strip() for l in b)]
    return [("gcide/%d" % i, g) for i, g in enumerate(chunks(paras, 30))]


def foldoc(root):
    entries = dictd_entries(os.path.join(root, "usr/share/dictd/foldoc.dict.dz"))
    docs = []
    for i, group in enumerate(chunks(entries, 10)):
        paras = []
        for head, body in group:
            parts = [squash(" ".join(b)) for b in blocks("\n".join(body))]
            parts = [re.sub(r"[{}]", "", p) for p in parts if not re.fullmatch(r"\(\d{4}-\d\d-\d\d\)", p)]
            if not parts:
                continue
            paras.append("%s: %s" % (head, parts[0]))
            paras.extend(parts[1:])
        docs.append(("foldoc/%d" % i, paras))
    return docs


# ---------------------------------------------------------------------------------------------
# WordNet data.{noun,verb,adj,adv}: "offset lex pos n word lexid ... | gloss"

WORDNET_POS = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}


def wordnet_synsets(root):
    """(pos, [lemmas], definition, [examples]) for every synset."""
    out = []
    for name, pos in WORDNET_POS.items():
        text = read_text(os.path.join(root, "usr/share/wordnet/data." + name))
        for line in text.split("\n"):
            if not line or line.startswith("  ") or " | " not in line:
                continue
            fields, gloss = line.split(" | ", 1)
            f = fields.split()
            n = int(f[3], 16)
            lemmas = [re.sub(r"\(\w+\)$", "", w).replace("_", " ") for w in f[4:4 + 2 * n:2]]
            parts = [p.strip() for p in gloss.strip().split(";")]
            definition = "; ".join(p for p in parts if not p.startswith('"'))
            examples = [p.strip('"') for p in parts if p.startswith('"')]
            if definition:
                out.append((pos, lemmas, definition, examples))
    return out


_ARTICLE = re.compile(r"^(a|an|the|one|any|someone|something)\b", re.I)


def wordnet_sentence(pos, lemmas, definition, examples):
    """A synset as an English sentence: "Hudson Bay is an inland sea in northern Canada." """
    word = lemmas[0]
    if pos == "n" and _ARTICLE.match(definition):
        text = "%s is %s." % (word[0].upper() + word[1:], definition)
    elif pos == "n" and definition[:1].islower():
        # Most noun glosses leave out the article: "small sandpiper that breeds in the Arctic".
        article = "an" if definition[0] in "aeiou" else "a"
        text = "%s is %s %s." % (word[0].upper() + word[1:], article, definition)
    elif pos == "n":
        text = "%s: %s." % (word[0].upper() + word[1:], definition)
    elif pos == "v":
        text = "To %s is to %s." % (word, definition)
    else:
        text = "%s means %s." % (word[0].upper() + word[1:], definition)
    if len(lemmas) > 1:
        text += " Also called %s." % ", ".join(lemmas[1:4])
    if examples:
        text += " For example: \"%s\"." % examples[0]
    return text


def wordnet(root):
    paras = [wordnet_sentence(*s) for s in wordnet_synsets(root)]
    return [("wordnet/%d" % i, g) for i, g in enumerate(chunks(paras, 40))]


# ---------------------------------------------------------------------------------------------
# Perl's POD: "=head1 Title" commands, indented verbatim (code) paragraphs, and prose with
# formatting codes such as B<bold>, C<code>, L<text|link>, E<gt>.

_POD_ESCAPES = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/", "quot": '"', "amp": "&"}


def pod_text(text):
    for _ in range(4):  # nested codes
        text = re.sub(r"E<(\w+)>", lambda m: _POD_ESCAPES.get(m.group(1), ""), text)
        text = re.sub(r"[A-Z]<<+\s(.*?)\s>>+", r"\1", text)
        text = re.sub(r"L<([^<>|]*)\|[^<>]*>", r"\1", text)
        text = re.sub(r"[A-Z]<([^<>]*)>", r"\1", text)
    return squash(text)


def pod_document(path):
    title, paras = os.path.basename(path), []
    in_begin = False
    for block in blocks(read_text(path)):
        first = block[0]
        if first.startswith("=begin") or first.startswith("=for"):
            in_begin = first.startswith("=begin")
            continue
        if first.startswith("=end"):
            in_begin = False
            continue
        if in_begin or first[:1].isspace():
            continue
        if first.startswith("="):
            cmd, _, rest = first.partition(" ")
            if cmd.startswith("=head") or cmd == "=item":
                rest = pod_text(rest)
                if rest and rest != "*":
                    paras.append(rest)
            continue
        paras.append(pod_text(" ".join(block)))
    return title, paras


def perl_doc(root):
    base = os.path.join(root, "usr/share/perl")
    docs = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in sorted(filenames):
            # perl5*delta: change logs, lists of module versions rather than prose.
            if name.endswith(".pod") and not re.match(r"perl5\d+delta", name):
                docs.append(pod_document(os.path.join(dirpath, name)))
    return docs


# ---------------------------------------------------------------------------------------------
# plain-text documents


def plain_text_documents(paths):
    docs = []
    for path in paths:
        paras = [squash(" ".join(b)) for b in blocks(read_text(path)) if not b[0][:1].isspace() or
                 all(l.startswith("   ") and not l.startswith("        ") for l in b)]
        docs.append((os.path.basename(path), paras))
    return docs


def doc_debian(root):
    base = os.path.join(root, "usr/share/doc/debian")
    paths = [os.path.join(base, n) for n in sorted(os.listdir(base)) if os.path.isfile(os.path.join(base, n))]
    return plain_text_documents(paths)


# ---------------------------------------------------------------------------------------------
# the package list: Debian package -> reader of its extracted tree

PY_DOC = "usr/share/doc/python3.11/html"

SOURCES = {
    "fortunes": fortunes,
    "fortunes-min": fortunes,
    "jargon-text": jargon,
    "wordnet-base": wordnet,
    "dict-gcide": gcide,
    "dict-foldoc": foldoc,
    "debian-handbook": lambda r: html_documents(r, ["usr/share/doc/debian-handbook/html/en-US"]),
    # The whole manual but the C API, the distutils legacy, and the release notes (lists).
    "python3.11-doc": lambda r: html_documents(
        r, [PY_DOC], exclude=("c-api", "distutils", "_sources", "_static", "whatsnew", "extending", "_downloads")),
    "debian-reference-en": lambda r: html_documents(r, ["usr/share/debian-reference"], lambda n: n.endswith(".en.html")),
    "debian-faq": lambda r: html_documents(r, ["usr/share/doc/debian/FAQ"], lambda n: n.endswith(".en.html")),
    "debian-policy": lambda r: html_documents(r, ["usr/share/doc/debian-policy/policy.html"]),
    "developers-reference": lambda r: html_documents(r, ["usr/share/developers-reference"],
                                                     lambda n: n != "developers-reference.html"),
    "maint-guide": lambda r: html_documents(r, ["usr/share/doc/maint-guide/html"], lambda n: n.endswith(".en.html")),
    "gnu-standards": lambda r: html_documents(r, ["usr/share/doc/gnu-standards"]),
    "perl-doc": perl_doc,
    "postgresql-doc-15": lambda r: html_documents(r, ["usr/share/doc/postgresql-doc-15/html"],
                                                  lambda n: not n.startswith("release-")),
    "doc-debian": doc_debian,
}
