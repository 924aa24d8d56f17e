"""The `FROM scratch` root file system of the elector image, and of the webhook image, assembled in the build
stage of elector/Dockerfile and webhook/Dockerfile.

    python3 rootfs.py --app elector --venv /opt/kube-elector --out /rootfs
    python3 rootfs.py --app webhook --venv /opt/kube-elector --out /rootfs

Run by the base image's own interpreter (the one that is shipped), offline, as root. It:

1. traces the program through its paths, in this stage, against fake_api.py (a few Kubernetes routes in
   memory). The elector (trace_elector below): --help, bad flags, bad YAML kubeconfig with a TLS client
   certificate, in-cluster config without a ServiceAccount, a port in use, leader + follower with
   JSON/text logs, leader label, app health URL, SSE, /release, SIGTERM release with --release-timeout,
   a TLS handshake that fails, an unreachable server, an exception logged in both formats, and every
   module of the `elector` package and pyyaml imported. The webhook, the controller and the certificate
   tool of the webhook image: trace_webhook.py. Each run records `sys.modules` at exit;
2. adds a conservative allow-list (ALLOW: modules that only rare paths import), the packages whose
   modules are found by name at run time (WHOLE_PACKAGES: encodings, asyncio) and, recursively, the
   module-level imports of what these add (parsed, not run);
3. writes the selected stdlib modules as sourceless bytecode (`os.pyc` beside where `os.py` was; for the
   elector compiled as the image runs, RUNTIME_ENV: no docstrings, asserts or column tables),
   the C extension modules, the interpreter, and every shared library that `ldd` finds for them plus
   the few that glibc loads by name (LIBS_BY_NAME), keeping the base's symlinks (`/lib64` ->
   `usr/lib64`, ...) so that the ELF interpreter path and `sys.prefix` resolve as in the base;
4. copies the venv (the console scripts, the project's packages with their sources and bytecode, the
   third-party packages whole, pyyaml without its optional libyaml extension; the debug sections of
   extension modules dropped, as `strip` would), an ld.so cache of the shipped libraries, OpenSSL's
   config, and `/etc/passwd`, `/etc/group` (uid/gid 65532 "nonroot"), `/etc/nsswitch.conf`, `/tmp`;
5. checks the result: chrooted into it as uid 65532, each console script's `--help` and importing every
   module of the project's packages must work; and prints the file list by size.

No shell, no pip, no package manager, no CA bundle (the programs trust the ServiceAccount's CA).
"""
from __future__ import annotations

import argparse
import ast
import importlib.machinery
import json
import os
import py_compile
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Stdlib modules imported only on paths the trace may not reach, with why. Their module-level imports
# are added too (step 2).
ALLOW = {
    # any exception that gets formatted: logging's formatException, warnings, the default excepthook
    "traceback": "exception formatting", "linecache": "exception formatting", "tokenize": "source lines",
    "token": "source lines", "warnings": "warnings", "weakref": "asyncio, logging",
    # hostnames are resolved in asyncio's default executor (a thread pool, imported on first use)
    "concurrent.futures.thread": "getaddrinfo executor", "queue": "getaddrinfo executor",
    # TLS: server_hostname is IDNA-encoded by ssl.SSLContext
    "encodings.idna": "TLS server_hostname", "stringprep": "IDNA", "unicodedata": "IDNA",
    # client certificate and key pass through a private temporary directory (kubeconfig._context)
    "tempfile": "client certificates", "shutil": "client certificates", "random": "tempfile names",
    # argparse messages and --help
    "argparse": "flags", "gettext": "argparse messages", "locale": "gettext", "textwrap": "--help",
    # signals, contextvars (asyncio), base64 (kubeconfig *-data), YAML kubeconfig
    "signal": "SIGTERM/SIGINT", "contextvars": "asyncio", "base64": "kubeconfig data",
    "datetime": "records and logs", "json": "API and logs", "ssl": "TLS", "selectors": "asyncio",
    "encodings.utf_8": "stdio", "encodings.latin_1": "HTTP heads", "encodings.ascii": "ascii",
}
# The webhook image's rare paths besides (its programs: webhook, controller, certs), with why.
WEBHOOK_ALLOW = {
    "_strptime": "datetime.strptime (certificate and credential expiry)", "uuid": "starlette, anyio",
    "concurrent.futures.process": "anyio", "hmac": "hashing", "secrets": "starlette", "ipaddress": "certificates",
    "email.utils": "HTTP dates", "email.parser": "http.client headers", "http.cookies": "starlette requests",
    "multiprocessing": "uvicorn imports", "zlib": "compression", "gzip": "prometheus_client",
    "wsgiref.simple_server": "prometheus_client exposition", "socketserver": "controller health server",
    "http.server": "controller health server", "difflib": "click and jsonpatch error messages",
    "dataclasses": "settings", "enum": "settings", "typing": "settings (field types), starlette",
}
# Packages shipped whole, because their modules are looked up by name at run time (codecs) or imported
# lazily by asyncio; without what only runs on Windows or as `python -m`, and the CJK codecs (they need
# extension modules of their own).
WHOLE_PACKAGES = ("encodings", "asyncio")
SKIP_MODULES = ("asyncio.__main__", "asyncio.windows_events", "asyncio.windows_utils", "asyncio.proactor_events",
                "encodings.mbcs", "encodings.oem")
