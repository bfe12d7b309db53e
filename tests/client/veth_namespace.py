"""A network namespace reached from the test's own over a veth pair (test support).

`veth_namespace(tag, host_ip, ns_ip)` creates namespace `<tag><pid>`, a veth pair with
`host_ip/30` on the test's side and `ns_ip/30` (and loopback) inside, yields a `VethNamespace`
(the namespace's name and the test-side interface, where a qdisc goes), and deletes both in
`finally`. It raises `NamespaceUnavailable` (with the reason) where
iproute2 is missing or namespaces are not permitted (no root, a container without CAP_NET_ADMIN).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


class NamespaceUnavailable(Exception):
    """Why no namespace could be made here (one line)."""


@dataclass(frozen=True)
class VethNamespace:
    name: str
    host_interface: str

    def exec_prefix(self) -> list[str]:
        """The command prefix that runs a program inside the namespace."""
        return ["ip", "netns", "exec", self.name]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@contextmanager
def veth_namespace(tag: str, host_ip: str, ns_ip: str) -> Iterator[VethNamespace]:
    if shutil.which("ip") is None:
        raise NamespaceUnavailable("iproute2 (ip) is not installed: apt-get install iproute2")
    pid = os.getpid()
    ns, host_if, ns_if = f"{tag}{pid}", f"{tag[:2]}h{pid % 100000}", f"{tag[:2]}n{pid % 100000}"
    try:
        _ip("netns", "add", ns)
    except subprocess.CalledProcessError as exc:
        raise NamespaceUnavailable(f"network namespaces are not permitted here: {exc.stderr.decode().strip()}") \
            from None
    try:
        try:
            _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
            _ip("link", "set", ns_if, "netns", ns)
            _ip("addr", "add", f"{host_ip}/30", "dev", host_if)
            _ip("link", "set", host_if, "up")
            _ip("netns", "exec", ns, "ip", "addr", "add", f"{ns_ip}/30", "dev", ns_if)
            _ip("netns", "exec", ns, "ip", "link", "set", ns_if, "up")
            _ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
        except subprocess.CalledProcessError as exc:
            raise NamespaceUnavailable(f"a veth pair cannot be set up here: {exc.stderr.decode().strip()}") from None
        yield VethNamespace(ns, host_if)
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)

