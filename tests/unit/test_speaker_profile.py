"""``TESTBED_PROFILE``: a speaker thread's profile is written whole under
its name (through a temporary file renamed into place, so a speaker
killed while writing leaves no truncated file), and nothing without it."""

from __future__ import annotations

import pstats

from testbed.speaker import child


def busy() -> int:
    return sum(i * i for i in range(20_000))


def test_a_profile_is_written_whole_and_loads(tmp_path, monkeypatch):
    monkeypatch.setattr(child, "PROFILE_DIR", str(tmp_path))
    monkeypatch.setattr(child, "PROFILE_ONLY", set())
    with child.profiled("exabgp"):
        busy()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exabgp.prof"]
    stats = pstats.Stats(str(tmp_path / "exabgp.prof"))
    assert any(func[2] == "busy" for func in stats.stats)


def test_nothing_is_written_without_the_variable_or_for_another_router(tmp_path, monkeypatch):
    monkeypatch.setattr(child, "PROFILE_DIR", None)
    with child.profiled("exabgp"):
        busy()
    monkeypatch.setattr(child, "PROFILE_DIR", str(tmp_path))
    monkeypatch.setattr(child, "PROFILE_ONLY", {"R"})
    monkeypatch.setattr(child.State, "router", "C", raising=False)
    with child.profiled("exabgp"):
        busy()
    assert list(tmp_path.iterdir()) == []


def test_a_write_cut_short_leaves_no_profile_to_trip_over(tmp_path, monkeypatch):
    import cProfile

    def cut_short(self, path):
        with open(path, "wb") as handle:
            handle.write(b"\x00" * 100)   # what a kill in the middle of the write leaves
        raise OSError("killed")

    monkeypatch.setattr(child, "PROFILE_DIR", str(tmp_path))
    monkeypatch.setattr(child, "PROFILE_ONLY", set())
    monkeypatch.setattr(cProfile.Profile, "dump_stats", cut_short)
    with child.profiled("exabgp"):
        busy()
    assert not (tmp_path / "exabgp.prof").exists()