CJK_CODECS = ("big5", "cp932", "cp949", "cp950", "euc_", "gb", "hz", "iso2022", "johab", "shift_jis")
# Shared libraries that glibc or OpenSSL load by name at run time (dlopen), not listed by ldd:
# libgcc_s for pthread_exit/pthread_cancel unwinding; the NSS modules for glibc < 2.34 (stubs after).
LIBS_BY_NAME = ("libgcc_s.so.1", "libnss_files.so.2", "libnss_dns.so.2")
# Packages of the venv that are not shipped, and files of shipped packages that are not.
VENV_SKIP = ("pip", "setuptools", "_distutils_hack", "distutils-precedence.pth", "pkg_resources", "wheel")
PYYAML_EXTENSION = "_yaml"  # libyaml bindings: yaml falls back to its pure-Python loader (all we use)

NONROOT = 65532
# How the elector image's interpreter runs: elector/Dockerfile sets the same ENV (a test holds them equal).
# PYTHONOPTIMIZE=2 drops docstrings and asserts from the code objects (the venv is compiled to .opt-2.pyc,
# the stdlib here at the same level), PYTHONNODEBUGRANGES=1 the per-instruction column tables (tracebacks
# lose their ^^^ markers only): together ~0.8 MiB less RSS. The trace and the chroot check run so too.
RUNTIME_ENV = {"elector": {"PYTHONOPTIMIZE": "2", "PYTHONNODEBUGRANGES": "1"}, "webhook": {}}
# Compiles (source, pyc) pairs read as JSON from stdin, in a child started with the image's flags
# (`-X no_debug_ranges` is an interpreter setting, not a compile() argument).
COMPILE = r"""
import json, py_compile, sys
for source, dest in json.load(sys.stdin):
    py_compile.compile(source, cfile=dest, dfile=source, doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
"""
ETC = {
    "passwd": "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
    "group": "root:x:0:\nnonroot:x:65532:\n",
    # files before DNS: "localhost" (the --http default) must not go to a cluster DNS server first
    "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
}

BOOTSTRAP = r"""
import atexit, os, sys
def _dump(path=os.environ["TRACE_OUT"]):
    with open(path, "a", encoding="utf-8") as out:
        out.write("\n".join(sorted(sys.modules)) + "\n")
atexit.register(_dump)
sys.argv[0] = os.environ["TRACE_PROG"]
from importlib import import_module
sys.exit(import_module(os.environ["TRACE_ENTRY"]).main())
"""
EXCEPTION_LOG = r"""
import logging
from elector.ops import logs
for fmt in ("json", "text"):
    logs.setup(fmt=fmt, level="info", pod="p", election="ns/e")
    try:
        raise ValueError("traced")
    except ValueError:
        logging.getLogger("elector.trace").exception("an exception, logged")
import warnings
warnings.warn("traced warning")
"""


def say(text: str) -> None:
    print(f"[rootfs] {text}", flush=True)


# ---------------------------------------------------------------------------------------------- trace


