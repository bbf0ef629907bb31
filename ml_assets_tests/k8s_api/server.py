"""A local stand-in for the Kubernetes API:
the batch/v1 Job and core/v1 Pod calls dagster-k8s makes.

`LocalKubeApi` is a threaded HTTP server on 127.0.0.1 (standard library only). Creating a Job
validates it against the Kubernetes 1.30 schema (kubernetes-validate, strict: unknown fields are
errors; an invalid Job is answered 422 and kept in ``api.invalid``), records its spec exactly as
posted and runs its container's ``command + args`` as a local subprocess with what a pod's
process has: the Job's env (``valueFrom`` field references of the downward API resolved against
the pod), ``HOSTNAME`` (the pod's name), ``HOME`` (the user's, as the container runtime sets it)
and the venv's ``bin`` first on PATH. The
Job's status follows the process: ``active`` while it runs, then ``succeeded`` or ``failed`` with a
condition. Each Job has one pod, labelled ``job-name``; its log is the process's output.

Endpoints (``{ns}`` any namespace):
  POST   /apis/batch/v1/namespaces/{ns}/jobs              create (409 if it exists, 422 if invalid)
  GET    /apis/batch/v1/namespaces/{ns}/jobs              list (labelSelector k=v[,k=v])
  GET    /apis/batch/v1/namespaces/{ns}/jobs/{name}[/status]
  DELETE /apis/batch/v1/namespaces/{ns}/jobs/{name}       orphans the pod unless propagationPolicy
  GET    /api/v1/namespaces/{ns}/pods                     list (labelSelector job-name=...)
  GET    /api/v1/namespaces/{ns}/pods/{name}[/log]
  DELETE /api/v1/namespaces/{ns}/pods/{name}             kills the process
  GET    /api/v1/namespaces/{ns}/events                   always empty
Anything else answers a 404 ``Status``.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

JOBS = re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/jobs(?:/([^/]+))?(/status)?$")
PODS = re.compile(r"^/api/v1/namespaces/([^/]+)/pods(?:/([^/]+))?(/log)?$")
EVENTS = re.compile(r"^/api/v1/namespaces/([^/]+)/events$")
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
K8S_VERSION = "1.30"
NODE_NAME = "ml-assets-local-node"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stamp() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]


def _status(code: int, reason: str, message: str, name: str = "", kind: str = "") -> dict:
    """A ``v1.Status`` as the API server returns it for errors and deletions."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "message": message,
        "reason": reason,
        "details": {"name": name, "kind": kind},
        "code": code,
    }


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, name: str = "", kind: str = ""):
        super().__init__(message)
        self.body = _status(code, reason, message, name, kind)


