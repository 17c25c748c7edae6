#!/usr/bin/env python3
"""Builds the training corpus from extracted Debian packages (see scripts/gather_corpus.sh).

    gather_corpus.py --extracted DIR --versions FILE --out training/data

DIR holds one `dpkg-deb -x` tree per package (DIR/<package>/usr/...), FILE has a
"<package> <version>" line per package. Writes to --out:

    train.txt, heldout.txt   documents separated by a blank line, one paragraph per line;
                             some documents are chat conversations in the model's chat format
    SOURCES.json             per package: version, licence, bytes and paragraphs kept
    licenses/<pkg>.copyright each package's copyright file, verbatim

Everything is deterministic: the same packages give byte-identical files.
"""

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chat_format  # noqa: E402
import chat_examples  # noqa: E402
import corpus_sources  # noqa: E402

SEED = 1234
HELDOUT_PERCENT = 1

# Licence summaries of the packages whose copyright file is not machine-readable (read by hand
# from each package's /usr/share/doc/<pkg>/copyright, which is also copied verbatim).
LICENCE_NOTES = {
    "fortunes": "BSD-3-clause (fortune-mod; the collections are quotations)",
    "fortunes-min": "BSD-3-clause (fortune-mod; the collections are quotations)",
    "jargon-text": "public domain (the Jargon File); Debian packaging GPL-2",
    "dict-gcide": "GPL-2+ (GCIDE, from Webster's 1913 and WordNet)",
    "dict-foldoc": "GFDL-1.1+ without invariant sections (FOLDOC)",
    "debian-faq": "verbatim and modified copying permitted with this notice (Debian FAQ licence)",
    "doc-debian": "GPL (BTS documents), Open Publication License (others), DFSG/Social Contract texts",
    "gnu-standards": "GFDL-1.3+ without invariant sections",
    "python3.11-doc": "PSF-2.0 (Python Software Foundation License) and BSD-style notices",
}


# ---------------------------------------------------------------------------------------------
# cleaning


def letter_fraction(text):
    non_space = [c for c in text if not c.isspace()]
    if not non_space:
        return 0.0
    return sum(c.isalpha() for c in non_space) / len(non_space)


_CODE_HINTS = re.compile(r"(\$ |>>> |#include|::|\(\)\s*\{|;\s*$|=>|&&|\|\||^[\w.]+\(.*\)$)")


def clean_paragraph(text):
    """The paragraph normalised, or None when it is junk: too short, mostly non-letters,
    code-like, or containing our special-token syntax."""
    text = " ".join(text.replace("\u00a0", " ").split())
    text = text.replace("\u00b6", "")  # Sphinx's pilcrow permalinks
    text = text.strip()
    if len(text) < 40 or len(text.split()) < 6:
        return None
    if letter_fraction(text) < 0.7:
        return None
    if "<|" in text or "|>" in text:
        return None
    if _CODE_HINTS.search(text):
        return None
    # English prose only: the handbook and others ship translations beside the English.
    if sum(ord(c) > 0x24F for c in text) > len(text) // 20:
        return None
    return text


def paragraph_key(text):
    return hashlib.sha1(" ".join(text.lower().split()).encode()).digest()


# ---------------------------------------------------------------------------------------------
# licences


def copyright_path(root, package):
    path = os.path.join(root, "usr/share/doc", package, "copyright")
    return path if os.path.isfile(path) else None


def licence_summary(package, copyright_text):
    """The licence of the package's main files: the `Files: *` stanza's License for DEP-5
    copyright files, else the hand-written note."""
    if package in LICENCE_NOTES:
        return LICENCE_NOTES[package]
    if copyright_text.startswith("Format:"):
        for stanza in re.split(r"\n\s*\n", copyright_text):
            if re.search(r"^Files:\s*\*\s*$", stanza, re.M):
                m = re.search(r"^License:\s*(.+)$", stanza, re.M)
                if m:
                    return m.group(1).strip()
    return "see licenses/%s.copyright" % package


# ---------------------------------------------------------------------------------------------
# splitting and writing


def is_heldout(doc_id):
    h = int.from_bytes(hashlib.sha1(doc_id.encode()).digest()[:4], "little")
    return h % 100 < HELDOUT_PERCENT


def write_docs(path, docs):
    with open(path, "w", encoding="utf-8") as f:
        for i, text in enumerate(docs):
            if i:
                f.write("\n\n")
            f.write(text)
        f.write("\n")