class Tracer:
    def __init__(self, venv: Path, work: Path, *, entry: str = "elector.__main__", prog: str = "kube-elector",
                 runtime: dict[str, str] | None = None) -> None:
        self.python = str(venv / "bin" / "python")
        self.runtime = runtime or {}  # RUNTIME_ENV: the image's flags change what code runs
        self.entry, self.prog = entry, prog  # what BOOTSTRAP runs, unless a run names another
        self.work = work
        self.out = work / "modules.txt"
        self.out.touch()
        self.runs = 0

    def env(self, **extra: str) -> dict[str, str]:
        return {"PATH": "/usr/bin:/bin", "TRACE_OUT": str(self.out), "PYTHONDONTWRITEBYTECODE": "1",
                "TRACE_ENTRY": self.entry, "TRACE_PROG": self.prog,
                "POD_NAME": "trace-pod", "POD_NAMESPACE": "trace", "POD_UID": "uid-trace", **self.runtime, **extra}

    def start(self, args: list[str], *, code: str = BOOTSTRAP, **env: str) -> subprocess.Popen[bytes]:
        self.runs += 1
        with open(self.work / f"run-{self.runs}.log", "wb") as log:  # shown if a run fails
            return subprocess.Popen([self.python, "-c", code, *args], env=self.env(**env), stdout=log,
                                    stderr=subprocess.STDOUT)

    def run(self, args: list[str], expect: int, *, code: str = BOOTSTRAP, **env: str) -> None:
        proc = self.start(args, code=code, **env)
        self.finish(proc, expect, timeout=30)

    def finish(self, proc: subprocess.Popen[bytes], expect: int, timeout: float = 30) -> None:
        rc = proc.wait(timeout)
        if rc != expect:
            self.fail(f"{proc.args[3:]} exited {rc}, expected {expect}")

    def fail(self, what: str) -> None:
        logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.work.glob("run-*.log")))
        raise SystemExit(f"trace: {what}\n{logs}")

    def modules(self) -> set[str]:
        return {line.strip() for line in self.out.read_text().splitlines() if line.strip()}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, *, data: bytes | None = None, timeout: float = 2.0, limit: int = -1) -> bytes:
    # A POST carries the header /release requires (elector/serve/routes.py), as an app's does.
    headers = {"Elector-Release": "true"} if data is not None else {}
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET", headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (loopback)
        return response.read(limit) if limit > 0 else response.read()


def wait_until(predicate, timeout: float, what: str, tracer: Tracer | None = None) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.05)
    if tracer:
        tracer.fail(f"timed out waiting for {what}")
    raise SystemExit(f"trace: timed out waiting for {what}")


def kubeconfig(path: Path, server: str, *, user: str, yaml: bool = False) -> Path:
    if yaml:  # block-style YAML, not JSON: the elector needs pyyaml for it
        path.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: trace\n"
            f"clusters:\n- name: trace\n  cluster:\n    server: {server}\n"
            "    insecure-skip-tls-verify: true\n"
            f"users:\n- name: trace\n  user:\n{user}"
            "contexts:\n- name: trace\n  context: {cluster: trace, user: trace}\n")
    else:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "trace",
            "clusters": [{"name": "trace", "cluster": {"server": server}}],
            "users": [{"name": "trace", "user": {"token": user}}],
            "contexts": [{"name": "trace", "context": {"cluster": "trace", "user": "trace"}}]}))
    return path


