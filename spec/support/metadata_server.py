"""A local stand-in for the credential endpoints of cloud platforms, which
cannot be reached here: the protocols as AWS and Alibaba Cloud document
them, serving the credentials the spec writes into a JSON state file (real
rgw keys, so a client using them makes real requests).

  EC2 IMDSv2   PUT /latest/api/token  (needs X-aws-ec2-metadata-token-ttl-seconds,
               1..21600, else 400) -> token; every GET needs
               X-aws-ec2-metadata-token (else 401)
               GET /latest/meta-data/iam/security-credentials/        -> role name
               GET /latest/meta-data/iam/security-credentials/<role>  -> JSON
               { Code: "Success", Type: "AWS-HMAC", AccessKeyId, SecretAccessKey,
                 Token, Expiration, LastUpdated }
  ECS RAM role the same handshake with X-aliyun-ecs-metadata-token-ttl-seconds and
               X-aliyun-ecs-metadata-token; GET /latest/meta-data/ram/security-credentials/[<role>]
               -> JSON { Code, AccessKeyId, AccessKeySecret, SecurityToken, Expiration,
               LastUpdated }  (state.flavour = "ali"; one server per flavour)
  Container    GET <any other path> with Authorization equal to state.container_token
               (when set; else 401) -> JSON { AccessKeyId, SecretAccessKey, Token,
               Expiration, RoleArn }
  GET /_log    the requests seen so far (method, path, headers), for assertions.

State file (JSON): { role, access_key, secret_key, token, expiration (ISO 8601),
container_token?, fail?: status to answer every credentials GET with, imds_v1?: true
to answer the token PUT with 404 and the GETs without a token }.

Usage: metadata_server.py PORT STATE_FILE LIFETIME_SECONDS -- listens on
127.0.0.1:PORT, exits by itself after LIFETIME_SECONDS.
"""
import json
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, state_file, lifetime = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
tokens = set()
log = []

PROFILES = {
    "aws": {"token_path": "/latest/api/token", "ttl": "x-aws-ec2-metadata-token-ttl-seconds",
            "header": "x-aws-ec2-metadata-token", "roles": "/latest/meta-data/iam/security-credentials/"},
    "ali": {"token_path": "/latest/api/token", "ttl": "x-aliyun-ecs-metadata-token-ttl-seconds",
            "header": "x-aliyun-ecs-metadata-token", "roles": "/latest/meta-data/ram/security-credentials/"},
}


def state():
    with open(state_file) as f:
        return json.load(f)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def record(self):
        log.append({"method": self.command, "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()}})
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)

    def flavour(self):
        # One server per flavour: the spec starts this script twice.
        return PROFILES[state().get("flavour", "aws")]

    def do_PUT(self):
        self.record()
        s, p = state(), self.flavour()
        if self.path != p["token_path"]:
            return self.reply(404, "not found")
        if s.get("imds_v1"):
            return self.reply(404, "not found")
        ttl = self.headers.get(p["ttl"])
        if not ttl or not ttl.isdigit() or not (1 <= int(ttl) <= 21600):
            return self.reply(400, "missing or invalid TTL header")
        tok = secrets.token_urlsafe(24)
        tokens.add(tok)
        self.send_response(200)
        self.send_header(p["ttl"], ttl)
        self.send_header("Content-Length", str(len(tok)))
        self.end_headers()
        self.wfile.write(tok.encode())

    def do_GET(self):
        self.record()
        if self.path == "/_log":
            return self.reply(200, json.dumps(log), "application/json")
        s, p = state(), self.flavour()
        if self.path.startswith(p["roles"]):
            if not s.get("imds_v1") and self.headers.get(p["header"]) not in tokens:
                return self.reply(401, "session token required")
            if s.get("fail"):
                return self.reply(int(s["fail"]), "failing on purpose")
            role = self.path[len(p["roles"]):]
            if role == "":
                return self.reply(200, s["role"])
            if role != s["role"]:
                return self.reply(404, "no such role")
            body = {"Code": "Success", "AccessKeyId": s["access_key"], "Expiration": s["expiration"],
                    "LastUpdated": "2026-01-01T00:00:00Z"}
            if p is PROFILES["aws"]:
                body.update(Type="AWS-HMAC", SecretAccessKey=s["secret_key"], Token=s.get("token", ""))
            else:
                body.update(AccessKeySecret=s["secret_key"], SecurityToken=s.get("token", ""))
            return self.reply(200, json.dumps(body), "text/plain")
        # container credentials
        want = s.get("container_token")
        if want is not None and self.headers.get("Authorization") != want:
            return self.reply(401, json.dumps({"code": "AccessDenied"}), "application/json")
        if s.get("fail"):
            return self.reply(int(s["fail"]), "failing on purpose")
        if s.get("malformed"):
            return self.reply(200, "<html>not json</html>", "text/html")
        body = {"AccessKeyId": s["access_key"], "SecretAccessKey": s["secret_key"], "Token": s.get("token"),
                "Expiration": s["expiration"], "RoleArn": "arn:aws:iam::123456789012:role/local"}
        return self.reply(200, json.dumps(body), "application/json")


server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
threading.Timer(lifetime, server.shutdown).start()
print("ready", flush=True)
server.serve_forever()