def gather(extracted, versions, out_dir, packages):
    seen = set()
    prose_docs = []  # (doc id, text)
    chat_docs = []
    sources = {}
    os.makedirs(os.path.join(out_dir, "licenses"), exist_ok=True)
    for package in packages:
        root = os.path.join(extracted, package)
        reader = corpus_sources.SOURCES[package]
        n_par = n_bytes = n_docs = n_dropped = n_dup = 0
        for title, paragraphs in reader(root):
            kept = []
            for p in paragraphs:
                c = clean_paragraph(p)
                if c is None:
                    n_dropped += 1
                    continue
                k = paragraph_key(c)
                if k in seen:
                    n_dup += 1
                    continue
                seen.add(k)
                kept.append(c)
            if not kept:
                continue
            text = "\n".join(kept)
            prose_docs.append(("%s/%s/%d" % (package, title, n_docs), text))
            n_docs += 1
            n_par += len(kept)
            n_bytes += len(text.encode()) + 1
        chats = chat_examples.for_package(package, root, random.Random("%d/%s" % (SEED, package)))
        chat_bytes = 0
        for i, messages in enumerate(chats):
            # The trailing newline goes: documents are blank-line separated, and train.py ends
            # each document with <|endoftext|> (serving stops at <|end|> before it anyway).
            text = chat_format.render(messages).rstrip("\n")
            answers = {paragraph_key(m["content"]) for m in messages if m["role"] == "assistant"}
            chat_docs.append(("%s/chat/%d" % (package, i), text, answers))
            chat_bytes += len(text.encode()) + 1
        cp = copyright_path(root, package)
        cp_text = corpus_sources.read_text(cp) if cp else ""
        if cp:
            shutil.copyfile(cp, os.path.join(out_dir, "licenses", package + ".copyright"))
        sources[package] = {
            "version": versions.get(package, "unknown"),
            "licence": licence_summary(package, cp_text),
            "documents": n_docs,
            "paragraphs": n_par,
            "bytes": n_bytes,
            "paragraphs_dropped_as_junk": n_dropped,
            "paragraphs_dropped_as_duplicates": n_dup,
            "chat_conversations": len(chats),
            "chat_bytes": chat_bytes,
        }
        print("%-22s %6d docs %8d paragraphs %6.1f MB prose, %6d chats %5.1f MB (dropped %d junk, %d dup)"
              % (package, n_docs, n_par, n_bytes / 1e6, len(chats), chat_bytes / 1e6, n_dropped, n_dup),
              flush=True)

    # Conversations reuse prose (a WordNet definition is also an answer): a conversation whose
    # answer is a paragraph of a held-out document is left out of training, so that the held-out
    # perplexity measures text the model has not seen.
    heldout_keys = {paragraph_key(p) for d, t in prose_docs if is_heldout(d) for p in t.split("\n")}
    train = [t for d, t in prose_docs if not is_heldout(d)]
    heldout = [t for d, t in prose_docs if is_heldout(d)]
    leaked = 0
    for d, t, answers in chat_docs:
        if is_heldout(d):
            heldout.append(t)
        elif answers & heldout_keys:
            leaked += 1
        else:
            train.append(t)
    print("left out %d conversations whose answers are held-out paragraphs" % leaked)
    rng = random.Random(SEED)
    rng.shuffle(train)
    rng.shuffle(heldout)
    write_docs(os.path.join(out_dir, "train.txt"), train)
    write_docs(os.path.join(out_dir, "heldout.txt"), heldout)
    summary = {
        "seed": SEED,
        "heldout_percent": HELDOUT_PERCENT,
        "train_documents": len(train),
        "heldout_documents": len(heldout),
        "train_bytes": os.path.getsize(os.path.join(out_dir, "train.txt")),
        "heldout_bytes": os.path.getsize(os.path.join(out_dir, "heldout.txt")),
        "packages": sources,
    }
    with open(os.path.join(out_dir, "SOURCES.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    print("train: %d documents, %.1f MB; held-out: %d documents, %.2f MB"
          % (len(train), summary["train_bytes"] / 1e6, len(heldout), summary["heldout_bytes"] / 1e6))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--extracted", required=True, help="folder of dpkg-deb -x trees, one per package")
    ap.add_argument("--versions", required=True, help='file of "<package> <version>" lines')
    ap.add_argument("--out", required=True)
    ap.add_argument("--packages", nargs="*", default=list(corpus_sources.SOURCES),
                    help="subset of packages (default: all known)")
    args = ap.parse_args()
    versions = {}
    with open(args.versions) as f:
        for line in f:
            if line.strip():
                p, v = line.split()
                versions[p] = v
    missing = [p for p in args.packages if not os.path.isdir(os.path.join(args.extracted, p))]
    if missing:
        sys.exit("gather_corpus: not extracted: " + " ".join(missing))
    unknown = [p for p in args.packages if p not in corpus_sources.SOURCES]
    if unknown:
        sys.exit("gather_corpus: no reader for: " + " ".join(unknown))
    os.makedirs(args.out, exist_ok=True)
    gather(args.extracted, versions, args.out, args.packages)


if __name__ == "__main__":
    main()