def start_fake_api(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    """fake_api.py on 127.0.0.1 (a port of its choosing): the process and the port."""
    portfile = work / "fake-api.port"
    fake = subprocess.Popen([sys.executable, str(HERE / "fake_api.py"), str(portfile)])
    try:
        wait_until(lambda: portfile.exists() and portfile.read_text(), 10, "the fake API server")
    except BaseException:
        fake.kill()
        raise
    return fake, int(portfile.read_text())


def trace_elector(venv: Path, work: Path) -> set[str]:
    tracer = Tracer(venv, work, runtime=RUNTIME_ENV["elector"])
    fake, api = start_fake_api(work)
    try:
        # 127.0.0.1, not localhost: a build may have no /etc/hosts (the unreachable run resolves a name)
        plain = kubeconfig(work / "plain.json", f"http://127.0.0.1:{api}", user="token")
        # TLS client certificate in YAML: not a certificate, so the elector says so and exits 1
        bad_cert = "    client-certificate-data: bm90IGEgY2VydA==\n    client-key-data: bm90IGEga2V5\n"
        tls_yaml = kubeconfig(work / "tls.yaml", f"https://127.0.0.1:{api}", user=bad_cert, yaml=True)
        tls_token = kubeconfig(work / "tls.json", f"https://127.0.0.1:{api}", user="token")  # handshake fails
        # resolved in asyncio's executor; refused, or no such name where the build has no /etc/hosts
        unreachable = kubeconfig(work / "down.json", f"http://localhost:{free_port()}", user="token")

        tracer.run(["--help"], 0)
        tracer.run(["--no-such-flag"], 1)
        tracer.run(["--election=e", "--lease-duration=soon"], 1)
        tracer.run(["--election=e", f"--kubeconfig={tls_yaml}"], 1)
        tracer.run(["--election=e"], 1, ELECTOR_SERVICE_ACCOUNT_DIR=str(work / "no-sa"),
                   KUBERNETES_SERVICE_HOST="127.0.0.1", KUBERNETES_SERVICE_PORT=str(api))
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            tracer.run(["--election=e", f"--kubeconfig={plain}",
                        f"--http=127.0.0.1:{taken.getsockname()[1]}", f"--probe-address=127.0.0.1:{free_port()}"], 1)
        tracer.run([], 0, code=EXCEPTION_LOG)
        tracer.run([], 0, code="import os, elector, yaml\n"
                               "for d, _, fs in os.walk(elector.__path__[0]):\n"
                               "    for f in fs:\n"
                               "        if f.endswith('.py'): __import__(os.path.relpath(os.path.join(d, f[:-3]), os.path.dirname(elector.__path__[0])).replace(os.sep, '.').removesuffix('.__init__'))\n"
                               "yaml.safe_load('a: [1, {b: c}]')\n")

        # leader and follower, every option that changes what runs
        fast = ["--lease-duration=2s", "--renew-deadline=1s", "--retry-period=300ms"]  # elector/election/timings.py RANGES
        procs, ports = [], []
        for pod, extra in (("lead", ["--log-format=json", "--release-timeout=1s",
                                     f"--app-health-url=http://127.0.0.1:{api}/healthz",
                                     f"--metrics-address=127.0.0.1:{free_port()}"]),
                           ("follow", ["--log-format=text", "--log-level=debug"])):
            http, probes = free_port(), free_port()
            ports.append((http, probes))
            procs.append(tracer.start(["--election=traced", f"--kubeconfig={plain}", f"--http=127.0.0.1:{http}",
                                       f"--probe-address=0.0.0.0:{probes}", *fast, *extra], POD_NAME=pod))
            if pod == "lead":  # the first one leads
                wait_until(lambda h=http: json.loads(get(f"http://127.0.0.1:{h}/"))["is_leader"], 20, "a leader", tracer)
        for http, probes in ports:
            wait_until(lambda p=probes: get(f"http://127.0.0.1:{p}/readyz"), 20, "/readyz", tracer)
            get(f"http://127.0.0.1:{probes}/healthz")
            get(f"http://127.0.0.1:{probes}/metrics")
            get(f"http://127.0.0.1:{http}/?wait=200ms", timeout=5)
            get(f"http://127.0.0.1:{http}/sse", limit=16)
        get(f"http://127.0.0.1:{ports[0][0]}/release", data=b"")
        wait_until(lambda: json.loads(get(f"http://127.0.0.1:{ports[1][0]}/"))["is_leader"], 20, "the hand-over", tracer)
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            tracer.finish(proc, 0)

        # TLS that fails (plain HTTP server), then an unreachable server: errors are logged, it keeps running
        for config, fmt in ((tls_token, "json"), (unreachable, "text")):
            proc = tracer.start(["--election=broken", f"--kubeconfig={config}", f"--log-format={fmt}",
                                 f"--http=127.0.0.1:{free_port()}", f"--probe-address=127.0.0.1:{free_port()}",
                                 *fast])
            time.sleep(1.5)
            proc.send_signal(signal.SIGINT if fmt == "text" else signal.SIGTERM)
            tracer.finish(proc, 0)
    finally:
        fake.kill()
        fake.wait()
    found = tracer.modules()
    say(f"trace: {tracer.runs} runs, {len(found)} modules in sys.modules")
    return found


# ------------------------------------------------------------------------------------------ select


class Stdlib:
    """The base's stdlib: module name -> file, and the module-level imports of a file."""

    def __init__(self) -> None:
        self.dir = Path(sysconfig.get_paths()["stdlib"])
        self.dynload = Path(sysconfig.get_paths()["platstdlib"]) / "lib-dynload"
        self.suffixes = importlib.machinery.EXTENSION_SUFFIXES

    def find(self, name: str) -> Path | None:
        if name in sys.builtin_module_names:
            return None
        parts = name.split(".")
        base = self.dir.joinpath(*parts)
        for candidate in (base / "__init__.py", base.with_name(base.name + ".py")):
            if candidate.is_file():
                return candidate
        if len(parts) == 1:
            for suffix in self.suffixes:
                candidate = self.dynload / f"{name}{suffix}"
                if candidate.is_file():
                    return candidate
        return None

    def package_modules(self, package: str) -> list[str]:
        root = self.dir.joinpath(*package.split("."))
        names = []
        for path in sorted(root.glob("*.py")):
            rel = path.relative_to(self.dir).with_suffix("")
            name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
            if name in SKIP_MODULES or (package == "encodings" and rel.name.startswith(CJK_CODECS)):
                continue
            names.append(name)
        return names

    def imports(self, name: str, path: Path) -> set[str]:
        """Module-level imports (not those inside functions), resolved against `name`'s package."""
        if path.suffix != ".py":
            return set()
        tree = ast.parse(path.read_bytes(), str(path))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()

        def visit(nodes: list[ast.stmt]) -> None:
            for node in nodes:
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        parts = alias.name.split(".")
                        found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
                elif isinstance(node, ast.ImportFrom):
                    if node.level:
                        base = package.split(".")
                        base = base[: len(base) - node.level + 1]
                        module = ".".join(base + ([node.module] if node.module else []))
                    else:
                        module = node.module or ""
                    parts = module.split(".")
                    found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
                    found.update(f"{module}.{alias.name}" for alias in node.names)  # maybe submodules
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                else:
                    for field in ("body", "orelse", "finalbody", "handlers"):
                        child = getattr(node, field, None)
                        if isinstance(child, list):
                            visit([c for c in child if isinstance(c, (ast.stmt, ast.excepthandler))])
                    if isinstance(node, ast.Match):
                        for case in node.cases:
                            visit(case.body)
        visit(tree.body)
        return {module for module in found if module and self.find(module) is not None}


def select(traced: set[str], allow: dict[str, str]) -> dict[str, tuple[Path, str]]:
    """Module name -> (file, why): "trace", "allow", "package" (WHOLE_PACKAGES) or "import" (at module
    level by an allow-listed or package module; the traced ones have run their imports already)."""
    stdlib = Stdlib()
    chosen = {name: (path, "trace") for name in traced if (path := stdlib.find(name))}
    extra = [(name, "allow") for name in allow] + [
        (name, "package") for package in WHOLE_PACKAGES for name in stdlib.package_modules(package)]
    while extra:
        name, why = extra.pop(0)
        path = stdlib.find(name)
        if name in chosen or path is None:
            continue
        chosen[name] = (path, why)
        extra.extend((module, "import") for module in sorted(stdlib.imports(name, path) - chosen.keys()))
    missing = sorted(set(allow) - chosen.keys() - set(sys.builtin_module_names))
    if missing:
        raise SystemExit(f"allow-listed modules not in this Python: {missing}")
    return chosen


# --------------------------------------------------------------------------------------- assemble


def install(path: str, out: Path) -> str:
    """Copy `path` into `out` at the same place, re-creating every symlink met on the way (a symlinked
    directory such as /lib -> usr/lib included). Returns the resolved source path."""
    parts = Path(os.path.abspath(path)).parts[1:]
    current = Path("/")
    for i, part in enumerate(parts):
        current = current / part
        dest = out / current.relative_to("/")
        if current.is_symlink():
            target = os.readlink(current)
            if not os.path.lexists(dest):
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(target, dest)
            resolved = os.path.normpath(os.path.join(current.parent, target))
            return install(os.path.join(resolved, *parts[i + 1:]), out)
        if i < len(parts) - 1:
            if not dest.exists():
                dest.mkdir(mode=0o755)
        elif not dest.exists():
            if current.is_dir():
                dest.mkdir(mode=0o755)
            else:
                shutil.copy2(current, dest)
    return str(current)


def ldd(paths: list[str]) -> set[str]:
    """Every shared library (and the ELF interpreter) that the dynamic linker maps for `paths`."""
    libs: set[str] = set()
    for path in paths:
        out = subprocess.run(["ldd", path], capture_output=True, text=True, check=False).stdout
        if "not a dynamic executable" in out:
            continue
        for line in out.splitlines():
            line = line.strip()
            if "=>" in line:
                target = line.split("=>", 1)[1].split("(")[0].strip()
                if target == "not found":
                    raise SystemExit(f"ldd {path}: {line}")
                if target:
                    libs.add(target)
            elif line.startswith("/"):
                libs.add(line.split("(")[0].strip())  # the ELF interpreter
    return libs


def compile_sourceless(pairs: list[tuple[Path, Path]], runtime: dict[str, str]) -> None:
    """`os.py` -> `dest/os.pyc` for each pair: sourceless modules (the legacy location, loaded without a .py),
    compiled by this interpreter with the image's flags (RUNTIME_ENV) so that they match its venv's bytecode."""
    for _, dest in pairs:
        dest.parent.mkdir(parents=True, exist_ok=True)
    flags = ["-X", "no_debug_ranges"] if runtime.get("PYTHONNODEBUGRANGES") else []
    flags += ["-" + "O" * int(runtime["PYTHONOPTIMIZE"])] if runtime.get("PYTHONOPTIMIZE") else []
    subprocess.run([sys.executable, *flags, "-c", COMPILE], input=json.dumps([[str(s), str(d)] for s, d in pairs]),
                   text=True, check=True, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})


