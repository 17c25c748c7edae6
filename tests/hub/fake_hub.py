#!/usr/bin/env python3
"""A stand-in for the Hugging Face Hub on 127.0.0.1, for tests/hub/test_hub.cpp.

Usage: fake_hub.py MANIFEST.json. Prints the port it listens on, then serves until stdin closes
(so it never outlives the test that started it).

The manifest:
  {"log": "/path/requests.jsonl",
   "repos": {"org/name": {"commit": "<40 hex>", "refs": {"main": "<40 hex>"},
                          "token": "secret" (optional: the repo is private),
                          "files": {"config.json": {"path": "/abs/path", "lfs": false, "etag": true}}},
             "org/old-name": {"moved_to": "org/name"}},
   "drop_once": {"org/name/model.safetensors": 2500}}

As the real Hub: /api/models/<repo>/revision/<rev> answers {"sha", "siblings": [{"rfilename"}]};
/<repo>/resolve/<rev>/<file> answers a small file with ETag (the git blob sha1) and an LFS file with
a 302 to /cdn/<sha256> carrying X-Linked-Etag and X-Linked-Size; errors carry X-Error-Code. Range
requests get 206. A file in drop_once has its first full GET cut after that many bytes.
"""
import hashlib
import json
import os
import socket
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

manifest = json.load(open(sys.argv[1]))
lock = threading.Lock()
dropped = set()
cdn = {}  # sha256 -> (repo, file)


def content_of(repo, name):
    with open(manifest["repos"][repo]["files"][name]["path"], "rb") as f:
        return f.read()


for repo_id, repo in manifest["repos"].items():
    for name, spec in repo.get("files", {}).items():
        if spec.get("lfs"):
            cdn[hashlib.sha256(content_of(repo_id, name)).hexdigest()] = (repo_id, name)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def log_request_line(self):
        entry = {"method": self.command, "path": self.path, "range": self.headers.get("Range"),
                 "auth": self.headers.get("Authorization")}
        with lock, open(manifest["log"], "a") as f:
            f.write(json.dumps(entry) + "\n")

    def error(self, status, code, message):
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def moved(self, repo_id, path):
        """A renamed repository answers 307 to its new name with a relative Location, as the Hub does."""
        target = manifest["repos"].get(repo_id, {}).get("moved_to")
        if target is None:
            return False
        self.send_response(307)
        self.send_header("Location", path.replace("/" + repo_id + "/", "/" + target + "/", 1))
        self.send_header("Content-Length", "0")
        self.end_headers()
        return True

    def find_repo(self, repo_id):
        repo = manifest["repos"].get(repo_id)
        if repo is None:
            self.error(404, "RepoNotFound", "Repository not found")
            return None
        token = repo.get("token")
        if token and self.headers.get("Authorization") != "Bearer " + token:
            self.error(401, "GatedRepo", "Access to model " + repo_id + " is restricted")
            return None
        return repo

    def commit_of(self, repo, revision):
        if revision == repo["commit"] or revision in repo.get("refs", {}).values():
            return revision
        return repo.get("refs", {}).get(revision)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self.log_request_line()
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/api/models/") and "/revision/" in path:
            repo_id, revision = path[len("/api/models/"):].rsplit("/revision/", 1)
            revision = urllib.parse.unquote(revision)
            if self.moved(repo_id, path):
                return
            repo = self.find_repo(repo_id)
            if repo is None:
                return
            commit = self.commit_of(repo, revision)
            if commit is None:
                return self.error(404, "RevisionNotFound", "Invalid rev id: " + revision)
            body = json.dumps({"id": repo_id, "sha": commit,
                               "siblings": [{"rfilename": n} for n in repo["files"]]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return
        if path.startswith("/cdn/"):
            sha = path[len("/cdn/"):]
            if sha not in cdn:
                return self.error(404, "NotFound", "no such object")
            repo_id, name = cdn[sha]
            return self.send_file(repo_id, name, content_of(repo_id, name), etag='"cdn-' + sha[:8] + '"')
        if "/resolve/" in path:
            repo_id, rest = path[1:].split("/resolve/", 1)
            revision, name = rest.split("/", 1)
            name = urllib.parse.unquote(name)
            if self.moved(repo_id, path):
                return
            repo = self.find_repo(repo_id)
            if repo is None:
                return
            commit = self.commit_of(repo, urllib.parse.unquote(revision))
            if commit is None:
                return self.error(404, "RevisionNotFound", "Invalid rev id: " + revision)
            spec = repo["files"].get(name)
            if spec is None:
                return self.error(404, "EntryNotFound", "Entry not found")
            data = content_of(repo_id, name)
            if spec.get("lfs"):
                sha = hashlib.sha256(data).hexdigest()
                self.send_response(302)
                # Absolute, as the Hub's redirects to its CDN are (another host there).
                self.send_header("Location", "http://127.0.0.1:%d/cdn/%s" % (self.server.server_address[1], sha))
                self.send_header("X-Repo-Commit", commit)
                self.send_header("X-Linked-Etag", '"' + sha + '"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("ETag", '"' + hashlib.sha1(b"lfs pointer " + data).hexdigest() + '"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            etag = None
            if spec.get("etag", True):
                etag = '"' + hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() + '"'
            return self.send_file(repo_id, name, data, etag, commit)
        self.error(404, "NotFound", "no route " + path)

    def send_file(self, repo_id, name, data, etag=None, commit=None):
        start = 0
        requested = self.headers.get("Range")
        if requested and requested.startswith("bytes=") and requested.endswith("-"):
            start = int(requested[len("bytes="):-1])
            if start >= len(data):
                return self.error(416, "RangeNotSatisfiable", "range starts past the end")
        self.send_response(206 if start else 200)
        if etag:
            self.send_header("ETag", etag)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Accept-Ranges", "bytes")
        if start:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if self.command == "HEAD":
            return
        key = repo_id + "/" + name
        cut = manifest.get("drop_once", {}).get(key)
        with lock:
            drop = cut is not None and start == 0 and key not in dropped
            if drop:
                dropped.add(key)
        if drop:
            # The connection dies mid-body, as a flaky network does: the client sees a short read.
            self.wfile.write(data[:cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(data[start:])


def exit_when_stdin_closes():
    sys.stdin.read()
    os._exit(0)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
print(server.server_address[1], flush=True)
server.serve_forever()