@dataclass
class JobRecord:
    """One created Job: the body as posted, its pod, and the process running its container."""

    namespace: str
    name: str
    body: dict[str, Any]
    uid: str
    pod_name: str
    created: str
    log_path: Path
    process: subprocess.Popen | None = None
    started: str | None = None
    finished: str | None = None
    exit_code: int | None = None
    deleted: bool = False
    pod_deleted: bool = False
    error: str | None = None
    started_at: float | None = None  # monotonic, for durations
    finished_at: float | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def container(self) -> dict[str, Any]:
        return self.body["spec"]["template"]["spec"]["containers"][0]

    def field(self, path: str) -> str:
        """A downward-API ``fieldRef`` of this Job's pod."""
        fields = {
            "spec.nodeName": NODE_NAME,
            "metadata.name": self.pod_name,
            "metadata.namespace": self.namespace,
            "metadata.uid": str(uuid.uuid5(uuid.NAMESPACE_URL, self.pod_name)),
            "spec.serviceAccountName": self.body["spec"]["template"]["spec"].get(
                "serviceAccountName", "default"
            ),
        }
        if path not in fields:
            raise ValueError(f"fieldRef {path!r} is not served by this API server")
        return fields[path]

    @property
    def pod_labels(self) -> dict[str, str]:
        labels = dict(self.body["spec"]["template"].get("metadata", {}).get("labels") or {})
        return labels | {"job-name": self.name, "controller-uid": self.uid}

    def job_json(self) -> dict[str, Any]:
        status: dict[str, Any] = {"startTime": self.started or self.created}
        if self.exit_code is None:
            status["active"] = 1
        elif self.exit_code == 0:
            status |= {"succeeded": 1, "completionTime": self.finished}
            status["conditions"] = [self._condition("Complete", "Completed")]
        else:
            status["failed"] = 1
            status["conditions"] = [self._condition("Failed", "BackoffLimitExceeded")]
        metadata = dict(self.body["metadata"])
        metadata |= {
            "namespace": self.namespace,
            "uid": self.uid,
            "creationTimestamp": self.created,
        }
        return {
            **self.body,
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": metadata,
            "status": status,
        }

    def _condition(self, kind: str, reason: str) -> dict[str, str]:
        return {
            "type": kind,
            "status": "True",
            "reason": reason,
            "lastProbeTime": self.finished,
            "lastTransitionTime": self.finished,
        }

    def pod_json(self) -> dict[str, Any]:
        container = self.container
        base = {
            "name": container["name"],
            "image": container["image"],
            "imageID": f"local://{container['image']}",
            "restartCount": 0,
        }
        if self.exit_code is None:
            phase = "Running" if self.started else "Pending"
            state = (
                {"running": {"startedAt": self.started}}
                if self.started
                else {"waiting": {"reason": "ContainerCreating"}}
            )
            statuses = [base | {"ready": bool(self.started), "state": state}]
        else:
            phase = "Succeeded" if self.exit_code == 0 else "Failed"
            reason = "Completed" if self.exit_code == 0 else "Error"
            terminated = {
                "exitCode": self.exit_code,
                "reason": reason,
                "startedAt": self.started,
                "finishedAt": self.finished,
            }
            statuses = [base | {"ready": False, "state": {"terminated": terminated}}]
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": self.pod_name,
                "namespace": self.namespace,
                "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, self.pod_name)),
                "creationTimestamp": self.created,
                "labels": self.pod_labels,
            },
            "spec": self.body["spec"]["template"]["spec"] | {"nodeName": NODE_NAME},
            "status": {
                "phase": phase,
                "startTime": self.started or self.created,
                "containerStatuses": statuses,
            },
        }