def copy_venv(venv: Path, out: Path, runtime: dict[str, str]) -> None:
    site = next(venv.glob("lib/python*/site-packages"))
    level = int(runtime.get("PYTHONOPTIMIZE") or 0)
    tag = f".opt-{level}.pyc" if level else ".pyc"  # the bytecode this interpreter loads; not the other levels'

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = set()
        for name in names:
            if Path(directory) == site and name.startswith(VENV_SKIP):
                skipped.add(name)
            elif Path(directory).name == "bin" and (name.startswith(("activate", "Activate", "pip", "wheel"))):
                skipped.add(name)
            elif Path(directory).name == "yaml" and name.startswith(PYYAML_EXTENSION + "."):
                skipped.add(name)
            elif Path(directory).name == "__pycache__" and (not name.endswith(tag) or not level and ".opt-" in name):
                skipped.add(name)
        return skipped

    shutil.copytree(venv, out / venv.relative_to("/"), symlinks=True, ignore=ignore)
    saved = sum(strip_debug(path) for path in (out / venv.relative_to("/")).rglob("*.so"))
    if saved:
        say(f"extension modules: {saved / 1e6:.1f} MB of debug sections and symbol tables dropped")
    # the venv's python links to the base interpreter: bring that chain along
    install(str(venv / "bin" / "python"), out)


