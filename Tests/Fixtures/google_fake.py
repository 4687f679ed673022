"""A stand-in for Google's side of a GCS download, on loopback, for the tests.

It plays three parts, each as strict as the real one is about what the sidecar sends:
- the OAuth token endpoint of a service-account key (RFC 7523): the JWT's RS256 signature is
  verified with the key's public half (python `cryptography`, independent of the sidecar's
  swift-crypto), and its iss, aud, scope and times are checked, as oauth2.googleapis.com does;
- the metadata server's token route, which wants `Metadata-Flavor: Google`;
- GCS's XML API (ListObjectsV2, HEAD, ranged GET) over a directory, which refuses a missing,
  unknown or expired bearer token with 401: a sidecar that does not renew short-lived tokens
  fails its download here.

Tokens live `--token-lifetime` seconds; `--storage-delay` paces object reads. Every request is
logged as a JSON line to `--log`.

    google_fake.py --port P --root DIR --key-file KEY.json --log LOG [--token-lifetime S] [--storage-delay S]

writes a fresh service-account key (token_uri pointing here) to KEY.json before listening.
"""

import argparse
import base64
import hashlib
import json
import os
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
EMAIL = "downloader@engine-runtime-tests.iam.gserviceaccount.com"


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.tokens = {}  # token -> expiry (time.time())
        self.counter = 0
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.token_uri = f"http://127.0.0.1:{args.port}/token"

    def write_key(self):
        pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        key = {
            "type": "service_account",
            "project_id": "engine-runtime-tests",
            "private_key_id": "0123456789abcdef",
            "private_key": pem,
            "client_email": EMAIL,
            "client_id": "1",
            "token_uri": self.token_uri,
        }
        with open(self.args.key_file + ".tmp", "w") as f:
            json.dump(key, f)
        os.replace(self.args.key_file + ".tmp", self.args.key_file)

    def issue(self, prefix):
        with self.lock:
            self.counter += 1
            token = f"ya29.{prefix}-{self.counter}"
            self.tokens[token] = time.time() + self.args.token_lifetime
        return token

    def valid(self, token):
        with self.lock:
            expiry = self.tokens.get(token)
        return expiry is not None and time.time() < expiry

    def log(self, entry):
        with self.lock, open(self.args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: State = None

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", content_type="application/json", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def token_answer(self, token):
        body = {"access_token": token, "expires_in": self.state.args.token_lifetime, "token_type": "Bearer"}
        self.answer(200, json.dumps(body).encode())

    def grant_error(self, description):
        self.state.log({"route": "token", "status": 400, "error": description})
        self.answer(400, json.dumps({"error": "invalid_grant", "error_description": description}).encode())

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        if self.path != "/token":
            return self.answer(404)
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return self.grant_error("grant_type")
        try:
            head, claims, signature = form["assertion"][0].split(".")
            header = json.loads(b64url_decode(head))
            body = json.loads(b64url_decode(claims))
            self.state.key.public_key().verify(
                b64url_decode(signature), f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except Exception as error:  # a bad signature or a malformed assertion
            return self.grant_error(f"assertion: {type(error).__name__}")
        now = time.time()
        if header.get("alg") != "RS256" or header.get("kid") != "0123456789abcdef":
            return self.grant_error("header")
        if body.get("iss") != EMAIL or body.get("aud") != self.state.token_uri or body.get("scope") != SCOPE:
            return self.grant_error("claims")
        if not (abs(body["iat"] - now) < 60 and body["exp"] - body["iat"] == 3600):
            return self.grant_error("times")
        token = self.state.issue("sa")
        self.state.log({"route": "token", "status": 200, "issued": token})
        self.token_answer(token)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/computeMetadata/v1/instance/service-accounts/default/token":
            if self.headers.get("Metadata-Flavor") != "Google":
                self.state.log({"route": "metadata", "status": 403})
                return self.answer(403, b"missing Metadata-Flavor: Google", "text/plain")
            token = self.state.issue("md")
            self.state.log({"route": "metadata", "status": 200, "issued": token})
            return self.token_answer(token)
        authorization = self.headers.get("Authorization", "")
        token = authorization[len("Bearer "):] if authorization.startswith("Bearer ") else None
        entry = {"route": "storage", "method": self.command, "path": url.path, "token": token}
        if token is None or not self.state.valid(token):
            entry["status"] = 401
            self.state.log(entry)
            return self.answer(401, b"<Error><Code>AuthenticationRequired</Code></Error>", "application/xml")
        time.sleep(self.state.args.storage_delay)
        bucket, _, key = url.path.lstrip("/").partition("/")
        key = urllib.parse.unquote(key)
        base = os.path.join(self.state.args.root, bucket)
        if not key:
            query = urllib.parse.parse_qs(url.query)
            prefix = query.get("prefix", [""])[0]
            entry["status"] = 200
            self.state.log(entry)
            return self.answer(200, self.listing(base, prefix), "application/xml")
        path = os.path.join(base, key)
        if not os.path.isfile(path):
            entry["status"] = 404
            self.state.log(entry)
            return self.answer(404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml")
        with open(path, "rb") as f:
            data = f.read()
        etag = '"' + hashlib.md5(data).hexdigest() + '"'
        status, extra = 200, [("ETag", etag), ("Accept-Ranges", "bytes")]
        ranged = self.headers.get("Range")
        if ranged and ranged.startswith("bytes="):
            first, _, last = ranged[len("bytes="):].partition("-")
            end = int(last) if last else len(data) - 1
            extra.append(("Content-Range", f"bytes {first}-{end}/{len(data)}"))
            data, status = data[int(first) : end + 1], 206
        entry["status"] = status
        self.state.log(entry)
        self.answer(status, data, "application/octet-stream", extra)

    @staticmethod
    def listing(base, prefix):
        contents = []
        for directory, _, files in os.walk(base):
            for name in files:
                full = os.path.join(directory, name)
                key = os.path.relpath(full, base)
                if key.startswith(prefix):
                    with open(full, "rb") as f:
                        md5 = hashlib.md5(f.read()).hexdigest()
                    size = os.path.getsize(full)
                    contents.append(
                        f"<Contents><Key>{escape(key)}</Key><Size>{size}</Size><ETag>&quot;{md5}&quot;</ETag></Contents>"
                    )
        return (
            '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://doc.s3.amazonaws.com/2006-03-01">'
            f"<Prefix>{escape(prefix)}</Prefix><KeyCount>{len(contents)}</KeyCount><IsTruncated>false</IsTruncated>"
            + "".join(sorted(contents))
            + "</ListBucketResult>"
        ).encode()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--key-file", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--token-lifetime", type=int, default=3600)
    # Paces object reads so a download outlives a token on any machine.
    parser.add_argument("--storage-delay", type=float, default=0.0)
    args = parser.parse_args()
    Handler.state = State(args)
    Handler.state.write_key()
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
