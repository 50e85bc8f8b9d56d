"""The gate around ExaBGP's internals (``testbed.speaker.compat``): the
installed ExaBGP is the one every patch was written for, a changed
original fails loudly naming the patch, and every patch goes through the
registry."""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

from testbed.speaker import compat


@pytest.fixture
def fresh(monkeypatch):
    """A process in which nothing was verified yet."""
    monkeypatch.setattr(compat, "_verified", set())


def test_the_installed_exabgp_is_the_one_every_patch_was_written_for(fresh):
    assert compat.exabgp_version() == compat.EXABGP_VERSION
    compat.verify()  # raises, naming each patch, if any original changed


def test_a_changed_digest_fails_naming_the_patch(fresh, monkeypatch):
    patch = compat.PATCHES["family-index"]
    monkeypatch.setitem(compat.PATCHES, "family-index", patch._replace(digest="0" * 16))
    with pytest.raises(compat.CompatError) as caught:
        compat.verify()
    message = str(caught.value)
    assert "patch 'family-index' (testbed.speaker.speedups replaces exabgp.protocol.family:Family.index)" in message
    assert f"sha256 {patch.digest}, expected {'0' * 16}" in message
    assert "afi-create" not in message  # only what differs is named


def test_a_changed_original_fails_naming_the_patch_and_nothing_is_patched(fresh, monkeypatch):
    from exabgp.reactor.listener import Listener

    from testbed.speaker import speedups

    def incoming(self):  # an "upgraded" ExaBGP's version of the function
        return False

    monkeypatch.setattr(Listener, "incoming", incoming)
    with pytest.raises(compat.CompatError, match=r"patch 'listener-incoming' .*source differs"):
        speedups.install()
    assert Listener.incoming is incoming


def test_another_version_names_every_patch(fresh, monkeypatch):
    monkeypatch.setattr(compat, "exabgp_version", lambda: "5.1.0")
    with pytest.raises(compat.CompatError) as caught:
        compat.verify()
    assert "ExaBGP 5.1.0 is installed" in str(caught.value)
    for name in compat.PATCHES:
        assert name in str(caught.value)


def test_replace_refuses_a_changed_original_of_a_stand_in(fresh, monkeypatch):
    class Api:
        def process(self, reactor, service, command):
            return False

    monkeypatch.setitem(compat.PATCHES, "api-process", compat.PATCHES["api-process"]._replace(digest="f" * 16))
    with pytest.raises(compat.CompatError, match="api-process"):
        compat.replace("api-process", Api, lambda *args: True)
    assert Api().process(None, None, None) is False


@pytest.mark.parametrize("name", sorted(compat.PATCHES))
def test_every_patch_is_made_or_checked_by_the_module_it_names(name):
    patch = compat.PATCHES[name]
    source = inspect.getsource(importlib.import_module(patch.by))
    applied = re.findall(r'compat\.(?:replace|verify)\(\s*\[?"([a-z-]+)"', source)
    listed = re.findall(r'"([a-z-]+)"', " ".join(re.findall(r"PATCHES = \(([^)]*)\)", source)))
    verified = re.findall(r'compat\.verify\(\[([^\]]*)\]', source)
    names = set(applied) | set(listed) | {n for group in verified for n in re.findall(r'"([a-z-]+)"', group)}
    assert name in names, f"{patch.by} does not apply or check patch {name!r}"


def test_every_patch_made_in_the_speaker_package_is_registered():
    import pkgutil

    import testbed.speaker as package

    for module in pkgutil.iter_modules(package.__path__):
        source = inspect.getsource(importlib.import_module(f"testbed.speaker.{module.name}"))
        for name in re.findall(r'compat\.replace\(\s*"([a-z-]+)"', source):
            assert name in compat.PATCHES, f"testbed.speaker.{module.name} applies unregistered patch {name!r}"
        # no assignment to an ExaBGP class attribute that bypasses the gate
        assert not re.search(r"^\s*(?:AFI|SAFI|Family|INET|NLRI|Listener|Reactor|Peer|Processes|API|ASYNC|"
                             r"_log|reactor_class|peer_class|processes_class|api_class|async_class)\.\w+\s*=",
                             source, re.M), module.name