# ELF64 little-endian; section types and flags from the System V ABI
SHF_ALLOC, SHF_INFO_LINK, SHT_REL, SHT_RELA, SHT_NOBITS = 0x2, 0x40, 9, 4, 8


def strip_debug(path: Path) -> int:
    """Drop the sections a loaded ELF64 never reads (debug info, symbol tables), as `strip` does, when the
    layout allows it safely (they come after every loaded section); returns the bytes saved (0: left)."""
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return 0
    (ident, etype, machine, version, entry, phoff, shoff, flags, ehsize, phentsize, phnum, shentsize, shnum,
     shstrndx) = struct.unpack_from("<16sHHIQQQIHHHHHH", data)
    if shoff == 0 or shnum == 0 or shentsize != 64 or phentsize != 56:
        return 0
    sections = [list(struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * 64)) for i in range(shnum)]
    keep = [i for i, s in enumerate(sections) if i == 0 or s[2] & SHF_ALLOC or i == shstrndx]
    dropped = [i for i in range(shnum) if i not in keep]
    alloc = [i for i in keep if i and i != shstrndx]
    if not dropped or (alloc and min(dropped) < max(alloc)) or (shstrndx < max(alloc, default=0)):
        return 0  # nothing to drop, or indices of loaded sections would move
    new_index = {old: new for new, old in enumerate(keep)}
    end = max([phoff + phnum * 56] + [off + filesz for off, filesz in
               (struct.unpack_from("<IIQQQQQQ", data, phoff + i * 56)[2:6:3] for i in range(phnum))]
              + [sections[i][4] + (0 if sections[i][1] == SHT_NOBITS else sections[i][5]) for i in alloc])
    out = bytearray(data[:end])
    headers = []
    for old in keep:
        s = list(sections[old])
        if s[6] and s[6] not in new_index or (s[1] in (SHT_REL, SHT_RELA) or s[2] & SHF_INFO_LINK) and s[7] and s[7] not in new_index:
            return 0
        if s[6]:
            s[6] = new_index[s[6]]
        if (s[1] in (SHT_REL, SHT_RELA) or s[2] & SHF_INFO_LINK) and s[7]:
            s[7] = new_index[s[7]]
        if old == shstrndx:
            s[4] = len(out)
            out += data[sections[old][4]:sections[old][4] + s[5]]
        headers.append(s)
    out += b"\0" * (-len(out) % 8)
    new_shoff = len(out)
    for s in headers:
        out += struct.pack("<IIQQQQIIQQ", *s)
    struct.pack_into("<16sHHIQQQIHHHHHH", out, 0, ident, etype, machine, version, entry, phoff, new_shoff, flags,
                     ehsize, phentsize, phnum, shentsize, len(keep), new_index[shstrndx])
    with open(path, "r+b") as handle:
        handle.write(out)
        handle.truncate()
    return len(data) - len(out)