class LocalKubeApi:
    """Start with ``with LocalKubeApi(workdir, log_dir) as api:``; ``api.jobs`` holds every Job."""

    def __init__(self, workdir: Path, log_dir: Path, extra_path: str | None = None):
        self.workdir = Path(workdir)
        self.log_dir = Path(log_dir)
        self.extra_path = extra_path or str(Path(sys.executable).parent)
        self.jobs: dict[tuple[str, str], JobRecord] = {}
        self.invalid: list[tuple[str, str]] = []  # (Job name, schema error) of refused posts
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> LocalKubeApi:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for job in list(self.jobs.values()):
            self._kill(job)
        self._server.shutdown()
        self._server.server_close()

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """A kubeconfig (JSON is valid YAML) whose current context points at this server."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "local", "cluster": {"server": self.url}}],
            "users": [{"name": "local", "user": {"token": "local-test-token"}}],
            "contexts": [
                {
                    "name": "local",
                    "context": {"cluster": "local", "user": "local", "namespace": namespace},
                }
            ],
            "current-context": "local",
        }
        path.write_text(json.dumps(config, indent=2))
        return path

    # ----- Jobs -----

    def validate(self, name: str, body: dict[str, Any]) -> None:
        """Strict schema validation, as the API server's own would refuse the object."""
        import kubernetes_validate

        try:
            kubernetes_validate.validate(body, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            message = f"{'.'.join(map(str, error.path))}: {error.message}"
            self.invalid.append((name, message))
            raise ApiError(
                422, "Invalid", f'Job.batch "{name}" is invalid: {message}', name, "jobs"
            ) from error

    def create_job(self, namespace: str, body: dict[str, Any]) -> JobRecord:
        name = (body.get("metadata") or {}).get("name") or ""
        self.validate(name, body)
        if not DNS_1123.match(name) or len(name) > 63:
            raise ApiError(
                422, "Invalid", f'Job.batch "{name}" is invalid: metadata.name', name, "jobs"
            )
        containers = (((body.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
            "containers"
        )
        if not containers or not containers[0].get("image") or not containers[0].get("name"):
            raise ApiError(
                422,
                "Invalid",
                f'Job.batch "{name}" is invalid: spec.template.spec.containers',
                name,
                "jobs",
            )
        with self._lock:
            if (namespace, name) in self.jobs and not self.jobs[(namespace, name)].deleted:
                raise ApiError(
                    409, "AlreadyExists", f'jobs.batch "{name}" already exists', name, "jobs"
                )
            uid = str(uuid.uuid4())
            job = JobRecord(
                namespace,
                name,
                body,
                uid,
                f"{name}-{uid[:5]}",
                _now(),
                self.log_dir / f"{name}.log",
            )
            self.jobs[(namespace, name)] = job
        threading.Thread(target=self._run, args=(job,), daemon=True).start()
        return job

    def _run(self, job: JobRecord) -> None:
        container = job.container
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        env = {"HOSTNAME": job.pod_name, "HOME": pwd.getpwuid(os.getuid()).pw_dir}
        for item in container.get("env") or []:
            source = (item.get("valueFrom") or {}).get("fieldRef")
            env[item["name"]] = job.field(source["fieldPath"]) if source else item.get("value", "")
        env["PATH"] = os.pathsep.join(
            p for p in (self.extra_path, env.get("PATH"), os.defpath) if p
        )
        job.started, job.started_at = _now(), time.monotonic()
        with job.log_path.open("ab", buffering=0) as log:
            log.write(f"[k8s_api] {_stamp()} pod {job.pod_name} starts: {argv}\n".encode())
            try:
                job.process = subprocess.Popen(
                    argv, cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT
                )
                if job.deleted or job.pod_deleted:  # deleted while starting
                    self._kill(job)
                code = job.process.wait()
            except OSError as error:  # command not found: the container fails to start
                job.error, code = str(error), 127
            code = 128 - code if code < 0 else code  # killed by a signal: 128 + signal, as in k8s
            log.write(f"[k8s_api] {_stamp()} exit code {code} {job.error or ''}\n".encode())
        job.finished, job.finished_at, job.exit_code = _now(), time.monotonic(), code
        job.done.set()

    def kill_all(self) -> None:
        """Kill every running pod (a deadline): its Job fails, so the executor's health check fails
        the step instead of waiting for it forever."""
        for job in list(self.jobs.values()):
            self._kill(job)

    def wait_all(self, timeout: float) -> bool:
        """Wait until every created Job's process has exited; False on timeout."""
        deadline = time.monotonic() + timeout
        return all(
            j.done.wait(max(0.0, deadline - time.monotonic())) for j in list(self.jobs.values())
        )

    def _kill(self, job: JobRecord) -> None:
        if job.process is not None and job.process.poll() is None:
            job.process.kill()

    def get_job(self, namespace: str, name: str) -> JobRecord:
        job = self.jobs.get((namespace, name))
        if job is None or job.deleted:
            raise ApiError(404, "NotFound", f'jobs.batch "{name}" not found', name, "jobs")
        return job

    def delete_job(self, namespace: str, name: str, propagation: str | None) -> dict[str, Any]:
        """Without a propagationPolicy the pod is orphaned and keeps running, as batch/v1 does
        (hence dagster-k8s deletes a Job's pods itself)."""
        job = self.get_job(namespace, name)
        job.deleted = True
        if propagation in ("Background", "Foreground"):
            job.pod_deleted = True
            self._kill(job)
        return job.job_json()

    # ----- Pods (one per Job) -----

    def pods(self, namespace: str) -> list[JobRecord]:
        return [j for j in self.jobs.values() if j.namespace == namespace and not j.pod_deleted]

    def get_pod(self, namespace: str, name: str) -> JobRecord:
        for job in self.pods(namespace):
            if job.pod_name == name:
                return job
        raise ApiError(404, "NotFound", f'pods "{name}" not found', name, "pods")

    def delete_pod(self, namespace: str, name: str) -> dict[str, Any]:
        job = self.get_pod(namespace, name)
        job.pod_deleted = True
        self._kill(job)
        return job.pod_json()


def _matches(labels: dict[str, str], selector: str | None) -> bool:
    if not selector:
        return True
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip().lstrip("="):
            return False
    return True


def _handler_for(api: LocalKubeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, code: int, body: dict[str, Any] | str) -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header(
                "Content-Type", "text/plain" if isinstance(body, str) else "application/json"
            )
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _dispatch(self, method: str) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            api.requests.append((method, url.path))
            try:
                code, body = self._route(method, url.path, query, raw)
            except ApiError as error:
                code, body = error.body["code"], error.body
            except (ValueError, KeyError, TypeError) as error:
                code, body = 400, _status(400, "BadRequest", f"bad request: {error!r}")
            self._reply(code, body)

        def _route(self, method: str, path: str, query: dict[str, str], raw: bytes):
            selector = query.get("labelSelector")
            if match := JOBS.match(path):
                ns, name, _ = match.groups()
                if name is None and method == "POST":
                    return 201, api.create_job(ns, json.loads(raw)).job_json()
                if name is None and method == "GET":
                    items = [
                        j.job_json()
                        for j in api.jobs.values()
                        if j.namespace == ns
                        and not j.deleted
                        and _matches(j.body["metadata"].get("labels") or {}, selector)
                    ]
                    return 200, {
                        "apiVersion": "batch/v1",
                        "kind": "JobList",
                        "metadata": {"resourceVersion": "1"},
                        "items": items,
                    }
                if name is not None and method == "GET":
                    return 200, api.get_job(ns, name).job_json()
                if name is not None and method == "DELETE":
                    options = json.loads(raw) if raw else {}
                    policy = options.get("propagationPolicy") or query.get("propagationPolicy")
                    return 200, api.delete_job(ns, name, policy)
            elif match := PODS.match(path):
                ns, name, log = match.groups()
                if name is None and method == "GET":
                    items = [j.pod_json() for j in api.pods(ns) if _matches(j.pod_labels, selector)]
                    return 200, {
                        "apiVersion": "v1",
                        "kind": "PodList",
                        "metadata": {"resourceVersion": "1"},
                        "items": items,
                    }
                if name is not None and log and method == "GET":
                    job = api.get_pod(ns, name)
                    text = job.log_path.read_text(errors="replace") if job.log_path.exists() else ""
                    lines = text.splitlines()
                    tail = int(query.get("tailLines") or len(lines))
                    return 200, "\n".join(lines[max(0, len(lines) - tail) :])
                if name is not None and method == "GET":
                    return 200, api.get_pod(ns, name).pod_json()
                if name is not None and method == "DELETE":
                    return 200, api.delete_pod(ns, name)
            elif EVENTS.match(path) and method == "GET":
                return 200, {"apiVersion": "v1", "kind": "EventList", "metadata": {}, "items": []}
            raise ApiError(
                404,
                "NotFound",
                f"the server could not find the requested resource ({method} {path})",
            )

        def do_GET(self) -> None:  # noqa: N802
            self._dispatch("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._dispatch("POST")

        def do_DELETE(self) -> None:  # noqa: N802
            self._dispatch("DELETE")

    return Handler