def etc(out: Path) -> None:
    (out / "etc").mkdir(exist_ok=True)
    for name, text in ETC.items():
        (out / "etc" / name).write_text(text)
    # ld.so cache of the shipped libraries only (the base's may name /usr/local/lib, as python:*-slim does)
    for conf in [Path("/etc/ld.so.conf"), *Path("/etc/ld.so.conf.d").glob("*.conf")]:
        if conf.is_file():
            (out / conf.relative_to("/")).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(conf, out / conf.relative_to("/"))
    done = subprocess.run(["ldconfig", "-X", "-r", str(out)], capture_output=True, text=True, check=False)
    if done.returncode != 0 and Path("/etc/ld.so.cache").exists():
        say(f"ldconfig -r failed ({done.stderr.strip()}): copying the base's ld.so.cache")
        shutil.copy2("/etc/ld.so.cache", out / "etc/ld.so.cache")
    for conf in [out / "etc/ld.so.conf", out / "etc/ld.so.conf.d"]:
        shutil.rmtree(conf) if conf.is_dir() else conf.unlink(missing_ok=True)
    # OpenSSL reads its config at start-up; keep the base's (a symlink into /etc/ssl on Debian)
    openssl_dir = Path(ssl.get_default_verify_paths().openssl_cafile).parent
    if (openssl_dir / "openssl.cnf").exists():
        install(str(openssl_dir / "openssl.cnf"), out)
    tmp = out / "tmp"
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o1777)


def assemble(venv: Path, out: Path, modules: dict[str, tuple[Path, str]], runtime: dict[str, str]) -> None:
    stdlib = Stdlib()
    extensions, sources = [], []
    for path, _ in sorted(modules.values()):
        if path.suffix == ".py":
            sources.append((path, out / path.relative_to("/").with_suffix(".pyc")))
        else:
            install(str(path), out)
            extensions.append(str(path))
    compile_sourceless(sources, runtime)
    (out / stdlib.dynload.relative_to("/")).mkdir(parents=True, exist_ok=True)  # on sys.path: keep it
    copy_venv(venv, out, runtime)
    executable = os.path.realpath(venv / "bin" / "python")
    extensions += [str(p) for p in (out / venv.relative_to("/")).rglob("*.so")]
    extensions = [p if not p.startswith(str(out)) else "/" + os.path.relpath(p, out) for p in extensions]
    libs = ldd([executable, *extensions])
    dirs = {os.path.dirname(os.path.realpath(lib)) for lib in libs}
    for name in LIBS_BY_NAME:
        libs.update(str(Path(d) / name) for d in dirs if (Path(d) / name).exists())
    for lib in sorted(libs):
        install(lib, out)
    etc(out)
    say(f"{len(modules)} stdlib modules ({len(extensions)} extension modules), {len(libs)} shared libraries")


def check(out: Path, venv: Path, scripts: tuple[str, ...], packages: tuple[str, ...], runtime: dict[str, str]) -> None:
    """Chrooted into the result as the non-root uid: each console script's --help, every module of `packages`."""
    python = str(venv / "bin" / "python")
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    checks = [[str(venv / "bin" / script), "--help"] for script in scripts] + [
        # no assert (PYTHONOPTIMIZE drops them); each module's bytecode for this optimization level is
        # shipped (__cached__), so that nothing is compiled at start
        [python, "-c", f"import os, sys, yaml\n"  # os.walk, not pkgutil: the elector image has no pkgutil
                       f"for package in {packages!r}:\n"
                       "    root = __import__(package).__path__[0]\n"
                       "    for where, dirs, files in os.walk(root):\n"
                       "        dirs[:] = [d for d in dirs if d != '__pycache__']\n"
                       "        rel = os.path.relpath(where, root)\n"
                       "        base = package if rel == '.' else package + '.' + rel.replace(os.sep, '.')\n"
                       "        for f in files:\n"
                       "            if f.endswith('.py'):\n"
                       "                name = base if f == '__init__.py' else base + '.' + f[:-3]\n"
                       "                __import__(name)\n"
                       "                if not os.path.exists(sys.modules[name].__cached__):\n"
                       "                    raise SystemExit('no bytecode: ' + sys.modules[name].__cached__)\n"
                       "if yaml.safe_load('a: 1') != {'a': 1} or not 'localhost'.encode('idna'):\n"
                       "    raise SystemExit('yaml or idna')\n"],
    ]
    for argv in checks:
        env = {"PATH": str(venv / "bin"), "PYTHONDONTWRITEBYTECODE": "1", **runtime}
        done = subprocess.run([chroot, f"--userspec={NONROOT}:{NONROOT}", str(out), *argv],
                              capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0 or done.stderr:
            raise SystemExit(f"check in {out} failed: {argv}: rc {done.returncode}\n{done.stdout}{done.stderr}")
    say(f"chroot check as uid 65532: --help of {', '.join(scripts)} and every module of {', '.join(packages)}: ok")


def report(out: Path) -> None:
    files = [(p.stat().st_size, "/" + str(p.relative_to(out))) for p in out.rglob("*")
             if p.is_file() and not p.is_symlink()]
    total = sum(size for size, _ in files)
    say(f"{len(files)} files, {total / 1e6:.1f} MB; the largest:")
    for size, name in sorted(files, reverse=True)[:25]:
        print(f"  {size / 1e6:7.2f} MB  {name}")


def trace_webhook(venv: Path, work: Path) -> set[str]:
    import trace_webhook  # noqa: PLC0415 (beside this file; it builds on the helpers above)

    return trace_webhook.trace(venv, work)


# What differs between the images: how to trace, what else to allow, which scripts and packages to check.
PROFILES = {
    "elector": {"trace": trace_elector, "allow": ALLOW, "scripts": ("kube-elector",), "packages": ("elector",)},
    "webhook": {"trace": trace_webhook, "allow": {**ALLOW, **WEBHOOK_ALLOW},
                "scripts": ("kube-elector-webhook", "kube-elector-controller", "kube-elector-certs"),
                "packages": ("webhook", "controller", "certs", "elector")},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", choices=sorted(PROFILES), default="elector")
    parser.add_argument("--venv", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--modules", type=Path, help="also write the chosen modules here (name, why, file)")
    args = parser.parse_args()
    profile = PROFILES[args.app]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="trace-") as work:
        traced = profile["trace"](args.venv, Path(work))
    modules = select(traced, profile["allow"])
    if args.modules:
        args.modules.write_text("".join(f"{name}\t{why}\t{path}\n" for name, (path, why) in sorted(modules.items())))
    counts = {kind: sum(why == kind for _, why in modules.values()) for kind in ("trace", "allow", "package", "import")}
    say("modules by reason: " + ", ".join(f"{kind} {count}" for kind, count in counts.items()))
    args.out.mkdir(parents=True, exist_ok=True)
    assemble(args.venv, args.out, modules, RUNTIME_ENV[args.app])
    check(args.out, args.venv, profile["scripts"], profile["packages"], RUNTIME_ENV[args.app])
    report(args.out)
    say(f"done in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
